# The documentation, kept true mechanically.
#
# (a) docs/reference.md against the installed extension: every function and
# procedure (its signature and result), table and view (every column),
# telnyx.* setting (its default and context) and TXnnn SQLSTATE
# (src/errcodes.h) is documented there, and everything documented there
# exists.  The conventions it reads are described at the top of
# docs/reference.md and in docs/hacking.md.
#
# (b) Every ```sql block of README.md and docs/*.md runs as written, in file
# order, against a fresh database per file with the Telnyx stand-in; a
# block preceded by "<!-- not run: reason -->" is left out.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use StandIn;

my $top = "$FindBin::Bin/../..";

sub slurp_lines
{
	my ($path) = @_;
	open(my $fh, '<', $path) or die "could not open $path: $!";
	my @lines = <$fh>;
	close($fh);
	return @lines;
}

# --- the cluster ------------------------------------------------------------

my @md = ('README.md', map { s{^\Q$top\E/}{}r } sort glob("$top/docs/*.md"));
ok(scalar(grep { m{^docs/reference\.md$} } @md), 'docs/reference.md exists');
my %dbname;
$dbname{ $md[$_] } = "docs_$_" for 0 .. $#md;

standinctl('reset');

my $node = PostgreSQL::Test::Cluster->new('docs');
$node->init;
$node->append_conf('postgresql.conf', telnyx_conf()
	  . "telnyx.database = '" . join(',', sort values %dbname) . "'\n"
	  . "telnyx.webhook_public_key = '$ENV{TELNYX_TEST_WEBHOOK_PUBLIC_KEY}'\n"
	  . "max_prepared_transactions = 4\n");
$node->start;

# --- (a) the reference against the catalog ---------------------------------

my @ref = slurp_lines("$top/docs/reference.md");

