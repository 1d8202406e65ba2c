# The promises with the background worker running: nothing a user plants
# runs with its rights, a prepared enqueue waits for its commit, a user's
# lock never stalls the queue, a restored database does not send until
# told, a promoted standby goes on sending, and under kill -9 at random
# moments every request ends with exactly one order.
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

my $node = PostgreSQL::Test::Cluster->new('promises');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', telnyx_conf() . qq{
telnyx.reconcile_delay = '1s'
telnyx.absence_window = '60s'
telnyx.worker_naptime = '2s'
telnyx.database = 'postgres, restored'
max_worker_processes = 16
max_prepared_transactions = 4
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION telnyx_orders');

sub wait_sent
{
	my ($db, $where, $what) = @_;
	$node->poll_query_until($db,
		"SELECT count(*) = 0 FROM telnyx_order_requests WHERE ($where) AND state NOT IN ('sent', 'failed', 'cancelled')")
	  or die "requests did not finish: $what";
}

# operators planted in public, where an implicit cast would find them, by
# a role with CREATE there: the worker never calls them
$node->safe_psql('postgres', q{
CREATE ROLE regress_planter;
GRANT CREATE ON SCHEMA public TO regress_planter;
CREATE TABLE public.planted_calls (who text);
GRANT INSERT ON public.planted_calls TO regress_planter;
SET ROLE regress_planter;
CREATE FUNCTION public.planted(a integer, b interval) RETURNS interval LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.planted_calls VALUES (current_user);
    ALTER ROLE regress_planter SUPERUSER;
    RETURN b * a::float8;
END $$;
CREATE OPERATOR public.* (LEFTARG = integer, RIGHTARG = interval, FUNCTION = public.planted);
CREATE FUNCTION public.planted_num(a numeric, b integer) RETURNS numeric LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.planted_calls VALUES (current_user);
    ALTER ROLE regress_planter SUPERUSER;
    RETURN a * b::numeric;
END $$;
CREATE OPERATOR public.* (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.planted_num);
CREATE FUNCTION public.planted_ts(a timestamptz, b integer) RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.planted_calls VALUES (current_user);
    ALTER ROLE regress_planter SUPERUSER;
    RETURN a;
END $$;
CREATE OPERATOR public.+ (LEFTARG = timestamptz, RIGHTARG = integer, FUNCTION = public.planted_ts);
});
fault({ match => 'create', action => 'close_after' });
my $planted_ids = $node->safe_psql('postgres',
	"SELECT string_agg(telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'planted-' || i)::text, ',') FROM generate_series(1, 3) i");
wait_sent('postgres', "id IN ($planted_ids)", 'planted');
is($node->safe_psql('postgres', "SELECT count(*) FROM public.planted_calls"),
	'0', 'the worker (sending, reconciling, syncing) calls no planted operator');
is($node->safe_psql('postgres', "SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_planter'"),
	'f', 'and the planter is no superuser');
$node->safe_psql('postgres', q{
DROP OPERATOR public.* (integer, interval);
DROP OPERATOR public.* (numeric, integer);
DROP OPERATOR public.+ (timestamptz, integer);
DROP FUNCTION public.planted(integer, interval), public.planted_num(numeric, integer),
              public.planted_ts(timestamptz, integer);
});

