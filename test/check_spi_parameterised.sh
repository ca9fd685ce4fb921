#!/usr/bin/env bash
#
# test/check_spi_parameterised.sh -- every SQL statement the C code runs
# through SPI is a constant: values travel as parameters ($1, $2, ...),
# never spliced into the query text.
#
# Usage: test/check_spi_parameterised.sh [SOURCE_ROOT]
#
# Scans SOURCE_ROOT/src (default: the tree holding this script), every .c
# and .h file below it, and fails, printing file:line for each offence, when
#
#   - an SPI function that takes query text (SPI_execute, SPI_exec,
#     SPI_execute_extended, SPI_execute_with_args, SPI_prepare,
#     SPI_prepare_cursor, SPI_prepare_extended, SPI_prepare_params,
#     SPI_cursor_open_with_args, SPI_cursor_parse_open) gets anything but
#     string literals as its query.  The one exception is the statement
#     runner of src/spi_plans.c, which prepares stmt->sql of a
#     CachedStatement *stmt; the rules below keep that text constant;
#   - another SPI function whose name says it executes, prepares or opens a
#     cursor appears: this check does not know whether it takes query text,
#     so it must be added to one of the two lists below;
#   - spi_run() gets anything but &name (or cond ? &name1 : &name2) of a
#     CachedStatement defined in the same file;
#   - a CachedStatement is defined without "static", or with an sql member
#     that is not string literals, or as anything but a single object;
#   - the sql member of a CachedStatement is assigned anywhere;
#   - a CachedStatement's number of arguments is not the highest $n of its
#     text.
#
# Comments and the contents of string literals are ignored when looking for
# calls.  Needs only bash and perl.  Exit status 0 when clean, 1 otherwise.

set -euo pipefail

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
root=${root%/}

exec perl -w - "$root" <<'PERL'
use strict;
use warnings;
use File::Find ();

my $root = shift @ARGV;
die "usage: check_spi_parameterised.sh [SOURCE_ROOT]: $root/src is not a directory\n"
  unless -d "$root/src";

# SPI functions that take query text, and the index of that argument
my %query_arg = (
	SPI_execute               => 0,
	SPI_exec                  => 0,
	SPI_execute_extended      => 0,
	SPI_execute_with_args     => 0,
	SPI_prepare               => 0,
	SPI_prepare_cursor        => 0,
	SPI_prepare_extended      => 0,
	SPI_prepare_params        => 0,
	SPI_cursor_open_with_args => 1,
	SPI_cursor_parse_open     => 1,
);
# SPI functions that execute or open a prepared plan, never text
my %plan_only = map { $_ => 1 } qw(
  SPI_execute_plan SPI_execute_plan_extended SPI_execute_plan_with_paramlist
  SPI_execp SPI_execute_snapshot SPI_cursor_open SPI_cursor_open_with_paramlist
);

my @files;
File::Find::find(
	{
		wanted => sub { push @files, $File::Find::name if -f $_ && /\.[ch]\z/ },
		no_chdir => 1
	},
	"$root/src");
@files = sort @files;
die "no .c or .h file under $root/src\n" unless @files;

my @offences;
my ($text_calls, $run_calls, $statements) = (0, 0, 0);

# Two views of a file, with equal offsets: $code has comments blanked
# (newlines kept); $bare also has the contents of string and character
# literals blanked, so that searching and bracket matching ignore them.
sub views
{
	my ($src) = @_;
	my ($code, $bare) = ('', '');
	my $n = length $src;
	my $i = 0;
	while ($i < $n)
	{
		my $c = substr($src, $i, 1);
		my $two = substr($src, $i, 2);
		if ($two eq '/*')
		{
			my $end = index($src, '*/', $i + 2);
			$end = $n - 2 if $end < 0;
			(my $blank = substr($src, $i, $end + 2 - $i)) =~ s/[^\n]/ /g;
			$code .= $blank;
			$bare .= $blank;
			$i = $end + 2;
		}
		elsif ($two eq '//')
		{
			my $end = index($src, "\n", $i);
			$end = $n if $end < 0;
			my $blank = ' ' x ($end - $i);
			$code .= $blank;
			$bare .= $blank;
			$i = $end;
		}
		elsif ($c eq '"' || $c eq "'")
		{
			my $j = $i + 1;
			while ($j < $n)
			{
				my $d = substr($src, $j, 1);
				if ($d eq '\\') { $j += 2; next; }
				last if $d eq $c || $d eq "\n";
				$j++;
			}
			my $lit = substr($src, $i, $j + 1 - $i);
			$code .= $lit;
			(my $inner = substr($lit, 1, length($lit) - 2)) =~ s/[^\n]/x/g;
			$bare .= $c . $inner . substr($lit, -1);
			$i = $j + 1;
		}
		else
		{
			$code .= $c;
			$bare .= $c;
			$i++;
		}
	}
	return ($code, $bare);
}

