# The API key: taken from telnyx.api_key, telnyx.api_key_file or the
# server's TELNYX_API_KEY; readable by superusers only in every set-up,
# and never written to the server log, whatever fails or whoever sets it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use StandIn;

my $key = $ENV{TELNYX_TEST_KEY} or die "TELNYX_TEST_KEY is not set";
my $groups = '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]';

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
like($err, qr/Could not reach Telnyx/, 'TLS verification failure');
standinctl('fault', '{"match": "create", "action": "delay", "seconds": 5}');
($ret, $out, $err) = $node->psql('postgres',
	"SET statement_timeout = '300ms'; SELECT telnyx_create_inexplicit_order('$groups')");
like($err, qr/statement timeout/, 'cancelled in flight');

# a superuser's SET of the key, logged by log_statement, is redacted too
$node->safe_psql('postgres', "SET telnyx.api_key = '$key'");
like(slurp_file($node->logfile), qr/SET telnyx.api_key \*{8}/, 'a logged SET shows the key redacted');

# a new key, set with ALTER SYSTEM and reloaded, is in no log line; nor is
# the statement of a failing command that assigns it, nor any earlier key
my $new_key = 'KEYrotated' . ('7' x 20);
$node->safe_psql('postgres', "ALTER SYSTEM SET telnyx.api_key = '$new_key'");
$node->reload;
($ret, $out, $err) = $node->psql('postgres', "SELECT telnyx_list_inexplicit_orders(1, 1)");
like($err, qr/did not accept the API key/, 'with preloading, a key set by ALTER SYSTEM is used');
$node->psql('postgres', "SET telnyx.api_key = '${new_key}x'; SELECT 1/0;");
$node->psql('postgres', "SELECT set_config('telnyx.api_key', '${new_key}y', false)::int;");
$node->psql('postgres', "SELECT '$new_key'::int;");
$node->safe_psql('postgres', "ALTER SYSTEM RESET telnyx.api_key");
$node->reload;
my $rotated_log = slurp_file($node->logfile);
unlike($rotated_log, qr/\Q$new_key\E/, 'a rotated key is in no log line');
like($rotated_log, qr/division by zero/, 'the failing statement was logged');

# the key file: used when it is the server user's alone, refused otherwise
my $key_file = $node->basedir . '/telnyx.key';
open my $kf, '>', $key_file or die;
print $kf "$key\n";
close $kf;
chmod 0644, $key_file;
$node->append_conf('postgresql.conf', "telnyx.api_key = ''\ntelnyx.api_key_file = '$key_file'\n");
$node->reload;
($ret, $out, $err) = $node->psql('postgres', "SELECT telnyx_create_inexplicit_order('$groups')");
like($err, qr/may be read by others/, 'a key file others can read is refused');
chmod 0600, $key_file;
is( $node->safe_psql('postgres',
		"SELECT telnyx_create_inexplicit_order('$groups', customer_reference => 'file-key') ->> 'customer_reference'"),
	'file-key', 'orders with the key from telnyx.api_key_file');
$node->safe_psql('postgres', 'CREATE ROLE regress_reader LOGIN');
($ret, $out, $err) = $node->psql('postgres', 'SHOW telnyx.api_key_file', extra_params => [ '-U', 'regress_reader' ]);
like($err, qr/permission denied|must be superuser/, 'only superusers see where the key file is');

$node->stop;
my $log = slurp_file($node->logfile);
ok(length($log) > 1000, 'the server log was written');
unlike($log, qr/\Q$key\E/, 'the key is nowhere in the server log');
unlike($log, qr/Authorization/i, 'no request header is in the server log');

# without shared_preload_libraries, a key in postgresql.conf is readable
# by any role in a session that has not loaded the library: refused
my $plain = PostgreSQL::Test::Cluster->new('no_preload');
$plain->init;
$plain->append_conf('postgresql.conf', qq{
telnyx.api_key = '$key'
telnyx.api_base_url = '$ENV{TELNYX_TEST_HTTPS_URL}'
telnyx.ca_file = '$ENV{TELNYX_TEST_CA}'
});
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION telnyx_orders');
standinctl('reset-requests');
($ret, $out, $err) = $plain->psql('postgres', "SELECT telnyx_create_inexplicit_order('$groups')");
like($err, qr/not in shared_preload_libraries/, 'a key from postgresql.conf without preloading is refused');
like($err, qr/HINT:.*telnyx\.api_key_file/s, 'with a hint to the safe ways');
$plain->safe_psql('postgres', "ALTER SYSTEM SET telnyx.api_key = '$key'");
$plain->reload;
($ret, $out, $err) = $plain->psql('postgres', "SELECT telnyx_create_inexplicit_order('$groups')");
like($err, qr/not in shared_preload_libraries/, 'so is one set by ALTER SYSTEM');
$plain->safe_psql('postgres', "ALTER SYSTEM RESET telnyx.api_key");
is(`standinctl requests`, "requests: 0\n", 'and nothing was sent');
# the same set-up with the key in the environment works
$plain->stop;
$plain->append_conf('postgresql.conf', "telnyx.api_key = ''\n");
{
	local $ENV{TELNYX_API_KEY} = $key;
	$plain->start;
}
is( $plain->safe_psql('postgres',
		"SELECT telnyx_create_inexplicit_order('$groups', customer_reference => 'plain-env') ->> 'customer_reference'"),
	'plain-env', 'without preloading, the key from the environment is used');
$plain->stop;

done_testing();