# two-phase commit: sent after COMMIT PREPARED, never after ROLLBACK PREPARED;
# the COMMIT PREPARED wakes the worker (its naptime is a minute here)
$node->safe_psql('postgres', "ALTER SYSTEM SET telnyx.worker_naptime = '1min'");
$node->reload;
sleep 1;
$node->safe_psql('postgres', qq{
BEGIN;
SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'prepared-commit');
PREPARE TRANSACTION 'p_commit';
BEGIN;
SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'prepared-rollback');
PREPARE TRANSACTION 'p_rollback';
});
sleep 2;
is(ledger()->{'prepared-commit'} // 0, 0, 'a prepared enqueue is not sent before it commits');
my $t0 = time;
$node->safe_psql('postgres', "COMMIT PREPARED 'p_commit'");
$node->safe_psql('postgres', "ROLLBACK PREPARED 'p_rollback'");
$node->poll_query_until('postgres',
	"SELECT state = 'sent' FROM telnyx_order_requests WHERE body->>'customer_reference' = 'prepared-commit'")
  or die "prepared enqueue not sent";
ok(time - $t0 < 10, 'COMMIT PREPARED wakes the worker');
$node->safe_psql('postgres', "ALTER SYSTEM RESET telnyx.worker_naptime");
$node->reload;
sleep 1;
is(join(' ', map { ledger()->{$_} // 0 } 'prepared-commit', 'prepared-rollback'),
	'1 0', 'sent once after COMMIT PREPARED, never after ROLLBACK PREPARED');

# an administrator's open transaction holding a row lock never stalls the
# queue: the worker skips that request and comes back
{
	# the worker may not reconcile it before the administrator's sync has
	# locked it; then it may, and must skip it
	$node->safe_psql('postgres', "ALTER SYSTEM SET telnyx.reconcile_delay = '1h'");
	$node->reload;
	fault({ match => 'create', action => 'close_after' });
	my $locked = $node->safe_psql('postgres',
		"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'locked')");
	$node->poll_query_until('postgres', "SELECT state = 'unknown' FROM telnyx_order_requests WHERE id = $locked")
	  or die "not unknown";
	my $admin = $node->background_psql('postgres');
	$admin->query_safe('BEGIN');
	$admin->query_safe('SELECT telnyx_sync_inexplicit_orders()');
	$node->safe_psql('postgres', "ALTER SYSTEM RESET telnyx.reconcile_delay");
	$node->reload;
	my $other = $node->safe_psql('postgres',
		"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'not-stalled')");
	ok( $node->poll_query_until('postgres', "SELECT state = 'sent' FROM telnyx_order_requests WHERE id = $other"),
		'with a user holding a lock, other requests are still sent');
	sleep 3;
	is($node->safe_psql('postgres', "SELECT state FROM telnyx_order_requests WHERE id = $locked"),
		'unknown', 'the locked one waits, unresolved');
	$admin->query_safe('COMMIT');
	$admin->quit;
	$node->safe_psql('postgres', "UPDATE telnyx_order_requests SET next_attempt_at = now() WHERE id = $locked");
	$node->poll_query_until('postgres', "SELECT state = 'sent' FROM telnyx_order_requests WHERE id = $locked")
	  or die "locked request never sent";
	is(ledger()->{locked}, 1, 'once the lock is gone, it is resolved with its one order');
}

# a database restored from a dump does not send until told
{
	$node->safe_psql('postgres', 'CREATE DATABASE origin');
	$node->safe_psql('origin', 'CREATE EXTENSION telnyx_orders');
	$node->safe_psql('origin',
		"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'restored-' || i) FROM generate_series(1, 3) i");
	my $dump = $node->basedir . '/origin.sql';
	$node->command_ok([ 'pg_dump', '-d', $node->connstr('origin'), '-f', $dump ], 'pg_dump of a database with a queue');
	my $log_offset = -s $node->logfile;
	$node->safe_psql('postgres', 'CREATE DATABASE restored');
	$node->command_ok([ 'psql', '-X', '-q', '-d', $node->connstr('restored'), '-f', $dump ], 'restored into another database');
	$node->wait_for_log(qr/pauses the order queue of database "restored"/, $log_offset);
	sleep 2;
	is(join(' ', map { ledger()->{"restored-$_"} // 0 } 1 .. 3), '0 0 0',
		'the restored queue sends nothing, with a WARNING');
	is($node->safe_psql('restored', 'SELECT telnyx_resume_queue()'), 't', 'telnyx_resume_queue() says it was paused');
	wait_sent('restored', 'true', 'restored');
	is(join(' ', map { ledger()->{"restored-$_"} // 0 } 1 .. 3), '1 1 1',
		'once resumed, each restored request is sent once');
}

# a promoted physical standby keeps the queue's home: it goes on sending
{
	$node->safe_psql('postgres', "ALTER SYSTEM SET telnyx.database = 'nosuchdb'");
	$node->reload;
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'")
	  or die "the workers did not stop";
	$node->backup('backup');
	my $standby = PostgreSQL::Test::Cluster->new('standby');
	$standby->init_from_backup($node, 'backup', has_streaming => 1);
	$standby->start;
	$node->safe_psql('postgres',
		"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'promoted')");
	$node->wait_for_catchup($standby);

	# a hot standby cannot order: it could not record the order
	standinctl('reset-requests');
	my ($ret, $out, $err) = $standby->psql('postgres',
		"SELECT telnyx_create_inexplicit_order('$groups', customer_reference => 'on-standby')");
	like($err, qr/read-only transaction.*HINT:\s+Connect to the primary server/s,
		'a hot standby refuses to order, with a hint to the primary');
	is(standinctl('requests'), "requests: 0\n", 'and sends nothing');

	$node->stop;
	my $log_offset = -s $standby->logfile;
	$standby->promote;
	$standby->safe_psql('postgres', "ALTER SYSTEM SET telnyx.database = 'postgres'");
	$standby->reload;
	$standby->poll_query_until('postgres',
		"SELECT state = 'sent' FROM telnyx_order_requests WHERE body->>'customer_reference' = 'promoted'")
	  or die "the promoted standby did not send";
	is(ledger()->{promoted}, 1, 'a promoted standby sends the queue without a pause, once');
	ok(!$standby->log_contains('pauses the order queue', $log_offset), 'and logs no pause');

	# kill -9 of the worker at random moments, in the middle of sending,
	# recording and reconciling: every request ends with exactly one order
	my $n = $ENV{CHAOS_REQUESTS} // 150;
	my $kills = $ENV{CHAOS_KILLS} // 8;
	$standby->safe_psql('postgres', "ALTER SYSTEM SET telnyx.reconcile_delay = '200ms'");
	$standby->reload;
	for my $i (1 .. int($n / 5))
	{
		fault({ match => 'create', action => ($i % 2 ? 'close_after' : 'delay'), seconds => 0.5, times => 1 });
	}
	$standby->safe_psql('postgres',
		"SET telnyx.allow_bulk = on; SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'chaos-' || i) FROM generate_series(1, $n) i");
	srand(42);
	for my $round (1 .. $kills)
	{
		usleep(200_000 + int(rand(1_200_000)));
		my $pid = $standby->safe_psql('postgres',
			"SELECT pid FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'");
		next unless $pid;
		kill 'KILL', $pid;
		$standby->poll_query_until('postgres', 'SELECT true') or die "no recovery";
	}
	my $settled = $standby->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM telnyx_order_requests WHERE body->>'customer_reference' LIKE 'chaos-%' AND state <> 'sent'");
	ok($settled, "after $kills kills, all $n chaos requests settle as sent");
	my $ledger = ledger();
	my @wrong = grep { ($ledger->{"chaos-$_"} // 0) != 1 } 1 .. $n;
	is(scalar(@wrong), 0, 'each has exactly one order')
	  or diag('wrong: ' . join(' ', map { "chaos-$_=" . ($ledger->{"chaos-$_"} // 0) } @wrong));
	is(queue_index_mismatches($standby, 'postgres'), '',
		"after the kills, the queue's index tables agree with the requests");
	$standby->stop;
	unlike(slurp_file($standby->logfile), qr/terminated by signal (?!9:)/,
		'no process crashed (only the kill -9s of the test)');
}
unlike(slurp_file($node->logfile), qr/terminated by signal (?!9:)/, 'nor on the primary');

done_testing();
