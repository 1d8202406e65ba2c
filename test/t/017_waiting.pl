# Why the worker does not send: a key problem shows in telnyx_queue_status,
# is logged once for as long as it lasts (not every second), with the hint
# a session gets; fixed, the queue is sent with no reload.  A CA file that
# cannot be read is refused at reload, and the value before kept.  CREATE
# EXTENSION in a database no worker serves says so.
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

my $node = PostgreSQL::Test::Cluster->new('waiting');
$node->init;
# a key file of the cluster's own, that others may read
my $key_file = $node->basedir . '/telnyx.key';
write_key_file($key_file, $key);
chmod(0640, $key_file) or die;
my $conf = telnyx_conf();
$conf =~ s/^telnyx\.api_key_file = .*$/telnyx.api_key_file = '$key_file'/m;
$node->append_conf('postgresql.conf', $conf . qq{
telnyx.worker_naptime = '1s'
telnyx.database = 'postgres'
});
$node->start;

# the worker finds the key file as soon as the extension exists
my $offset = -s $node->logfile;
my ($ret, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION telnyx_orders');
is($ret, 0, 'CREATE EXTENSION in a database the worker serves');
unlike($err, qr/NOTICE/, 'says nothing');

# --- a key file others may read ---------------------------------------------

my $id = $node->safe_psql('postgres',
	"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'mode')");
$node->poll_query_until('postgres',
	"SELECT waiting_because IS NOT NULL FROM telnyx_queue_status")
  or die 'the status view does not say why the worker waits';
is($node->safe_psql('postgres', 'SELECT waiting_because, queued FROM telnyx_queue_status'),
	'the Telnyx API key file may be read by others: run chmod 600 on it|1',
	'the status view says why the request waits, and what to do');
# several passes of the worker (its naptime is a second)
sleep 4;
my $log = slurp_file($node->logfile, $offset);
my @said = $log =~ /LOG:  the Telnyx API key file ".*" may be read by others/g;
is(scalar(@said), 1, 'the worker logs the reason once over several seconds');
unlike($log, qr/ERROR:/, 'and logs no error every second');
like($log,
	qr/CONTEXT:  telnyx_orders worker of database "postgres": queued requests wait/,
	'the log says whose requests wait');
my ($log_hint) = $log =~ /HINT:  (Run "chmod 600".*)/;
ok(defined $log_hint && $log_hint =~ /no reload is needed/,
	'with a hint: chmod, and no reload needed');

# a session hears the same message and hint
($ret, $out, $err) = $node->psql('postgres', 'SELECT telnyx_list_inexplicit_orders()');
like($err, qr/ERROR:  the Telnyx API key file ".*" may be read by others/,
	'a session is refused with the same message');
my ($session_hint) = $err =~ /HINT:  (.*)/;
is($session_hint, $log_hint, 'and the same hint');
is(standinctl('count'), "ledger: 0 orders\n", 'nothing was sent');

# --- the key file gone: a new reason, logged once too ----------------------

$offset = -s $node->logfile;
rename($key_file, "$key_file.away") or die;
$node->poll_query_until('postgres',
	"SELECT waiting_because LIKE 'the Telnyx API key file does not exist:%' FROM telnyx_queue_status")
  or die 'the status view does not say the key file is missing';
sleep 3;
$log = slurp_file($node->logfile, $offset);
@said = $log =~ /LOG:  could not open the Telnyx API key file/g;
is(scalar(@said), 1, 'a missing key file is logged once');
like($log, qr/HINT:  Create the file, owned by the server's operating system user/,
	'with a hint');

# --- fixed: sent, with no reload --------------------------------------------

$offset = -s $node->logfile;
rename("$key_file.away", $key_file) or die;
chmod(0600, $key_file) or die;
$node->poll_query_until('postgres',
	"SELECT state = 'sent' FROM telnyx_order_requests WHERE id = $id")
  or die 'the request was not sent once the key file was fixed';
is($node->safe_psql('postgres', 'SELECT waiting_because IS NULL FROM telnyx_queue_status'),
	't', 'the status view no longer says the worker waits');
like(slurp_file($node->logfile, $offset),
	qr/LOG:  telnyx_orders worker sends the order queue of database "postgres" again/,
	'the log says it sends again');
is(standinctl('count'), "ledger: 1 order\n", 'the order was placed once');

# --- a CA file the server cannot read is refused at reload -----------------

$offset = -s $node->logfile;
$node->append_conf('postgresql.conf', "telnyx.ca_file = '/nonexistent/telnyx-ca.crt'\n");
$node->reload;
$node->poll_query_until('postgres', 'SELECT true') or die;
sleep 1;
like(slurp_file($node->logfile, $offset),
	qr/could not open the CA file "\/nonexistent\/telnyx-ca.crt" of telnyx.ca_file/,
	'a CA file that cannot be read is refused at reload, saying why');
is($node->safe_psql('postgres', 'SHOW telnyx.ca_file'), $ENV{TELNYX_TEST_CA},
	'and the value before is kept');
$id = $node->safe_psql('postgres',
	"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'after-reload')");
$node->poll_query_until('postgres',
	"SELECT state = 'sent' FROM telnyx_order_requests WHERE id = $id")
  or die 'the worker does not send with the CA file kept';
pass('the worker sends with the CA file kept');

# --- a database no worker serves --------------------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE unserved');
($ret, $out, $err) = $node->psql('unserved', 'CREATE EXTENSION telnyx_orders');
is($ret, 0, 'CREATE EXTENSION where no worker serves goes through');
like($err, qr/NOTICE:  no background worker will send the order queue of database "unserved"/,
	'with a NOTICE');
like($err, qr/DETAIL:  The database is not in telnyx.database\./, 'naming telnyx.database');
like($err, qr/HINT:  Add the database to telnyx.database/, 'and what to do');
# in a transaction block, said as it commits; nothing if it rolls back
($ret, $out, $err) = $node->psql('unserved',
	'BEGIN; DROP EXTENSION telnyx_orders; CREATE EXTENSION telnyx_orders; ROLLBACK;');
unlike($err, qr/NOTICE:  no background worker/, 'a CREATE EXTENSION rolled back says nothing');

unlike(slurp_file($node->logfile), qr/terminated by signal/, 'no process crashed');
$node->stop;
standinctl('reset');

done_testing();
