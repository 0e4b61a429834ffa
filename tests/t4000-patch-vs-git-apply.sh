#!/bin/sh
# lib/patch.c against git apply: for every patch of the corpus,
# "git apply --index" + "git write-tree" and wf give the same tree, or
# both refuse the patch.

. "$(dirname "$0")/lib.sh"

TP=$TEST_DIRECTORY/test-patch

# same BASE PATCH: git and wf agree on PATCH applied to BASE; prints
# "ok" or "fail" (both refused) so callers can also say which they want.
same() {
	git checkout -q -f --detach "$1" &&
	if git apply --index "$2" 2>../git.err; then
		want=$(git write-tree)
	else
		want=fail
	fi &&
	git reset -q --hard &&
	if got=$("$TP" "$1" "$2" 2>../wf.err); then
		:
	else
		rc=$? &&
		test "$rc" -eq 1 || test "$rc" -eq 3 || {
			echo "test-patch exited $rc" >&2; cat ../wf.err >&2; return 1; } &&
		got=fail
	fi &&
	if test "$want" != "$got"; then
		echo "$2 on $1: git: $want wf: $got" >&2
		cat ../git.err ../wf.err >&2
		return 1
	fi &&
	if test "$got" = fail; then echo fail; else echo ok; fi
}

# expect ok|fail BASE PATCH
expect() {
	r=$(same "$2" "$3") && test "$r" = "$1" || {
		echo "$3 on $2: wanted $1, got ${r:-a difference}" >&2
		return 1
	}
}

commit() {
	git add -A && git commit -q -m "$1" && git tag "$1"
}

test_expect_success 'setup: a repository with files of every kind' '
	git init -q repo && cd repo &&
	seq 1 30 >num && seq 1 20 | sed "s/^/line /" >text &&
	printf "one\r\ntwo\r\nthree\r\n" >crlf &&
	printf "no\nnewline" >nonl &&
	printf "#!/bin/sh\necho hi\n" >run && chmod +x run &&
	ln -s num link &&
	head -c 4000 /dev/zero | tr "\\0" x >bin && printf "\\0\\1\\2" >>bin &&
	printf "a\nb\nc\na\nb\nc\na\nb\nc\n" >rep &&
	: >empty &&
	commit base
'

test_expect_success 'modify, offsets, conflicts' '
	cd repo &&
	sed -i "s/^15$/fifteen/" num && git diff --binary >../mod.diff &&
	git checkout -q -- . &&
	expect ok base ../mod.diff &&
	{ printf "new1\nnew2\nnew3\n"; cat num; } >n && mv n num &&
	commit shifted &&
	expect ok shifted ../mod.diff &&
	sed -i "s/^14$/FOURTEEN/" num && commit conflicted &&
	expect fail conflicted ../mod.diff &&
	git checkout -q -f base &&
	sed -i -e "s/^6$/six/" -e "s/^27$/27x/" num && git diff >../two.diff &&
	git checkout -q -f shifted && sed -i "20,22d" num && commit moved &&
	expect ok moved ../two.diff
'

test_expect_success 'the nearest of several places, never over written lines' '
	cd repo && git checkout -q -f base &&
	{ seq 101 105; for k in 1 2 3; do printf "a\nb\nc\nd\ne\nf\ng\n"; done;
	  seq 106 110; } >blocks && commit blocks &&
	awk "NR == 16 { print \"D\"; next } { print }" blocks >b &&
	mv b blocks && git diff >../block.diff && git checkout -q -- . &&
	grep -q "^-d" ../block.diff && expect ok blocks ../block.diff &&
	sed -i "1,5d" blocks && commit blocks2 &&
	expect ok blocks2 ../block.diff &&
	t=$("$TP" blocks2 ../block.diff) &&
	git cat-file -p "$t:blocks" >got &&
	test "$(grep -n "^D$" got)" = "18:D" &&
	printf "a\nb\nc\nd\ne\nf\ng\nA\nb\nc\nd\ne\nf\nG\n" >blocks &&
	git diff >../twohunks.diff && git checkout -q -- . &&
	expect ok blocks ../twohunks.diff
'

test_expect_success 'renames, copies, mode changes' '
	cd repo && git checkout -q -f base &&
	git mv text text2 && sed -i "s/line 5/LINE 5/" text2 &&
	git diff --cached -M >../ren.diff && git reset -q --hard &&
	expect ok base ../ren.diff &&
	expect ok shifted ../ren.diff &&
	git mv text text3 && git diff --cached -M >../ren100.diff &&
	git reset -q --hard && expect ok base ../ren100.diff &&
	cp text textcopy && sed -i "s/line 9/nine/" textcopy && git add . &&
	git diff --cached -C --find-copies-harder >../copy.diff &&
	grep -q "^copy from text" ../copy.diff &&
	git reset -q --hard && rm -f textcopy && expect ok base ../copy.diff &&
	chmod -x run && git diff >../mode.diff && git checkout -q -- . &&
	expect ok base ../mode.diff &&
	chmod +x num && echo 31 >>num && git diff >../modeplus.diff &&
	git checkout -q -- . && chmod -x num &&
	expect ok base ../modeplus.diff &&
	printf -- "--- a/run\n+++ b/run\n@@ -1,2 +1,3 @@\n #!/bin/sh\n echo hi\n+echo there\n" >../plain.diff &&
	expect ok base ../plain.diff &&
	git ls-tree "$(r=$("$TP" base ../plain.diff) && echo $r)" run |
		grep -q "^100755 "
'

