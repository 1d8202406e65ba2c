# Many databases on one account: each records and follows only the orders
# it placed (also one whose synchronous call rolled back), unless it mirrors
# the account; a failed fetch of a number order is tried again after a
# backoff, not a whole lease; a long sync shows how far it got; order
# events and webhook deliveries are purged as requests are.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use StandIn;
use IPC::Run;
use Time::HiRes qw(time usleep);

my $groups = '[{"country_iso": "US", "phone_number_type": "local", "count_requested": 1}]';
# the same groups, as another client of the account sends them
my $sent_groups = [ { country_iso => 'US', phone_number_type => 'local', count_requested => '1' } ];

standinctl('reset');
standinctl('config', encode_json({ process_seconds => 1, number_seconds => 1 }));

my $node = PostgreSQL::Test::Cluster->new('manydb');
$node->init;
$node->append_conf('postgresql.conf', telnyx_conf() . q{
telnyx.database = 'postgres, second'
telnyx.sync_interval = '2s'
telnyx.refresh_interval_max = '2s'
telnyx.worker_naptime = '1s'
telnyx.request_retention = '1d'
telnyx.reconcile_delay = '1s'
telnyx.absence_window = '1min'
max_worker_processes = 16
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION telnyx_orders');

# the references a database records, sorted
sub refs
{
	my ($db, $like) = @_;
	return $node->safe_psql($db,
		"SELECT string_agg(customer_reference, ' ' ORDER BY customer_reference)"
		  . " FROM telnyx_inexplicit_orders WHERE customer_reference LIKE '$like'");
}

# --- 11: a number order whose fetch failed is fetched again soon ---------
# (one database only yet: no other worker fetches the number order)
{
	# the GET fails, with its retries inside one fetch: one failed fetch
	fault({ match => 'number_order', status => 500, code => '10007', times => 3 });
	my $offset = -s $node->logfile;
	my $t0 = time;
	$node->safe_psql('postgres',
		"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'follow-retry')");
	ok( $node->poll_query_until('postgres', q{
SELECT count(*) > 0 FROM telnyx_number_orders n JOIN telnyx_inexplicit_orders o ON o.id = n.order_id
 WHERE o.customer_reference = 'follow-retry'}), 'the order is followed to its number order');
	ok($node->wait_for_log(qr/could not refresh number order/, $offset),
		'the first fetch of the number order failed');
	my $recorded = 0;
	while (time - $t0 < 90)
	{
		$recorded = $node->safe_psql('postgres', q{
SELECT count(*) FROM telnyx_purchased_numbers WHERE customer_reference = 'follow-retry'});
		last if $recorded > 0;
		usleep(200_000);
	}
	ok($recorded > 0, 'its numbers are recorded well before a lease (4.5 minutes) would end')
	  or diag(sprintf('after %.0f seconds', time - $t0));
	is( $node->safe_psql('postgres', q{
SELECT max(n.fetch_failures) FROM telnyx_number_orders n JOIN telnyx_inexplicit_orders o ON o.id = n.order_id
 WHERE o.customer_reference = 'follow-retry'}),
		'0', 'an answer recorded ends the failures in a row');
}

# --- 14: each database records and follows only what it placed ----------
$node->safe_psql('postgres', 'CREATE DATABASE second');
$node->safe_psql('second', 'CREATE EXTENSION telnyx_orders');
{
	$node->safe_psql('postgres',
		"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'own-a-queued')");
	$node->safe_psql('postgres',
		"SELECT telnyx_create_inexplicit_order('$groups', customer_reference => 'own-a-sync')");
	$node->safe_psql('postgres',
		"BEGIN; SELECT telnyx_create_inexplicit_order('$groups', customer_reference => 'own-a-rolled'); ROLLBACK;");
	# one without a reference, rolled back: told by its groups and time
	$node->safe_psql('postgres',
		q{BEGIN; SELECT telnyx_create_inexplicit_order('[{"country_iso": "US", "phone_number_type": "toll_free", "count_requested": 2}]'); ROLLBACK;});
	$node->safe_psql('second',
		"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'own-b-queued')");
	$node->safe_psql('second',
		"SELECT telnyx_create_inexplicit_order('$groups', customer_reference => 'own-b-sync')");
	# another client of the account, and the same reference as one of ours
	standinctl('create', encode_json({ ordering_groups => $sent_groups,
				customer_reference => 'own-x-other' }));
	standinctl('create', encode_json({ ordering_groups => [ { country_iso => 'CA',
					phone_number_type => 'local', count_requested => '3' } ],
				customer_reference => 'own-a-sync' }));

	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM telnyx_inexplicit_orders WHERE customer_reference = 'own-a-rolled' AND found_by_sync"),
		'the worker records the order of a call whose transaction rolled back');
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM telnyx_inexplicit_orders WHERE customer_reference IS NULL AND found_by_sync"),
		'and one without a customer_reference');
	$node->poll_query_until('second',
		"SELECT count(*) = 2 FROM telnyx_inexplicit_orders WHERE customer_reference LIKE 'own-%'")
	  or die "second did not record its orders";
	# two whole syncs later
	sleep 5;
	is(refs('postgres', 'own-%'), 'own-a-queued own-a-rolled own-a-sync',
		'the first database records only its own orders');
	is(refs('second', 'own-%'), 'own-b-queued own-b-sync', 'so does the second');
	is( $node->safe_psql('postgres', q{
SELECT count(*) FROM telnyx_inexplicit_orders o JOIN telnyx_order_calls c ON c.request_key = o.request_key
 WHERE o.customer_reference = 'own-a-rolled'}),
		'1', 'the rolled-back order is linked to its call');
	is( $node->safe_psql('second', q{
SELECT count(*) FROM telnyx_order_allocations WHERE customer_reference NOT LIKE 'own-b-%'}),
		'0', "the second database's report shows none of the first's orders");
	is( $node->safe_psql('second', q{
SELECT count(*) FROM telnyx_number_orders n JOIN telnyx_inexplicit_orders o ON o.id = n.order_id
 WHERE o.customer_reference NOT LIKE 'own-b-%'}),
		'0', 'and its worker follows none of them');

	# the synchronous sync, by default, keeps to the same orders
	$node->safe_psql('second', 'SELECT telnyx_sync_inexplicit_orders()');
	is(refs('second', 'own-%'), 'own-b-queued own-b-sync',
		'telnyx_sync_inexplicit_orders() records only its own orders too');

	# mirroring the account is a setting
	is( $node->safe_psql('second',
			"SET telnyx.sync_scope = 'account'; SELECT telnyx_sync_inexplicit_orders() >= 7"),
		't', 'with telnyx.sync_scope = account, the sync records every order');
	is(refs('second', 'own-%'),
		'own-a-queued own-a-rolled own-a-sync own-a-sync own-b-queued own-b-sync own-x-other',
		'the whole account');
	$node->safe_psql('postgres', "ALTER DATABASE postgres SET telnyx.sync_scope = 'account'");
	$node->safe_psql('postgres', 'SELECT telnyx_restart_workers()');
	standinctl('create', encode_json({ ordering_groups => $sent_groups,
				customer_reference => 'own-x-later' }));
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM telnyx_inexplicit_orders WHERE customer_reference = 'own-x-later'"),
		"the worker of a database that mirrors the account records another client's order");
	$node->safe_psql('postgres', 'ALTER DATABASE postgres RESET telnyx.sync_scope');
	$node->safe_psql('postgres', 'SELECT telnyx_restart_workers()');
}

