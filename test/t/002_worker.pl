# The background worker: woken at commit, many requests in flight, and
# exactly one order in the stand-in's ledger per committed request under
# every fault, crash and restart.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use StandIn;
use Time::HiRes qw(time usleep);

my $key = $ENV{TELNYX_TEST_KEY} or die "TELNYX_TEST_KEY is not set";
my $groups = '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]';

standinctl('reset');

my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init;
# a key file of its own, rotated below
my $key_file = write_key_file($node->basedir . '/telnyx.key', $key);
$node->append_conf('postgresql.conf', telnyx_conf() . qq{
telnyx.api_key_file = '$key_file'
telnyx.reconcile_delay = '1s'
telnyx.absence_window = '60s'
telnyx.worker_naptime = '1min'
telnyx.sync_interval = '2s'
max_worker_processes = 16
restart_after_crash = on
});
$node->start;

# the worker waits quietly while the extension is not there
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'")
  or die "no worker";
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'telnyx_orders launcher'"),
	'1', 'the launcher runs');
sleep 2;
ok(!$node->log_contains('ERROR|FATAL'), 'no errors while the extension is missing');
my $worker_pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'");

$node->safe_psql('postgres', 'CREATE EXTENSION telnyx_orders');

sub wait_states
{
	my ($where, $what) = @_;
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM telnyx_order_requests WHERE ($where) AND state NOT IN ('sent', 'failed', 'cancelled')")
	  or die "requests did not finish: $what";
}

# woken by the commit: telnyx.worker_naptime is a minute, so only the
# commit can make it send at once
my $t0 = time;
my $id = $node->safe_psql('postgres',
	"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'woken')");
$node->poll_query_until('postgres', "SELECT state = 'sent' FROM telnyx_order_requests WHERE id = $id")
  or die "not sent";
ok(time - $t0 < 5, 'a committed request is sent without waiting for the naptime');
is($node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'"),
	$worker_pid, 'by the worker that waited for the extension');