test_expect_success 'symbolic links' '
	cd repo && git checkout -q -f base &&
	rm link && ln -s text link && git diff >../link.diff &&
	git checkout -q -f -- . && expect ok base ../link.diff &&
	ln -s run link2 && git add link2 && git diff --cached >../newlink.diff &&
	git reset -q --hard && rm -f link2 && expect ok base ../newlink.diff &&
	rm num && ln -s text num && git add -A && git diff --cached >../type.diff &&
	git reset -q --hard && expect ok base ../type.diff &&
	expect fail shifted ../type.diff
'

test_expect_success 'binary: literal, delta, wrong preimage' '
	cd repo && git checkout -q -f base &&
	printf "\\0\\7" >>bin && git diff --binary >../bin.diff &&
	grep -q "^delta\\|^literal" ../bin.diff &&
	git checkout -q -- . && expect ok base ../bin.diff &&
	head -c 300 /dev/urandom >newbin && git add newbin &&
	git diff --cached --binary >../newbin.diff && git reset -q --hard &&
	rm -f newbin && expect ok base ../newbin.diff &&
	printf "\\1" >>bin && commit binmoved && expect fail binmoved ../bin.diff &&
	git rm -q bin && git diff --cached --binary >../delbin.diff &&
	git reset -q --hard && expect ok binmoved ../delbin.diff &&
	expect fail base ../delbin.diff
'

test_expect_success 'CRLF and missing newlines, byte for byte' '
	cd repo && git checkout -q -f base &&
	printf "one\r\nTWO\r\nthree\r\n" >crlf && git diff >../crlf.diff &&
	git checkout -q -- . && expect ok base ../crlf.diff &&
	tr -d "\\r" <crlf >c && mv c crlf && commit lf &&
	expect fail lf ../crlf.diff &&
	git checkout -q -f base &&
	printf "no\nnewline\n" >nonl && git diff >../addnl.diff &&
	printf "no\nNEWLINE" >nonl && git diff >../modnonl.diff &&
	git checkout -q -- . &&
	printf "no\nnewline\n" >nonl && commit withnl &&
	expect ok base ../addnl.diff && expect ok base ../modnonl.diff &&
	expect fail withnl ../modnonl.diff &&
	printf "no\nnewline" >nonl && git diff >../dropnl.diff &&
	expect ok withnl ../dropnl.diff && expect fail base ../dropnl.diff
'

test_expect_success 'add over an existing file, delete of a modified file' '
	cd repo && git checkout -q -f base &&
	echo new >fresh && git add fresh && git diff --cached >../add.diff &&
	git reset -q --hard && rm -f fresh && expect ok base ../add.diff &&
	echo other >fresh && commit hasfresh &&
	expect fail hasfresh ../add.diff &&
	git checkout -q -f base && git rm -q text && git diff --cached >../del.diff &&
	git reset -q --hard && expect ok base ../del.diff &&
	sed -i "s/line 20/twenty/" text && commit textmod &&
	expect fail textmod ../del.diff &&
	git rm -q empty && git diff --cached >../delempty.diff &&
	git reset -q --hard && expect ok base ../delempty.diff &&
	: >empty2 && git add empty2 && git diff --cached >../addempty.diff &&
	git reset -q --hard && rm -f empty2 && expect ok base ../addempty.diff
'

test_expect_success 'a hunk without context, and fuzz only when asked' '
	cd repo && git checkout -q -f base &&
	sed -i "s/^10$/ten/" num && git diff -U0 >../u0.diff &&
	git checkout -q -- . && expect fail base ../u0.diff &&
	git checkout -q -f shifted && sed -i "s/^13$/thirteen/" num &&
	commit fuzzy && expect fail fuzzy ../mod.diff &&
	"$TP" --fuzz 2 fuzzy ../mod.diff >tree &&
	git cat-file -p "$(cat tree):num" | grep -qx fifteen
'

test_expect_success 'real patches: the history of this project, crossed' '
	if ! git -C "$WF_SRC" rev-parse -q --verify HEAD~5 >/dev/null 2>&1; then
		echo "no history to use: skipped" >&2; exit 0
	fi &&
	git clone -q "$WF_SRC" real && cd real &&
	for k in 0 1 2 3 4 5; do git rev-parse "HEAD~$k" || exit 1; done >../ids &&
	oks=0 && fails=0 &&
	for i in 1 2 3 4 5; do
		new=$(sed -n "${i}p" ../ids) && old=$(sed -n "$((i + 1))p" ../ids) &&
		git diff --binary -M "$old" "$new" >../real$i.diff || exit 1
		for base in $(cat ../ids); do
			r=$(same "$base" ../real$i.diff) || exit 1
			if test "$r" = ok; then oks=$((oks + 1)); else fails=$((fails + 1)); fi
		done
		expect ok "$old" ../real$i.diff || exit 1
		# The same patch on its base with lines added above and
		# inside every file it modifies: offsets on real code.
		git checkout -q -f --detach "$old" &&
		for f in $(git diff --name-only --diff-filter=M "$old" "$new"); do
			awk "NR == 1 || NR == 40 { print \"/* moved */\" } { print }" \
				"$f" >../moved && cat ../moved >"$f" || exit 1
		done &&
		git commit -q -a --allow-empty -m moved && moved=$(git rev-parse HEAD) &&
		r=$(same "$moved" ../real$i.diff) || exit 1
		if test "$r" = ok; then oks=$((oks + 1)); else fails=$((fails + 1)); fi
	done &&
	echo "$oks applied, $fails refused" >&2 &&
	test "$oks" -gt 5 && test "$fails" -gt 0
'

test_done
