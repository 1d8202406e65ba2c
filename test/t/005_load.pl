# Load with faults: twenty sessions of a role with the recommended grants (docs/security.md)
# order synchronously, enqueue and insert rows a trigger orders, for a
# minute, while the stand-in answers 429s and drops connections before
# and after creating orders.  Afterwards every committed request has
# exactly one order or a recorded failure, every synchronous call that
# returned an order has it recorded, and the stand-in's ledger and the
# tables agree order for order.
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
my $seconds = $ENV{LOAD_SECONDS} // 60;
my $clients = $ENV{LOAD_CLIENTS} // 20;
my $groups = '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]';

standinctl('reset');

my $node = PostgreSQL::Test::Cluster->new('load');
$node->init;
$node->append_conf('postgresql.conf', telnyx_conf() . qq{
telnyx.reconcile_delay = '1s'
telnyx.absence_window = '60s'
telnyx.worker_naptime = '1s'
telnyx.timeout = '5s'
telnyx.database = 'postgres'
max_connections = 40
});
$node->start;

# the ordering role, granted as docs/security.md recommends, and what it writes
$node->safe_psql('postgres', qq{
CREATE EXTENSION telnyx_orders;
CREATE ROLE regress_orderer LOGIN;
GRANT EXECUTE ON FUNCTION telnyx_create_inexplicit_order(jsonb, text, text, text, text),
                          telnyx_enqueue_inexplicit_order(jsonb, text, text, text, text)
   TO regress_orderer;
GRANT SELECT ON telnyx_order_requests, telnyx_order_allocations TO regress_orderer;
GRANT EXECUTE ON FUNCTION telnyx_order_trigger() TO regress_orderer;
GRANT CREATE ON SCHEMA public TO regress_orderer;
SET ROLE regress_orderer;
CREATE SEQUENCE load_seq;
CREATE TABLE load_outcomes (n bigint PRIMARY KEY, sqlstate text NOT NULL);
CREATE TABLE load_rows (
    n                 bigint PRIMARY KEY,
    country_iso       text DEFAULT 'US',
    phone_number_type text DEFAULT 'local',
    count_requested   integer DEFAULT 1,
    customer_reference text,
    telnyx_request_id bigint
);
CREATE TRIGGER link_request BEFORE INSERT ON load_rows
    FOR EACH ROW EXECUTE FUNCTION telnyx_order_trigger();
CREATE TRIGGER order_numbers AFTER INSERT ON load_rows
    FOR EACH ROW EXECUTE FUNCTION telnyx_order_trigger();
CREATE FUNCTION load_sync(n bigint) RETURNS void LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM telnyx_create_inexplicit_order('$groups', customer_reference => 'load-s-' || n);
    INSERT INTO load_outcomes VALUES (n, '00000');
EXCEPTION WHEN OTHERS THEN
    INSERT INTO load_outcomes VALUES (n, SQLSTATE);
END \$\$;
});

my $dir = PostgreSQL::Test::Utils::tempdir;
my %scripts = (
	'sync.sql' => "SELECT nextval('load_seq') AS n \\gset\nSELECT load_sync(:n);\n",
	'enqueue.sql' => "SELECT nextval('load_seq') AS n \\gset\n"
	  . "SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'load-q-' || :n);\n",
	'trigger.sql' => "SELECT nextval('load_seq') AS n \\gset\n"
	  . "INSERT INTO load_rows (n, customer_reference) VALUES (:n, 'load-t-' || :n);\n");
while (my ($name, $text) = each %scripts)
{
	open(my $fh, '>', "$dir/$name") or die "$dir/$name: $!";
	print $fh $text;
	close($fh);
}

# 429s (asking for a short wait), connections dropped before the order is
# made and after, and a 500 after it is made, on creates and on reads
standinctl('config', encode_json({ seed => 5, chaos => [
	{ match => 'create', p => 0.08, action => 'status', status => 429, code => '10011',
	  title => 'Too many requests', headers => { 'retry-after-ms' => '50' } },
	{ match => 'create', p => 0.03, action => 'close_before' },
	{ match => 'create', p => 0.03, action => 'close_after' },
	{ match => 'create', p => 0.02, action => 'status', status => 500, create => JSON::PP::true },
	{ match => 'any', p => 0.05, action => 'status', status => 429, code => '10011',
	  title => 'Too many requests', headers => { 'retry-after-ms' => '50' } },
	{ match => 'any', p => 0.03, action => 'close_before' } ] }));

my ($out, $err) = ('', '');
my $ok = IPC::Run::run(
	[ 'pgbench', '-n', '-h', $node->host, '-p', $node->port, '-U', 'regress_orderer',
	  '-c', $clients, '-j', 2, '-T', $seconds,
	  '-f', "$dir/sync.sql\@2", '-f', "$dir/enqueue.sql\@1", '-f', "$dir/trigger.sql\@1",
	  'postgres' ],
	'>', \$out, '2>', \$err);
