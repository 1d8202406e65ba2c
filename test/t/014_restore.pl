# A restore loses nothing and fires nothing; nothing drops the record of
# orders by a side door.
#
# A database with bought, pending and failed numbers, events and queued
# requests is restored every way there is (pg_restore of a custom and of a
# directory dump, with and without --disable-triggers, a plain dump through
# psql, as a replica session too, data only into a fresh install, and
# pg_upgrade of the whole cluster): every row of every table comes back as
# it was, no event is added, no NOTIFY is heard by a listener, and what was
# still open is followed again from where it was.  Then every command that
# would drop the tables of orders is refused while they hold any, in
# sessions where the library was not loaded before.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use StandIn;
use IPC::Run;

standinctl('reset');
standinctl('config', encode_json({ process_seconds => 1, number_seconds => 1 }));

# The worker serves no database of this test (telnyx.database): nothing
# changes the tables while they are compared.  The upgraded cluster has no
# library preloaded (and no key): there the event trigger loads it.
my $conf = telnyx_conf();
(my $bare = $conf) =~ s/^(shared_preload_libraries|telnyx\.api_key).*\n//mg;

my $node = PostgreSQL::Test::Cluster->new('origin');
$node->init;
$node->append_conf('postgresql.conf', $conf . "telnyx.database = 'postgres'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', 'CREATE EXTENSION telnyx_orders');

my $refresh_all = q{
UPDATE telnyx_inexplicit_orders SET next_refresh_at = now() WHERE next_refresh_at IS NOT NULL;
UPDATE telnyx_number_orders SET next_fetch_at = now() WHERE next_fetch_at IS NOT NULL;
SET client_min_messages = error;
SELECT telnyx_refresh_orders();
};

# bought (a group filled, one partly, one not at all)
$node->safe_psql('shop', q{
SELECT telnyx_create_inexplicit_order('[
  {"country_iso": "US", "phone_number_type": "local", "count_requested": 3},
  {"country_iso": "US", "phone_number_type": "local", "count_requested": 4, "national_destination_code": "555"},
  {"country_iso": "US", "phone_number_type": "local", "count_requested": 2, "national_destination_code": "999"}]',
  customer_reference => 'bought')});
standinctl('settle');
$node->safe_psql('shop', $refresh_all) for 1 .. 3;

# failed numbers: Telnyx says the number order's numbers failed
$node->safe_psql('shop', q{
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 2}]',
  customer_reference => 'failed')});
standinctl('settle', 'orders');
$node->safe_psql('shop', q{
UPDATE telnyx_inexplicit_orders SET next_refresh_at = now() WHERE customer_reference = 'failed';
SET client_min_messages = error;
SELECT telnyx_refresh_orders();
UPDATE telnyx_number_orders SET next_fetch_at = NULL;
});
my $failed_no = $node->safe_psql('shop', q{
SELECT n.number_order_id FROM telnyx_number_orders n
  JOIN telnyx_inexplicit_orders o ON o.id = n.order_id WHERE o.customer_reference = 'failed'});
fault({ match => 'number_order', status => 200, body => encode_json({ data => {
	id => $failed_no, status => 'failed', phone_numbers => [
		{ phone_number => '+15550001001', status => 'failure' },
		{ phone_number => '+15550001002', status => 'failure' } ] } }) });
$node->safe_psql('shop', qq{
UPDATE telnyx_number_orders SET next_fetch_at = now() WHERE number_order_id = '$failed_no';
SET client_min_messages = error;
SELECT telnyx_refresh_orders();
});

# pending: numbers still being bought, followed until they end
standinctl('config', encode_json({ number_seconds => 3600 }));
$node->safe_psql('shop', q{
SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 2}]',
  customer_reference => 'pending')});
standinctl('settle', 'orders');
$node->safe_psql('shop', $refresh_all) for 1 .. 2;

