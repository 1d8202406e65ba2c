# High availability with PostgreSQL's own replication: the worker is inert
# on a hot standby (no sender, nothing sent, no error in its log) and the
# synchronous functions refuse there; the primary is stopped with
# -m immediate while requests are in flight with slow answers and others
# are committed but not yet claimed; the standby is promoted and sends:
# every request ends with exactly one order at the stand-in.
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
# without the Idempotency-Key's help: a blind resend would buy twice
standinctl('config', encode_json({ api_key => $key, idempotency => JSON::PP::false }));

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', telnyx_conf() . qq{
telnyx.reconcile_delay = '2s'
telnyx.absence_window = '60s'
telnyx.worker_naptime = '1s'
telnyx.worker_concurrency = 4
telnyx.database = 'postgres'
});
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION telnyx_orders');
$primary->backup('base');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

# some requests sent before, to have a queue with a history
$primary->safe_psql('postgres',
	"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'before-' || i) FROM generate_series(1, 3) i");
$primary->poll_query_until('postgres',
	"SELECT count(*) = 3 FROM telnyx_order_requests WHERE state = 'sent'")
  or die 'not sent on the primary';
# the primary's worker would refresh them while the standby is watched:
# the stand-in counts every request, and the standby must send none
$primary->safe_psql('postgres', "UPDATE telnyx_inexplicit_orders SET next_refresh_at = now() + interval '1 hour'");
$primary->safe_psql('postgres',
	"UPDATE telnyx_number_orders SET next_fetch_at = now() + interval '1 hour' WHERE next_fetch_at IS NOT NULL");
$primary->wait_for_catchup($standby);

# the standby: no worker, nothing sent, no error; a synchronous call refuses
standinctl('reset-requests');
sleep 3;
is($standby->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('telnyx_orders worker', 'telnyx_orders launcher')"),
	'0', 'no launcher and no worker run on a hot standby');
my ($ret, $out, $err) = $standby->psql('postgres', "SELECT telnyx_create_inexplicit_order('$groups')");
like($err, qr/read-only|standby|recovery/i, 'a synchronous create refuses on the standby');
is(standinctl('requests'), "requests: 0\n", 'and nothing is sent from it');

# requests in flight with slow answers, and more committed behind them
fault({ match => 'create', action => 'delay', seconds => 4, times => 4 });
$primary->safe_psql('postgres',
	"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'failover-' || i) FROM generate_series(1, 10) i");
$primary->poll_query_until('postgres',
	"SELECT count(*) >= 4 FROM telnyx_order_requests WHERE body->>'customer_reference' LIKE 'failover-%' AND state = 'sending'")
  or die 'not in flight';
$primary->wait_for_catchup($standby);
my $in_flight = $standby->safe_psql('postgres',
	"SELECT count(*) FROM telnyx_order_requests WHERE body->>'customer_reference' LIKE 'failover-%' AND state = 'sending'");
cmp_ok($in_flight, '>=', 4, "$in_flight requests in flight on the standby's copy when the primary stops");
$primary->stop('immediate');

my $log_offset = -s $standby->logfile;
$standby->promote;
ok($standby->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'"),
	'the promoted standby starts a worker');
ok($standby->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM telnyx_order_requests WHERE state <> 'sent'"),
	'every request ends sent');

my $ledger = ledger();
my @wrong = grep { ($ledger->{"failover-$_"} // 0) != 1 } 1 .. 10;
is(join(' ', map { "failover-$_=" . ($ledger->{"failover-$_"} // 0) } @wrong), '',
	'each has exactly one order: the ones in flight reconciled, the others sent once');
is(join(' ', map { $ledger->{"before-$_"} // 0 } 1 .. 3), '1 1 1', 'and the earlier ones were not sent again');
is($standby->safe_psql('postgres',
		"SELECT count(*) FROM telnyx_order_requests r JOIN telnyx_inexplicit_orders o ON o.id = r.order_id WHERE r.body->>'customer_reference' LIKE 'failover-%'"),
	'10', 'each recorded with its order on the new primary');
ok($standby->log_contains('left "sending" by a sender that stopped', $log_offset),
	'the new primary says it reconciled what the old one had in flight');
ok(!$standby->log_contains('pauses the order queue', $log_offset), 'and does not pause its queue');
unlike(slurp_file($standby->logfile), qr/telnyx_orders[^\n]*(ERROR|FATAL)|terminated by signal/,
	'no error from the extension on the standby, before or after the promotion');
$standby->stop;
standinctl('reset');

done_testing();
