# Helpers shared by the TAP tests: drive the Telnyx stand-in through
# standinctl and read its ledger.
package StandIn;

use strict;
use warnings;
use Exporter 'import';
use JSON::PP;

our @EXPORT = qw(standinctl fault ledger telnyx_conf);

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

# The settings a test cluster starts with: the library preloaded, the key,
# and the stand-in's HTTPS URL and CA (postgresql.conf lines).
sub telnyx_conf
{
	return "shared_preload_libraries = 'telnyx_orders'\n"
	  . "telnyx.api_key = '$ENV{TELNYX_TEST_KEY}'\n"
	  . "telnyx.api_base_url = '$ENV{TELNYX_TEST_HTTPS_URL}'\n"
	  . "telnyx.ca_file = '$ENV{TELNYX_TEST_CA}'\n";
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
