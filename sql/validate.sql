--
-- Input validation: every bad input gets invalid_parameter_value (22023),
-- names the ordering group and the field, and sends nothing.
--
CREATE EXTENSION telnyx_orders;
\! standinctl reset
\set VERBOSITY default

-- the ordering groups themselves
SELECT telnyx_create_inexplicit_order(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_create_inexplicit_order('5');
SELECT telnyx_create_inexplicit_order('"US"');
SELECT telnyx_create_inexplicit_order('[]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}, 7]');
\echo :LAST_ERROR_SQLSTATE

-- a typo is an error, not a silently dropped criterion
SELECT telnyx_create_inexplicit_order('{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "area_code": "312"}');
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}, {"country_iso": "US", "phone_number_type": "local", "count": 1}]');

-- required fields
SELECT telnyx_create_inexplicit_order('[{"phone_number_type": "local", "count_requested": 1}]');
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "count_requested": 1}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local"}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": null, "phone_number_type": "local", "count_requested": 1}]');

-- country_iso
SELECT telnyx_create_inexplicit_order('[{"country_iso": "GB", "phone_number_type": "local", "count_requested": 1}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": 1, "phone_number_type": "local", "count_requested": 1}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "", "phone_number_type": "local", "count_requested": 1}]');

-- phone_number_type
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": ["local"], "count_requested": 1}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "", "count_requested": 1}]');
-- only the types Telnyx documents: a typo is refused, with the list
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "locale", "count_requested": 1}]');
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}, {"country_iso": "US", "phone_number_type": "Toll_Free", "count_requested": 1}]');
-- and those named in telnyx.extra_number_types, exactly
SET telnyx.extra_number_types = ' satellite , premium';
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "satellit", "count_requested": 1}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "satellite premium", "count_requested": 1}]');
RESET telnyx.extra_number_types;
SET telnyx.extra_number_types = 'satellite, "premium"';
SHOW telnyx.extra_number_types;

-- count_requested: an integer or a string of digits, 1 to 10000
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 0}]');
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 10001}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": -3}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 2.5}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": "abc"}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": " 5"}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": "99999999999999999999"}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": true}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": ""}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 6000}, {"country_iso": "CA", "phone_number_type": "local", "count_requested": "3000"}, {"country_iso": "US", "phone_number_type": "toll_free", "count_requested": 1001}]');

-- the optional criteria
-- digits may be a JSON number, but a whole one without a sign
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "national_destination_code": 3.5}]');
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "national_destination_code": -1}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "national_destination_code": 312.0}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "national_destination_code": 1e-3}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "national_destination_code": true}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "phone_number": {"starts_with": -312}}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "national_destination_code": "31a"}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "administrative_area": false}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "locality": ""}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "features": "sms"}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "features": ["sms", 5]}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "phone_number": "312"}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "phone_number": {"begins_with": "312"}}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "phone_number": {"starts_with": "+1312"}}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "phone_number[ends_with]": 4.2}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "phone_number": {"contains": "55"}, "phone_number[contains]": "66"}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "strategy": "sometimes"}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "quickship": "yes"}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "exclude_held_numbers": 1}]');

-- the order-level strings
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]', customer_reference => '');
\echo :LAST_ERROR_SQLSTATE
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]', connection_id => '');

-- the later group is checked too, and named
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}, {"country_iso": "CA", "phone_number_type": "local", "count_requested": 1}, {"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "strategy": 1}]');

-- what is accepted, as it would be sent (queued in a transaction that
-- rolls back, so nothing is sent): digits given as numbers go out as
-- strings; a type named in telnyx.extra_number_types goes out as given
BEGIN;
SET LOCAL telnyx.extra_number_types = 'satellite, premium';
SET LOCAL client_min_messages = error;
SELECT telnyx_enqueue_inexplicit_order('[{"country_iso": "US", "phone_number_type": "premium", "count_requested": 1, "national_destination_code": 312, "phone_number": {"starts_with": 312, "contains": 0}, "phone_number[ends_with]": 55}, {"country_iso": "CA", "phone_number_type": "landline", "count_requested": 2, "national_destination_code": 1e3}]', customer_reference => 'digits') AS rid \gset
SELECT jsonb_pretty(body) AS body FROM telnyx_order_requests WHERE id = :rid;
ROLLBACK;

-- the trigger path checks the same: an integer column of digits is sent
-- as a string, an undocumented type fails the INSERT
BEGIN;
SET LOCAL client_min_messages = error;
CREATE TABLE validate_rows (country_iso text, phone_number_type text,
                            count_requested integer, national_destination_code integer);
CREATE TRIGGER order_rows AFTER INSERT ON validate_rows
    FOR EACH ROW EXECUTE FUNCTION telnyx_order_trigger();
INSERT INTO validate_rows VALUES ('US', 'mobile', 1, 312);
SELECT body -> 'ordering_groups' AS sent FROM telnyx_order_requests;
SAVEPOINT s;
INSERT INTO validate_rows VALUES ('US', 'locale', 1, 312);
ROLLBACK TO s;
INSERT INTO validate_rows VALUES ('US', 'local', 1, -312);
ROLLBACK;
SELECT count(*) AS requests FROM telnyx_order_requests;

-- nothing reached Telnyx
\! standinctl requests
\! standinctl count
