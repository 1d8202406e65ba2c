# Helpers shared by the TAP tests: drive the Telnyx stand-in through
# standinctl and read its ledger.
package StandIn;

use strict;
use warnings;
use Exporter 'import';
use JSON::PP;

our @EXPORT = qw(standinctl fault ledger telnyx_conf write_key_file);

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

1;
