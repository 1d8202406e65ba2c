# Fuzz: generated and mutated ordering groups through the validator, and
# mutated, truncated and invalid answers from the stand-in.  No backend
# crashes; every failure is an error with an SQLSTATE docs/reference.md lists (a
# bad input names its group or field, and sends nothing); nothing is
# recorded from an answer that is not the JSON the spec promises.
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
my $inputs = $ENV{FUZZ_INPUTS} // 100_000;
my $sent_sample = $ENV{FUZZ_SENT} // 3000;
my $answers = $ENV{FUZZ_ANSWERS} // 1500;

standinctl('reset');
standinctl('config', encode_json({ process_seconds => 0.2, number_seconds => 0.2 }));

my $node = PostgreSQL::Test::Cluster->new('fuzz');
$node->init;
# no worker: what is enqueued stays queued
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'telnyx_orders'
telnyx.database = 'no_such_database'
telnyx.api_key_file = '$ENV{TELNYX_TEST_KEY_FILE}'
telnyx.api_base_url = '$ENV{TELNYX_TEST_HTTP_URL}'
telnyx.timeout = '5s'
telnyx.max_retries = 0
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION telnyx_orders;
CREATE TABLE fuzz_in (i integer PRIMARY KEY, groups text, connection_id text,
                      messaging_profile_id text, customer_reference text, billing_group_id text);
CREATE TABLE fuzz_out (i integer, how text, sqlstate text, message text);
CREATE FUNCTION fuzz_run(how text, lo integer, hi integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r record;
    g jsonb;
BEGIN
    FOR r IN SELECT * FROM fuzz_in WHERE i BETWEEN lo AND hi ORDER BY i LOOP
        BEGIN
            g := r.groups::jsonb;
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO fuzz_out VALUES (r.i, how, 'json', SQLERRM);
            CONTINUE;
        END;
        BEGIN
            IF how = 'enqueue' THEN
                PERFORM telnyx_enqueue_inexplicit_order(g, r.connection_id, r.messaging_profile_id,
                                                        r.customer_reference, r.billing_group_id);
            ELSE
                PERFORM telnyx_create_inexplicit_order(g, r.connection_id, r.messaging_profile_id,
                                                       r.customer_reference, r.billing_group_id);
            END IF;
            INSERT INTO fuzz_out VALUES (r.i, how, '00000', NULL);
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO fuzz_out VALUES (r.i, how, SQLSTATE, SQLERRM);
        END;
    END LOOP;
END $$;
});

# --- generated and mutated ordering groups ---------------------------

srand(20261128);
my @strings = ('', 'US', 'us', 'CA', 'GB', 'local', 'toll_free', 'mobile', 'national',
	'312', '0', '00', '-1', 'abc', '1e3', ' 312', "3\t12", 'always', 'never', 'IL',
	'Chicago', "\x{e9}t\x{e9}", "\x{4e2d}\x{6587}", "\x{1f600}", "\0", "a\nb", '"', '\\',
	'x' x 300, '9' x 40, 'sms', 'voice', 'fax', 'true', 'null', '[]', '{}');
my @numbers = (0, 1, 2, 3, 10, 9999, 10000, 10001, -1, -0.0, 1.5, 2**31, 2**63, 1e308, '1e999',
	'-1e-999', '0.0000001');
my @keys = qw(country_iso phone_number_type count_requested national_destination_code
	administrative_area locality features phone_number strategy quickship exclude_held_numbers
	phone_number[starts_with] phone_number[ends_with] phone_number[contains]
	area_code count COUNTRY_ISO starts_with);
my @filters = qw(starts_with ends_with contains begins_with);

sub any_value
{
	my ($depth) = @_;
	my $r = rand();
	return $strings[ int(rand(@strings)) ] if $r < 0.35;
	return "\x01NUM:$numbers[ int(rand(@numbers)) ]\x01" if $r < 0.55;    # a JSON number, as written
	return JSON::PP::true if $r < 0.6;
	return JSON::PP::false if $r < 0.65;
	return undef if $r < 0.72;
	return [ map { any_value($depth + 1) } 1 .. int(rand(4)) ] if $r < 0.86 && $depth < 4;
	return { map { $filters[ int(rand(@filters)) ] => any_value($depth + 1) } 1 .. int(rand(3)) }
	  if $depth < 4;
	return 'deep';
}

