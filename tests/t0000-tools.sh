#!/bin/sh
# What every tool shares: --help, --version, usage errors, write errors,
# and a man page that renders cleanly.

. "$(dirname "$0")/lib.sh"

tools=$(cd "$WF_BIN" && ls wf-* 2>/dev/null)
# Tools whose first operand is a command (wf-queue list), not a file.
subcommand_tools="wf-queue wf-emit wf-hooks"
# Tools that take no operands at all.
no_operand_tools="wf-apply wf-proc-receive"

test_expect_success 'the tools are built' '
	test -n "$tools"
'

for t in $tools; do
	test_expect_success "$t --help prints usage to stdout and exits 0" '
		$t --help >out 2>err &&
		test_grep "^usage: $t" out &&
		test ! -s err
	'

	test_expect_success "$t --version names the tool and wf" '
		$t --version >out &&
		test_grep "^$t \\(wf\\) [0-9]+\\.[0-9]+\\.[0-9]+$" out
	'

	test_expect_success "$t rejects an unknown option with exit 2" '
		test_expect_code 2 $t --no-such-option </dev/null >out 2>err &&
		test ! -s out &&
		test_grep "^$t: " err
	'

	case " $subcommand_tools " in
	*" $t "*)
		# Its first operand is a command, not a file.
		test_expect_success "$t rejects an unknown command with exit 2" '
			test_expect_code 2 $t no-such-file.json </dev/null >out 2>err &&
			test ! -s out &&
			test_grep "^$t: error: unknown command .no-such-file.json.$" err
		'
		;;
	*)
		case " $no_operand_tools " in
		*" $t "*)
		test_expect_success "$t rejects an operand with exit 2" '
			test_expect_code 2 $t no-such-file.json </dev/null >out 2>err &&
			test ! -s out &&
			test_grep "^$t: error: unexpected operand .no-such-file.json.$" err
		'
			;;
		*)
	test_expect_success "$t reports a missing input file with exit 4" '
		test_expect_code 4 $t no-such-file.json </dev/null >out 2>err &&
		test_grep "^$t: error: cannot open .no-such-file.json.: No such file or directory$" err
	'
			;;
		esac
		;;
	esac

	test_expect_success "$t has a man page that renders without warnings" '
		test -f "$WF_SRC/man/$t.1" &&
		groff -mandoc -Tutf8 -ww -z "$WF_SRC/man/$t.1" 2>err &&
		test ! -s err &&
		MANWIDTH=80 man -l "$WF_SRC/man/$t.1" >page 2>err &&
		test_grep "EXIT STATUS" page &&
		test_grep "^ +75 " page
	'

	# lib/git.c stands in for mbedTLS's CA bundle parser (13 ms of
	# start-up in every libgit2 process); libgit2 sees it only when
	# the program exports it.
	test_expect_success "$t exports the stand-in for the CA bundle parser" '
		nm -D --defined-only "$WF_BIN/$t" >syms &&
		test_grep " T mbedtls_x509_crt_parse_file$" syms
	'
done

test_done