# --- reconciliation never takes another database's order ----------------
{
	# the second database orders; the first sends the same order, whose
	# answer is lost and which never reached Telnyx
	$node->safe_psql('second',
		"SELECT telnyx_create_inexplicit_order('$groups', customer_reference => 'dup-ref')");
	my $theirs = $node->safe_psql('second',
		"SELECT id FROM telnyx_inexplicit_orders WHERE customer_reference = 'dup-ref'");
	fault({ match => 'create', action => 'close_before' });
	my $rid = $node->safe_psql('postgres',
		"SELECT telnyx_enqueue_inexplicit_order('$groups', customer_reference => 'dup-ref')");
	ok( $node->poll_query_until('postgres',
			"SELECT lookups >= 1 OR state = 'sent' FROM telnyx_order_requests WHERE id = $rid"),
		'the request of the lost answer is looked up in the list');
	isnt($node->safe_psql('postgres', "SELECT order_id FROM telnyx_order_requests WHERE id = $rid"),
		$theirs, "the second database's order, with the same reference and groups, is not taken for it");
	ok( $node->poll_query_until('postgres',
			"SELECT state = 'sent' FROM telnyx_order_requests WHERE id = $rid"),
		'absence proven, it is sent again');
	isnt($node->safe_psql('postgres', "SELECT order_id FROM telnyx_order_requests WHERE id = $rid"),
		$theirs, 'and answered by an order of its own');
	is(ledger()->{'dup-ref'}, 2, 'one order for each database');
}

