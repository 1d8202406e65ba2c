# The call recorder: a synchronous call is committed in telnyx_order_calls
# by its database's recorder before it is sent.  The recorder stays for the
# next calls, serves many sessions at once, takes a body longer than its
# shared memory cell, leaves a database that is dropped, and when it stops
# (terminated, or blocked) the call fails with nothing sent, the next one
# starting a new recorder.  A caller that stops waiting leaves nothing
# behind.  Never two orders for one call.
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
use Time::HiRes qw(time usleep);

my $groups = '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]';

standinctl('reset');

my $node = PostgreSQL::Test::Cluster->new('recorder');
$node->init;
$node->append_conf('postgresql.conf', telnyx_conf() . q{
telnyx.sync_interval = 0
max_worker_processes = 16
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION telnyx_orders');

sub create_sql
{
	my ($ref) = @_;
	return "SELECT telnyx_create_inexplicit_order('$groups', customer_reference => '$ref') ->> 'customer_reference'";
}

sub recorders
{
	my ($db) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(pid::text, ',') FROM pg_stat_activity
		  WHERE backend_type = 'telnyx_orders call recorder'"
		  . ($db ? " AND datname = '$db'" : ''));
}

# one session, many calls: one recorder for them all
is($node->safe_psql('postgres', create_sql('one-0')), 'one-0', 'a call is placed');
my $first = recorders('postgres');
like($first, qr/^\d+$/, 'one recorder runs for the database');
$node->safe_psql('postgres', join(";\n", map { create_sql("one-$_") } 1 .. 100));
is(recorders('postgres'), $first, 'the same recorder recorded the next 100 calls');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM telnyx_order_calls c JOIN telnyx_inexplicit_orders o ON o.request_key = c.request_key
		  WHERE c.customer_reference LIKE 'one-%'"),
	'101', 'each call is recorded with its order');

# many sessions at once: every call recorded, each order once
my @runs;
for my $s (1 .. 4)
{
	my $file = PostgreSQL::Test::Utils::tempdir() . "/many-$s.sql";
	open(my $fh, '>', $file) or die "could not write $file: $!";
	print $fh join(";\n", map { create_sql("many-$s-$_") } 1 .. 50), ";\n";
	close($fh) or die "could not write $file: $!";
	my ($o, $e) = ('', '');
	push @runs, IPC::Run::start(
		[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-f', $file ],
		'<', \undef, '>', \$o, '2>', \$e);
}
my $all_ok = 1;
for my $h (@runs)
{
	$h->finish;
	$all_ok = 0 if $h->result != 0;
}
ok($all_ok, 'four sessions placed 50 calls each at once');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM telnyx_order_calls WHERE customer_reference LIKE 'many-%'"),
	'200', 'four sessions at once: 200 calls recorded');
my $ledger = ledger();
my @many = grep { /^many-/ } keys %$ledger;
is(scalar(@many), 200, 'the stand-in sold 200 orders');
is(scalar(grep { $ledger->{$_} != 1 } @many), 0, 'none twice');

# a body longer than a cell (4 kB) goes through a segment of its own
my $big_groups = encode_json([ map {
	{ country_iso => 'US', phone_number_type => 'local', count_requested => 1,
	  locality => ('x' x 200) . $_ } } 1 .. 40 ]);
is( $node->safe_psql('postgres',
		"SELECT telnyx_create_inexplicit_order('$big_groups', customer_reference => 'big') ->> 'customer_reference'"),
	'big', 'a call with a 9 kB body is placed');