# requests queued, never sent here (no worker)
$node->safe_psql('shop', q{
SELECT telnyx_enqueue_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]',
  customer_reference => 'queued-' || i) FROM generate_series(1, 2) i});

is( $node->safe_psql('shop', q{
SELECT string_agg(status || ' ' || n, ', ' ORDER BY status)
  FROM (SELECT status, count(*) AS n FROM telnyx_phone_numbers GROUP BY status) s}),
	'failure 2, pending 2, success 5', 'the database holds bought, pending and failed numbers');
ok($node->safe_psql('shop', q{SELECT count(*) FROM telnyx_order_events}) > 3, 'and events');
is( $node->safe_psql('shop', q{
SELECT count(*) FROM telnyx_number_orders WHERE next_fetch_at IS NOT NULL AND status = 'pending'}),
	'1', 'a pending number order is followed');

my @tables = qw(telnyx_inexplicit_orders telnyx_ordering_groups telnyx_number_orders
  telnyx_phone_numbers telnyx_order_events telnyx_order_requests telnyx_queue_home
  telnyx_webhook_deliveries);

# every row of every table, and where the sequences stand
sub fingerprint
{
	my ($n, $db) = @_;
	my @lines = map {
		"$_: " . $n->safe_psql($db,
			"SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM $_ t")
	} @tables;
	push @lines, 'sequences: ' . $n->safe_psql($db, q{
SELECT (SELECT last_value FROM telnyx_order_events_seq_seq) || ' '
    || (SELECT last_value FROM telnyx_order_requests_id_seq)});
	push @lines, 'open: ' . $n->safe_psql($db,
		'SELECT count(*) || \' \' || coalesce(string_agg(customer_reference, \',\' ORDER BY customer_reference), \'\') FROM telnyx_open_orders');
	return join("\n", @lines);
}
my $origin = fingerprint($node, 'shop');
like($origin, qr/open: 1 pending/, 'one order is still open');

# A session listening in db while a restore runs: what it heard.
sub listen_start
{
	my ($n, $db) = @_;
	my %l = (in => '', out => '', err => '');
	$l{run} = IPC::Run::start([ 'psql', '-XAtq', '-d', $n->connstr($db) ],
		'<', \$l{in}, '>', \$l{out}, '2>', \$l{err});
	$l{in} .= "LISTEN telnyx_orders;\nSELECT 'listening';\n";
	$l{run}->pump until $l{out} =~ /listening/;
	return \%l;
}

sub listen_heard
{
	my ($l) = @_;
	$l->{in} .= "SELECT 'done';\n\\q\n";
	$l->{run}->finish;
	return scalar(() = ($l->{out} . $l->{err}) =~ /Asynchronous notification/g);
}

my $dir = PostgreSQL::Test::Utils::tempdir();
my $shop = $node->connstr('shop');
$node->command_ok([ 'pg_dump', '-Fc', '-f', "$dir/shop.dump", '-d', $shop ], 'pg_dump -Fc');
$node->command_ok([ 'pg_dump', '-Fd', '-f', "$dir/shop.dir", '-d', $shop ], 'pg_dump -Fd');
$node->command_ok([ 'pg_dump', '-f', "$dir/shop.sql", '-d', $shop ], 'pg_dump, plain');
$node->command_ok([ 'pg_dump', '--data-only', '--disable-triggers', '-f', "$dir/data-dt.sql", '-d', $shop ],
	'pg_dump --data-only --disable-triggers');
$node->command_ok([ 'pg_dump', '--data-only', '-f', "$dir/data.sql", '-d', $shop ], 'pg_dump --data-only');

