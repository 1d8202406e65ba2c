# The stand-in itself: it must refuse what the real API refuses, or the
# other tests could not catch a request that breaks the spec.
use strict;
use warnings;
use HTTP::Tiny;
use JSON::PP;
use Test::More;

my $key = $ENV{TELNYX_TEST_KEY} or die "TELNYX_TEST_KEY is not set";
my $base = $ENV{TELNYX_TEST_HTTP_URL} or die "TELNYX_TEST_HTTP_URL is not set";
my $http = HTTP::Tiny->new(timeout => 30);
my %auth = (Authorization => "Bearer $key", 'Content-Type' => 'application/json');

system('standinctl', 'reset') == 0 or die;

sub create
{
	my ($body, %headers) = @_;
	my $res = $http->post("$base/inexplicit_number_orders",
		{ headers => { %auth, %headers }, content => ref $body ? encode_json($body) : $body });
	my $json = eval { decode_json($res->{content}) } // {};
	return ($res->{status}, $json);
}

my $group = { country_iso => 'US', phone_number_type => 'local', count_requested => '2' };

# Refusals the spec states: the bearer key (401, code 10009), a body that
# is not JSON (400), a required field missing (ordering_groups, 10004), a
# value outside an enum (country_iso), a value of another type where the
# schema gives one for an object's properties (the phone_number filters).
my ($status, $json) = create({ ordering_groups => [$group] }, Authorization => 'Bearer KEYwrong');
is("$status $json->{errors}[0]{code}", '401 10009', 'spec: a wrong key is refused with 10009');
($status) = create('{"ordering_groups": [', ());
is($status, 400, 'spec: malformed JSON is refused');
($status, $json) = create({ customer_reference => 'x' });
is("$status $json->{errors}[0]{code}", '422 10004', 'spec: missing ordering_groups is refused');
($status, $json) = create({ ordering_groups => [ { %$group, country_iso => 'MX' } ] });
is("$status $json->{errors}[0]{source}{pointer}", '422 /ordering_groups/0/country_iso',
	'spec: a country other than US or CA is refused');
($status) = create({ ordering_groups => [ { %$group, phone_number => { starts_with => 312 } } ] });
is($status, 422, 'spec: a phone_number filter that is not a string is refused');

# The stand-in's own policy, stricter than the spec states, so that a
# request that bends the spec fails here rather than at Telnyx: the spec
# types count_requested as a string but does not say an integer is
# refused; it does not forbid unknown group fields; the limit of 10,000
# numbers an order is in Telnyx's prose, not in the schema.
($status, $json) = create({ ordering_groups => [ { %$group, count_requested => 2 } ] });
is("$status $json->{errors}[0]{source}{pointer}", '422 /ordering_groups/0/count_requested',
	'policy: a count_requested that is not a string is refused, with a pointer');
($status) = create({ ordering_groups => [ { %$group, area_code => '312' } ] });
is($status, 422, 'policy: an unknown group field is refused');
($status) = create({ ordering_groups => [ { %$group, count_requested => '6000' }, { %$group, count_requested => '4001' } ] });
is($status, 422, 'policy: more than 10000 numbers in one order is refused');
is(`standinctl count`, "ledger: 0 orders\n", 'nothing refused was ordered');

($status, $json) = create(
	{ ordering_groups => [ { %$group, national_destination_code => '555', phone_number => { starts_with => '555' } } ],
	  customer_reference => 'ok' });
is($status, 200, 'a conforming order is accepted');
my $g = $json->{data}{ordering_groups}[0];
is($g->{count_requested}, 2, 'count_requested comes back as an integer');
is($g->{'phone_number[starts_with]'}, '555', 'the phone_number filter comes back flat');
is($g->{status}, 'pending', 'the group starts pending');

system('standinctl', 'settle') == 0 or die;
my $res = $http->get("$base/inexplicit_number_orders/$json->{data}{id}", { headers => \%auth });
$g = decode_json($res->{content})->{data}{ordering_groups}[0];
is("$g->{status} $g->{count_allocated}", 'success 2', 'settled: two numbers of stock in area code 555');
$res = $http->get("$base/number_orders/$g->{orders}[0]{number_order_id}", { headers => \%auth });
my $no = decode_json($res->{content})->{data};
is(scalar(@{ $no->{phone_numbers} }), 2, 'the number order holds the numbers bought');
like($no->{phone_numbers}[0]{phone_number}, qr/^\+1555\d{7}$/, 'in E.164, in the area code asked for');
is_deeply($no->{sub_number_orders_ids}, $g->{orders}[0]{sub_number_order_ids},
	'with the sub-order ids under the spec\'s spelling');

$res = $http->get("$base/inexplicit_number_orders?page_number=1&page_size=251", { headers => \%auth });
is($res->{status}, 400, 'a page_size over 250 is refused');

done_testing();
