# Operations: exactly one worker per database when the launcher is
# terminated and after telnyx_restart_workers(); finished requests purged
# by age and nothing else; the status view an operator opens first; the
# warning for a queue no worker sends.
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

standinctl('reset');
standinctl('config', encode_json({ api_key => $key }));

my $node = PostgreSQL::Test::Cluster->new('operations');
$node->init;
$node->append_conf('postgresql.conf', telnyx_conf() . qq{
telnyx.worker_naptime = '1s'
telnyx.database = 'postgres'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION telnyx_orders');

sub workers
{
	return $node->safe_psql('postgres',
		"SELECT string_agg(pid::text, ' ' ORDER BY pid) FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'");
}

sub launcher
{
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'telnyx_orders launcher'");
}

$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'")
  or die 'no worker';

# --- exactly one worker per database ------------------------------------

my $first = workers();
my $old_launcher = launcher();
$node->safe_psql('postgres', "SELECT pg_terminate_backend($old_launcher)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'telnyx_orders launcher' AND pid <> $old_launcher")
  or die 'no new launcher';
# the new launcher's worker takes over from the old one
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker' AND pid <> $first")
  or die 'no new worker';
sleep 2;
my $after = workers();
isnt($after, $first, 'a new launcher starts its own worker');
unlike($after, qr/ /, 'and the old one stops: one worker for the database');
my $id = $node->safe_psql('postgres',
	"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'after-launcher')");
$node->poll_query_until('postgres', "SELECT state = 'sent' FROM telnyx_order_requests WHERE id = $id")
  or die 'not sent after the launcher restart';
is(ledger()->{'after-launcher'}, 1, 'which sends, once');

is($node->safe_psql('postgres', 'SELECT telnyx_restart_workers()'), 't', 'telnyx_restart_workers() asks the launcher');
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker' AND pid <> $after")
  or die 'no restarted worker';
sleep 1;
my $restarted = workers();
unlike($restarted, qr/ /, 'after a restart, one worker again');
isnt($restarted, $after, 'a new one');
ok($node->log_contains('telnyx_orders launcher restarts its workers, as asked'), 'the launcher logs the restart');

$node->safe_psql('postgres', 'CREATE ROLE regress_nobody LOGIN');
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT telnyx_restart_workers()',
	extra_params => [ '-U', 'regress_nobody' ]);
like($err, qr/permission denied/, 'a role not granted it cannot restart the workers');

# --- the status view ------------------------------------------------------

my $status = $node->safe_psql('postgres',
	'SELECT worker_pid, waiting_because IS NULL, sent, queued FROM telnyx_queue_status');
is($status, "$restarted|t|1|0", 'the status view: the worker, not waiting, one sent, none queued');

# a refused key: the worker waits, and says why
standinctl('config', encode_json({ api_key => 'KEYother' }));
$id = $node->safe_psql('postgres',
	"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'refused-key')");
$node->poll_query_until('postgres',
	"SELECT waiting_because = 'Telnyx did not accept the API key' FROM telnyx_queue_status")
  or die 'the status view does not show the refused key';
is($node->safe_psql('postgres', 'SELECT queued + retrying, last_error IS NOT NULL FROM telnyx_queue_status'),
	'1|t', 'the request waits, with its error');
# fixed: the next create gets a 429 (counted), then goes through
fault({ match => 'create', status => 429, code => '10011', title => 'Too many requests',
	headers => { 'retry-after-ms' => '100' } });
standinctl('config', encode_json({ api_key => $key }));
$node->reload;
$node->poll_query_until('postgres', "SELECT state = 'sent' FROM telnyx_order_requests WHERE id = $id")
  or die 'not sent after the key was fixed';
is($node->safe_psql('postgres',
	'SELECT waiting_because IS NULL, worker_rate_limited, worker_orders_sent, sent_last_hour FROM telnyx_queue_status'),
	't|1|1|2', 'then it sends: the 429 counted, nothing to wait for');

# --- retention -----------------------------------------------------------

$node->safe_psql('postgres', qq{
SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'old-' || i) FROM generate_series(1, 5) i;
});
$node->poll_query_until('postgres',
	"SELECT count(*) = 5 FROM telnyx_order_requests WHERE body->>'customer_reference' LIKE 'old-%' AND state = 'sent'")
  or die 'old requests not sent';
# age them: three finished, one cancelled, one made unknown (kept); one
# queued for later (kept)
$node->safe_psql('postgres', qq{
SELECT telnyx_cancel_order_request(telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'old-cancelled'));
UPDATE telnyx_order_requests SET state = 'unknown', next_attempt_at = now() + interval '1 day'
 WHERE body->>'customer_reference' = 'old-5';
BEGIN;
SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'old-later');
UPDATE telnyx_order_requests SET next_attempt_at = now() + interval '1 day'
 WHERE body->>'customer_reference' = 'old-later';
COMMIT;
UPDATE telnyx_order_requests SET created_at = now() - interval '41 days',
                                 updated_at = now() - interval '40 days'
 WHERE body->>'customer_reference' LIKE 'old-%';
});
my $orders_before = $node->safe_psql('postgres', 'SELECT count(*) FROM telnyx_inexplicit_orders');
# the worker purges when it starts, then once a minute
$node->safe_psql('postgres', 'SELECT telnyx_restart_workers()');
$node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM telnyx_order_requests WHERE body->>'customer_reference' LIKE 'old-%'")
  or die 'the worker did not purge';
is($node->safe_psql('postgres',
	"SELECT string_agg(body->>'customer_reference' || ':' || state, ' ' ORDER BY id) FROM telnyx_order_requests WHERE body->>'customer_reference' LIKE 'old-%'"),
	'old-5:unknown old-later:queued', 'the worker deleted finished requests older than the retention, and kept the rest');
is($node->safe_psql('postgres', 'SELECT count(*) FROM telnyx_inexplicit_orders'), $orders_before, 'and no order');

$node->safe_psql('postgres', q{
UPDATE telnyx_order_requests SET created_at = now() - interval '3 days',
                                 updated_at = now() - interval '2 days'
 WHERE body->>'customer_reference' IN ('after-launcher', 'refused-key');
});
is($node->safe_psql('postgres', "SELECT telnyx_purge_requests('1 day')"), '2', 'telnyx_purge_requests() deletes by age');
($ret, $out, $err) = $node->psql('postgres', "SELECT telnyx_purge_requests('-1 day')");
like($err, qr/"older_than" must not be negative/, 'not a negative age');

# --- a queue no worker sends ----------------------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE unserved');
$node->safe_psql('unserved', 'CREATE EXTENSION telnyx_orders');
($ret, $out, $err) = $node->psql('unserved', qq{
SELECT telnyx_enqueue_inexplicit_order('$groups');
SELECT telnyx_enqueue_inexplicit_order('$groups');
});
my @warnings = $err =~ /WARNING:  no background worker sends the order queue of this database yet/g;
is(scalar(@warnings), 1, 'an enqueue no worker will send warns, once per session');
like($err, qr/database "unserved" is not in telnyx.database/, 'and says why');
is($node->safe_psql('unserved', 'SELECT worker_pid IS NULL, waiting_because, queued FROM telnyx_queue_status'),
	't|database "unserved" is not in telnyx.database, so no background worker sends its queue: add it and reload|2',
	'the status view says so too');

unlike(slurp_file($node->logfile), qr/terminated by signal/, 'no process crashed');
$node->stop;
standinctl('reset');

done_testing();
