# The documented grants, as written: every SQL block (and inline statement)
# of README.md and docs/*.md that grants something is read from them when
# the test runs, executed by the extension's owner, and then each role it
# names does what docs/security.md says that role may do, and is refused a
# few things it may not.  Also what row security hides from a role that
# reads telnyx_order_requests, and what it does not (docs/security.md).
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use StandIn;

my $key = $ENV{TELNYX_TEST_KEY} or die "TELNYX_TEST_KEY is not set";
my $group = '{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}';

# --- the grants, from the README and docs/ ---------------------------------

my $top = "$FindBin::Bin/../..";
my @files = ('README.md', map { s{^\Q$top\E/}{}r } sort glob("$top/docs/*.md"));

# Fenced SQL blocks (indented or not) that hold a GRANT, and inline code
# spans that are GRANT statements; each with the file and line it starts on.
my @blocks;
for my $file (@files)
{
	open(my $fh, '<', "$top/$file") or die "could not open $top/$file: $!";
	my @lines = <$fh>;
	close($fh);
	for (my $i = 0; $i < @lines; $i++)
	{
		if ($lines[$i] =~ /^(\s*)```sql\s*$/)
		{
			my ($indent, $start) = ($1, $i + 1);
			my $text = '';
			for ($i++; $i < @lines && $lines[$i] !~ /^\s*```\s*$/; $i++)
			{
				(my $l = $lines[$i]) =~ s/^\Q$indent\E//;
				$text .= $l;
			}
			push @blocks, { where => "$file line $start", sql => $text } if $text =~ /\bGRANT\b/i;
			next;
		}
	}
	my $whole = join('', @lines);
	while ($whole =~ /`(GRANT\b[^`]*)`/gi)
	{
		my $sql = $1;
		my $line = 1 + (() = substr($whole, 0, $-[0]) =~ /\n/g);
		push @blocks, { where => "$file line $line", sql => "$sql;" };
	}
}
cmp_ok(scalar(@blocks), '>=', 2, scalar(@blocks) . ' grant blocks found in README.md and docs/*.md');

# The roles the grants name (TO role[, role]).
my %roles;
for my $b (@blocks)
{
	(my $sql = $b->{sql}) =~ s/--[^\n]*//g;
	while ($sql =~ /\bTO\s+([a-z_][a-z0-9_]*(?:\s*,\s*[a-z_][a-z0-9_]*)*)/gi)
	{
		$roles{$_} = 1 for split /\s*,\s*/, $1;
	}
}
is(join(' ', sort keys %roles), 'admin_role ordering_role table_owner webhook_role',
	'the grants name the roles docs/security.md describes');

# --- a server set up as the documentation says ------------------------------------

standinctl('reset');
standinctl('config', encode_json({ api_key => $key, idempotency => JSON::PP::false }));

my $node = PostgreSQL::Test::Cluster->new('readme_grants');
$node->init;
$node->append_conf('postgresql.conf', telnyx_conf() . qq{
telnyx.database = 'no_such_database'
telnyx.webhook_public_key = '$ENV{TELNYX_TEST_WEBHOOK_PUBLIC_KEY}'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION telnyx_orders');
# (no worker sends this database's queue, so that a request stays queued
# until admin_role sends it)
# docs/security.md says to create the roles first
$node->safe_psql('postgres', "CREATE ROLE $_ LOGIN") for sort keys %roles;
# a schema of its own for the table owner's table (PostgreSQL 15 grants
# no CREATE on public)
$node->safe_psql('postgres', 'CREATE SCHEMA AUTHORIZATION table_owner');

for my $b (@blocks)
{
	my ($rc, $out, $err) = $node->psql('postgres', $b->{sql},
		extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
	is($rc, 0, "$b->{where}: the grant runs as written")
	  or diag($err);
}

# Run sql as role (a connection of its own); returns (ok, stdout, stderr).
sub as_role
{
	my ($role, $sql) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', $sql,
		extra_params => [ '-U', $role, '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=sqlstate' ]);
	return ($rc == 0, $out, $err);
}

# What role may do: it runs and answers like.
sub may
{
	my ($role, $sql, $like, $what) = @_;
	my ($ok, $out, $err) = as_role($role, $sql);
	ok($ok && $out =~ $like, "$role may $what") or diag("out: $out\nerr: $err");
	return $out;
}

# What role may not do: refused for want of privilege (42501).
sub may_not
{
	my ($role, $sql, $what) = @_;
	my ($ok, $out, $err) = as_role($role, $sql);
	ok(!$ok && $err =~ /42501/, "$role may not $what") or diag("out: $out\nerr: $err");
}

# --- ordering_role ---------------------------------------------------------

my $order = may('ordering_role',
	"SELECT telnyx_create_inexplicit_order('$group', customer_reference => 'readme-ordering') ->> 'id'",
	qr/^[0-9a-f-]{36}$/, 'create an order');
may('ordering_role', "SELECT telnyx_get_inexplicit_order('$order'::uuid) ->> 'id'",
	qr/^\Q$order\E$/, 'get an order by uuid');
may('ordering_role', "SELECT telnyx_get_inexplicit_order('$order'::text) ->> 'id'",
	qr/^\Q$order\E$/, 'get an order by text');
may('ordering_role',
	"SELECT (SELECT count(*) FROM telnyx_order_allocations) || ' ' || (SELECT count(*) FROM telnyx_purchased_numbers)"
	  . " || ' ' || (SELECT count(*) FROM telnyx_open_orders) || ' ' || (SELECT count(*) FROM telnyx_order_events)",
	qr/^1 \d+ \d+ \d+$/, 'read the report views');
may('ordering_role',
	"SELECT count(customer_reference) >= 0 FROM telnyx_order_events",
	qr/^t$/, 'read the customer_reference of events');
may_not('ordering_role', 'SELECT * FROM telnyx_queue_summary', 'read the queue summary');
may_not('ordering_role', 'SELECT * FROM telnyx_inexplicit_orders_list()',
	'list orders as rows');
my $own = may('ordering_role',
	"SELECT telnyx_enqueue_inexplicit_order('$group', customer_reference => 'readme-queued')",
	qr/^\d+$/, 'enqueue an order');
may('ordering_role', "SELECT telnyx_cancel_order_request($own)", qr/^t$/,
	'cancel its own request');
may('ordering_role', "SELECT count(*) || ' ' || min(state) FROM telnyx_order_requests",
	qr/^1 cancelled$/, 'read its own requests');
may_not('ordering_role', 'SELECT telnyx_sync_inexplicit_orders()', 'sync the account');
may_not('ordering_role', 'SELECT * FROM telnyx_queue_status', 'read the queue status');
may_not('ordering_role', 'SELECT count(*) FROM telnyx_inexplicit_orders',
	'read the order tables');
may_not('ordering_role', 'CALL telnyx_process_queue()', 'send the queue');
may_not('ordering_role', 'SELECT telnyx_purge_requests(interval \'1 day\')',
	'purge requests');

# --- table_owner -----------------------------------------------------------

may('table_owner', q{
CREATE TABLE table_owner.number_requests (
    id serial PRIMARY KEY,
    country_iso text,
    phone_number_type text,
    count_requested integer,
    customer_reference text);
CREATE TRIGGER order_numbers AFTER INSERT ON table_owner.number_requests
    FOR EACH ROW EXECUTE FUNCTION telnyx_order_trigger();
INSERT INTO table_owner.number_requests (country_iso, phone_number_type, count_requested, customer_reference)
VALUES ('US', 'local', 1, 'readme-trigger');
SELECT count(*) FROM table_owner.number_requests;
}, qr/^1$/, 'create the ordering trigger and insert a row it orders');
is($node->safe_psql('postgres',
		"SELECT requested_by::regrole FROM telnyx_order_requests WHERE body ->> 'customer_reference' = 'readme-trigger'"),
	'table_owner', "the trigger queued a request, table_owner's");
may_not('table_owner', "SELECT telnyx_create_inexplicit_order('$group')",
	'order synchronously');

# --- what row security hides from ordering_role, and what it does not -------

may('ordering_role',
	"SELECT count(*) FROM telnyx_order_requests WHERE body ->> 'customer_reference' = 'readme-trigger'",
	qr/^0$/, "not see table_owner's request");
may('ordering_role',
	"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM telnyx_order_requests",
	qr/Rows Removed by Filter: 1\b/,
	"count table_owner's request through EXPLAIN ANALYZE (the documented limit)");

# --- webhook_role ----------------------------------------------------------

standinctl('settle');
my $order_json = $node->safe_psql('postgres',
	"SELECT telnyx_get_inexplicit_order('$order'::uuid)");
my $number_order = decode_json($order_json)->{ordering_groups}[0]{orders}[0]{number_order_id};
ok(defined $number_order, 'the settled order lists a number order');
my $delivery = decode_json(standinctl('webhook', $number_order));
may('webhook_role',
	"SELECT telnyx_apply_webhook(:'body', :'signature', :'timestamp') ->> 'applied'"
	  =~ s/:'(\w+)'/"'" . ($delivery->{$1} =~ s{'}{''}gr) . "'"/ger,
	qr/^true$/, 'apply a signed delivery');
may_not('webhook_role', "SELECT telnyx_create_inexplicit_order('$group')",
	'order');
may_not('webhook_role', 'SELECT count(*) FROM telnyx_order_allocations',
	'read the reports');

# --- admin_role ------------------------------------------------------------

may('admin_role',
	'SELECT queued + sending + retrying + unknown + sent + failed + cancelled FROM telnyx_queue_status',
	qr/^2$/, "read the queue status, every role's requests");
may('admin_role', 'SELECT telnyx_sync_inexplicit_orders() >= 1', qr/^t$/,
	'sync the account');
may('admin_role', 'SELECT telnyx_refresh_orders() >= 0', qr/^t$/,
	'refresh orders');
may('admin_role',
	"SELECT jsonb_array_length(telnyx_list_inexplicit_orders(1, 10) -> 'data') >= 1",
	qr/^t$/, 'list orders');
# table_owner's request, rejected: its words are the admin's to read, not
# ordering_role's
fault({ match => 'create', status => 422, code => '10015',
	title => 'Invalid parameter', detail => 'No such connection.' });
may('admin_role', 'CALL telnyx_process_queue()', qr/^\d*$/, 'send the queue');
may('admin_role',
	"SELECT failed || ' ' || last_error_message FROM telnyx_queue_summary",
	qr/^1 Invalid parameter: No such connection\.$/,
	'read the queue summary and its latest error in words');
may('admin_role',
	"SELECT count(*) >= 1 AND bool_and(id IS NOT NULL) FROM telnyx_inexplicit_orders_list(1, 10)",
	qr/^t$/, 'list orders as rows');
may('ordering_role',
	"SELECT count(*) || ' ' || count(last_error_message) FROM telnyx_order_requests",
	qr/^1 0$/, "read the words of its own requests only, not table_owner's");
may('ordering_role',
	"SELECT count(*) > 0 FROM telnyx_order_events WHERE customer_reference = 'readme-ordering'",
	qr/^t$/, 'find the events of its order by customer_reference');
may('admin_role', "SELECT telnyx_purge_requests(interval '30 days') >= 0",
	qr/^t$/, 'purge requests');
may('admin_role', 'SELECT telnyx_restart_workers()', qr/^t$/,
	'restart the workers');
may_not('admin_role', "SELECT telnyx_create_inexplicit_order('$group')",
	'order');
may_not('admin_role', 'SELECT count(*) FROM telnyx_order_requests',
	'read the requests table');

# --- the spend guard: an administrator's ------------------------------------

may_not('ordering_role',
	"INSERT INTO telnyx_spend_limits (role, per, max_orders) VALUES ('ordering_role', 'day', 1000)",
	'set its own spend limit');
may('admin_role',
	"INSERT INTO telnyx_spend_limits (role, per, max_orders) VALUES ('ordering_role', 'hour', 1) RETURNING per",
	qr/^hour$/, 'set a spend limit for ordering_role');
may('ordering_role',
	"SELECT telnyx_enqueue_inexplicit_order('$group', customer_reference => 'readme-held') > 0",
	qr/^t$/, 'queue an order over its limit');
may('admin_role', 'CALL telnyx_process_queue()', qr/^\d*$/, 'send the queue');
may('ordering_role',
	"SELECT state FROM telnyx_order_requests WHERE body ->> 'customer_reference' = 'readme-held'",
	qr/^held$/, 'see its request held');
may_not('ordering_role', 'SELECT telnyx_release_requests("all" => true)',
	'release its own hold');
may_not('ordering_role', 'SELECT * FROM telnyx_spend_report', 'read every role\'s spending');
may('admin_role', 'SELECT held FROM telnyx_queue_status', qr/^1$/,
	'see what is held');
may('admin_role', "SELECT telnyx_release_requests(requested_by => 'ordering_role')",
	qr/^1$/, 'release the hold');
may('admin_role', 'CALL telnyx_process_queue()', qr/^\d*$/, 'send the queue');
may('ordering_role',
	"SELECT state FROM telnyx_order_requests WHERE body ->> 'customer_reference' = 'readme-held'",
	qr/^sent$/, 'its released request is sent');
may('admin_role',
	"SELECT sum(orders) >= 1 FROM telnyx_spend_report WHERE role = 'ordering_role'",
	qr/^t$/, 'read what was spent');
may('admin_role', "SELECT telnyx_cancel_held_requests(\"all\" => true)", qr/^0$/,
	'cancel held requests');

# --- the owner of the extension's schema swaps it under another session ----
# A role that owns the schema the extension lives in could rename it, and
# make one of the old name with a table of the requests' name whose trigger
# would make it a superuser, while a session of its own has a transaction
# open in which the extension already looked itself up.  The extension
# refuses to act in a schema such a role owns: the swap gains it nothing.
{
	$node->safe_psql('postgres', 'CREATE DATABASE swap');
	$node->safe_psql('swap', q{
		SET client_min_messages = warning;
		CREATE ROLE regress_eve;
		GRANT CREATE ON DATABASE swap TO regress_eve;
		CREATE SCHEMA tel AUTHORIZATION regress_eve;
		CREATE EXTENSION telnyx_orders SCHEMA tel;
		GRANT EXECUTE ON FUNCTION tel.telnyx_enqueue_inexplicit_order(jsonb, text, text, text, text) TO regress_eve;
	});
	my $victim = $node->background_psql('swap', on_error_stop => 0);
	$victim->query('SET client_min_messages = error');
	$victim->query('SET ROLE regress_eve');
	$victim->query("SELECT tel.telnyx_enqueue_inexplicit_order('[$group]', customer_reference => 'swap-before')");
	$victim->query('BEGIN');
	$victim->query('SAVEPOINT s');
	$victim->query("SELECT tel.telnyx_enqueue_inexplicit_order('[{\"country_iso\": \"XX\"}]')");
	$victim->query('ROLLBACK TO SAVEPOINT s');
	$node->safe_psql('swap', q{
		SET ROLE regress_eve;
		ALTER SCHEMA tel RENAME TO tel2;
		CREATE SCHEMA tel;
		CREATE TABLE tel.telnyx_order_requests (id bigint GENERATED ALWAYS AS IDENTITY,
			request_key uuid, body jsonb, request_body text, requested_by oid,
			home_database_oid oid, home_system_identifier bigint, state text,
			held_batch bigint, held_reason text);
		CREATE FUNCTION tel.pwn() RETURNS trigger LANGUAGE plpgsql
			AS $$BEGIN ALTER ROLE regress_eve SUPERUSER; RETURN NULL; END$$;
		CREATE TRIGGER pwn BEFORE INSERT ON tel.telnyx_order_requests
			FOR EACH ROW EXECUTE FUNCTION tel.pwn();
	});
	$victim->query("SELECT tel2.telnyx_enqueue_inexplicit_order('[$group]', customer_reference => 'swap-after')");
	$victim->query("SELECT tel.telnyx_enqueue_inexplicit_order('[$group]', customer_reference => 'swap-after')");
	$victim->query('COMMIT');
	$victim->quit;
	is($node->safe_psql('swap', "SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_eve'"),
		'f', 'the owner of the extension\'s schema did not become a superuser by swapping it');
	is($node->safe_psql('swap', 'SELECT count(*) FROM tel.telnyx_order_requests'),
		'0', 'nothing went into the table of the old name');
	my ($ret, $out, $err) = $node->psql('swap',
		"SET ROLE regress_eve; SELECT tel2.telnyx_enqueue_inexplicit_order('[$group]')");
	like($err, qr/telnyx_orders refuses to act in schema "tel2"/,
		'the extension refuses to act in a schema a role without its rights owns');
	$node->safe_psql('swap', 'ALTER SCHEMA tel2 OWNER TO CURRENT_USER');
	is($node->safe_psql('swap',
			"SELECT tel2.telnyx_enqueue_inexplicit_order('[$group]', customer_reference => 'swap-owned') > 0"),
		't', 'and acts again once a superuser owns it');
}

# --- the extension's schema renamed while one of its statements waits -----
# A cancel waits for a row lock; meanwhile a superuser renames the schema.
# When the cancel goes on, its statement's trigger writes the queue's index
# under the new name, and drops the plans made under the old one: never the
# plan still running (freeing it under the cancel crashed the backend, and
# the whole server restarted).
{
	$node->safe_psql('postgres', 'CREATE DATABASE rename');
	$node->safe_psql('rename', q{
		SET client_min_messages = warning;
		CREATE SCHEMA ren;
		CREATE EXTENSION telnyx_orders SCHEMA ren;
	});
	my $id = $node->safe_psql('rename',
		"SELECT ren.telnyx_enqueue_inexplicit_order('[$group]', customer_reference => 'renamed')");
	my $locker = $node->background_psql('rename', on_error_stop => 1);
	$locker->query_safe("BEGIN; SELECT id FROM ren.telnyx_order_requests WHERE id = $id FOR UPDATE");
	my $victim = $node->background_psql('rename', on_error_stop => 0);
	# the cancel runs once before, so that its plans are kept
	$victim->query_safe('SELECT ren.telnyx_cancel_order_request(0)');
	$victim->query_until(qr/started/,
		"\\echo started\nSELECT ren.telnyx_cancel_order_request($id);\n");
	$node->poll_query_until('rename',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = 'rename' AND wait_event_type = 'Lock'")
	  or die 'the cancel did not wait for the row lock';
	$node->safe_psql('rename', 'ALTER SCHEMA ren RENAME TO ren2');
	$locker->query_safe('COMMIT');
	$locker->quit;
	my $out = $victim->query('SELECT 1');
	is($out, "t\n1", 'a cancel that waited while the schema was renamed goes on');
	is($victim->{stderr}, '', 'with no error');
	$victim->quit;
	is($node->safe_psql('rename', "SELECT state FROM ren2.telnyx_order_requests WHERE id = $id"),
		'cancelled', 'and the request is cancelled, under the new name');
	is($node->safe_psql('rename',
			"SELECT ren2.telnyx_enqueue_inexplicit_order('[$group]', customer_reference => 'after-rename') > 0"),
		't', 'the extension goes on under the new name');
}

$node->stop;
done_testing();
