# Helpers shared by the TAP tests: drive the Telnyx stand-in through
# standinctl and read its ledger.
package StandIn;

use strict;
use warnings;
use Exporter 'import';
use File::Basename qw(dirname basename);
use File::Path qw(make_path);
use JSON::PP;
use Time::HiRes qw(usleep);

our @EXPORT = qw(standinctl fault ledger telnyx_conf write_key_file queue_index_mismatches);

# With TELNYX_STANDIN_PER_TEST set (test/run runs the TAP tests side by
# side), each test file starts a stand-in of its own, with the same key and
# certificates, so that no test resets or configures another's; it is
# stopped when the test ends, and its log kept beside the test's.
my $private_pid;
my $owner_pid = $$;
start_private_standin() if $ENV{TELNYX_STANDIN_PER_TEST};

sub start_private_standin
{
	my $tls = dirname($ENV{TELNYX_TEST_CA});
	my $name = basename($0, '.pl');
	my $dir = "$ENV{TESTDIR}/tmp_check/standin_$name";
	make_path($dir);
	unlink("$dir/ports");
	my $pid = fork() // die "could not fork: $!";
	if ($pid == 0)
	{
		open(STDOUT, '>', "$dir/standin.log") or die;
		open(STDERR, '>&', \*STDOUT) or die;
		exec('python3', "$ENV{TESTDIR}/telnyx_standin.py",
			'--cert', "$tls/server.crt", '--key', "$tls/server.key",
			'--api-key', $ENV{TELNYX_TEST_KEY}, '--process-seconds', '600',
			'--webhook-key', "$tls/webhook.pem", '--ports-file', "$dir/ports",
			# its ids are its own: a server it served may meet another
			# stand-in's (make installcheck against it)
			'--id-namespace', $name)
		  or die "could not start the stand-in: $!";
	}
	$private_pid = $pid;
	for (1 .. 200)
	{
		last if -s "$dir/ports";
		usleep(50_000);
	}
	open(my $fh, '<', "$dir/ports") or die "the stand-in did not start (see $dir/standin.log)";
	my $ports = decode_json(do { local $/; <$fh> });
	close($fh);
	$ENV{TELNYX_STANDIN_URL} = "http://127.0.0.1:$ports->{http}";
	$ENV{TELNYX_TEST_HTTP_URL} = "http://127.0.0.1:$ports->{http}/v2";
	$ENV{TELNYX_TEST_HTTPS_URL} = "https://127.0.0.1:$ports->{https}/v2";
	$ENV{TELNYX_TEST_LOCALHOST_URL} = "https://localhost:$ports->{https}/v2";
	return;
}

END
{
	if ($private_pid && $$ == $owner_pid)
	{
		kill 'TERM', $private_pid;
		waitpid($private_pid, 0);
	}
}

# Run standinctl with ARGS (no shell in between) and return its output;
# die if it fails.
sub standinctl
{
	open(my $fh, '-|', 'standinctl', @_) or die "could not run standinctl: $!";
	my $out = do { local $/; <$fh> } // '';
	close($fh) or die "standinctl @_ failed";
	return $out;
}

# Queue one fault (a hash) at the stand-in.
sub fault { standinctl('fault', encode_json($_[0])); }

# The settings a test cluster starts with: the library preloaded, the key
# file (the stand-in's key, mode 0600), and the stand-in's HTTPS URL and CA
# (postgresql.conf lines).
sub telnyx_conf
{
	return "shared_preload_libraries = 'telnyx_orders'\n"
	  . "telnyx.api_key_file = '$ENV{TELNYX_TEST_KEY_FILE}'\n"
	  . "telnyx.api_base_url = '$ENV{TELNYX_TEST_HTTPS_URL}'\n"
	  . "telnyx.ca_file = '$ENV{TELNYX_TEST_CA}'\n";
}

# Write key to the file at path, as a key file must be (mode 0600, ours):
# written in place, so that the same file changes under a running server.
sub write_key_file
{
	my ($path, $key) = @_;
	my $old = umask(077);
	open(my $fh, '>', $path) or die "could not write $path: $!";
	print $fh "$key\n";
	close($fh) or die "could not write $path: $!";
	umask($old);
	chmod(0600, $path) or die "could not chmod $path: $!";
	return $path;
}

# Orders in the ledger, counted by customer_reference.
sub ledger
{
	my %count;
	for my $line (split /\n/, standinctl('ledger'))
	{
		my $o = decode_json($line);
		$count{ $o->{customer_reference} // '' }++;
	}
	return \%count;
}

# The queue's index tables (telnyx_live_requests, telnyx_requests_by_order)
# against telnyx_order_requests, from the rule restated here: the rows one
# holds that the other does not, in words ('' when they agree).
sub queue_index_mismatches
{
	my ($node, $db) = @_;
	return $node->safe_psql($db, q{
WITH want_live AS (
	SELECT id AS request_id,
		   (CASE WHEN state IN ('queued', 'retrying') THEN 'q'
				 WHEN state = 'unknown' AND claimed_by_pid IS NULL THEN 'u'
				 WHEN state IN ('sending', 'unknown') THEN 'a'
				 WHEN state = 'held' THEN 'h' END)::"char" AS kind,
		   next_attempt_at AS due_at
	  FROM telnyx_order_requests
	 WHERE state IN ('queued', 'retrying', 'unknown', 'sending', 'held')),
have_live AS (SELECT request_id, kind, due_at FROM telnyx_live_requests),
want_links AS (SELECT DISTINCT order_id, id AS request_id FROM telnyx_order_requests
				WHERE order_id IS NOT NULL),
have_links AS (SELECT DISTINCT order_id, request_id FROM telnyx_requests_by_order),
d(what) AS (
	SELECT 'missing ' || w::text FROM (SELECT * FROM want_live EXCEPT SELECT * FROM have_live) w
	UNION ALL
	SELECT 'extra ' || h::text FROM (SELECT * FROM have_live EXCEPT SELECT * FROM want_live) h
	UNION ALL
	SELECT 'missing link ' || w::text FROM (SELECT * FROM want_links EXCEPT SELECT * FROM have_links) w
	UNION ALL
	SELECT 'extra link ' || h::text FROM (SELECT * FROM have_links EXCEPT SELECT * FROM want_links) h)
SELECT coalesce(string_agg(what, '; ' ORDER BY what), '') FROM d});
}

1;