my @restores = (
	[ custom => [ 'pg_restore', '--exit-on-error', '-d' ], "$dir/shop.dump" ],
	[ custom_disable_triggers => [ 'pg_restore', '--exit-on-error', '--disable-triggers', '-d' ], "$dir/shop.dump" ],
	[ directory => [ 'pg_restore', '--exit-on-error', '-d' ], "$dir/shop.dir" ],
	[ plain => [ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', "$dir/shop.sql", '-d' ] ],
	[ plain_replica => [ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', "$dir/shop.sql", '-d' ], undef, 1 ],
	[ data_only => [ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', "$dir/data.sql", '-d' ], undef, 0, 1 ],
	[ data_only_disable_triggers => [ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', "$dir/data-dt.sql", '-d' ],
		undef, 0, 1 ]);
for my $r (@restores)
{
	my ($name, $cmd, $file, $replica, $data_only) = @$r;
	my $db = "r_$name";
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION telnyx_orders') if $data_only;
	my $l = listen_start($node, $db);
	local $ENV{PGOPTIONS} = $replica ? '-c session_replication_role=replica' : '';
	my ($rout, $rerr) = ('', '');
	my $done = IPC::Run::run([ @$cmd, $node->connstr($db), defined $file ? ($file) : () ],
		'>', \$rout, '2>', \$rerr);
	ok($done, "restore: $name") or diag($rerr);
	is(listen_heard($l), 0, "$name: a listener hears nothing during the restore");
	is(fingerprint($node, $db), $origin, "$name: every row is back as it was, no event added");
	if ($name =~ /disable_triggers/)
	{
		# left short by the restore; telnyx_resume_queue() rebuilds them
		is($node->safe_psql($db, q{
BEGIN;
SET LOCAL client_min_messages = error;
SELECT telnyx_resume_queue();
SELECT count(*) FROM telnyx_live_requests;
ROLLBACK;}) =~ s/^.*\n//sr, '2', "$name: telnyx_resume_queue() rebuilds the queue's index tables");
	}
	else
	{
		is(queue_index_mismatches($node, $db), '', "$name: the queue's index tables are made again");
	}
}

# the restored database follows what was open from where it was, and its
# events go on after the restored ones
standinctl('config', encode_json({ number_seconds => 1 }));
standinctl('settle');
$node->safe_psql('r_custom', $refresh_all);
is( $node->safe_psql('r_custom', q{
SELECT string_agg(status || ' ' || n, ', ' ORDER BY status)
  FROM (SELECT status, count(*) AS n FROM telnyx_phone_numbers GROUP BY status) s}),
	'failure 2, success 7', 'the restored database follows the pending numbers to the end');
is( $node->safe_psql('r_custom', q{
SELECT count(*) FROM telnyx_order_events e JOIN telnyx_inexplicit_orders o ON o.id = e.order_id
 WHERE e.event = 'numbers_bought' AND o.customer_reference = 'pending'}),
	'1', 'and records the numbers bought as one new event');
is( $node->safe_psql('r_custom', q{
SELECT count(*) || ' ' || count(*) FILTER (WHERE e.customer_reference IS DISTINCT FROM o.customer_reference)
  FROM telnyx_order_events e JOIN telnyx_inexplicit_orders o ON o.id = e.order_id}),
	$node->safe_psql('r_custom', 'SELECT count(*) FROM telnyx_order_events') . ' 0',
	"every event, restored or new, names its order's customer_reference");

# pg_upgrade of the whole cluster, to the same major version
my $new = PostgreSQL::Test::Cluster->new('upgraded');
$new->init;
$new->append_conf('postgresql.conf', $bare);
$node->stop;
# (the PATH's, where the clusters' pg_ctl is: older test modules lack
# config_data)
my ($bindir) = grep { -x "$_/pg_ctl" } split(/:/, $ENV{PATH});
die 'no pg_ctl in PATH' unless defined $bindir;
{
	my $cwd = $dir;
	chdir $cwd or die "could not chdir to $cwd: $!";
	# (--no-sync where pg_upgrade has it: 15 and later)
	my @no_sync = `pg_upgrade --help` =~ /--no-sync/ ? ('--no-sync') : ();
	$new->command_ok([ 'pg_upgrade', @no_sync, '-d', $node->data_dir, '-D', $new->data_dir,
		'-b', $bindir, '-B', $bindir, '-s', $new->host, '-p', $node->port, '-P', $new->port ],
		'pg_upgrade');
}
$new->start;
is(fingerprint($new, 'shop'), $origin, 'pg_upgrade: every row is as it was, no event added');

# Dropping: each in a new session, where only the event trigger loads the
# library.  The tables of orders are refused to every command that would
# drop them.
my $tables = $new->safe_psql('shop', q{SELECT count(*) FROM pg_class WHERE relname LIKE 'telnyx\_%' AND relkind = 'r'});
cmp_ok($tables, '>=', 8, "$tables tables of the extension");
my $refused = qr/cannot drop table public\.telnyx_\w+ because it holds the record of|dropping telnyx_orders would delete the record/;
sub refused
{
	my ($db, $sql, $what) = @_;
	my ($ret, $out, $err) = $new->psql($db, $sql);
	like($err, $refused, "$what is refused");
	is($new->safe_psql($db, q{SELECT count(*) FROM pg_class WHERE relname LIKE 'telnyx\_%' AND relkind = 'r'}),
		$tables, "$what: every table is still there");
}
refused('shop', 'DROP EXTENSION telnyx_orders', 'DROP EXTENSION telnyx_orders');
refused('shop', 'DROP SCHEMA public CASCADE', 'DROP SCHEMA public CASCADE');
refused('shop', 'DROP EXTENSION plpgsql CASCADE', 'DROP EXTENSION plpgsql CASCADE');
refused('shop', 'ALTER EXTENSION telnyx_orders DROP TABLE telnyx_phone_numbers; DROP TABLE telnyx_phone_numbers CASCADE',
	'DROP TABLE after ALTER EXTENSION ... DROP TABLE');

# the extension created by a role of its own, which DROP OWNED BY would
# take with it; unfinished requests alone are guarded too
$new->safe_psql('postgres', 'CREATE ROLE maker SUPERUSER LOGIN; CREATE DATABASE owned OWNER maker');
$new->safe_psql('owned', 'SET ROLE maker; CREATE EXTENSION telnyx_orders');
$new->safe_psql('owned', q{
INSERT INTO telnyx_order_requests (request_key, body, request_body, requested_by)
VALUES (gen_random_uuid(), '{}', '{}', 'maker'::regrole)});
refused('owned', 'DROP OWNED BY maker', 'DROP OWNED BY the role that created it (unfinished requests)');
$new->safe_psql('owned', q{UPDATE telnyx_order_requests SET state = 'cancelled'});
$new->safe_psql('owned', 'DROP OWNED BY maker');
is($new->safe_psql('owned', q{SELECT count(*) FROM pg_extension WHERE extname = 'telnyx_orders'}),
	'0', 'once every request has finished and no order is recorded, DROP OWNED drops it');

# telnyx.allow_drop still lets the owner drop it, by any command
my ($ret) = $new->psql('shop', 'SET telnyx.allow_drop = on; DROP EXTENSION plpgsql CASCADE');
is($ret, 0, 'with telnyx.allow_drop, DROP EXTENSION plpgsql CASCADE drops it');
is($new->safe_psql('shop', q{SELECT count(*) FROM pg_extension WHERE extname = 'telnyx_orders'}),
	'0', 'and the extension is gone');

# an empty install can be dropped by any command
for my $sql ('DROP EXTENSION telnyx_orders', 'DROP SCHEMA public CASCADE', 'DROP EXTENSION plpgsql CASCADE')
{
	$new->safe_psql('postgres', 'DROP DATABASE IF EXISTS empty; CREATE DATABASE empty');
	$new->safe_psql('empty', 'CREATE EXTENSION telnyx_orders');
	my ($ret, $out, $err) = $new->psql('empty', $sql);
	is($ret, 0, "an empty install: $sql drops it") or diag($err);
}

ok(!$new->log_contains('TRAP|PANIC|server process .* was terminated'), 'no process crashed');
$new->stop;
done_testing();
