# The API key is never a SQL value: it comes from telnyx.api_key_file (the
# server user's alone) or the server's TELNYX_API_KEY; every way of giving
# it in a setting is refused, without echoing the value, with or without
# the library preloaded; a key rotated in the file, by mv or in place, at
# any speed, is used at once by sessions and the worker; a key configured
# for the server goes only to the server's base URL, so that
# "make installcheck" never sends the server's key to its stand-in.
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
my $create = "SELECT telnyx_create_inexplicit_order('$groups')";
my $list = "SELECT telnyx_list_inexplicit_orders(1, 1) -> 'meta' ->> 'total_results' IS NOT NULL";
# the SQLSTATE shown
my $verbose = "\\set VERBOSITY verbose\n";

# requests the stand-in received since the last reset-requests (of one
# route: the worker of the first cluster may refresh open orders meanwhile)
sub requests { my ($n) = standinctl('requests', @_) =~ /(\d+)/; return $n; }

standinctl('reset');

my $node = PostgreSQL::Test::Cluster->new('api_key');
$node->init;
my $key_file = $node->basedir . '/telnyx.key';
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'telnyx_orders'
telnyx.api_base_url = '$ENV{TELNYX_TEST_HTTPS_URL}'
telnyx.ca_file = '$ENV{TELNYX_TEST_CA}'
telnyx.worker_naptime = '1min'
max_prepared_transactions = 4
log_min_messages = debug2
log_min_error_statement = debug2
log_statement = 'all'
log_error_verbosity = verbose
});

# the key from the environment
{
	local $ENV{TELNYX_API_KEY} = $key;
	$node->start;
}
$node->safe_psql('postgres', 'CREATE EXTENSION telnyx_orders');
is( $node->safe_psql('postgres',
		"SELECT telnyx_create_inexplicit_order('$groups', customer_reference => 'env-key') ->> 'customer_reference'"),
	'env-key',
	'orders with the key from TELNYX_API_KEY');

# ... sent only to the server's base URL: a client that points the base URL
# elsewhere (here: the same stand-in over http) gets no key
standinctl('reset-requests');
my ($ret, $out, $err);
{
	local $ENV{PGOPTIONS} = "-c telnyx.api_base_url=$ENV{TELNYX_TEST_HTTP_URL}";
	($ret, $out, $err) = $node->psql('postgres', $verbose . $create);
}
like($err, qr/TX001: no Telnyx API key is configured/,
	"the environment's key is not sent to a base URL set by the client");
is(requests('create'), 0, 'and nothing was sent');

# a key in postgresql.conf is refused (logged, never echoed) and never used
my $conf_key = 'KEYinpostgresqlconf' . ('1' x 16);
my $offset = -s $node->logfile;
$node->append_conf('postgresql.conf', "telnyx.api_key = '$conf_key'\n");
$node->reload;
$node->poll_query_until('postgres', 'SELECT true') or die;
sleep 1;
like(slurp_file($node->logfile, $offset), qr/the Telnyx API key cannot be given in a setting/,
	'a key in postgresql.conf is refused at reload');
is( $node->safe_psql('postgres',
		"SELECT telnyx_create_inexplicit_order('$groups', customer_reference => 'conf-refused') ->> 'customer_reference'"),
	'conf-refused', 'and not used: the environment\'s key still is');

# every spelling of a setting that gives the key a value is refused with a
# hint to the key file, and no refusal shows the value
my @spellings = (
	[ "SET telnyx.api_key = '%s'",                                             'SET' ],
	[ "SET /* c */ telnyx.api_key /* = */ TO '%s'",                            'SET with comments' ],
	[ "SET U&\"telnyx.api\\005fkey\" = '%s'",                                  'SET with a U& name' ],
	[ "BEGIN; SET LOCAL telnyx.api_key = '%s'; COMMIT",                        'SET LOCAL' ],
	[ "SELECT set_config('telnyx.api_key', '%s', false)",                      'set_config' ],
	[ "SELECT set_config('telnyx.' || 'API_KEY', '%s', false)",               'set_config with a name built at run time' ],
	[ "PREPARE p(text) AS SELECT set_config('telnyx.api_key', \$1, false); EXECUTE p('%s')", 'a prepared set_config' ],
	[ "ALTER SYSTEM SET telnyx.api_key = '%s'",                                'ALTER SYSTEM' ],
	[ "ALTER ROLE CURRENT_USER SET telnyx.api_key = '%s'",                     'ALTER ROLE' ],
	[ "ALTER DATABASE postgres SET telnyx.api_key = '%s'",                     'ALTER DATABASE' ],
	[ "CREATE FUNCTION keyed() RETURNS int LANGUAGE sql SET telnyx.api_key = '%s' AS 'SELECT 1'", 'a function\'s SET clause' ],);