# Split the bracketed list opening at $open (an offset of "(" or "{") into
# its top-level elements; returns ([[start, end], ...], offset of the closer)
sub elements
{
	my ($bare, $open) = @_;
	my @parts;
	my $depth = 0;
	my $start = $open + 1;
	for (my $i = $open; $i < length $bare; $i++)
	{
		my $c = substr($bare, $i, 1);
		if ($c eq '(' || $c eq '[' || $c eq '{') { $depth++; }
		elsif ($c eq ')' || $c eq ']' || $c eq '}')
		{
			$depth--;
			if ($depth == 0)
			{
				push @parts, [ $start, $i ];
				return (\@parts, $i);
			}
		}
		elsif ($c eq ',' && $depth == 1)
		{
			push @parts, [ $start, $i ];
			$start = $i + 1;
		}
	}
	return (\@parts, length $bare);
}

sub trim
{
	my ($s) = @_;
	$s =~ s/\A\s+//;
	$s =~ s/\s+\z//;
	return $s;
}

# one or more adjacent string literals, maybe in parentheses
sub is_literal
{
	my ($s) = @_;
	$s = trim($s);
	$s = trim($1) while $s =~ /\A\((.*)\)\z/s;
	return $s =~ /\A(?:"(?:[^"\\\n]|\\.)*"\s*)+\z/s;
}

# the value of concatenated string literals (escapes left as they are)
sub literal_value
{
	my ($s) = @_;
	my $v = '';
	$v .= $1 while $s =~ /"((?:[^"\\\n]|\\.)*)"/gs;
	return $v;
}

sub shorten
{
	my ($s) = @_;
	$s =~ s/\s+/ /g;
	$s = trim($s);
	return length($s) > 90 ? substr($s, 0, 87) . '...' : $s;
}

