--
-- The full install script and the upgrade chain give one schema.
--
-- CREATE EXTENSION of the default version runs the newest full install
-- script (sql/telnyx_orders--X.sql) and the upgrade scripts after it; a
-- database made at 1.0 reaches the same version by every upgrade script.
-- Both must leave the same objects: every install from an older version,
-- upgraded one version at a time, is described object by object and
-- compared with a fresh install, in a database of its own.
--
-- Columns are compared in the order SELECT * returns them (their position
-- among the columns not dropped): a full script that put a column added by
-- an upgrade anywhere but last would change what SELECT *, a row's text or
-- JSON form and a dump of INSERTs without column names give.
--
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_telnyx_schema;
CREATE DATABASE regress_telnyx_schema TEMPLATE template0;
\c regress_telnyx_schema
SET client_min_messages = warning;
CREATE SCHEMA telnyx;

-- the newest full install script, and that the default version is it or
-- is reached from it by upgrade scripts
WITH scripts AS (
	SELECT substring(f FROM '^telnyx_orders--([0-9.]+)\.sql$') AS version
	  FROM pg_ls_dir((SELECT setting FROM pg_config WHERE name = 'SHAREDIR') || '/extension') f),
newest AS (
	SELECT version FROM scripts WHERE version IS NOT NULL
	 ORDER BY string_to_array(version, '.')::int[] DESC LIMIT 1),
dflt AS (
	SELECT default_version AS version FROM pg_available_extensions WHERE name = 'telnyx_orders')
SELECT n.version AS newest_full_script,
	   n.version = d.version
	   OR EXISTS (SELECT FROM pg_extension_update_paths('telnyx_orders') p
				   WHERE p.source = n.version AND p.target = d.version AND p.path IS NOT NULL)
		   AS installs_the_default_version
  FROM newest n, dflt d;

CREATE TABLE described (
	install		text NOT NULL,
	kind		text NOT NULL,
	object		text NOT NULL,
	detail		text
);

/*
 * Everything the extension made in its schema (which holds nothing else
 * here), named as pg_describe_object names it: members, relations, columns,
 * constraints, indexes, triggers, policies, views, sequences, types,
 * functions, event triggers, comments, ACLs, initial privileges, what
 * pg_dump keeps, and the rows an install writes.  Left out: oids, and
 * the server's own per-column mark (attoptions pg_attver), which differ
 * from one install to the next whatever the script.
 */
CREATE FUNCTION describe(install text) RETURNS SETOF described
LANGUAGE sql
SET search_path = pg_catalog
AS $describe$
WITH ext AS (
	SELECT e.* FROM pg_extension e WHERE e.extname = 'telnyx_orders'),
rels AS (
	SELECT c.* FROM pg_class c, ext WHERE c.relnamespace = ext.extnamespace),
procs AS (
	SELECT p.* FROM pg_proc p, ext WHERE p.pronamespace = ext.extnamespace),
cons AS (
	SELECT k.* FROM pg_constraint k, ext WHERE k.connamespace = ext.extnamespace),
trigs AS (
	SELECT t.* FROM pg_trigger t JOIN rels r ON r.oid = t.tgrelid
	 WHERE NOT t.tgisinternal),
pols AS (
	SELECT p.* FROM pg_policy p JOIN rels r ON r.oid = p.polrelid),
evts AS (
	SELECT v.* FROM pg_event_trigger v JOIN procs p ON p.oid = v.evtfoid),
types AS (
	SELECT t.* FROM pg_type t, ext WHERE t.typnamespace = ext.extnamespace),
rules AS (
	SELECT w.* FROM pg_rewrite w JOIN rels r ON r.oid = w.ev_class
	 WHERE w.rulename <> '_RETURN'),
objs (classid, objid) AS (
	SELECT 'pg_extension'::regclass, oid FROM ext
	UNION ALL SELECT 'pg_class'::regclass, oid FROM rels
	UNION ALL SELECT 'pg_proc'::regclass, oid FROM procs
	UNION ALL SELECT 'pg_constraint'::regclass, oid FROM cons
	UNION ALL SELECT 'pg_trigger'::regclass, oid FROM trigs
	UNION ALL SELECT 'pg_policy'::regclass, oid FROM pols
	UNION ALL SELECT 'pg_event_trigger'::regclass, oid FROM evts
	UNION ALL SELECT 'pg_type'::regclass, oid FROM types
	UNION ALL SELECT 'pg_rewrite'::regclass, oid FROM rules),
cols AS (
	SELECT a.*,
		   row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum) AS position
	  FROM pg_attribute a JOIN rels r ON r.oid = a.attrelid
	 WHERE a.attnum > 0 AND NOT a.attisdropped AND r.relkind <> 'i')
SELECT install, 'extension', pg_describe_object('pg_extension'::regclass, e.oid, 0),
	   format('schema %s, version %s, relocatable %s, owner %s',
			  e.extnamespace::regnamespace, e.extversion, e.extrelocatable, e.extowner::regrole)
  FROM ext e
