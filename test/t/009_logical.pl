# A logical-replication subscriber that receives the queue table does not
# send it: requests arrive "replicated", its worker leaves them alone, and
# they take the publisher's final states as they come.  Resumed there
# (telnyx_resume_queue()), they are looked up before anything is sent.
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
standinctl('config', encode_json({ api_key => $key, idempotency => JSON::PP::false }));

my $conf = telnyx_conf() . qq{
telnyx.reconcile_delay = '1s'
telnyx.absence_window = '60s'
telnyx.worker_naptime = '1s'
wal_level = logical
};

# the publisher sends nothing by itself here: its queue is sent on demand
my $pub = PostgreSQL::Test::Cluster->new('publisher');
$pub->init(allows_streaming => "logical");
$pub->append_conf('postgresql.conf', $conf . "telnyx.database = 'none'\n");
$pub->start;
my $sub = PostgreSQL::Test::Cluster->new('subscriber');
$sub->init;
$sub->append_conf('postgresql.conf', $conf . "telnyx.database = 'postgres'\n");
$sub->start;

$pub->safe_psql('postgres', q{
CREATE EXTENSION telnyx_orders;
CREATE PUBLICATION telnyx_pub FOR TABLE telnyx_order_requests;
});
$sub->safe_psql('postgres', 'CREATE EXTENSION telnyx_orders');
$sub->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'")
  or die 'no worker on the subscriber';
my $connstr = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres',
	"CREATE SUBSCRIPTION telnyx_sub CONNECTION '$connstr' PUBLICATION telnyx_pub");
$sub->wait_for_subscription_sync($pub, 'telnyx_sub');

$pub->safe_psql('postgres',
	"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'logical-' || i) FROM generate_series(1, 5) i");
$pub->wait_for_catchup('telnyx_sub');
is($sub->safe_psql('postgres', 'SELECT string_agg(DISTINCT state, \',\') FROM telnyx_order_requests'),
	'replicated', 'queued requests arrive at the subscriber as "replicated"');
sleep 3;
is(ledger()->{'logical-1'} // 0, 0, "the subscriber's worker does not send them");
is($sub->safe_psql('postgres', 'SELECT replicated, queued FROM telnyx_queue_status'), '5|0',
	'its status view shows them as replicated');

# the publisher sends them; the subscriber takes the final states
$pub->safe_psql('postgres', 'CALL telnyx_process_queue()');
$pub->wait_for_catchup('telnyx_sub');
is($sub->safe_psql('postgres', "SELECT count(*) FROM telnyx_order_requests WHERE state = 'sent' AND order_id IS NOT NULL"),
	'5', 'sent by the publisher, the subscriber has them sent with their orders');
is(join(' ', map { ledger()->{"logical-$_"} // 0 } 1 .. 5), '1 1 1 1 1', 'each ordered once');

# a subscriber of every table (a publication FOR ALL TABLES) receives the
# queue's index tables too: the rows of telnyx_live_requests are dropped
# there, the orders the requests name arrive with them, nothing is sent
$pub->safe_psql('postgres', 'CREATE PUBLICATION telnyx_all FOR ALL TABLES');
$sub->safe_psql('postgres', 'CREATE DATABASE everything');
$sub->safe_psql('everything', 'CREATE EXTENSION telnyx_orders');
$sub->safe_psql('everything', "CREATE SUBSCRIPTION telnyx_all_sub CONNECTION '$connstr' PUBLICATION telnyx_all");
$sub->wait_for_subscription_sync($pub, 'telnyx_all_sub');
$pub->safe_psql('postgres',
	"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'all-' || i) FROM generate_series(1, 3) i");
$pub->wait_for_catchup('telnyx_all_sub');
is($sub->safe_psql('everything', q{
SELECT (SELECT count(*) FROM telnyx_live_requests) || ' '
    || (SELECT count(*) FROM telnyx_order_requests
         WHERE body->>'customer_reference' LIKE 'all-%' AND state = 'replicated')}),
	'0 3', 'FOR ALL TABLES: the requests arrive "replicated", their rows of the live queue are dropped');
$pub->safe_psql('postgres', 'CALL telnyx_process_queue()');
$pub->wait_for_catchup('telnyx_all_sub');
is($sub->safe_psql('everything', q{
SELECT count(*) FROM telnyx_order_requests WHERE body->>'customer_reference' LIKE 'all-%' AND state = 'sent'}),
	'3', 'sent by the publisher, they arrive sent');
is(queue_index_mismatches($sub, 'everything'), '',
	"and the subscriber's index tables agree with its requests");
is(join(' ', map { ledger()->{"all-$_"} // 0 } 1 .. 3), '1 1 1', 'each ordered once');
$sub->safe_psql('everything', 'DROP SUBSCRIPTION telnyx_all_sub');
$pub->safe_psql('postgres', 'DROP PUBLICATION telnyx_all');

# more arrive and stay replicated; once resumed, the subscriber looks each
# up first: one the publisher already ordered is not ordered again
$pub->safe_psql('postgres',
	"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'moved-' || i) FROM generate_series(1, 2) i");
$pub->wait_for_catchup('telnyx_sub');
$sub->safe_psql('postgres', 'ALTER SUBSCRIPTION telnyx_sub DISABLE');
# the publisher sends moved-1 just before it goes; the subscriber never hears
$pub->safe_psql('postgres', 'CALL telnyx_process_queue(1)');
$pub->stop;
is($sub->safe_psql('postgres', 'SELECT telnyx_resume_queue()'), 't',
	'telnyx_resume_queue() takes the replicated requests over');
is(queue_index_mismatches($sub, 'postgres'), '',
	"and rebuilds the queue's index tables from them");
ok($sub->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM telnyx_order_requests WHERE body->>'customer_reference' LIKE 'moved-%' AND state = 'sent'"),
	'the subscriber then settles them');
is(join(' ', map { ledger()->{"moved-$_"} // 0 } 1 .. 2), '1 1',
	'the one the publisher had sent is found, not ordered again; the other is sent once');
is(queue_index_mismatches($sub, 'postgres'), '', "the queue's index tables agree with the requests");
unlike(slurp_file($sub->logfile), qr/terminated by signal/, 'no process crashed');
$sub->stop;
standinctl('reset');

done_testing();
