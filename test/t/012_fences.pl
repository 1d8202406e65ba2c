# A claim is a fencing token, and "absent" needs evidence, against a
# stand-in that ignores the Idempotency-Key (a resend buys twice):
#
# - With a request budget far below what is claimed at once, claimed
#   requests wait for the budget longer than their first lease; a
#   CALL telnyx_process_queue() every second (as from pg_cron) must never
#   take them over while the worker is alive: each request one order.
# - A create that Telnyx records 8 seconds after the connection was given
#   up (telnyx.timeout 2s, telnyx.reconcile_delay 1s) is not proven absent
#   by a look that comes too early: it is found, and never bought twice.
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
my $groups = '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]';
my $requests = 256;

standinctl('reset');
standinctl('config', encode_json({ api_key => $key, idempotency => JSON::PP::false }));

my $node = PostgreSQL::Test::Cluster->new('fences');
$node->init;
$node->append_conf('postgresql.conf', telnyx_conf() . qq{
telnyx.worker_naptime = '1s'
telnyx.sync_interval = 0
telnyx.timeout = '2s'
telnyx.reconcile_delay = '1s'
telnyx.absence_window = '60s'
telnyx.worker_concurrency = 64
telnyx.max_requests_per_second = 3
max_prepared_transactions = 2
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION telnyx_orders');
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'")
  or die 'no worker';

# no enqueue waits for another transaction: the first enqueue of a new
# database, left prepared (an orphaned two-phase commit), holds up no
# other enqueue
$node->safe_psql('postgres', "BEGIN; SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'prepared-first'); PREPARE TRANSACTION 'first_enqueue'");
my ($rc, $out, $err) = $node->psql('postgres',
	"SET lock_timeout = '2s'; SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'beside-prepared') > 0");
is("$rc $out", '0 t', 'an enqueue beside a prepared first enqueue does not wait for it') or diag($err);
$node->safe_psql('postgres', "ROLLBACK PREPARED 'first_enqueue'");
$node->poll_query_until('postgres',
	"SELECT state = 'sent' FROM telnyx_order_requests WHERE body->>'customer_reference' = 'beside-prepared'")
  or die 'beside-prepared was not sent';

# made at Telnyx 8 seconds after it was sent, long after the sender gave up
fault({ match => 'create', action => 'late_create', seconds => 8 });
$node->safe_psql('postgres',
	"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'late-1')");
$node->poll_query_until('postgres',
	"SELECT state = 'unknown' FROM telnyx_order_requests WHERE body->>'customer_reference' = 'late-1'")
  or die 'late-1 never became unknown';

# a claim far larger than the budget can send within the first lease
$node->safe_psql('postgres',
	"SET telnyx.allow_bulk = on; SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'fence-' || i) FROM generate_series(1, $requests) i");
my $deadline = time + 600;
my $calls = 0;
while (time < $deadline)
{
	# another session's pass: it takes over every claim it finds stale
	$node->psql('postgres', 'CALL telnyx_process_queue(1)');
	$calls++;
	last
	  if $node->safe_psql('postgres',
		"SELECT count(*) = 0 FROM telnyx_order_requests WHERE state <> 'sent'") eq 't';
	sleep 1;
}
note("$calls passes of CALL telnyx_process_queue(1) ran beside the worker");

my $ledger = ledger();
my @doubled = grep { /^fence-/ && $ledger->{$_} != 1 } keys %$ledger;
my $orders = grep { /^fence-/ } keys %$ledger;
is($orders, $requests, 'every request has an order at the stand-in');
is(scalar(@doubled), 0, 'none has more than one (' . join(' ', sort @doubled) . ')');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM telnyx_order_requests WHERE body->>'customer_reference' LIKE 'fence-%' AND state = 'sent' AND attempts = 1"),
	$requests, 'each was sent once, never taken over as unknown');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM telnyx_order_requests r JOIN telnyx_inexplicit_orders o ON o.id = r.order_id AND o.request_key = r.request_key WHERE o.customer_reference LIKE 'fence-%'"),
	$requests, 'every order is recorded, linked to its request');

