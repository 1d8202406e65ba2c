# Orders followed to the numbers bought by the background worker alone:
# a trigger queues an order, and its groups, number orders and numbers
# appear with no manual call; listeners hear what changed; refreshing
# stops once everything has ended; signed webhook deliveries reach the
# tables through the example endpoint.
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

my $key = $ENV{TELNYX_TEST_KEY} or die "TELNYX_TEST_KEY is not set";

standinctl('reset');
standinctl('config', encode_json({ process_seconds => 2, number_seconds => 2 }));

my $node = PostgreSQL::Test::Cluster->new('follow');
$node->init;
$node->append_conf('postgresql.conf', telnyx_conf() . qq{
telnyx.refresh_interval_max = '2s'
telnyx.worker_naptime = '1min'
telnyx.webhook_public_key = '$ENV{TELNYX_TEST_WEBHOOK_PUBLIC_KEY}'
max_worker_processes = 16
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION telnyx_orders;
CREATE TABLE number_requests (id serial PRIMARY KEY, customer text,
                              ordering_groups jsonb, customer_reference text);
CREATE TRIGGER order_numbers AFTER INSERT ON number_requests
  FOR EACH ROW EXECUTE FUNCTION telnyx_order_trigger();
CREATE ROLE listener LOGIN;
});

# a role with no privileges listens: it may learn that something changed,
# never what
my ($in, $out, $err) = ('', '', '');
my $listen = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $node->connstr('postgres') . ' user=listener' ],
	'<', \$in, '>', \$out, '2>', \$err);
$in .= "LISTEN telnyx_orders;\nSELECT 'listening';\n";
$listen->pump until $out =~ /listening/;

# success, partial success (short stock), failure (no stock)
$node->safe_psql('postgres', q{
INSERT INTO number_requests (customer, ordering_groups, customer_reference) VALUES
 ('acme', '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 3, "locality": "Chicago"},
            {"country_iso": "US", "phone_number_type": "local", "count_requested": 4, "national_destination_code": "555"},
            {"country_iso": "US", "phone_number_type": "local", "count_requested": 2, "national_destination_code": "999"}]',
  'acme-1');
});
ok( $node->poll_query_until('postgres', q{
SELECT count(*) = 3 AND bool_and(status IN ('success', 'partial_success', 'failed'))
       AND bool_and(numbers_bought = count_allocated)
  FROM telnyx_order_allocations WHERE customer_reference = 'acme-1'}),
	'a queued order is followed to its numbers with no manual call');
is( $node->safe_psql('postgres', q{
SELECT string_agg(format('%s %s/%s short %s bought %s %s', group_index, count_allocated,
                         count_requested, shortfall, numbers_bought, status), '; ' ORDER BY group_index)
  FROM telnyx_order_allocations WHERE customer_reference = 'acme-1'}),
	'1 3/3 short 0 bought 3 success; 2 2/4 short 2 bought 2 partial_success; 3 0/2 short 2 bought 0 failed',
	'requested, allocated, shortfall and numbers bought per group');
is( $node->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE status = 'success' AND phone_number ~ '^\+1[0-9]{10}$')
  FROM telnyx_purchased_numbers WHERE customer_reference = 'acme-1'}),
	'5', 'every number bought is listed, in E.164');
is( $node->safe_psql('postgres', q{
SELECT locality FROM telnyx_ordering_groups g JOIN telnyx_inexplicit_orders o ON o.id = g.order_id
 WHERE o.customer_reference = 'acme-1' AND group_index = 1}),
	'Chicago', 'the locality asked for is kept, though no answer echoes it');
is($node->safe_psql('postgres', 'SELECT count(*) FROM telnyx_open_orders'), '0',
	'no order is open any more');

# what the listener heard (psql prints a notification after the result of
# the query that follows it: read to the end of its output)
$in .= "SELECT 1;\n\\q\n";
$listen->finish;
my @notes = ($out . $err) =~ /(Asynchronous notification "telnyx_orders"[^\n]*)/g;
my @events = map { /with payload "(.*)" received/ ? $1 : () } @notes;
ok(scalar(grep { /"group_changed"/ } @events) >= 3, 'listeners hear each group change');
ok(scalar(grep { /"numbers_bought"/ } @events) >= 2, 'and the numbers bought');
is(scalar(grep { !/^\{"event" : "(group_changed|numbers_bought)", "seq" : \d+\}$/ } @events),
	0, 'each payload is an event and its seq, nothing the tables would hide');
my ($seq) = map { /"seq" : (\d+)/ ? $1 : () } grep { /numbers_bought/ } @events;
is( $node->safe_psql('postgres',
		"SELECT e.event || ' ' || o.customer_reference FROM telnyx_order_events e
		   JOIN telnyx_inexplicit_orders o ON o.id = e.order_id WHERE e.seq = $seq"),
	'numbers_bought acme-1', 'the seq names the event row, for those who may read it')
  if defined $seq;

# refreshing stops once everything has ended
standinctl('reset-requests');
sleep 5;
is(standinctl('requests'), "requests: 0\n", 'nothing is fetched once everything has ended');

# signed deliveries through the example endpoint: the stand-in posts
# number_order.complete as number orders end
my $port = PostgreSQL::Test::Cluster::get_free_port();
local $ENV{PGHOST} = $node->host;
local $ENV{PGPORT} = $node->port;
local $ENV{PGDATABASE} = 'postgres';
my $endpoint = IPC::Run::start([ 'python3', "$FindBin::Bin/../webhook_endpoint.py", $port ],
	'>', \my $eout, '2>', \my $eerr);
sleep 1;
standinctl('config', encode_json({ webhook_url => "http://127.0.0.1:$port/telnyx",
								   number_seconds => 4 }));
$node->safe_psql('postgres', q{
INSERT INTO number_requests (customer, ordering_groups, customer_reference) VALUES
 ('hooked', '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 2}]', 'hooked-1');
});
ok( $node->poll_query_until('postgres', q{
SELECT count(*) >= 1 AND bool_and(d.applied)
  FROM telnyx_webhook_deliveries d
  JOIN telnyx_number_orders n ON n.number_order_id = d.number_order_id
  JOIN telnyx_inexplicit_orders o ON o.id = n.order_id
 WHERE o.customer_reference = 'hooked-1'}),
	'a signed number_order.complete delivery is applied through the endpoint');
ok( $node->poll_query_until('postgres', q{
SELECT numbers_bought = 2 FROM telnyx_order_allocations WHERE customer_reference = 'hooked-1'}),
	'and its numbers are bought');
like(standinctl('webhooks'), qr/^webhooks: (\d+) sent, \1 answered 200$/m,
	'every delivery was answered 200');
$endpoint->kill_kill;

ok(!$node->log_contains('TRAP|PANIC|server process .* was terminated'), 'no process crashed');
$node->stop;
done_testing();
