# One rate limit for the account: three databases, each with its own
# worker, share telnyx.max_requests_per_second, so that together they stay
# under the stand-in's limit (which answers 429 above it); and after a
# 429, every worker backs off.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use StandIn;
use Time::HiRes qw(time);

my $key = $ENV{TELNYX_TEST_KEY} or die "TELNYX_TEST_KEY is not set";
my $groups = '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]';
my $per_db = 40;

standinctl('reset');
standinctl('config', encode_json({ api_key => $key }));

my $node = PostgreSQL::Test::Cluster->new('rate');
$node->init;
$node->append_conf('postgresql.conf', telnyx_conf() . qq{
telnyx.worker_naptime = '1s'
telnyx.sync_interval = 0
telnyx.database = 'a, b, c'
telnyx.max_requests_per_second = 20
});
$node->start;
for my $db (qw(a b c))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION telnyx_orders');
}
$node->poll_query_until('postgres',
	"SELECT count(*) = 3 FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'")
  or die 'not three workers';

sub enqueue_all
{
	my ($prefix) = @_;
	for my $db (qw(a b c))
	{
		$node->safe_psql($db,
			"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => '$prefix-$db-' || i) FROM generate_series(1, $per_db) i");
	}
}

sub wait_all_sent
{
	for my $db (qw(a b c))
	{
		$node->poll_query_until($db,
			"SELECT count(*) = 0 FROM telnyx_order_requests WHERE state <> 'sent'")
		  or die "not all sent in $db";
	}
}

sub each_once
{
	my ($prefix) = @_;
	my $ledger = ledger();
	my @wrong;
	for my $db (qw(a b c))
	{
		push @wrong, grep { ($ledger->{"$prefix-$db-$_"} // 0) != 1 } 1 .. $per_db;
	}
	return scalar @wrong;
}

# the stand-in allows 25 a second; the three workers, 20 between them
standinctl('config', encode_json({ rate_limit => 25 }));
my $t0 = time;
enqueue_all('shared');
wait_all_sent();
my $took = time - $t0;
is(standinctl('ratelimited'), "rate limited: 0\n",
	'three databases, each with its own worker, stay within the one budget: no 429');
is(each_once('shared'), 0, 3 * $per_db . ' requests, each ordered once');
cmp_ok($took, '>=', (3 * $per_db - 20) / 20 * 0.8, sprintf('at about the rate asked for (%.1f s)', $took));

# a stand-in allowing less than the budget: 429s, after each of which
# every worker backs off; each request is still ordered once
standinctl('config', encode_json({ rate_limit => 10 }));
$node->safe_psql('postgres', q{
ALTER SYSTEM SET telnyx.max_requests_per_second = 0;
SELECT pg_reload_conf();
});
sleep 1;
$per_db = 10;
enqueue_all('backoff');
wait_all_sent();
my ($n) = standinctl('ratelimited') =~ /(\d+)/;
note("$n 429s answered");
cmp_ok($n, '>', 0, 'over the stand-in\'s limit, it answers 429s');
is(each_once('backoff'), 0, 'and each request is still ordered once');
is($node->safe_psql('a', 'SELECT sum(rate_limited) >= ' . $n . ' FROM telnyx_worker_status()'), 't',
	'the workers count every one of them (telnyx_worker_status(), telnyx_queue_status)');

unlike(slurp_file($node->logfile), qr/terminated by signal/, 'no process crashed');
$node->stop;
standinctl('reset');

done_testing();