my $n = 0;
for my $s (@spellings)
{
	my $value = sprintf('KEYspelling%02d', ++$n) . ('x' x 20);
	$offset = -s $node->logfile;
	($ret, $out, $err) = $node->psql('postgres', sprintf($s->[0], $value));
	like($err, qr/ERROR:.*the Telnyx API key cannot be given in a setting.*HINT:.*telnyx\.api_key_file/s,
		"$s->[1]: refused with a hint to the key file");
	unlike($err, qr/\Q$value\E/, "$s->[1]: the refusal does not show the value");
	my @messages = grep { /(ERROR|DETAIL|HINT|CONTEXT|STATEMENT|WARNING):/ && /\Q$value\E/ }
	  split /\n/, slurp_file($node->logfile, $offset);
	is(scalar(@messages), 0, "$s->[1]: no message in the server log shows it");
}
is( $node->safe_psql('postgres',
		"SELECT (SELECT count(*) FROM pg_db_role_setting WHERE array_to_string(setconfig, ',') ILIKE '%telnyx.api_key=%')
		      + (SELECT count(*) FROM pg_proc WHERE array_to_string(proconfig, ',') ILIKE '%telnyx.api_key=%')
		      + (SELECT count(*) FROM pg_file_settings WHERE name = 'telnyx.api_key' AND sourcefile LIKE '%auto.conf')"),
	'0', 'no catalog and no ALTER SYSTEM file kept any of them');

# the key file: refused while others can read it, used when it is the
# server user's alone, and read again each time: rotation in place with a
# key of the same length and the same modification time, and rotation by
# mv, take effect at the next call
# (the refused key is taken out of postgresql.conf: a key left there is
# readable in the file, and the upgrade and installcheck's suites say so)
my $conf = slurp_file($node->data_dir . '/postgresql.conf');
$conf =~ s/^telnyx\.api_key = .*\n//mg;
open(my $cf, '>', $node->data_dir . '/postgresql.conf') or die;
print $cf $conf;
close($cf) or die;
$node->append_conf('postgresql.conf', "telnyx.api_key_file = '$key_file'\n");
write_key_file($key_file, $key);
chmod 0644, $key_file;
$node->reload;
$node->poll_query_until('postgres', 'SELECT true') or die;
($ret, $out, $err) = $node->psql('postgres', $create);
like($err, qr/may be read by others/, 'a key file others can read is refused');
chmod 0600, $key_file;
is( $node->safe_psql('postgres',
		"SELECT telnyx_create_inexplicit_order('$groups', customer_reference => 'file-key') ->> 'customer_reference'"),
	'file-key', 'orders with the key from telnyx.api_key_file, before TELNYX_API_KEY');

my $psql = $node->background_psql('postgres');
is($psql->query_safe($list), 't', 'a session lists with the key');
my $mtime = (stat $key_file)[9];
my $key2 = 'KEY' . ('b' x (length($key) - 3));
standinctl('config', encode_json({ api_key => $key2 }));
write_key_file($key_file, $key2);
utime($mtime, $mtime, $key_file) or die;
is(scalar($psql->query($list)), 't',
	'a key rewritten in place, same length, same modification time, is used by the same session at once');
my $key3 = 'KEY' . ('c' x (length($key) - 3));
standinctl('config', encode_json({ api_key => $key3 }));
write_key_file("$key_file.new", $key3);
rename("$key_file.new", $key_file) or die;
is(scalar($psql->query($list)), 't', 'so is a key rotated by mv');
$psql->quit;

# the worker: Telnyx refuses the key, requests wait; the key file is
# rewritten in place (same length and time) and the next wake sends them,
# with no reload
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'telnyx_orders worker'")
  or die "no worker";
standinctl('config', encode_json({ api_key => $key }));
my $rid = $node->safe_psql('postgres',
	"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'worker-rotated')");
$node->poll_query_until('postgres',
	"SELECT last_error->>'class' = 'auth' FROM telnyx_order_requests WHERE id = $rid")
  or die "no auth failure";
$mtime = (stat $key_file)[9];
write_key_file($key_file, $key);
utime($mtime, $mtime, $key_file) or die;
$node->safe_psql('postgres',
	"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'worker-rotated-2')");
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM telnyx_order_requests WHERE state = 'sent' AND body->>'customer_reference' LIKE 'worker-rotated%'"),
	'the worker uses the rotated key without a reload');
