# The spend guard where it meets the other promises: one limit shared by the
# worker, two sessions' CALL telnyx_process_queue() and synchronous calls at
# once (never a number over it); held requests released while the worker
# sends, with a kill -9 in the middle (each sent once, none lost); the
# breaker in a prepared transaction; the NOTIFY of a hold; the dry run set
# for a database; an upgrade from 1.6 that counts what was sent before.
# The stand-in keeps no idempotency: its ledger is what was bought.
use strict;
use warnings;
use JSON::PP;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use FindBin;
use lib $FindBin::Bin;
use StandIn;

my $groups = '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]';

# a UTC day must not end during the test: the limits count per day
{
	my @t = gmtime();
	my $left = 86400 - ($t[2] * 3600 + $t[1] * 60 + $t[0]);
	if ($left < 600)
	{
		note("waiting ${left}s for the UTC day to roll over");
		sleep($left + 2);
	}
}

standinctl('reset');
my $node = PostgreSQL::Test::Cluster->new('spend');
$node->init;
$node->append_conf('postgresql.conf', telnyx_conf() . qq{
telnyx.worker_naptime = '1s'
telnyx.database = 'postgres'
telnyx.reconcile_delay = 0
telnyx.absence_window = '60s'
max_prepared_transactions = 5
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION telnyx_orders');

my $connstr = $node->connstr('postgres');

# Run psql with script in the background; returns the harness and its output.
sub start_psql
{
	my ($script) = @_;
	my ($out, $err) = ('', '');
	# from a file: psql runs it without waiting for this process to feed it
	my $file = PostgreSQL::Test::Utils::tempdir() . '/script.sql';
	open(my $fh, '>', $file) or die "could not write $file: $!";
	print $fh $script;
	close($fh) or die "could not write $file: $!";
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=0', '-d', $connstr, '-f', $file ],
		'<', \undef, '>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err };
}

sub wait_settled
{
	my ($what) = @_;
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM telnyx_order_requests WHERE state IN ('queued', 'sending', 'retrying', 'unknown')")
	  or die "$what: the queue did not settle";
}

sub q1 { return $node->safe_psql('postgres', $_[0]); }

# --- one limit, four senders at once -------------------------------------

q1("INSERT INTO telnyx_spend_limits (per, max_orders, note) VALUES ('day', 30, 'shared')");
# the queue fills in transactions of 20 (under the breaker), while two
# sessions drain it with CALL and two buy synchronously
q1("SELECT count(telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'q-$_-' || i)) FROM generate_series(1, 20) i")
  for 1 .. 3;
my @sessions;
for my $s (1 .. 2)
{
	push @sessions, start_psql(join('',
		map { "SELECT telnyx_create_inexplicit_order('$groups', customer_reference => 'sync-$s-$_') IS NOT NULL;\n" } 1 .. 10));
}
push @sessions, start_psql("CALL telnyx_process_queue();\n" x 15) for 1 .. 2;
$_->{h}->finish for @sessions;
wait_settled('four senders');
my $sync_refused = () = join('', map { ${ $_->{err} } } @sessions) =~ /order refused by the spend guard/g;
my $other_errors = join('', map { ${ $_->{err} } } @sessions) =~ s/^.*order refused by the spend guard.*\n(DETAIL|HINT):.*\n(?:(?:DETAIL|HINT):.*\n)?//mgr;
is(standinctl('count'), "ledger: 30 orders\n", 'the worker, two CALLs and two callers at once bought exactly the limit');
is(q1('SELECT sum(orders) FROM telnyx_spend_hours'), '30', 'and counted exactly that');
is(q1("SELECT count(*) FROM telnyx_order_requests WHERE state = 'held'") + 0,
	60 - (30 - (20 - $sync_refused)),
	'every queued request not sent is held (none failed, none lost)');
ok($sync_refused > 0, "synchronous calls over the limit were refused ($sync_refused)");
unlike($other_errors, qr/ERROR/, 'no other error in the sessions')
  or diag($other_errors);

# --- released while the worker sends, with a kill -9 in the middle ---------

fault({ match => 'create', action => 'delay', seconds => 3, times => 4 });
my $held = q1("SELECT count(*) FROM telnyx_order_requests WHERE state = 'held'");
is(q1("SELECT telnyx_release_requests(\"all\" => true)"), $held, 'an administrator releases every held request');
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM telnyx_order_requests WHERE state = 'sending'")
  or die 'the released requests are not being sent';
usleep(300_000);
my $pid = q1("SELECT pid FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'");
kill 'KILL', $pid;
$node->poll_query_until('postgres', 'SELECT true') or die 'server did not come back';
wait_settled('released');
my $ledger = ledger();
my @twice = grep { $ledger->{$_} > 1 } keys %$ledger;
is(scalar(@twice), 0, 'no released request was bought twice across the kill -9');
is(q1("SELECT count(*) FROM telnyx_order_requests r WHERE r.state = 'sent'"),
	q1("SELECT count(*) FROM telnyx_order_requests") + 0,
	'every released request was sent (none lost, none held again)');
is(standinctl('count'), 'ledger: ' . (30 + $held) . " orders\n", 'once each');
is(q1('SELECT sum(orders) FROM telnyx_spend_hours'), 30 + $held, 'and each counted once');

# --- the breaker in a prepared transaction, and the NOTIFY of a hold -------

my $listener = start_psql("LISTEN telnyx_orders_held;\nSELECT pg_sleep(10);\nSELECT 1;\n");
$node->poll_query_until('postgres',
	"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(10)%')")
  or die 'the listener does not listen';
q1(q{
BEGIN;
SELECT count(telnyx_enqueue_inexplicit_order('} . $groups . q{', customer_reference => 'bulk-' || i)) FROM generate_series(1, 120) i;
PREPARE TRANSACTION 'bulk';
});
pass('a transaction over the breaker can be prepared');
is(q1("SELECT count(*) FROM telnyx_order_requests WHERE body->>'customer_reference' LIKE 'bulk-%'"), '0',
	'nothing of it is seen before COMMIT PREPARED');
q1("COMMIT PREPARED 'bulk'");
$node->poll_query_until('postgres',
	"SELECT count(*) = 120 FROM telnyx_order_requests WHERE state = 'held' AND body->>'customer_reference' LIKE 'bulk-%'")
  or die 'the batch was not held';
is(q1("SELECT count(DISTINCT held_batch) FROM telnyx_order_requests WHERE body->>'customer_reference' LIKE 'bulk-%'"),
	'1', 'all 120 held as one batch');
sleep 2;
is(standinctl('count'), 'ledger: ' . (30 + $held) . " orders\n", 'none of the batch was sent');
$listener->{h}->finish;
like(${ $listener->{out} } . ${ $listener->{err} }, qr/notification "telnyx_orders_held"/,
	'a listener on telnyx_orders_held was told');
my $batch = q1("SELECT DISTINCT held_batch FROM telnyx_order_requests WHERE body->>'customer_reference' LIKE 'bulk-%'");
q1("SELECT telnyx_cancel_held_requests(held_batch => $batch)");
is(q1("SELECT count(*) FROM telnyx_order_requests WHERE state = 'cancelled' AND held_batch = $batch"), '120',
	'an administrator cancels the batch');

# --- the dry run set for the database: the worker sends nothing ------------

q1('DELETE FROM telnyx_spend_limits');
q1('ALTER DATABASE postgres SET telnyx.dry_run = on');
q1('SELECT telnyx_restart_workers()');
my $before = standinctl('count');
q1("SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'dry-db')");
is(q1("SELECT state FROM telnyx_order_requests WHERE body->>'customer_reference' = 'dry-db'"), 'dry_run',
	'a session of the database queues it as a dry run');
# a session that turned it off queues for real; the worker under the dry
# run sends nothing at all, says why, and leaves it queued
$node->safe_psql('postgres',
	"SET telnyx.dry_run = off; SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'dry-worker')");
$node->poll_query_until('postgres',
	"SELECT waiting_because LIKE 'telnyx.dry_run is on%' FROM telnyx_queue_status")
  or die 'the status does not say the worker is under the dry run';
sleep 2;
is(q1("SELECT state FROM telnyx_order_requests WHERE body->>'customer_reference' = 'dry-worker'"), 'queued',
	'the worker under the dry run leaves a real request queued');
is(standinctl('count'), $before, 'the dry run sent nothing');
q1('ALTER DATABASE postgres RESET telnyx.dry_run');
q1('SELECT telnyx_restart_workers()');
$node->poll_query_until('postgres',
	"SELECT state = 'sent' FROM telnyx_order_requests WHERE body->>'customer_reference' = 'dry-worker'")
  or die 'the real request was not sent after the dry run';
is(ledger()->{'dry-worker'}, 1, 'and sends it once the dry run is off');

# --- an upgrade from 1.6 counts what was sent before ----------------------

q1('CREATE DATABASE upgraded');
$node->safe_psql('upgraded', q{
CREATE EXTENSION telnyx_orders VERSION '1.6';
INSERT INTO telnyx_order_requests (request_key, body, request_body, requested_by, state,
                                   attempts, first_sent_at)
SELECT gen_random_uuid(), b, b::text, current_user::regrole, s, 1, now()
  FROM (VALUES ('sent'), ('sent'), ('failed'), ('unknown')) AS v(s),
       LATERAL (SELECT '{"ordering_groups": [{"country_iso": "US", "count_requested": "3"}]}'::jsonb AS b) x;
ALTER EXTENSION telnyx_orders UPDATE;
});
is($node->safe_psql('upgraded', 'SELECT orders || \' \' || numbers FROM telnyx_spend_hours'),
	'3 9', 'the upgrade counts what was sent (not what failed)');
$node->safe_psql('upgraded',
	"INSERT INTO telnyx_spend_limits (per, max_orders) VALUES ('day', 3)");
my ($ret, $out, $err) = $node->psql('upgraded', "SELECT telnyx_create_inexplicit_order('$groups')");
like($err, qr/spend limit \d+ reached: 3 orders per day for the database, 3 sent this day/,
	'and a limit set after it sees that count');
is(queue_index_mismatches($node, 'postgres'), '',
	"held, released and cancelled: the queue's index tables agree with the requests");
is(queue_index_mismatches($node, 'upgraded'), '', 'and in the database upgraded from 1.6');

$node->stop;
done_testing();
