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
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "national_destination_code": 312}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "national_destination_code": "31a"}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "administrative_area": false}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "locality": ""}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "features": "sms"}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "features": ["sms", 5]}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "phone_number": "312"}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "phone_number": {"begins_with": "312"}}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "phone_number": {"starts_with": "+1312"}}]');
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1, "phone_number[ends_with]": 42}]');
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

-- nothing reached Telnyx
\! standinctl requests
\! standinctl count
