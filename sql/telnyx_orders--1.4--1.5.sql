/* telnyx_orders 1.4 -> 1.5: every promise kept where two features meet */

\echo Use "ALTER EXTENSION telnyx_orders UPDATE TO '1.5'" to load this file. \quit

/*---- Claims, links and evidence (never twice, never forgotten) ----*/

/*---- Restores and drops (nothing lost, nothing fired) ----*/

/*---- Facts only move forward ----*/

/*---- The API key is never a SQL value ----*/

/*
 * A function's SET clause is kept in pg_proc, which every role can read.
 * Calling this C function before CREATE or ALTER FUNCTION loads the
 * library, so that PostgreSQL asks it whether telnyx.api_key may be set
 * there (never), even in a session that had not loaded it.
 */
CREATE FUNCTION @extschema@.telnyx_guard_key_settings()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'telnyx_guard_key_settings';
REVOKE ALL ON FUNCTION @extschema@.telnyx_guard_key_settings() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.telnyx_guard_key_settings() IS 'Event trigger: loads the library before CREATE/ALTER FUNCTION, so that no SET clause keeps a Telnyx API key.';
CREATE EVENT TRIGGER telnyx_orders_guard_key_settings ON ddl_command_start
	WHEN TAG IN ('CREATE FUNCTION', 'ALTER FUNCTION', 'CREATE PROCEDURE',
				 'ALTER PROCEDURE', 'ALTER ROUTINE')
	EXECUTE FUNCTION @extschema@.telnyx_guard_key_settings();

/*
 * telnyx.api_key is no longer read: a key still given in a setting is
 * refused, and may have been readable.  Say where it is (never what it
 * is) and what to do.
 */
DO $key$
DECLARE
	r record;
	todo text := 'Remove it, replace the key at Telnyx (it may have been readable), and put the new key in a file that only the server''s operating system user can read, named by telnyx.api_key_file in postgresql.conf; or set TELNYX_API_KEY in the server''s environment.';
BEGIN
	FOR r IN SELECT f.sourcefile, f.sourceline
			   FROM pg_catalog.pg_file_settings f
			  WHERE pg_catalog.lower(f.name) OPERATOR(pg_catalog.=) 'telnyx.api_key'
				AND f.setting OPERATOR(pg_catalog.<>) ''
	LOOP
		RAISE WARNING 'a Telnyx API key is set in "%" line %, and is no longer used', r.sourcefile, r.sourceline
			USING HINT = todo;
	END LOOP;
	FOR r IN SELECT CASE WHEN s.setrole OPERATOR(pg_catalog.<>) 0 AND s.setdatabase OPERATOR(pg_catalog.<>) 0
						 THEN pg_catalog.format('ALTER ROLE %I IN DATABASE %I', a.rolname, d.datname)
						 WHEN s.setrole OPERATOR(pg_catalog.<>) 0
						 THEN pg_catalog.format('ALTER ROLE %I', a.rolname)
						 WHEN s.setdatabase OPERATOR(pg_catalog.<>) 0
						 THEN pg_catalog.format('ALTER DATABASE %I', d.datname)
						 ELSE 'ALTER ROLE ALL' END AS fix
			   FROM pg_catalog.pg_db_role_setting s
			   LEFT JOIN pg_catalog.pg_roles a ON a.oid OPERATOR(pg_catalog.=) s.setrole
			   LEFT JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) s.setdatabase
			  WHERE EXISTS (SELECT FROM pg_catalog.unnest(s.setconfig) c
							 WHERE c OPERATOR(pg_catalog.~*) '^telnyx\.api_key=.')
	LOOP
		RAISE WARNING 'a Telnyx API key is stored in pg_db_role_setting, where every role can read it'
			USING DETAIL = 'Nothing is sent to Telnyx while it is there.',
				  HINT = pg_catalog.format('Run "%s RESET telnyx.api_key". ', r.fix) OPERATOR(pg_catalog.||) todo;
	END LOOP;
	FOR r IN SELECT p.oid::pg_catalog.regprocedure AS fn
			   FROM pg_catalog.pg_proc p
			  WHERE EXISTS (SELECT FROM pg_catalog.unnest(p.proconfig) c
							 WHERE c OPERATOR(pg_catalog.~*) '^telnyx\.api_key=.')
	LOOP
		RAISE WARNING 'a Telnyx API key is stored in the SET clause of function %, where every role can read it', r.fn
			USING DETAIL = 'Calling the function fails: the key is refused.',
				  HINT = pg_catalog.format('Run "ALTER FUNCTION %s RESET telnyx.api_key". ', r.fn) OPERATOR(pg_catalog.||) todo;
	END LOOP;
END
$key$;

/*---- Grants and status ----*/
