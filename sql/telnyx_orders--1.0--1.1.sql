/* telnyx_orders 1.0 -> 1.1: the queued path, for triggers and the worker */

\echo Use "ALTER EXTENSION telnyx_orders UPDATE TO '1.1'" to load this file. \quit

/*
 * One row per order request waiting for, or done with, the background
 * worker.  The row is written in the caller's transaction; the worker sends
 * it after commit.  States:
 *   queued     waiting to be sent
 *   sending    claimed by a sender (claimed_by_*) until lease_until
 *   retrying   not sent yet (rate limited, or could not reach Telnyx);
 *              waits until next_attempt_at
 *   sent       the order exists; order_id is set and its rows are recorded
 *   failed     Telnyx rejected it for good; last_error says why
 *   unknown    the outcome is uncertain; being reconciled against the list
 *              of orders before anything is sent again
 *   cancelled  cancelled while queued or retrying
 */
CREATE TABLE @extschema@.telnyx_order_requests (
	id					bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	request_key			uuid NOT NULL UNIQUE,
	body				jsonb NOT NULL,
	state				text NOT NULL DEFAULT 'queued'
		CHECK (state IN ('queued', 'sending', 'retrying', 'sent', 'failed',
						 'unknown', 'cancelled')),
	attempts			integer NOT NULL DEFAULT 0,
	next_attempt_at		timestamptz NOT NULL DEFAULT now(),
	lease_until			timestamptz,
	claimed_by_pid		integer,
	claimed_by_start	timestamptz,
	last_error			jsonb,
	order_id			uuid,
	created_at			timestamptz NOT NULL DEFAULT now(),
	updated_at			timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX telnyx_order_requests_due_idx
	ON @extschema@.telnyx_order_requests (next_attempt_at, id)
	WHERE state IN ('queued', 'sending', 'retrying', 'unknown');
CREATE INDEX telnyx_order_requests_order_idx
	ON @extschema@.telnyx_order_requests (order_id);

SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_order_requests', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.telnyx_order_requests_id_seq', '');

/* Every state change is announced: LISTEN telnyx_orders. */
CREATE FUNCTION @extschema@.telnyx_order_requests_notify()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM pg_notify('telnyx_orders',
					  json_build_object('id', NEW.id, 'state', NEW.state,
										'order_id', NEW.order_id)::text);
	RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.telnyx_order_requests_notify() FROM PUBLIC;

CREATE TRIGGER telnyx_order_requests_notify_insert
	AFTER INSERT ON @extschema@.telnyx_order_requests
	FOR EACH ROW EXECUTE FUNCTION @extschema@.telnyx_order_requests_notify();
CREATE TRIGGER telnyx_order_requests_notify_update
	AFTER UPDATE OF state ON @extschema@.telnyx_order_requests
	FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
	EXECUTE FUNCTION @extschema@.telnyx_order_requests_notify();

CREATE FUNCTION @extschema@.telnyx_enqueue_inexplicit_order(
	ordering_groups			jsonb,
	connection_id			text DEFAULT NULL,
	messaging_profile_id	text DEFAULT NULL,
	customer_reference		text DEFAULT NULL,
	billing_group_id		text DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_enqueue_inexplicit_order';

CREATE FUNCTION @extschema@.telnyx_order_trigger()
RETURNS trigger
LANGUAGE c SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'telnyx_order_trigger';

CREATE FUNCTION @extschema@.telnyx_process_queue(max_requests integer DEFAULT NULL)
RETURNS integer
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'telnyx_process_queue';

CREATE FUNCTION @extschema@.telnyx_cancel_order_request(id bigint)
RETURNS boolean
LANGUAGE sql VOLATILE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	WITH cancelled AS (
		UPDATE @extschema@.telnyx_order_requests r
		   SET state = 'cancelled', updated_at = now()
		 WHERE r.id = $1 AND r.state IN ('queued', 'retrying')
		RETURNING 1)
	SELECT count(*) > 0 FROM cancelled
$$;

REVOKE ALL ON FUNCTION @extschema@.telnyx_enqueue_inexplicit_order(jsonb, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.telnyx_order_trigger() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.telnyx_process_queue(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.telnyx_cancel_order_request(bigint) FROM PUBLIC;