# --- 10: a long sync shows how far it got --------------------------------
{
	# no periodic sync takes the faults below
	$node->safe_psql('postgres', 'ALTER SYSTEM SET telnyx.sync_interval = 0');
	$node->reload;
	sleep 3;
	standinctl('bulk', '600', 'progress-bulk');
	my ($ret, $out, $err) = $node->psql('postgres',
		"SET telnyx.progress_messages = notice; SELECT telnyx_sync_inexplicit_orders() >= 0");
	my @pages = $err =~ /NOTICE:  read page (\d+) of (\d+) of the list of orders: (\d+) orders read, (\d+) recorded/g;
	ok(@pages >= 12, 'a NOTICE for each page read') or diag($err);
	my $last_read = $pages[-2];
	ok($last_read >= 600, 'the last says how many orders were read');
	($ret, $out, $err) = $node->psql('postgres', 'SELECT telnyx_sync_inexplicit_orders() >= 0');
	unlike($err, qr/read page/, 'none with telnyx.progress_messages off (the default)');

	# from another session: the statement, after what the sync has done
	fault({ match => 'list', action => 'delay', seconds => 4 });
	fault({ match => 'list', action => 'delay', seconds => 4 });
	my ($in, $o, $e) = ('', '', '');
	my $sync = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres') ],
		'<', \$in, '>', \$o, '2>', \$e);
	$in .= "SELECT telnyx_sync_inexplicit_orders() >= 0 AS synced;\n";
	$sync->pump_nb;
	ok( $node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE query LIKE '/* telnyx_orders: read page 1 of _ of the list of orders: 250 orders read, % recorded */ SELECT telnyx_sync_inexplicit_orders() >= 0 AS synced;%'}),
		"pg_stat_activity shows the page read, before the session's statement");
	$in .= "SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid();\n\\q\n";
	$sync->finish;
	like($o, qr/^t\n/, 'the sync ends');
	like($o, qr/\nSELECT query FROM pg_stat_activity/, 'and its statement is shown alone again');
}

# --- retention: events and webhook deliveries, as requests ---------------
{
	my $closed = $node->safe_psql('postgres', q{
SELECT o.id FROM telnyx_inexplicit_orders o WHERE customer_reference = 'follow-retry'});
	$node->safe_psql('postgres', q{
INSERT INTO telnyx_inexplicit_orders (id, customer_reference, data) VALUES ('open-order', 'open-order', '{}');
INSERT INTO telnyx_ordering_groups (order_id, group_index, country_iso, phone_number_type, count_requested, status)
VALUES ('open-order', 1, 'US', 'local', 1, 'pending');
INSERT INTO telnyx_order_events (event, order_id, group_index, at)
VALUES ('group_changed', 'open-order', 1, now() - interval '2 days');
UPDATE telnyx_order_events SET at = now() - interval '2 days' WHERE order_id <> 'open-order';
INSERT INTO telnyx_order_events (event, order_id, group_index) VALUES ('group_changed', 'recent', 1);
INSERT INTO telnyx_webhook_deliveries (event_id, number_order_id, occurred_at, applied, received_at) VALUES
 ('old-unapplied', 'n1', now() - interval '3 days', false, now() - interval '3 days'),
 ('old-superseded', 'n1', now() - interval '3 days', true, now() - interval '3 days'),
 ('old-newest', 'n1', now() - interval '2 days', true, now() - interval '2 days'),
 ('recent', 'n2', now(), true, now());
});
	ok($node->safe_psql('postgres', "SELECT count(*) > 2 FROM telnyx_order_events WHERE at < now() - interval '1 day'"),
		'old events of closed orders are there');
	$node->safe_psql('postgres', 'SELECT telnyx_restart_workers()');
	ok( $node->poll_query_until('postgres', q{
SELECT count(*) = 0 FROM telnyx_webhook_deliveries WHERE event_id IN ('old-unapplied', 'old-superseded')}),
		'webhook deliveries older than telnyx.request_retention are deleted');
	is( $node->safe_psql('postgres',
			"SELECT string_agg(event_id, ' ' ORDER BY event_id) FROM telnyx_webhook_deliveries"),
		'old-newest recent', "but not a number order's newest applied one, nor a recent one");
	is( $node->safe_psql('postgres', q{
SELECT count(*) FROM telnyx_order_events e WHERE e.at < now() - interval '1 day'
   AND NOT EXISTS (SELECT 1 FROM telnyx_open_orders v WHERE v.order_id = e.order_id)}),
		'0', 'old events of orders no longer open are deleted');
	is( $node->safe_psql('postgres',
			"SELECT string_agg(order_id, ' ' ORDER BY order_id) FROM telnyx_order_events WHERE order_id IN ('open-order', 'recent')"),
		'open-order recent', 'but not those of an order still open, nor recent ones');
	$node->safe_psql('postgres', q{
DELETE FROM telnyx_inexplicit_orders WHERE id = 'open-order'});
}

$node->stop;
unlike(slurp_file($node->logfile), qr/terminated by signal/, 'no process crashed');

done_testing();