UNION ALL
SELECT install, 'dumped by pg_dump', pg_describe_object('pg_class'::regclass, c.reloid, 0),
	   format('condition %L', c.cond)
  FROM ext e, unnest(e.extconfig, e.extcondition) AS c(reloid, cond)
UNION ALL
SELECT install, 'member', pg_describe_object(d.classid, d.objid, d.objsubid), NULL
  FROM pg_depend d, ext e
 WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid AND d.deptype = 'e'
UNION ALL
SELECT install, 'relation', pg_describe_object('pg_class'::regclass, r.oid, 0),
	   format('kind %s, persistence %s, access method %s, options %s, row security %s, forced %s, replica identity %s, owner %s, acl %s',
			  r.relkind, r.relpersistence, am.amname, r.reloptions, r.relrowsecurity,
			  r.relforcerowsecurity, r.relreplident, r.relowner::regrole, r.relacl)
  FROM rels r LEFT JOIN pg_am am ON am.oid = r.relam
UNION ALL
SELECT install, 'column', pg_describe_object('pg_class'::regclass, a.attrelid, a.attnum),
	   format('position %s, type %s, not null %s, default %s, collation %s, identity %s, generated %s, storage %s, compression %s, statistics %s, options %s, acl %s',
			  a.position, format_type(a.atttypid, a.atttypmod), a.attnotnull,
			  pg_get_expr(ad.adbin, ad.adrelid),
			  CASE WHEN a.attcollation <> 0 THEN a.attcollation::regcollation END,
			  a.attidentity, a.attgenerated, a.attstorage, to_jsonb(a) ->> 'attcompression',
			  a.attstattarget,
			  array(SELECT o FROM unnest(a.attoptions) o WHERE o NOT LIKE 'pg\_attver=%'),
			  a.attacl)
  FROM cols a
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
UNION ALL
SELECT install, 'constraint', pg_describe_object('pg_constraint'::regclass, k.oid, 0),
	   pg_get_constraintdef(k.oid)
  FROM cons k
UNION ALL
SELECT install, 'index', pg_describe_object('pg_class'::regclass, i.indexrelid, 0),
	   format('%s, clustered %s, replica identity %s',
			  pg_get_indexdef(i.indexrelid), i.indisclustered, i.indisreplident)
  FROM pg_index i JOIN rels r ON r.oid = i.indrelid
UNION ALL
SELECT install, 'trigger', pg_describe_object('pg_trigger'::regclass, t.oid, 0),
	   format('%s, enabled %s', pg_get_triggerdef(t.oid), t.tgenabled)
  FROM trigs t
UNION ALL
SELECT install, 'policy', pg_describe_object('pg_policy'::regclass, p.oid, 0),
	   format('command %s, permissive %s, roles %s, using %s, with check %s',
			  p.polcmd, p.polpermissive, p.polroles::regrole[],
			  pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
  FROM pols p
UNION ALL
SELECT install, 'rule', pg_describe_object('pg_rewrite'::regclass, w.oid, 0),
	   pg_get_ruledef(w.oid)
  FROM rules w
UNION ALL
SELECT install, 'view', pg_describe_object('pg_class'::regclass, r.oid, 0),
	   pg_get_viewdef(r.oid)
  FROM rels r WHERE r.relkind IN ('v', 'm')
UNION ALL
SELECT install, 'sequence', pg_describe_object('pg_class'::regclass, s.seqrelid, 0),
	   format('type %s, start %s, increment %s, min %s, max %s, cache %s, cycle %s, last value %s, owned by %s',
			  s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
			  s.seqcache, s.seqcycle, pg_sequence_last_value(s.seqrelid),
			  (SELECT string_agg(pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)
								 || ' (' || d.deptype::text || ')', ', ')
				 FROM pg_depend d
				WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
				  AND d.refobjsubid > 0))
  FROM pg_sequence s JOIN rels r ON r.oid = s.seqrelid
UNION ALL
SELECT install, 'type', pg_describe_object('pg_type'::regclass, t.oid, 0),
	   format('type %s, relation %s, element %s, owner %s, acl %s',
			  t.typtype, t.typrelid::regclass, t.typelem::regtype, t.typowner::regrole, t.typacl)
  FROM types t
UNION ALL
SELECT install, 'function', pg_describe_object('pg_proc'::regclass, p.oid, 0),
	   format(E'%s\nowner %s, acl %s', pg_get_functiondef(p.oid), p.proowner::regrole, p.proacl)
  FROM procs p WHERE p.prokind <> 'a'
UNION ALL
SELECT install, 'event trigger', pg_describe_object('pg_event_trigger'::regclass, v.oid, 0),
	   format('on %s, tags %s, function %s, enabled %s, owner %s',
			  v.evtevent, v.evttags, v.evtfoid::regprocedure, v.evtenabled, v.evtowner::regrole)
  FROM evts v