my ($tps) = $out =~ /tps = ([0-9.]+)/;
ok($ok, "pgbench: $clients sessions for $seconds s") or diag("$out\n$err");
note("pgbench: " . ($tps // '?') . " transactions per second");
my $hits = standinctl('chaos');
chomp $hits;
note("faults injected: $hits");
like($hits, qr/close_after=\d+.*close_before=\d+.*status=\d+/, 'the stand-in injected every kind of fault');
standinctl('config', encode_json({ chaos => [] }));

# the queue settles: every committed request is sent or failed
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM telnyx_order_requests WHERE state NOT IN ('sent', 'failed', 'cancelled')"),
	'every queued request settles');
# what the synchronous calls left unknown is brought in by a sync
$node->safe_psql('postgres', 'SELECT telnyx_sync_inexplicit_orders()');

my $ledger = ledger();
my %ledger_ids;
for my $line (split /\n/, standinctl('ledger'))
{
	my $o = decode_json($line);
	my $ref = $o->{customer_reference} // '';
	push @{ $ledger_ids{$ref} }, $o->{id} if $ref =~ /^load-/;
}

# queued and triggered: exactly one order when sent, none when failed
my @requests = map { [ split /\|/ ] } split /\n/, $node->safe_psql('postgres',
	"SELECT body->>'customer_reference', state, coalesce(order_id::text, ''), coalesce(last_error::text, '') FROM telnyx_order_requests");
my (@wrong, $sent, $failed);
for my $r (@requests)
{
	my ($ref, $state, $order, $error) = @$r;
	my $n = scalar @{ $ledger_ids{$ref} // [] };
	if ($state eq 'sent')
	{
		$sent++;
		push @wrong, "$ref sent with $n orders" unless $n == 1 && $ledger_ids{$ref}[0] eq $order;
	}
	elsif ($state eq 'failed')
	{
		$failed++;
		push @wrong, "$ref failed with $n orders or no error" unless $n == 0 && $error ne '';
	}
	else
	{
		push @wrong, "$ref $state";
	}
}
my $rows = $node->safe_psql('postgres',
	'SELECT count(*) FROM load_rows l JOIN telnyx_order_requests r ON r.id = l.telnyx_request_id');
cmp_ok(scalar(@requests), '>', 100, scalar(@requests) . ' requests queued or triggered');
is($rows, $node->safe_psql('postgres', 'SELECT count(*) FROM load_rows'), 'every inserted row points at its request');
is(join("\n", @wrong), '', ($sent // 0) . ' sent with exactly one order, ' . ($failed // 0) . ' failed with none');

# synchronous: an order returned is recorded; a refusal ordered nothing;
# an unknown outcome is whatever Telnyx has, which the sync recorded
my %outcome = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
	'SELECT n, sqlstate FROM load_outcomes');
my %stored = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
	"SELECT customer_reference, id FROM telnyx_inexplicit_orders WHERE customer_reference LIKE 'load-s-%'");
my %by_state;
@wrong = ();
for my $n (sort keys %outcome)
{
	my $st = $outcome{$n};
	my $ref = "load-s-$n";
	my $count = scalar @{ $ledger_ids{$ref} // [] };
	$by_state{$st}++;
	if ($st eq '00000' || $st eq 'TX504')
	{
		push @wrong, "$ref $st: $count orders" if $count > 1 || ($st eq '00000' && $count != 1);
		push @wrong, "$ref $st: not recorded" if $count == 1 && ($stored{$ref} // '') ne $ledger_ids{$ref}[0];
	}
	# 53400: no background worker slot to record the call came free in time
	elsif ($st eq 'TX429' || $st eq 'TX503' || $st eq '53400')
	{
		push @wrong, "$ref $st: $count orders" if $count != 0;
	}
	else
	{
		push @wrong, "$ref: unexpected SQLSTATE $st";
	}
}
cmp_ok(scalar(keys %outcome), '>', 100, scalar(keys %outcome) . ' synchronous calls: '
	  . join(', ', map { "$_ $by_state{$_}" } sort keys %by_state));
is(join("\n", @wrong), '', 'each returned order is recorded; a refused call ordered nothing');

# the ledger and the tables agree, order for order
my @twice = grep { @{ $ledger_ids{$_} } > 1 } keys %ledger_ids;
is(join(' ', @twice), '', 'no customer_reference was ordered twice');
my %table = map { $_ => 1 } split /\n/, $node->safe_psql('postgres',
	"SELECT id FROM telnyx_inexplicit_orders WHERE customer_reference LIKE 'load-%'");
my @missing = grep { !$table{ $_->[0] } } values %ledger_ids;
is(scalar(@missing), 0, scalar(keys %ledger_ids) . ' orders at the stand-in, every one in the tables');
is(scalar(keys %table), scalar(keys %ledger_ids), 'and the tables hold no other');

unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC/, 'no process crashed');
$node->stop;
standinctl('reset');

done_testing();