# the worker follows the order until it is filled, with no manual call:
# the first refresh comes seconds after creation
standinctl('settle');
ok( $node->poll_query_until('postgres',
		"SELECT a.status = 'success' AND a.count_allocated = 1 FROM telnyx_order_allocations a
		   JOIN telnyx_order_requests r ON r.order_id = a.order_id WHERE r.id = $id"),
	'the worker refreshes a queued order until it is filled');
is($node->safe_psql('postgres',
		"SELECT o.next_refresh_at IS NULL FROM telnyx_inexplicit_orders o
		   JOIN telnyx_order_requests r ON r.order_id = o.id WHERE r.id = $id"),
	't', 'and then stops following it');

# the worker's writes are reported to the statistics as it goes, not when
# it exits
ok( $node->poll_query_until('postgres',
		"SELECT n_tup_upd > 0 FROM pg_stat_user_tables WHERE relname = 'telnyx_order_requests'"),
	'pg_stat_user_tables sees the worker\'s writes while it runs');

# an idle worker rests: well under 1% of a core (it used to poll every
# 10 ms, 11%)
{
	my $stat = "/proc/$worker_pid/stat";
	my $ticks = sub { my @f = split ' ', slurp_file($stat); return $f[13] + $f[14]; };
	$node->safe_psql('postgres', "ALTER SYSTEM SET telnyx.sync_interval = 0");
	$node->reload;
	sleep 1;
	my $before = $ticks->();
	sleep 10;
	my $used = $ticks->() - $before;
	ok($used <= 10, "an idle worker used $used/100 s of CPU in 10 s");
	$node->safe_psql('postgres', "ALTER SYSTEM RESET telnyx.sync_interval");
	$node->reload;
}

# a rolled-back enqueue sends nothing
$node->safe_psql('postgres',
	"BEGIN; SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'rolled-back'); ROLLBACK;");
sleep 2;
ok(!exists ledger()->{'rolled-back'}, 'a rolled-back enqueue reaches nothing');

# state changes are announced
{
	my ($ret, $out, $err) = $node->psql('postgres', qq{
LISTEN telnyx_orders;
SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'listened');
SELECT pg_sleep(3);
SELECT 1;
});
	my @notes = ($out . $err) =~ /(Asynchronous notification "telnyx_orders"[^\n]*)/g;
	ok(@notes >= 1, 'LISTEN telnyx_orders hears state changes');
	# requests are announced with no payload; only order events carry one
	ok(!grep(/payload (?!"\{"event" : "(group_changed|numbers_bought)", "seq" : \d+\}")/, @notes),
		"request notifications carry no payload");
}

# 1,000 requests committed from 10 concurrent sessions
my $script = $node->basedir . '/enqueue.sql';
open my $fh, '>', $script or die;
print $fh "SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'load-' || :client_id || '-' || nextval('load_seq'));\n";
close $fh;
$node->safe_psql('postgres', 'CREATE SEQUENCE load_seq');
$node->command_ok(
	[ 'pgbench', '-n', '-c', '10', '-j', '2', '-t', '100', '-f', $script,
	  '-h', $node->host, '-p', $node->port, 'postgres' ],
	'10 sessions commit 1,000 requests');
wait_states("body->>'customer_reference' LIKE 'load-%'", 'load');
is( $node->safe_psql('postgres',
		"SELECT count(*) || ' ' || count(DISTINCT order_id) || ' ' || count(*) FILTER (WHERE state = 'sent')
		   FROM telnyx_order_requests WHERE body->>'customer_reference' LIKE 'load-%'"),
	'1000 1000 1000', 'each of the 1,000 requests is sent with its own order');
{
	my $ledger = ledger();
	my @load = grep { /^load-/ } keys %$ledger;
	is(scalar(@load), 1000, 'the ledger has 1,000 load orders');
	is(scalar(grep { $ledger->{$_} != 1 } @load), 0, 'none of them twice');
}

# faults: each request ends with exactly one order, or failed
sub one_request_under
{
	my ($name, $fault, $expect) = @_;
	fault($fault) if $fault;
	my $rid = $node->safe_psql('postgres',
		"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => '$name')");
	wait_states("id = $rid", $name);
	my $state = $node->safe_psql('postgres', "SELECT state FROM telnyx_order_requests WHERE id = $rid");
	my $orders = ledger()->{$name} // 0;
	if ($expect eq 'sent')
	{
		is("$state $orders", 'sent 1', "$name: sent, one order in the ledger");
	}
	else
	{
		is("$state $orders", 'failed 0', "$name: failed, no order");
	}
	return $rid;
}

one_request_under('f-429-retry-after',
	{ match => 'create', status => 429, code => '10011', headers => { 'Retry-After' => '1' } }, 'sent');
one_request_under('f-429-bare', { match => 'create', status => 429, code => '10011' }, 'sent');
one_request_under('f-500', { match => 'create', status => 500, code => '10007' }, 'sent');
one_request_under('f-500-made', { match => 'create', status => 500, create => JSON::PP::true }, 'sent');
one_request_under('f-closed-after', { match => 'create', action => 'close_after' }, 'sent');
one_request_under('f-closed-before', { match => 'create', action => 'close_before' }, 'sent');
one_request_under('f-malformed', { match => 'create', action => 'malformed' }, 'sent');
one_request_under('f-truncated', { match => 'create', action => 'truncated' }, 'sent');
$node->append_conf('postgresql.conf', "telnyx.timeout = '1s'\n");
$node->reload;
one_request_under('f-timeout', { match => 'create', action => 'delay', seconds => 3 }, 'sent');
$node->append_conf('postgresql.conf', "telnyx.timeout = '30s'\n");
$node->reload;
my $rejected = one_request_under('f-422',
	{ match => 'create', status => 422, code => '10015', title => 'Invalid parameter', detail => 'Nope.' },
	'failed');
is( $node->safe_psql('postgres',
		"SELECT last_error->>'code' || ' ' || (last_error->>'status') FROM telnyx_order_requests WHERE id = $rejected"),
	'10015 422', 'the failure keeps Telnyx\'s error');

# a 429 slows the whole worker, not only one request
{
	# (a wait long enough that a loaded machine still sees it)
	fault({ match => 'create', status => 429, code => '10011', headers => { 'retry-after-ms' => '8000' } });
	$node->safe_psql('postgres',
		"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'slow-1')");
	$node->poll_query_until('postgres',
		"SELECT state = 'retrying' FROM telnyx_order_requests WHERE body->>'customer_reference' = 'slow-1'")
	  or die;
	my ($before) = standinctl('requests', 'create') =~ /(\d+)/;
	$node->safe_psql('postgres',
		"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'slow-' || i) FROM generate_series(2, 3) i");
	sleep 1;
	my ($during) = standinctl('requests', 'create') =~ /(\d+)/;
	is($during - $before, 0, 'after a 429 the worker holds back every request');
	wait_states("body->>'customer_reference' LIKE 'slow-%'", 'slow');
	my $ledger = ledger();
	is(join(' ', map { $ledger->{"slow-$_"} // 0 } 1 .. 3), '1 1 1', 'then sends each once');
}

# 401: requests stay queued, one clear error, then the key file rewritten
# in place: the worker takes the new key at its next wake, with no reload
{
	my $newkey = 'KEYrotated' . int(rand(1_000_000_000));
	standinctl('config', encode_json({ api_key => $newkey }));
	my $log_offset = -s $node->logfile;
	my $rid = $node->safe_psql('postgres',
		"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'auth')");
	$node->poll_query_until('postgres',
		"SELECT last_error->>'class' = 'auth' FROM telnyx_order_requests WHERE id = $rid")
	  or die "no auth failure";
	$node->safe_psql('postgres',
		"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'auth-2')");
	sleep 2;
	is($node->safe_psql('postgres',
			"SELECT string_agg(state, ',') FROM telnyx_order_requests WHERE body->>'customer_reference' LIKE 'auth%'"),
		'queued,queued', 'with a refused key, requests stay queued');
	my $log = slurp_file($node->logfile, $log_offset);
	my @errors = $log =~ /did not accept the API key/g;
	is(scalar(@errors), 1, 'the worker logs one clear error and waits');
	write_key_file($key_file, $newkey);
	# a commit wakes the worker (its naptime is a minute)
	$node->safe_psql('postgres',
		"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'auth-3')");
	wait_states("body->>'customer_reference' LIKE 'auth%'", 'auth');
	my $ledger = ledger();
	is(join(' ', map { $ledger->{$_} // 0 } 'auth', 'auth-2', 'auth-3'), '1 1 1',
		'after the key file is rewritten, with no reload, they go out once');
	$key = $newkey;
}

# an error while recording does not kill the worker, and loses or doubles nothing
{
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'");
	$node->safe_psql('postgres',
		"ALTER TABLE telnyx_inexplicit_orders ADD CONSTRAINT no_poison CHECK (customer_reference <> 'poison')");
	my $log_offset = -s $node->logfile;
	my $rid = $node->safe_psql('postgres',
		"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'poison')");
	$node->wait_for_log(qr/no_poison/, $log_offset);
	sleep 3;
	is($node->safe_psql('postgres',
			"SELECT pid FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'"),
		$pid, 'the worker survives an error in a batch');
	my @errors = slurp_file($node->logfile, $log_offset) =~ /no_poison/g;
	ok(@errors >= 1 && @errors <= 10, 'and retries it without spinning');
	is($node->safe_psql('postgres',
			"SELECT state || ' ' || (order_id IS NOT NULL) || ' ' || (last_error->>'reason' LIKE '%could not be recorded%') FROM telnyx_order_requests WHERE id = $rid"),
		'sent true true', 'an order created but not recorded is still sent, with its id, and says so');
	$node->safe_psql('postgres', 'ALTER TABLE telnyx_inexplicit_orders DROP CONSTRAINT no_poison');
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM telnyx_inexplicit_orders o JOIN telnyx_order_requests r ON r.order_id = o.id WHERE r.id = $rid")
	  or die "the periodic sync did not record the order";
	is(ledger()->{poison} // 0, 1, 'once recording works again, the periodic sync records its one order');
}

# the periodic sync: an order whose caller rolled back is recorded anyway
{
	$node->safe_psql('postgres',
		"BEGIN; SELECT telnyx_create_inexplicit_order('$groups', customer_reference => 'rolled-back-sync'); ROLLBACK;");
	# (a sync may already have found it, on a busy machine: marked so)
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM telnyx_inexplicit_orders WHERE customer_reference = 'rolled-back-sync' AND NOT found_by_sync"),
		'0', 'a rolled-back synchronous order is not in the tables as its call recorded it');
	$node->poll_query_until('postgres',
		"SELECT found_by_sync FROM telnyx_inexplicit_orders WHERE customer_reference = 'rolled-back-sync'")
	  or die "not found by the sync";
	pass('within telnyx.sync_interval the worker records it, marked found_by_sync');
}

# kill -9 of the worker in the middle of a slow batch
sub crash_test
{
	my ($name, $crash) = @_;
	fault({ match => 'create', action => 'delay', seconds => 4, times => 5 });
	$node->safe_psql('postgres',
		"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => '$name-' || i) FROM generate_series(1, 5) i");
	$node->poll_query_until('postgres',
		"SELECT count(*) = 5 FROM telnyx_order_requests WHERE body->>'customer_reference' LIKE '$name-%' AND state = 'sending'")
	  or die "not sending";
	usleep(500_000);
	$crash->();
	wait_states("body->>'customer_reference' LIKE '$name-%'", $name);
	my $ledger = ledger();
	is(join(' ', map { $ledger->{"$name-$_"} // 0 } 1 .. 5), '1 1 1 1 1',
		"$name: each request has exactly one order");
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM telnyx_order_requests WHERE body->>'customer_reference' LIKE '$name-%' AND state = 'sent'"),
		'5', "$name: all recorded as sent");
}

crash_test('kill9', sub {
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'");
	kill 'KILL', $pid;
	$node->poll_query_until('postgres', 'SELECT true') or die "server did not come back";
});

crash_test('immediate', sub {
	$node->stop('immediate');
	$node->start;
});

# a request whose order was never made is sent again after a crash
{
	fault({ match => 'create', action => 'delay', seconds => 4, times => 1 });
	$node->safe_psql('postgres', "SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'never-made')");
	$node->poll_query_until('postgres',
		"SELECT state = 'sending' FROM telnyx_order_requests WHERE body->>'customer_reference' = 'never-made'")
	  or die;
	# forget the order the stand-in made, as if the request had never arrived
	$node->stop('immediate');
	standinctl('forget', 'never-made');
	$node->start;
	wait_states("body->>'customer_reference' = 'never-made'", 'never-made');
	is((ledger()->{'never-made'} // 0) . ' ' . $node->safe_psql('postgres',
			"SELECT state || ' ' || attempts FROM telnyx_order_requests WHERE body->>'customer_reference' = 'never-made'"),
		'1 sent 2', 'proven absent after a crash, it is sent again, once');
}

# the trigger, with the worker
$node->safe_psql('postgres', q{
CREATE TABLE number_requests (id serial, country_iso text, phone_number_type text,
                              count_requested int, customer_reference text, telnyx_request_id bigint);
CREATE TRIGGER link_request BEFORE INSERT ON number_requests
    FOR EACH ROW EXECUTE FUNCTION telnyx_order_trigger();
CREATE TRIGGER order_numbers AFTER INSERT ON number_requests
    FOR EACH ROW EXECUTE FUNCTION telnyx_order_trigger();
});
$node->safe_psql('postgres', q{
INSERT INTO number_requests (country_iso, phone_number_type, count_requested, customer_reference)
VALUES ('US', 'local', 2, 'row-1'), ('CA', 'toll_free', 1, 'row-2');
});
$node->psql('postgres', q{
BEGIN;
INSERT INTO number_requests (country_iso, phone_number_type, count_requested, customer_reference)
VALUES ('US', 'local', 2, 'row-rolled-back');
ROLLBACK;
});
wait_states("body->>'customer_reference' LIKE 'row-%'", 'rows');
is( $node->safe_psql('postgres', q{
SELECT string_agg(n.customer_reference || ':' || r.state, ' ' ORDER BY n.id)
  FROM number_requests n JOIN telnyx_order_requests r ON r.id = n.telnyx_request_id}),
	'row-1:sent row-2:sent', 'inserted rows are ordered and linked to their requests');
{
	my $ledger = ledger();
	is(($ledger->{'row-1'} // 0) . ' ' . ($ledger->{'row-2'} // 0) . ' ' . ($ledger->{'row-rolled-back'} // 0),
		'1 1 0', 'the rolled-back row ordered nothing');
}

# SIGTERM stops the worker promptly, even mid-request; the launcher
# starts another, which reconciles what was in flight
{
	fault({ match => 'create', action => 'delay', seconds => 20 });
	$node->safe_psql('postgres', "SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'sigterm')");
	$node->poll_query_until('postgres',
		"SELECT state = 'sending' FROM telnyx_order_requests WHERE body->>'customer_reference' = 'sigterm'")
	  or die;
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'");
	my $t = time;
	kill 'TERM', $pid;
	$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid")
	  or die;
	ok(time - $t < 5, 'SIGTERM stops the worker within seconds');
	wait_states("body->>'customer_reference' = 'sigterm'", 'sigterm');
	is(ledger()->{sigterm} // 0, 1, 'the request in flight ends with one order');
}

# DROP EXTENSION and DROP DATABASE do not wait for the worker
$node->append_conf('postgresql.conf', "telnyx.database = 'postgres, shop, nosuchdb'\n");
$node->reload;
$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', 'CREATE EXTENSION telnyx_orders');
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker' AND datname = 'shop'")
  or die "no worker for shop";
my $sid = $node->safe_psql('shop',
	"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'shop-1')");
$node->poll_query_until('shop', "SELECT state = 'sent' FROM telnyx_order_requests WHERE id = $sid")
  or die "shop not sent";
pass('a second database has its own worker');
my ($ret, $out, $err) = $node->psql('shop', "SET statement_timeout = '20s'; DROP EXTENSION telnyx_orders");
like($err, qr/dropping telnyx_orders would delete the record of [1-9][0-9]* orders/, 'DROP EXTENSION refuses to delete the record of an order');
($ret, $out, $err) = $node->psql('shop',
	"SET statement_timeout = '20s'; SET telnyx.allow_drop = on; DROP EXTENSION telnyx_orders");
is($ret, 0, 'told so, DROP EXTENSION does not wait for the worker');
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE shop');
is($ret, 0, 'DROP DATABASE does not wait for the worker') or diag($err);
my $log_offset = -s $node->logfile;
sleep 12;
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'"),
	'1', 'one worker left, for postgres');
my $log = slurp_file($node->logfile, $log_offset);
my @fatal = $log =~ /FATAL/g;
ok(@fatal <= 1, 'no worker keeps failing to start for a dropped or missing database');

$node->stop;
my $whole_log = slurp_file($node->logfile);
unlike($whole_log, qr/\Q$key\E/, 'the key is nowhere in the server log');
unlike($whole_log, qr/\Q$ENV{TELNYX_TEST_KEY}\E/, 'nor the key it replaced');
unlike($whole_log, qr/terminated by signal (?!9:)/, 'no process crashed (only the kill -9s of the test)');

# leave the stand-in as we found it
standinctl('config', encode_json({ api_key => $ENV{TELNYX_TEST_KEY} }));

done_testing();