UNION ALL
SELECT install, 'comment', pg_describe_object(c.classoid, c.objoid, c.objsubid), c.description
  FROM pg_description c JOIN objs o ON o.classid = c.classoid AND o.objid = c.objoid
UNION ALL
SELECT install, 'initial privileges', pg_describe_object(i.classoid, i.objoid, i.objsubid),
	   format('%s %s', i.privtype, i.initprivs)
  FROM pg_init_privs i JOIN objs o ON o.classid = i.classoid AND o.objid = i.objoid
UNION ALL
SELECT install, 'rows', pg_describe_object('pg_class'::regclass, r.oid, 0),
	   (xpath('/row/n/text()',
			  query_to_xml(format('SELECT count(*) AS n FROM %s', r.oid::regclass),
						   false, true, '')))[1]::text
  FROM rels r WHERE r.relkind = 'r'
$describe$;

/*
 * A fresh install of the default version, then one from each older version
 * that has a path to it, upgraded one version at a time, each step
 * committed as its own ALTER EXTENSION would be.
 */
DO $$
DECLARE
	r			record;
	step		text;
BEGIN
	CREATE EXTENSION telnyx_orders SCHEMA telnyx;
	INSERT INTO described SELECT * FROM describe('fresh');
	DROP EXTENSION telnyx_orders;
	COMMIT;
	FOR r IN SELECT p.source, p.path
			   FROM pg_extension_update_paths('telnyx_orders') p,
					pg_available_extensions a
			  WHERE a.name = 'telnyx_orders' AND p.target = a.default_version
				AND p.path IS NOT NULL
	LOOP
		EXECUTE format('CREATE EXTENSION telnyx_orders SCHEMA telnyx VERSION %L', r.source);
		COMMIT;
		FOREACH step IN ARRAY (string_to_array(r.path, '--'))[2:]
		LOOP
			EXECUTE format('ALTER EXTENSION telnyx_orders UPDATE TO %L', step);
			COMMIT;
		END LOOP;
		INSERT INTO described SELECT * FROM describe(r.source);
		DROP EXTENSION telnyx_orders;
		COMMIT;
	END LOOP;
END
$$;

-- the installs compared with the fresh one
SELECT DISTINCT install AS upgraded_from FROM described WHERE install <> 'fresh'
 ORDER BY 1;

-- the description sees each kind of object, and names every member
SELECT kind, count(*) > 0 AS described FROM described WHERE install = 'fresh'
 GROUP BY kind ORDER BY kind COLLATE "C";
SELECT m.object AS member_not_described
  FROM described m
 WHERE m.kind = 'member'
   AND NOT EXISTS (SELECT FROM described d
					WHERE d.install = m.install AND d.kind <> 'member'
					  AND d.object = m.object)
 ORDER BY 1;

/*
 * Every difference, line by line: "-" what the fresh install has, "+" what
 * the upgraded one has instead.  Nothing, when they are the same.
 */
WITH installs AS (
	SELECT DISTINCT install FROM described WHERE install <> 'fresh'),
pairs AS (
	SELECT i.install, x.*
	  FROM installs i
	 CROSS JOIN LATERAL (
		SELECT coalesce(f.kind, u.kind) AS kind, coalesce(f.object, u.object) AS object,
			   f.detail AS fresh, u.detail AS upgraded,
			   f.kind IS NOT NULL AS in_fresh, u.kind IS NOT NULL AS in_upgraded
		  FROM (SELECT * FROM described WHERE install = 'fresh') f
		  FULL JOIN (SELECT * FROM described d WHERE d.install = i.install) u
			ON u.kind = f.kind AND u.object = f.object) x
	 WHERE NOT (x.in_fresh AND x.in_upgraded) OR x.fresh IS DISTINCT FROM x.upgraded),
lines AS (
	SELECT p.install, p.kind, p.object, 0 AS sign_order, 0 AS n,
		   CASE WHEN NOT p.in_upgraded THEN '  (only in the fresh install)'
				WHEN NOT p.in_fresh THEN '  (only in the upgraded install)'
				ELSE '  (differs)' END AS line
	  FROM pairs p
	UNION ALL
	SELECT p.install, p.kind, p.object, 1, l.n, '- ' || l.line
	  FROM pairs p, unnest(string_to_array(p.fresh, E'\n')) WITH ORDINALITY l(line, n)
	 WHERE l.line <> ALL (coalesce(string_to_array(p.upgraded, E'\n'), '{}'))
	UNION ALL
	SELECT p.install, p.kind, p.object, 2, l.n, '+ ' || l.line
	  FROM pairs p, unnest(string_to_array(p.upgraded, E'\n')) WITH ORDINALITY l(line, n)
	 WHERE l.line <> ALL (coalesce(string_to_array(p.fresh, E'\n'), '{}')))
SELECT install AS upgraded_from, kind, object, line AS difference
  FROM lines
 ORDER BY install COLLATE "C", kind COLLATE "C", object COLLATE "C", sign_order, n;

\c contrib_regression
DROP DATABASE regress_telnyx_schema;