my $ledger = ledger();
is(($ledger->{'worker-rotated'} // 0) . ' ' . ($ledger->{'worker-rotated-2'} // 0), '1 1', 'each was ordered once');

# a base URL set above the server's configuration gets only a key file set
# at its level or above: never the server's key file
my $own_key_file = write_key_file($node->basedir . '/own.key', $key);
standinctl('reset-requests');
{
	local $ENV{PGOPTIONS} = "-c telnyx.api_base_url=$ENV{TELNYX_TEST_HTTP_URL}";
	($ret, $out, $err) = $node->psql('postgres', $verbose . $create);
	like($err, qr/TX001: no Telnyx API key may be sent to telnyx.api_base_url as set by the client/,
		"the server's key file is not sent to a base URL set by the client");
	($ret, $out, $err) = $node->psql('postgres', $verbose . "SET telnyx.api_key_file = ''; $create");
	like($err, qr/TX001: no Telnyx API key is configured/,
		'nor is anything once the session clears the key file (the environment\'s key is the server\'s)');
}
is(requests('create'), 0, 'nothing was sent');
{
	local $ENV{PGOPTIONS} =
	  "-c telnyx.api_base_url=$ENV{TELNYX_TEST_HTTP_URL} -c telnyx.api_key_file=$own_key_file";
	is($node->safe_psql('postgres', $list), 't', 'a client that brings its own key file is sent it');
}
$node->safe_psql('postgres', "CREATE ROLE regress_admin SUPERUSER LOGIN;
	ALTER ROLE regress_admin SET telnyx.api_base_url = '$ENV{TELNYX_TEST_HTTP_URL}'");
($ret, $out, $err) = $node->psql('postgres', $verbose . $create, extra_params => [ '-U', 'regress_admin' ]);
like($err, qr/TX001: no Telnyx API key may be sent to telnyx.api_base_url as set for the role/,
	'nor to a base URL set for a role');
$node->safe_psql('postgres', "ALTER ROLE regress_admin SET telnyx.api_key_file = '$own_key_file'");
is($node->safe_psql('postgres', $list, extra_params => [ '-U', 'regress_admin' ]), 't',
	'which gets a key file set for the role');
$node->safe_psql('postgres', 'DROP ROLE regress_admin');

# "make installcheck" against this server, whose key file holds a key the
# suites' stand-in does not know: they use only their own (the errors
# suite clears the key file: nothing may then be sent)
my $production_key = 'KEYproduction' . ('p' x 20);
write_key_file($key_file, $production_key);
my $installcheck = "$FindBin::Bin/../installcheck";
{
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGUSER};
	delete $ENV{PGUSER};
	# what a run started, it stops: no process names its scratch directory
	# once it returned
	my $left = sub {
		my ($scratch) = $_[0] =~ /scratch directory (\S+)/;
		return 'no scratch directory printed' unless $scratch;
		return `pgrep -af '\Q$scratch\E'`;
	};
	my $rc = system("$installcheck validate errors >$PostgreSQL::Test::Utils::tmp_check/installcheck.out 2>&1");
	my $log = slurp_file("$PostgreSQL::Test::Utils::tmp_check/installcheck.out");
	is($rc, 0, 'make installcheck passes against a server with a key file') or diag($log);
	unlike($log, qr/\Q$production_key\E/, 'and never saw its key');
	is($left->($log), '', 'and its stand-in is gone when it returns');

	# what it cannot guarantee, it refuses before starting anything
	$node->append_conf('postgresql.conf', "telnyx.database = 'postgres, contrib_regression'\n");
	$node->reload;
	$node->poll_query_until('postgres', "SELECT current_setting('telnyx.database') LIKE '%contrib_regression%'")
	  or die;
	$rc = system("$installcheck validate errors >$PostgreSQL::Test::Utils::tmp_check/installcheck.out 2>&1");
	$log = slurp_file("$PostgreSQL::Test::Utils::tmp_check/installcheck.out");
	isnt($rc, 0, 'make installcheck refuses a server whose worker would serve the suites\' database');
	like($log, qr/telnyx\.database lists contrib_regression/, 'saying why');
	unlike($log, qr/scratch directory/, 'and starts nothing');
	$node->append_conf('postgresql.conf', "telnyx.database = 'postgres'\n");
	$node->reload;
}
write_key_file($key_file, $key);

$node->stop;
my $log = slurp_file($node->logfile);
ok(length($log) > 1000, 'the server log was written');
unlike($log, qr/\Q$key\E/, 'the key is nowhere in the server log');
unlike($log, qr/\Q$key2\E|\Q$key3\E|\Q$production_key\E/, 'nor are the keys it replaced');
unlike($log, qr/Authorization/i, 'no request header is in the server log');

# without shared_preload_libraries: a session that has not loaded the
# library cannot refuse ALTER ROLE/DATABASE ... SET, and PostgreSQL stores
# the key where every role can read it; nothing is sent while it is there
my $plain = PostgreSQL::Test::Cluster->new('no_preload');
$plain->init;
my $plain_key_file = write_key_file($plain->basedir . '/telnyx.key', $key);
$plain->append_conf('postgresql.conf', qq{
telnyx.api_key_file = '$plain_key_file'
telnyx.api_base_url = '$ENV{TELNYX_TEST_HTTPS_URL}'
telnyx.ca_file = '$ENV{TELNYX_TEST_CA}'
});
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION telnyx_orders');
is( $plain->safe_psql('postgres',
		"SELECT telnyx_create_inexplicit_order('$groups', customer_reference => 'plain-file') ->> 'customer_reference'"),
	'plain-file', 'without preloading, the key file is used');

# a function's SET clause: the event trigger loads the library first
($ret, $out, $err) = $plain->psql('postgres',
	"CREATE FUNCTION keyed() RETURNS int LANGUAGE sql SET telnyx.api_key = 'KEYinafunction' AS 'SELECT 1'");
like($err, qr/the Telnyx API key cannot be given in a setting/,
	'without preloading, a function\'s SET clause is refused');
($ret, $out, $err) = $plain->psql('postgres',
	"CREATE FUNCTION unkeyed() RETURNS int LANGUAGE sql AS 'SELECT 1'; ALTER FUNCTION unkeyed() SET telnyx.api_key = 'KEYinafunction'");
like($err, qr/the Telnyx API key cannot be given in a setting/, 'so is ALTER FUNCTION ... SET');

# ALTER ROLE ... SET in a fresh session: stored, so nothing is sent
$plain->safe_psql('postgres', 'CREATE ROLE regress_bob LOGIN');
$plain->safe_psql('postgres', "ALTER ROLE regress_bob SET telnyx.api_key = 'KEYinacatalog'");
standinctl('reset-requests');
($ret, $out, $err) = $plain->psql('postgres', $verbose . $create);
like($err, qr/TX001: a Telnyx API key is stored in pg_db_role_setting/, 'a key in pg_db_role_setting stops every send');
like($err, qr/HINT:.*ALTER ROLE regress_bob RESET telnyx\.api_key.*replace the key at Telnyx/s,
	'saying how to remove it, and to replace the key');
unlike($err, qr/KEYinacatalog/, 'without showing it');
is(requests(), 0, 'nothing was sent');
$plain->safe_psql('postgres', 'ALTER ROLE regress_bob RESET telnyx.api_key');
is($plain->safe_psql('postgres', $list), 't', 'once it is removed, requests go out again');

# an upgrade to 1.5 says where a key still sits in a setting, never what it is
$plain->safe_psql('postgres', 'CREATE DATABASE upgrade');
$plain->safe_psql('upgrade', "CREATE EXTENSION telnyx_orders VERSION '1.4'");
$plain->safe_psql('upgrade', "ALTER ROLE regress_bob IN DATABASE upgrade SET telnyx.api_key = 'KEYinacatalog'");
$plain->safe_psql('upgrade',
	"CREATE FUNCTION keyed() RETURNS int LANGUAGE sql SET telnyx.api_key = 'KEYinafunction' AS 'SELECT 1'");
$plain->append_conf('postgresql.conf', "telnyx.api_key = 'KEYinpostgresqlconf'\n");
$plain->reload;
($ret, $out, $err) = $plain->psql('upgrade', 'ALTER EXTENSION telnyx_orders UPDATE', on_error_stop => 1);
is($ret, 0, 'the upgrade succeeds');
like($err, qr/WARNING:  a Telnyx API key is set in "[^"]*postgresql.conf" line \d+, and is no longer used/,
	'it warns of the key in postgresql.conf');
like($err, qr/WARNING:  a Telnyx API key is stored in pg_db_role_setting.*HINT:  Run "ALTER ROLE regress_bob IN DATABASE upgrade RESET telnyx.api_key"/s,
	'of the key in pg_db_role_setting');
like($err, qr/WARNING:  a Telnyx API key is stored in the SET clause of function keyed\(\).*HINT:  Run "ALTER FUNCTION keyed\(\) RESET telnyx.api_key"/s,
	'of the key in a function\'s SET clause');
unlike($err, qr/KEYin/, 'and shows none of them');
$plain->stop;

done_testing();