is($ledger->{'late-1'} // 0, 1, 'the order made late is bought once');
is($node->safe_psql('postgres',
		"SELECT state || ' ' || attempts FROM telnyx_order_requests WHERE body->>'customer_reference' = 'late-1'"),
	'sent 1', 'it was found by a later look, and not sent again');
unlike(slurp_file($node->logfile), qr/left "sending" by a sender that stopped/,
	'no claim of a live sender was taken for stale');

# a database whose extension is older than the library is left alone by
# the worker, which says why, until ALTER EXTENSION ... UPDATE
$node->safe_psql('postgres', "CREATE DATABASE older");
$node->safe_psql('older', "CREATE EXTENSION telnyx_orders VERSION '1.4'");
$node->safe_psql('older', q{
INSERT INTO telnyx_queue_home (system_identifier, database_oid, database_name)
SELECT system_identifier, (SELECT oid FROM pg_database WHERE datname = 'older'), 'older'
  FROM pg_control_system();
INSERT INTO telnyx_order_requests (request_key, body, request_body, requested_by)
SELECT k, b, b::text, 10 FROM gen_random_uuid() k,
       jsonb_build_object('ordering_groups', '[{"country_iso": "US", "phone_number_type": "local", "count_requested": "1"}]'::jsonb,
                          'customer_reference', 'queued-at-1.4') b;
INSERT INTO telnyx_order_requests (request_key, body, request_body, requested_by, state, order_id,
                                   next_attempt_at)
SELECT gen_random_uuid(), '{}', '{}', 10, s, o, 'infinity'
  FROM (VALUES ('sent', 'order-of-1.4'), ('cancelled', NULL), ('retrying', NULL)) v(s, o);
});
$node->safe_psql('postgres', "ALTER SYSTEM SET telnyx.database = 'postgres, older'");
$node->reload;
ok($node->poll_query_until('older',
		"SELECT waiting_because LIKE '%the extension is at version 1.4, the library at %ALTER EXTENSION telnyx_orders UPDATE%' FROM telnyx_queue_status"),
	'the worker of a database at an older version says why it sends nothing');
sleep 2;
is(ledger()->{'queued-at-1.4'} // 0, 0, 'and sends nothing');
$node->safe_psql('older', 'ALTER EXTENSION telnyx_orders UPDATE');
is(queue_index_mismatches($node, 'older'), '',
	"the upgrade fills the queue's index tables from the requests");
is($node->safe_psql('older', q{
SELECT count(*) FROM telnyx_live_requests WHERE kind = 'q' AND due_at = 'infinity'}),
	'1', 'the request retrying later is in the live queue, due when it said');
is($node->safe_psql('older', 'SELECT order_id FROM telnyx_requests_by_order'), 'order-of-1.4',
	'the order the sent one names');
ok($node->poll_query_until('older',
		"SELECT state = 'sent' FROM telnyx_order_requests WHERE body->>'customer_reference' = 'queued-at-1.4'"),
	'once updated, its queue is sent');
is(ledger()->{'queued-at-1.4'} // 0, 1, 'once');

# a trigger that keeps the queue's index tables disabled: the worker sends
# nothing and says why; enabled again, it rebuilds them and sends, once
$node->safe_psql('older', 'ALTER TABLE telnyx_order_requests DISABLE TRIGGER telnyx_order_requests_inserted');
$node->safe_psql('older', q{
SELECT telnyx_enqueue_inexplicit_order('[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]',
  customer_reference => 'while-off')});
ok($node->poll_query_until('older',
		"SELECT waiting_because LIKE '%trigger that keeps the queue''s index tables does not fire in every session%' FROM telnyx_queue_status"),
	'a disabled index trigger pauses the worker, which says why');
my (undef, undef, $call_err) = $node->psql('older', 'CALL telnyx_process_queue()');
like($call_err, qr/trigger "telnyx_order_requests_inserted" of telnyx_order_requests does not fire in every session/,
	'and CALL telnyx_process_queue() refuses to send');
is(ledger()->{'while-off'} // 0, 0, 'nothing is sent');
$node->safe_psql('older', 'ALTER TABLE telnyx_order_requests ENABLE ALWAYS TRIGGER telnyx_order_requests_inserted');
ok($node->poll_query_until('older',
		"SELECT state = 'sent' FROM telnyx_order_requests WHERE body->>'customer_reference' = 'while-off'"),
	'enabled again, the request queued meanwhile is sent');
is(ledger()->{'while-off'} // 0, 1, 'once');
ok($node->log_contains(qr/rebuilt the queue's index tables of database "older"/), 'the worker rebuilt the index tables');
is(queue_index_mismatches($node, 'older'), '', 'which agree with the requests');

# ENABLE TRIGGER ALL (as a data-only restore ends) leaves them firing on
# origin only: paused again until telnyx_resume_queue() sets them back
$node->safe_psql('older', 'ALTER TABLE telnyx_order_requests DISABLE TRIGGER ALL');
$node->safe_psql('older', q{
INSERT INTO telnyx_order_requests (request_key, body, request_body, requested_by, state, next_attempt_at)
SELECT gen_random_uuid(), '{}', '{}', 10, 'held', 'infinity'});
$node->safe_psql('older', 'ALTER TABLE telnyx_order_requests ENABLE TRIGGER ALL');
ok($node->poll_query_until('older',
		"SELECT waiting_because LIKE '%does not fire in every session%' FROM telnyx_queue_status"),
	'after ENABLE TRIGGER ALL the worker waits, and says why');
isnt(queue_index_mismatches($node, 'older'), '', 'the row loaded meanwhile is missing from the index tables');
$node->safe_psql('older', 'SELECT telnyx_resume_queue()');
is($node->safe_psql('older', q{
SELECT string_agg(tgname || ':' || tgenabled::text, ' ' ORDER BY tgname) FROM pg_trigger
 WHERE tgrelid = 'telnyx_order_requests'::regclass AND NOT tgisinternal}),
	'telnyx_order_requests_deleted:A telnyx_order_requests_inserted:A telnyx_order_requests_replicated:R '
	  . 'telnyx_order_requests_truncated:A telnyx_order_requests_updated:A',
	'telnyx_resume_queue() sets every trigger as the extension made it');
is(queue_index_mismatches($node, 'older'), '', 'and rebuilds the index tables');
ok($node->poll_query_until('older', 'SELECT waiting_because IS NULL FROM telnyx_queue_status'),
	'the worker goes on');

$node->stop;
done_testing();
