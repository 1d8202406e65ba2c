# The API key: taken from telnyx.api_key or else from the server's
# TELNYX_API_KEY, and never written to the server log, whatever fails.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $key = $ENV{TELNYX_TEST_KEY} or die "TELNYX_TEST_KEY is not set";
my $groups = '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]';

sub standinctl { system('standinctl', @_) == 0 or die "standinctl @_ failed"; }

standinctl('reset');

my $node = PostgreSQL::Test::Cluster->new('api_key');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'telnyx_orders'
telnyx.api_base_url = '$ENV{TELNYX_TEST_HTTPS_URL}'
telnyx.ca_file = '$ENV{TELNYX_TEST_CA}'
log_min_messages = debug2
log_min_error_statement = debug2
log_statement = 'all'
log_error_verbosity = verbose
});

# the key from the environment, when telnyx.api_key is empty
{
	local $ENV{TELNYX_API_KEY} = $key;
	$node->start;
}
$node->safe_psql('postgres', 'CREATE EXTENSION telnyx_orders');
is( $node->safe_psql('postgres',
		"SELECT telnyx_create_inexplicit_order('$groups', customer_reference => 'env-key') ->> 'customer_reference'"),
	'env-key',
	'orders with the key from TELNYX_API_KEY');

# telnyx.api_key wins over the environment
$node->append_conf('postgresql.conf', "telnyx.api_key = 'KEYnotthekey'\n");
$node->reload;
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT telnyx_create_inexplicit_order('$groups')");
like($err, qr/Telnyx did not accept the API key/, 'telnyx.api_key is used before TELNYX_API_KEY');

# failures of every kind while the right key is configured
$node->append_conf('postgresql.conf', "telnyx.api_key = '$key'\n");
$node->reload;
is( $node->safe_psql('postgres',
		"SELECT telnyx_list_inexplicit_orders(1, 1) -> 'meta' ->> 'total_results'"),
	'1', 'the corrected key works after a reload');

standinctl('config', '{"api_key": "KEYsomeoneelse"}');
($ret, $out, $err) = $node->psql('postgres', "SELECT telnyx_create_inexplicit_order('$groups')");
like($err, qr/TX401|did not accept/, 'authentication failure');
standinctl('config', qq({"api_key": "$key"}));
standinctl('fault', '{"match": "create", "status": 500}');
($ret, $out, $err) = $node->psql('postgres', "SELECT telnyx_create_inexplicit_order('$groups')");
like($err, qr/outcome is unknown/, 'unknown outcome');
standinctl('fault', '{"match": "create", "action": "close_after"}');
($ret, $out, $err) = $node->psql('postgres', "SELECT telnyx_create_inexplicit_order('$groups')");
like($err, qr/outcome is unknown/, 'connection closed after the order');
($ret, $out, $err) = $node->psql('postgres',
	"SET telnyx.ca_file = '$ENV{TELNYX_TEST_OTHER_CA}'; SELECT telnyx_list_inexplicit_orders()");
like($err, qr/could not reach Telnyx/, 'TLS verification failure');
standinctl('fault', '{"match": "create", "action": "delay", "seconds": 5}');
($ret, $out, $err) = $node->psql('postgres',
	"SET statement_timeout = '300ms'; SELECT telnyx_create_inexplicit_order('$groups')");
like($err, qr/statement timeout/, 'cancelled in flight');

# a superuser's SET of the key, logged by log_statement, is redacted too
$node->safe_psql('postgres', "SET telnyx.api_key = '$key'");
like(slurp_file($node->logfile), qr/SET telnyx.api_key = '\*{8}'/, 'a logged SET shows the key redacted');

$node->stop;
my $log = slurp_file($node->logfile);
ok(length($log) > 1000, 'the server log was written');
unlike($log, qr/\Q$key\E/, 'the key is nowhere in the server log');
unlike($log, qr/Authorization/i, 'no request header is in the server log');

done_testing();
