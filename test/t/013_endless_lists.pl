# Reconciliation and the worker's periodic sync over a list of orders that
# never ends: nothing is concluded from a walk that stopped without a proven
# end.  A request whose answer was lost stays unknown and is never sent
# again (the stand-in ignores the Idempotency-Key, so a resend would buy
# twice), and each walk sends few page requests.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use FindBin;
use lib $FindBin::Bin;
use StandIn;

my $key = $ENV{TELNYX_TEST_KEY} or die "TELNYX_TEST_KEY is not set";
my $group = '{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}';

standinctl('reset');
standinctl('config', encode_json({ api_key => $key, idempotency => JSON::PP::false }));

# no worker for this database: the test sends with CALL telnyx_process_queue()
my $node = PostgreSQL::Test::Cluster->new('endless_lists');
$node->init;
$node->append_conf('postgresql.conf', telnyx_conf() . qq{
telnyx.database = 'no_such_database'
telnyx.reconcile_delay = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION telnyx_orders');

sub list_requests { return (standinctl('requests', 'list') =~ /(\d+)/)[0]; }
sub request_state
{
	return $node->safe_psql('postgres',
		"SELECT state || ' ' || attempts FROM telnyx_order_requests WHERE id = $_[0]");
}

$node->safe_psql('postgres',
	"SELECT telnyx_create_inexplicit_order('$group', customer_reference => 'endless-' || i) FROM generate_series(1, 2) i");

# A server that ignores page_number, with meta, one order a page, oldest
# first: the lost order is on page 3 and is never served.  Read as the
# last page meta counts, page 3 would prove it absent.
standinctl('config', encode_json({
	list_oldest_first => JSON::PP::true, list_meta => JSON::PP::true,
	list_ignore_page => JSON::PP::true, list_endless => 'repeat', list_page_cap => 1 }));
fault({ match => 'create', action => 'close_after' });
my $lost = $node->safe_psql('postgres',
	"SELECT telnyx_enqueue_inexplicit_order('$group', customer_reference => 'lost-in-a-loop')");
$node->safe_psql('postgres', 'CALL telnyx_process_queue()');
is(request_state($lost), 'unknown 1', 'the request whose answer was lost is unknown');
standinctl('reset-requests');
$node->safe_psql('postgres', 'CALL telnyx_process_queue()');
is(request_state($lost), 'unknown 1', 'a list that repeats its first page leaves it unknown');
is(list_requests(), 2, 'after two page requests');
is(ledger()->{'lost-in-a-loop'}, 1, 'and it was not sent again');
like(slurp_file($node->logfile),
	qr/could not read the list of orders to reconcile 1 order request\n.*Page 2 of the list holds the same orders as page 1/,
	'the log says why');

# Pages of new orders for ever, without meta, and the order gone from the
# account: absence is not proven either.
standinctl('forget', 'lost-in-a-loop');
standinctl('config', encode_json({
	list_meta => JSON::PP::false, list_ignore_page => JSON::PP::false, list_endless => 'new' }));
$node->safe_psql('postgres',
	"UPDATE telnyx_order_requests SET next_attempt_at = now() WHERE id = $lost");
standinctl('reset-requests');
my $started = time;
$node->safe_psql('postgres', 'CALL telnyx_process_queue()');
cmp_ok(time - $started, '<', 60, 'a list of new pages for ever stops the pass within a minute');
is(request_state($lost), 'unknown 1', 'the request stays unknown');
is(list_requests(), 100, 'after 100 page requests, as no page says how many there are');
is(standinctl('requests', 'create'), "requests: 0\n", 'nothing was sent again');

# The worker's periodic sync over the same list ends too, and says why.
$node->append_conf('postgresql.conf', qq{
telnyx.database = 'postgres'
telnyx.sync_interval = '1h'
});
standinctl('reset-requests');
$node->restart;
my $synced = 0;
for (1 .. 600)
{
	$synced = slurp_file($node->logfile) =~
	  /could not read the list of orders to sync it.*\n.*The list did not end after 100 pages, and no page said how many there are/;
	last if $synced;
	sleep 0.1;
}
ok($synced, "the worker's sync stops, and the log says why");
# the unknown request goes on waiting for a list that can be read
is(request_state($lost), 'unknown 1', 'the request is still unknown');
is(standinctl('requests', 'create'), "requests: 0\n", 'and was never sent again');

$node->stop;
done_testing();