# The section (## heading) each line is in, and the headings.
my (%doc_fn, %doc_rel, %doc_setting, %doc_state);
my ($section, $rel) = ('', undef);
for (my $i = 0; $i < @ref; $i++)
{
	my $line = $ref[$i];
	my $where = 'docs/reference.md line ' . ($i + 1);
	if ($line =~ /^(#+)\s+(.*)$/)
	{
		my ($level, $title) = (length($1), $2);
		$section = $title if $level == 2;
		$rel = undef;
		if ($title =~ /^(Table|View)\s+`(\w+)`/)
		{
			$rel = $2;
			$doc_rel{$rel} = { kind => lc($1), columns => {}, where => $where };
		}
		# every signature in backticks in a heading; the arguments end at the
		# first ')' that RETURNS or the backtick follows, as a result may be
		# TABLE(...)
		while ($title =~ /`(?:CALL\s+)?(telnyx_\w+)\(([^`]*?)\)(?:\s+RETURNS\s+([^`]+))?`/g)
		{
			my ($name, $args, $result) = ($1, $2, $3 // '');
			my @args = map {
				my $a = $_;
				$a =~ s/\s+DEFAULT\s+.*$//s;
				$a =~ s/^\s*IN\s+//;
				$a =~ s/^\s+|\s+$//g;
				$a =~ s/\s+/ /g;
				$a
			} grep { /\S/ } split_args($args);
			$doc_fn{ "$name(" . join(', ', @args) . ')' } =
			  { result => $result =~ s/\s+$//r, where => $where };
		}
		next;
	}
	next unless $line =~ /^\|\s*([^|]*?)\s*\|(.*)$/;
	my ($first, $rest) = ($1, $2);
	my @names = $first =~ /`([^`]+)`/g;
	next unless @names;
	if (defined $rel)
	{
		$doc_rel{$rel}{columns}{$_} = 1 for @names;
	}
	elsif ($section eq 'Settings' && $names[0] =~ /^telnyx\./)
	{
		my @cells = map { s/^\s+|\s+$//gr } split(/\|/, $rest);
		$doc_setting{ $names[0] } = {
			default => ($cells[0] // '') =~ s/`//gr,
			context => ($cells[1] // '') =~ s/`//gr,
			where => $where
		};
	}
	elsif ($section eq 'Errors and SQLSTATEs' && $names[0] =~ /^[0-9A-Z]{5}$/)
	{
		$doc_state{$_} = $where for @names;
	}
}

$node->safe_psql('postgres', 'CREATE EXTENSION telnyx_orders');

# The arguments of a signature, split at the commas that are not inside
# quotes or parentheses (a DEFAULT may hold either).
sub split_args
{
	my ($args) = @_;
	my @out;
	my ($cur, $depth, $quote) = ('', 0, '');
	for my $c (split //, $args)
	{
		if ($quote) { $quote = '' if $c eq $quote; }
		elsif ($c eq "'" || $c eq '"') { $quote = $c; }
		elsif ($c eq '(') { $depth++; }
		elsif ($c eq ')') { $depth--; }
		elsif ($c eq ',' && $depth == 0) { push @out, $cur; $cur = ''; next; }
		$cur .= $c;
	}
	push @out, $cur;
	return @out;
}

# Functions and procedures of the extension, as the reference writes them.
my %cat_fn;
for my $row (split /\n/, $node->safe_psql('postgres', q{
	SELECT p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid),
	       coalesce(pg_catalog.pg_get_function_result(p.oid), '')
	  FROM pg_catalog.pg_depend d
	  JOIN pg_catalog.pg_proc p ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid = d.objid
	  JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
	 WHERE e.extname = 'telnyx_orders' AND d.deptype = 'e'}))
{
	my ($name, $args, $result) = split /\|/, $row, 3;
	my @args = grep { !/^OUT / } map { s/^IN //r } split(/, /, $args);
	$cat_fn{ "$name(" . join(', ', @args) . ')' } = $result;
}
cmp_ok(scalar(keys %cat_fn), '>=', 20, scalar(keys %cat_fn) . ' functions in the catalog');

# Tables and views, and their columns.
my %cat_rel;
for my $row (split /\n/, $node->safe_psql('postgres', q{
	SELECT c.relname, CASE c.relkind WHEN 'v' THEN 'view' ELSE 'table' END, a.attname
	  FROM pg_catalog.pg_depend d
	  JOIN pg_catalog.pg_class c ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND c.oid = d.objid
	  JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
	  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	 WHERE e.extname = 'telnyx_orders' AND d.deptype = 'e' AND c.relkind IN ('r', 'p', 'v', 'm')}))
{
	my ($name, $kind, $column) = split /\|/, $row;
	$cat_rel{$name}{kind} = $kind;
	$cat_rel{$name}{columns}{$column} = 1;
}
cmp_ok(scalar(keys %cat_rel), '>=', 10, scalar(keys %cat_rel) . ' tables and views in the catalog');

# Settings: pg_settings (the library is preloaded), and those it hides
# (GUC_NO_SHOW_ALL), found where they are defined.
my %cat_setting;
for my $row (split /\n/, $node->safe_psql('postgres',
	"SELECT name, context FROM pg_catalog.pg_settings WHERE name LIKE 'telnyx.%'"))
{
	my ($name, $context) = split /\|/, $row;
	$cat_setting{$name} = $context;
}
for my $c (glob("$top/src/*.c"))
{
	my $text = join('', slurp_lines($c));
	while ($text =~ /DefineCustom\w+Variable\(\s*"(telnyx\.\w+)"/g)
	{
		$cat_setting{$1} //= '';
	}
}
cmp_ok(scalar(keys %cat_setting), '>=', 15, scalar(keys %cat_setting) . ' telnyx.* settings');

# The extension's own SQLSTATEs.
my %cat_state;
for (slurp_lines("$top/src/errcodes.h"))
{
	$cat_state{"TX$1$2$3"} = 1 if /MAKE_SQLSTATE\('T',\s*'X',\s*'(.)',\s*'(.)',\s*'(.)'\)/;
}
cmp_ok(scalar(keys %cat_state), '>=', 10, scalar(keys %cat_state) . ' SQLSTATEs in src/errcodes.h');

my (@undocumented, @missing, @wrong);
for my $f (sort keys %cat_fn)
{
	if (!$doc_fn{$f})
	{
		my $r = $cat_fn{$f} eq '' ? '' : " RETURNS $cat_fn{$f}";
		push @undocumented, "function $f$r";
	}
	elsif ($doc_fn{$f}{result} ne $cat_fn{$f})
	{
		push @wrong, "function $f: $doc_fn{$f}{where} says RETURNS \"$doc_fn{$f}{result}\", the catalog \"$cat_fn{$f}\"";
	}
}
push @missing, "function $_ ($doc_fn{$_}{where})" for grep { !exists $cat_fn{$_} } sort keys %doc_fn;
for my $r (sort keys %cat_rel)
{
	if (!$doc_rel{$r})
	{
		push @undocumented, "$cat_rel{$r}{kind} $r (columns: " . join(', ', sort keys %{ $cat_rel{$r}{columns} }) . ')';
		next;
	}
	push @wrong, "$r is a $cat_rel{$r}{kind}, $doc_rel{$r}{where} calls it a $doc_rel{$r}{kind}"
	  if $doc_rel{$r}{kind} ne $cat_rel{$r}{kind};
	push @undocumented, "column $r.$_" for grep { !$doc_rel{$r}{columns}{$_} } sort keys %{ $cat_rel{$r}{columns} };
	push @missing, "column $r.$_ ($doc_rel{$r}{where})" for grep { !$cat_rel{$r}{columns}{$_} } sort keys %{ $doc_rel{$r}{columns} };
}
push @missing, "$doc_rel{$_}{kind} $_ ($doc_rel{$_}{where})" for grep { !$cat_rel{$_} } sort keys %doc_rel;

for my $s (sort keys %cat_setting)
{
	push @undocumented, "setting $s" unless $doc_setting{$s};
}
for my $s (sort keys %doc_setting)
{
	my $d = $doc_setting{$s};
	if (!exists $cat_setting{$s})
	{
		push @missing, "setting $s ($d->{where})";
		next;
	}
	next if $cat_setting{$s} eq '';    # hidden: no context or default to compare
	push @wrong, "setting $s: $d->{where} gives context \"$d->{context}\", pg_settings \"$cat_setting{$s}\""
	  if $d->{context} ne $cat_setting{$s};
	# the documented default, read by the server in the setting's unit
	my $default = $d->{default} eq 'empty' ? '' : $d->{default};
	my ($boot, $unit) = split /\|/,
	  $node->safe_psql('postgres',
		'SELECT boot_val, unit FROM pg_catalog.pg_settings WHERE name = ' . quote_sql($s)), 2;
	my $as_doc = quote_sql($default);
	my $doc_val =
	    $unit =~ /^(ms|s|min)$/
	  ? $node->safe_psql('postgres', "SELECT extract(epoch FROM ${as_doc}::interval) * "
		  . { ms => '1000', s => '1', min => '1.0 / 60' }->{$unit} . ' = ' . quote_sql($boot) . '::numeric')
	  : $unit =~ /^(B|kB)$/
	  ? $node->safe_psql('postgres', "SELECT pg_catalog.pg_size_bytes($as_doc) / "
		  . ($unit eq 'B' ? 1 : 1024) . ' = ' . quote_sql($boot) . '::numeric')
	  : ($default eq $boot ? 't' : 'f');
	push @wrong, "setting $s: $d->{where} gives default \"$d->{default}\", the server \"$boot\"" . ($unit ? " $unit" : '')
	  if $doc_val ne 't';
}

sub quote_sql { return "'" . ($_[0] =~ s/'/''/gr) . "'"; }

push @undocumented, "SQLSTATE $_" for grep { !$doc_state{$_} } sort keys %cat_state;
push @missing, "SQLSTATE $_ ($doc_state{$_})" for grep { /^TX/ && !$cat_state{$_} } sort keys %doc_state;

ok(!@undocumented, 'everything in the catalog is documented in docs/reference.md')
  or diag("undocumented in docs/reference.md:\n  " . join("\n  ", @undocumented) . "\n"
	  . q{(a function is a heading holding `name(arg type, ...) RETURNS type`; a table or view a heading}
	  . q{ "Table `name`" or "View `name`" followed by a row "| `column` | ... |" per column; a setting}
	  . q{ and a SQLSTATE a row of the table under "## Settings" or "## Errors and SQLSTATEs")}
	  . join('', map { "\n$_ holds text still to be merged into docs/reference.md" }
		  grep { m{^docs/pending-} } @md));
ok(!@missing, 'everything docs/reference.md documents exists')
  or diag("documented in docs/reference.md but not in the catalog:\n  " . join("\n  ", @missing));
ok(!@wrong, 'what docs/reference.md says of each object is what the catalog says')
  or diag(join("\n", @wrong));

# --- (b) every SQL example, as written --------------------------------------

my ($run, @unended) = (0);
for my $file (@md)
{
	my @lines = slurp_lines("$top/$file");
	my @blocks;
	for (my $i = 0; $i < @lines; $i++)
	{
		next unless $lines[$i] =~ /^(\s*)```sql\s*$/;
		my ($indent, $start) = ($1, $i + 1);
		my $j = $i - 1;
		$j-- while $j >= 0 && $lines[$j] =~ /^\s*$/;
		my $skip = $j >= 0 && $lines[$j] =~ /<!--\s*not run:\s*\S/;
		my $text = '';
		for ($i++; $i < @lines && $lines[$i] !~ /^\s*```\s*$/; $i++)
		{
			(my $l = $lines[$i]) =~ s/^\Q$indent\E//;
			$text .= $l;
		}
		push @unended, "$file line $start" if $i >= @lines;
		push @blocks, { line => $start, sql => $text } unless $skip;
	}
	next unless @blocks;

	my $db = $dbname{$file};
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	# a file that does not create the extension itself reads as if it existed
	$node->safe_psql($db, 'CREATE EXTENSION telnyx_orders')
	  unless grep { $_->{sql} =~ /\bCREATE\s+EXTENSION\s+(IF\s+NOT\s+EXISTS\s+)?telnyx_orders\b/i } @blocks;
	for my $b (@blocks)
	{
		my ($rc, $out, $err) = $node->psql($db, $b->{sql},
			extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
		is($rc, 0, "$file line $b->{line}: the SQL block runs as written")
		  or diag($err);
		$run++;
	}
}
is(join(', ', @unended), '', 'every ```sql block ends');
cmp_ok($run, '>=', 10, "$run SQL blocks run");

$node->stop;
done_testing();