sub valid_group
{
	my %g = (country_iso => (rand() < 0.5 ? 'US' : 'CA'),
		phone_number_type => (qw(local toll_free mobile national))[ int(rand(4)) ],
		count_requested => (rand() < 0.5 ? int(1 + rand(5)) : '' . int(1 + rand(5))));
	$g{national_destination_code} = '312' if rand() < 0.3;
	$g{administrative_area} = 'IL' if rand() < 0.2;
	$g{locality} = 'Chicago' if rand() < 0.2;
	$g{features} = [ 'sms', 'voice' ] if rand() < 0.2;
	$g{phone_number} = { starts_with => '1312' } if rand() < 0.1;
	$g{strategy} = (rand() < 0.5 ? 'always' : 'never') if rand() < 0.1;
	$g{quickship} = JSON::PP::true if rand() < 0.1;
	$g{exclude_held_numbers} = JSON::PP::false if rand() < 0.1;
	return \%g;
}

sub mutate_group
{
	my ($g) = @_;
	for (1 .. 1 + int(rand(3)))
	{
		my $k = $keys[ int(rand(@keys)) ];
		my $r = rand();
		if ($r < 0.3) { delete $g->{$k}; }
		else { $g->{$k} = any_value(0); }
	}
	return $g;
}

my $json = JSON::PP->new->canonical->allow_nonref;
my $csv = '';
for my $i (1 .. $inputs)
{
	my $r = rand();
	my $groups;
	if ($r < 0.2)
	{
		$groups = [ map { valid_group() } 1 .. 1 + int(rand(3)) ];
	}
	elsif ($r < 0.85)
	{
		$groups = [ map { rand() < 0.5 ? mutate_group(valid_group()) : valid_group() } 1 .. 1 + int(rand(4)) ];
	}
	elsif ($r < 0.9)
	{
		$groups = rand() < 0.5 ? mutate_group(valid_group()) : valid_group();
	}
	else
	{
		$groups = any_value(0);
	}
	my $text = $json->encode($groups);
	$text =~ s/"\\u0001NUM:(.*?)\\u0001"/$1/g;
	# sometimes the text itself: a byte changed, or cut
	my $t = rand();
	if ($t < 0.05 && length $text)
	{
		substr($text, int(rand(length $text)), 1) = substr('{}[]",:0 e-', int(rand(11)), 1);
	}
	elsif ($t < 0.07)
	{
		$text = '[' x 10000 . ']' x 10000;
	}
	elsif ($t < 0.08)
	{
		$text = '[' . join(',', ($json->encode(valid_group())) x (1 + int(rand(300)))) . ']';
	}
	# order-level fields (text arguments: no NUL)
	my @top = map { rand() < 0.85 ? undef : $strings[ int(rand(@strings)) ] =~ s/\0//gr } 1 .. 4;
	my @fields = ($i, $text, @top);
	$csv .= join(',', map {
		my $v = $_;
		if (!defined $v) { '' }
		else { utf8::encode($v); $v =~ s/"/""/g; qq{"$v"} }
	} @fields) . "\n";
}
my $file = PostgreSQL::Test::Utils::tempdir() . '/fuzz.csv';
open(my $fh, '>:raw', $file) or die "$file: $!";
print $fh $csv;
close($fh);
$csv = undef;
my $copied = $node->safe_psql('postgres', qq{
COPY fuzz_in FROM '$file' WITH (FORMAT csv, ENCODING 'UTF8');
SELECT count(*) FROM fuzz_in;
});
is($copied, $inputs, "$inputs generated ordering_groups values");

$node->safe_psql('postgres', "SELECT fuzz_run('enqueue', 1, $inputs)");
my %by = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
	"SELECT sqlstate, count(*) FROM fuzz_out WHERE how = 'enqueue' GROUP BY 1");
note('enqueue outcomes: ' . join(', ', map { "$_ $by{$_}" } sort keys %by));
is((eval { my $n = 0; $n += $_ for values %by; $n }), $inputs, 'every value was tried');
cmp_ok($by{'00000'} // 0, '>', $inputs / 10, 'many were accepted');
cmp_ok($by{'22023'} // 0, '>', $inputs / 3, 'many were refused as invalid input');
is(join(' ', grep { !/^(00000|22023|json)$/ } sort keys %by), '',
	'every failure is invalid input (22023), or not JSON at all');
is($node->safe_psql('postgres', q{
SELECT count(*) FROM fuzz_out WHERE sqlstate = '22023'
   AND message !~ '(ordering group [0-9]+|"ordering_groups"|ordering groups|"(connection_id|messaging_profile_id|customer_reference|billing_group_id)")'}),
	'0', 'every refusal names the group or the field');
is($node->safe_psql('postgres', 'SELECT count(*) FROM telnyx_order_requests'), $by{'00000'},
	'each accepted value is one request, and only those');

# the same values, ordered at once: what is refused sends nothing, and
# what is accepted the stand-in (which checks as the spec says) takes
standinctl('reset-requests');
$node->safe_psql('postgres', "SELECT fuzz_run('create', 1, $sent_sample)");
my %same = map { split /\|/ } split /\n/, $node->safe_psql('postgres', qq{
SELECT c.sqlstate, count(*) FROM fuzz_out c JOIN fuzz_out e ON e.i = c.i AND e.how = 'enqueue'
 WHERE c.how = 'create' GROUP BY 1});
my $accepted = $node->safe_psql('postgres', qq{
SELECT count(*) FROM fuzz_out WHERE how = 'enqueue' AND sqlstate = '00000' AND i <= $sent_sample});
note('create outcomes: ' . join(', ', map { "$_ $same{$_}" } sort keys %same));
is($node->safe_psql('postgres', qq{
SELECT count(*) FROM fuzz_out c JOIN fuzz_out e ON e.i = c.i AND e.how = 'enqueue'
 WHERE c.how = 'create' AND c.sqlstate IS DISTINCT FROM e.sqlstate}),
	'0', 'the synchronous path accepts and refuses exactly the same values, and the stand-in takes all it sends');
is(standinctl('requests', 'create'), "requests: $accepted\n", "$accepted creates sent, one per accepted value; nothing for the rest");

# --- mutated answers ---------------------------------------------------

standinctl('reset');
standinctl('config', encode_json({ process_seconds => 0.2, number_seconds => 0.2 }));
# (the stand-in's ids start again: so do the tables)
$node->safe_psql('postgres', q{
TRUNCATE fuzz_out;
TRUNCATE telnyx_inexplicit_orders CASCADE;
CREATE TABLE fuzz_calls (i integer, how text, sqlstate text, message text);
CREATE FUNCTION fuzz_call(i integer, how text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    id text;
BEGIN
    BEGIN
        IF how = 'create' THEN
            PERFORM telnyx_create_inexplicit_order(
                '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 2, "national_destination_code": "555"}]',
                customer_reference => 'mut-' || i);
        ELSIF how = 'get' THEN
            SELECT o.id INTO id FROM telnyx_inexplicit_orders o ORDER BY o.id OFFSET i % 20 LIMIT 1;
            PERFORM telnyx_get_inexplicit_order(id);
        ELSIF how = 'list' THEN
            PERFORM telnyx_list_inexplicit_orders(1 + i % 3, 10);
        ELSIF how = 'refresh' THEN
            UPDATE telnyx_inexplicit_orders SET next_refresh_at = now();
            UPDATE telnyx_number_orders SET next_fetch_at = now();
            PERFORM telnyx_refresh_orders();
        ELSE
            PERFORM telnyx_sync_inexplicit_orders();
        END IF;
        INSERT INTO fuzz_calls VALUES (i, how, '00000', NULL);
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO fuzz_calls VALUES (i, how, SQLSTATE, SQLERRM);
    END;
END $$;
SELECT telnyx_create_inexplicit_order(
    '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 2}]',
    customer_reference => 'plain-' || i) FROM generate_series(1, 20) i;
});
standinctl('settle');
$node->safe_psql('postgres', 'SELECT telnyx_refresh_orders()');

standinctl('config', encode_json({ seed => 7, chaos => [ { match => 'any', p => 1, action => 'mutate' } ] }));
$node->safe_psql('postgres', "SELECT fuzz_call(i, 'create') FROM generate_series(1, $answers) i");
# what the creates alone recorded
my %stored = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
	"SELECT customer_reference, id FROM telnyx_inexplicit_orders WHERE customer_reference LIKE 'mut-%'");
my @after_creates = split /\n/, $node->safe_psql('postgres', 'SELECT id FROM telnyx_inexplicit_orders');
my %stored_id = map { $_ => 1 } @after_creates;
my @ledger_creates = map { decode_json($_)->{id} } split /\n/, standinctl('ledger');
$node->safe_psql('postgres', "SELECT fuzz_call(i, 'get') FROM generate_series(1, " . int($answers / 3) . ") i");
$node->safe_psql('postgres', "SELECT fuzz_call(i, 'list') FROM generate_series(1, " . int($answers / 5) . ") i");
standinctl('settle');
$node->safe_psql('postgres', "SELECT fuzz_call(i, 'refresh') FROM generate_series(1, 20) i");
$node->safe_psql('postgres', "SELECT fuzz_call(i, 'sync') FROM generate_series(1, 10) i");
standinctl('config', encode_json({ chaos => [] }));

my %calls = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
	"SELECT how || ' ' || sqlstate, count(*) FROM fuzz_calls GROUP BY 1");
note('outcomes: ' . join(', ', map { "$_ $calls{$_}" } sort keys %calls));
# (a get of an id a mutated create answer made up: Telnyx may refuse it,
# 404 or 422)
my %allowed = (create => qr/^(00000|TX504)$/, get => qr/^(00000|TX502|TX413|TX404|TX422)$/,
	list => qr/^(00000|TX502|TX413)$/, refresh => qr/^00000$/, sync => qr/^(00000|TX502|TX413)$/);
my @odd = grep { my ($how, $st) = split / /; $st !~ $allowed{$how} } sort keys %calls;
is(join(', ', @odd), '', 'every failure is the error docs/reference.md gives for an answer that cannot be read');
for my $odd (@odd)
{
	my ($how, $st) = split / /, $odd;
	diag("$how $st: "
		  . $node->safe_psql('postgres',
			"SELECT string_agg(DISTINCT message, ' | ') FROM fuzz_calls WHERE how = '$how' AND sqlstate = '$st'"));
}
my $mutations = join("\n", map { $_ } split /\n/, standinctl('mutations'));
my (%mut, $nmut);
for my $line (split /\n/, $mutations)
{
	my $m = decode_json($line);
	$nmut++;
	# ids as psql prints them: UTF-8, and a uuid in lower case
	if (defined $m->{id})
	{
		utf8::encode($m->{id});
		$m->{id} = lc $m->{id} if $m->{id} =~ /^[0-9a-f-]{36}$/i;
	}
	$mut{ $m->{ref} } = $m if $m->{route} eq 'create' && defined $m->{ref};
}
cmp_ok($nmut, '>=', $answers, "$nmut answers mutated");
my %created = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
	"SELECT i, sqlstate FROM fuzz_calls WHERE how = 'create'");
my @wrong;
my ($invalid, $ok_calls) = (0, 0);
for my $i (1 .. $answers)
{
	my $ref = "mut-$i";
	my $m = $mut{$ref};
	my $st = $created{$i} // 'none';
	if (!$m) { push @wrong, "$ref: no mutated answer"; next; }
	$invalid++ unless $m->{valid};
	if ($st eq '00000')
	{
		$ok_calls++;
		push @wrong, "$ref: accepted an answer that is not JSON" unless $m->{valid};
		push @wrong, "$ref: answered " . ($m->{id} // 'no id') . ', not recorded'
		  unless defined $m->{id} && $stored_id{ $m->{id} };
	}
	elsif (defined $stored{$ref} || (defined $m->{id} && $stored_id{ $m->{id} }))
	{
		push @wrong, "$ref: $st, yet recorded";
	}
}
is(join("\n", @wrong), '', "creates: $ok_calls recorded as answered, the rest ($invalid answers not JSON) recorded nothing");
my %answered = map { ($_->{id} // '') => 1 } values %mut;
my %at_standin = map { $_ => 1 } @ledger_creates;
is(join(' ', grep { !$at_standin{$_} && !$answered{$_} } @after_creates), '',
	'the tables hold no order that neither the stand-in made nor an answer named');

# with the answers whole again, a sync brings in what the lost answers made
# (mirroring the account: an answer mutated to name another id links the
# call to that id, and the order the call made is then no longer known as
# this database's own)
$node->safe_psql('postgres', "SET telnyx.sync_scope = 'account'; SELECT telnyx_sync_inexplicit_orders()");
my %table = map { $_ => 1 } split /\n/, $node->safe_psql('postgres', 'SELECT id FROM telnyx_inexplicit_orders');
my @ledger = map { decode_json($_)->{id} } split /\n/, standinctl('ledger');
is(scalar(grep { !$table{$_} } @ledger), 0, scalar(@ledger) . ' orders at the stand-in, all in the tables after a sync');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server still answers');
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC/, 'no process crashed');
$node->stop;
standinctl('reset');

done_testing();