is( $node->safe_psql('postgres',
		"SELECT jsonb_array_length(body -> 'ordering_groups'), length(body::text) > 8000
		   FROM telnyx_order_calls WHERE customer_reference = 'big'"),
	'40|t', 'and recorded whole');

# a recorder blocked (a lock on the calls) and terminated: the call fails,
# nothing is sent; the next call starts a new recorder
my $locker = $node->background_psql('postgres', on_error_stop => 1);
$locker->query_safe('BEGIN; LOCK telnyx_order_calls IN ACCESS EXCLUSIVE MODE');
my $caller = $node->background_psql('postgres', on_error_stop => 0);
$caller->query_until(qr/started/, "\\echo started\n" . create_sql('blocked') . ";\n");
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'telnyx_orders call recorder' AND wait_event_type = 'Lock'")
  or die 'the recorder did not wait for the lock';
my $blocked = recorders('postgres');
$node->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'telnyx_orders call recorder'");
my $out = $caller->query('SELECT 1');
like($caller->{stderr}, qr/could not record the order before sending it/,
	'a call whose recorder is terminated fails');
$caller->{stderr} = '';
$locker->query_safe('ROLLBACK');
$locker->quit;
is(ledger()->{blocked} // 0, 0, 'and nothing was sent');
is($node->safe_psql('postgres', create_sql('after')), 'after', 'the next call is placed');
isnt(recorders('postgres'), $blocked, 'by a new recorder');

# a caller that stops waiting (statement_timeout) sends nothing; its cell
# is freed by the recorder, and calls go on (more than there are cells)
$locker = $node->background_psql('postgres', on_error_stop => 1);
$locker->query_safe('BEGIN; LOCK telnyx_order_calls IN ACCESS EXCLUSIVE MODE');
for my $i (1 .. 3)
{
	my ($ret, $o, $err) = $node->psql('postgres',
		"SET statement_timeout = '300ms'; " . create_sql("gave-up-$i"));
	like($err, qr/canceling statement due to statement timeout/, "caller $i gave up waiting");
}
$locker->query_safe('ROLLBACK');
$locker->quit;
my $gave_up = ledger();
is(scalar(grep { /^gave-up-/ } keys %$gave_up), 0, 'none of them was sent');
$node->safe_psql('postgres', join(";\n", map { create_sql("next-$_") } 1 .. 70));
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM telnyx_order_calls WHERE customer_reference LIKE 'next-%'"),
	'70', 'then 70 calls (more than the 64 cells) are recorded');

# a database with a recorder can be dropped at once
$node->safe_psql('postgres', 'CREATE DATABASE gone');
$node->safe_psql('gone', 'CREATE EXTENSION telnyx_orders');
is($node->safe_psql('gone', create_sql('gone-1')), 'gone-1', 'a call in another database');
like(recorders('gone'), qr/^\d+$/, 'which has a recorder of its own');
my $t0 = time;
$node->safe_psql('postgres', 'DROP DATABASE gone');
ok(time - $t0 < 4.5, 'DROP DATABASE does not wait for it to go idle');
is(recorders('gone'), '', 'the recorder left');

ok(!$node->log_contains('TRAP|server process .* was terminated by signal'), 'no process crashed');

# synchronous_commit off for everyone, WAL written only every 10 s: what
# is committed before a send (a call's record, a worker's claim) is still
# flushed first, so a crash right after the send loses neither
$node->append_conf('postgresql.conf', qq{
synchronous_commit = off
wal_writer_delay = '10s'
telnyx.reconcile_delay = '1s'
telnyx.absence_window = '2s'
});
$node->restart;
my $session = $node->background_psql('postgres', on_error_stop => 1);
is($session->query_safe('BEGIN; ' . create_sql('durable-call')), 'durable-call',
	'a call in a transaction still open');
$node->stop('immediate');
$node->start;
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM telnyx_order_calls WHERE customer_reference = 'durable-call'"),
	'1', 'after a crash, the call is on record (its record was flushed before the send)');
$session->{run}->kill_kill;

# the same for the worker's claim: the stand-in holds its answer for 3 s,
# the server stops while the request is in flight
fault({ match => 'create', action => 'delay', seconds => 3, times => 1 });
$node->safe_psql('postgres', qq{SET synchronous_commit = on;
	SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'durable-claim')});
for (1 .. 100)
{
	last if (ledger()->{'durable-claim'} // 0) > 0;
	usleep(50_000);
}
is(ledger()->{'durable-claim'} // 0, 1, 'the queued request reached the stand-in');
$node->stop('immediate');
$node->start;
$node->poll_query_until('postgres',
	"SELECT state = 'sent' FROM telnyx_order_requests WHERE body ->> 'customer_reference' = 'durable-claim'")
  or die 'the request in flight at the crash did not end sent';
is(ledger()->{'durable-claim'} // 0, 1,
	'after a crash, the claim was on record: found, not sent again');

$node->stop;
done_testing();