for my $path (@files)
{
	open my $fh, '<', $path or die "cannot read $path: $!\n";
	my $src = do { local $/; <$fh> };
	close $fh;
	(my $rel = $path) =~ s{\A\Q$root\E/}{};
	my ($code, $bare) = views($src);
	my $line = sub { return 1 + (substr($src, 0, $_[0]) =~ tr/\n//); };
	my $offend = sub {
		my ($pos, $msg) = @_;
		push @offences, sprintf('%s:%d: %s', $rel, $line->($pos), $msg);
	};

	# CachedStatement objects defined in this file: name => 1 when static
	# and initialised with a literal
	my %stmt;
	my %ptr;
	while ($bare =~ /\bCachedStatement\b/g)
	{
		my $at = $-[0];
		my $before = substr($bare, 0, $at);
		my $after = substr($bare, $+[0]);
		# the type's own definition: "typedef struct CachedStatement" and "} CachedStatement;"
		next if $before =~ /\b(?:typedef\s+)?struct\s*\z/ || $before =~ /\}\s*\z/;
		if ($after =~ /\A\s*\*+\s*(?:const\s+)?(\w+)/)
		{
			$ptr{$1} = 1;    # a pointer: to one of the statements below
			next;
		}
		if ($after !~ /\A\s*(\w+)\s*(\[[^\]]*\])?\s*(=)?/)
		{
			$offend->($at, 'CachedStatement used in a way this check does not understand');
			next;
		}
		my ($name, $array, $init) = ($1, $2, $3);
		my $brace = $at + length('CachedStatement') + $+[0];    # just past "="
		if ($array)
		{
			$offend->($at, "CachedStatement $name: arrays of statements are not supported; define each statement on its own");
			next;
		}
		my $statement_start = rindex(substr($bare, 0, $at), ';');
		my $curly = rindex(substr($bare, 0, $at), '}');
		my $open = rindex(substr($bare, 0, $at), '{');
		$statement_start = $curly if $curly > $statement_start;
		$statement_start = $open if $open > $statement_start;
		my $qualifiers = substr($bare, $statement_start + 1, $at - $statement_start - 1);
		if ($qualifiers !~ /\bstatic\b/)
		{
			$offend->($at, "CachedStatement $name is not static");
			next;
		}
		if (!$init)
		{
			$offend->($at, "CachedStatement $name has no initialiser with its SQL text");
			next;
		}
		my $lb = index($bare, '{', $brace);
		if ($lb < 0 || trim(substr($bare, $brace, $lb - $brace)) ne '')
		{
			$offend->($at, "CachedStatement $name is not initialised with { \"SQL\", nargs, {types}, NULL }");
			next;
		}
		my ($parts) = elements($bare, $lb);
		my ($sql) = grep { substr($code, $_->[0], $_->[1] - $_->[0]) =~ /\A\s*\.sql\s*=/ } @$parts;
		my $designated = defined $sql;
		$sql //= $parts->[0];
		my $sql_text = substr($code, $sql->[0], $sql->[1] - $sql->[0]);
		$sql_text =~ s/\A\s*\.sql\s*=//;
		$statements++;
		if (!is_literal($sql_text))
		{
			$offend->($at, "CachedStatement $name: the SQL text is not a string literal: " . shorten($sql_text));
			next;
		}
		$stmt{$name} = 1;
		# its nargs is the highest $n of the text (positional initialisers only)
		if (!$designated && @$parts >= 2)
		{
			my $nargs = trim(substr($code, $parts->[1][0], $parts->[1][1] - $parts->[1][0]));
			my $max = 0;
			my $value = literal_value($sql_text);
			while ($value =~ /\$(\d+)/g) { $max = $1 if $1 > $max; }
			if ($nargs =~ /\A\d+\z/ && $nargs != $max)
			{
				$offend->($at, "CachedStatement $name: nargs is $nargs but the text uses \$$max");
			}
		}
	}

	# the sql member is never assigned (".sql =" after "{" or "," is a
	# designated initialiser)
	while ($bare =~ /(?:\.|->)\s*sql\s*=(?!=)/g)
	{
		next if substr($bare, 0, $-[0]) =~ /[{,]\s*\z/ && substr($bare, $-[0], 1) eq '.';
		$offend->($-[0], 'assignment to the sql member of a CachedStatement: its text must be a literal in its static initialiser');
	}

	# calls
	while ($bare =~ /\b(SPI_\w+|spi_run)\s*\(/g)
	{
		my ($fn, $at, $paren) = ($1, $-[0], $+[0] - 1);
		my $resume = pos($bare);
		my $before = substr($bare, 0, $at);
		# a declaration or definition, not a call: a type name comes before it
		if ($before =~ /(\w+)\s*\z/ && $1 !~ /\A(?:return|case|else|do|sizeof)\z/)
		{
			next;
		}
		my ($parts) = elements($bare, $paren);
		my @args = map { substr($code, $_->[0], $_->[1] - $_->[0]) } @$parts;
		pos($bare) = $resume;

		if ($fn eq 'spi_run')
		{
			$run_calls++;
			my $first = trim($args[0] // '');
			my @targets;
			my $s = $first;
			$s = trim($1) while $s =~ /\A\((.*)\)\z/s;
			if ($s =~ /\A&\s*(\w+)\z/) { @targets = ($1); }
			elsif ($s =~ /\A[^?]+\?\s*&\s*(\w+)\s*:\s*&\s*(\w+)\z/s) { @targets = ($1, $2); }
			if (!@targets)
			{
				$offend->($at, 'spi_run: the statement is not &name of a static CachedStatement: ' . shorten($first));
				next;
			}
			for my $t (@targets)
			{
				$offend->($at, "spi_run: $t is not a static CachedStatement with a literal SQL text in this file")
				  unless $stmt{$t};
			}
			next;
		}
		if (exists $query_arg{$fn})
		{
			$text_calls++;
			my $arg = $args[ $query_arg{$fn} ] // '';
			next if is_literal($arg);
			# the statement runner: prepares the literal of a CachedStatement
			if (trim($arg) =~ /\A(\w+)\s*->\s*sql\z/ && $ptr{$1})
			{
				next;
			}
			$offend->($at, "$fn: the query text is not a string literal: " . shorten($arg));
			next;
		}
		if (!$plan_only{$fn} && $fn =~ /exec|prepare|cursor_open|cursor_parse/i)
		{
			$offend->($at, "$fn: unknown to this check; list it in test/check_spi_parameterised.sh as taking query text or a plan");
		}
	}
}

if ($text_calls + $run_calls == 0)
{
	push @offences, "$root/src: no SPI call found at all; is this the driftlock source tree?";
}

if (@offences)
{
	print "$_\n" for @offences;
	printf "%d SPI statement(s) not parameterised or not checkable\n", scalar @offences;
	exit 1;
}
printf "SPI statements parameterised: %d CachedStatement(s) with literal SQL, %d spi_run call(s), %d call(s) with literal query text, in %d file(s)\n",
  $statements, $run_calls, $text_calls, scalar @files;
exit 0;
PERL
