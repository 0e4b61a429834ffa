#!/bin/sh
# wf-apply: nothing lands twice.  A change the branch has already (the
# same diff under another id, a commit picked again) is reported as
# already applied, with the commit that has it, and writes no commit.

. "$(dirname "$0")/lib.sh"

# field NAME: the value of string field NAME in the one line on stdin.
field() {
	sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"
}

test_expect_success 'setup: a bare repository and a clone to make changes in' '
	git init -q --bare -b main repo &&
	git clone -q repo work 2>/dev/null &&
	(
		cd work &&
		seq 1 30 >f && seq 1 30 >g &&
		git add . && git commit -q -m base && git push -q origin main &&
		sed -i s/^5$/five/ f && git diff >../mod.patch &&
		git checkout -q f &&
		echo new >n && git add n && git diff --cached >../add.patch &&
		git reset -q && rm n &&
		sed -i s/^20$/twenty/ g && git diff >../g.patch && git checkout -q g
	) &&
	(
		cd repo &&
		wf-enqueue --patch ../mod.patch --id m/1 --target main &&
		wf-enqueue --patch ../add.patch --id a/1 --target main &&
		wf-apply
	) >out &&
	test $(grep -c "\"state\":\"landed\"" out) = 2 &&
	! grep already_applied out
'

test_expect_success 'the same diff under a new id: already applied, no commit' '
	before=$(git -C repo rev-parse main) &&
	has=$(git -C repo log -1 --format=%H --grep="Queue-Id: m/1" main) &&
	(cd repo && wf-enqueue --patch ../mod.patch --id m/2 --target main &&
		wf-apply --progress=text) >out 2>err &&
	test_grep "\"id\":\"m/2\".*\"state\":\"landed\".*\"already_applied\":true" out &&
	test "$(grep m/2 out | field commit)" = "$has" &&
	test "$(git -C repo rev-parse main)" = "$before" &&
	test_grep "m/2. changes nothing: $(echo $has | cut -c1-12) has it" err &&
	(cd repo && wf-queue show m/2) >show &&
	test_grep "already applied" show &&
	test_grep "$has" show
'

test_expect_success 'a new file queued again is taken, and changes nothing' '
	before=$(git -C repo rev-parse main) &&
	has=$(git -C repo log -1 --format=%H --grep="Queue-Id: a/1" main) &&
	(cd repo && wf-enqueue --patch ../add.patch --id a/2 --target main &&
		wf-apply) >out &&
	test_grep "\"id\":\"a/2\".*\"already_applied\":true" out &&
	test "$(grep a/2 out | field commit)" = "$has" &&
	test "$(git -C repo rev-parse main)" = "$before"
'

test_expect_success 'a file that is there for another reason is still refused' '
	(
		cd work && git pull -q origin main &&
		echo other >n2 && git add n2 && git diff --cached >../n2.patch &&
		echo else >n2 && git add n2 && git commit -q -m "n2 by hand" &&
		git push -q origin main
	) &&
	(cd repo && test_expect_code 3 wf-enqueue --patch ../n2.patch \
		--id n/1 --target main) 2>err &&
	test_grep "file .n2. already exists in target .main." err
'

test_expect_success 'a commit picked again: skipped as git rebase skips it' '
	before=$(git -C repo rev-parse main) &&
	has=$(git -C repo log -1 --format=%H --grep="Queue-Id: m/1" main) &&
	(
		cd work &&
		git checkout -q -b again $(git rev-list --max-parents=0 HEAD) &&
		sed -i s/^5$/five/ f && git commit -q -am "five again" &&
		git push -q origin again
	) &&
	(cd repo && wf-enqueue --commits main..again --id c/1 --target main &&
		wf-apply) >out &&
	test_grep "\"id\":\"c/1\".*\"already_applied\":true" out &&
	test "$(grep c/1 out | field commit)" = "$has" &&
	test "$(git -C repo rev-parse main)" = "$before"
'

test_expect_success 'a range with one change there and one new lands one commit' '
	before=$(git -C repo rev-parse main) &&
	(
		cd work && git checkout -q again &&
		sed -i s/^25$/twenty-five/ g && git commit -q -am "g 25" &&
		git push -q origin again
	) &&
	(cd repo && wf-enqueue --commits main..again --id c/2 --target main &&
		wf-apply) >out &&
	test_grep "\"id\":\"c/2\",.*\"state\":\"landed\"" out &&
	! grep already_applied out &&
	test "$(git -C repo rev-list --count $before..main)" = 1 &&
	git -C repo log -1 --format=%s main >subject &&
	echo "g 25" >expect && test_cmp expect subject
'

test_expect_success 'twice in one batch: one commit, both ids landed' '
	before=$(git -C repo rev-parse main) &&
	(
		cd work && git fetch -q origin && git checkout -q -f origin/main &&
		sed -i s/^20$/twenty/ g && git diff >../g2.patch && git checkout -q g
	) &&
	(cd repo && wf-enqueue --patch ../g2.patch --id b/1 --target main &&
		wf-enqueue --patch ../g2.patch --id b/2 --target main &&
		wf-apply) >out &&
	test "$(git -C repo rev-list --count $before..main)" = 1 &&
	test "$(grep b/1 out | field commit)" = "$(git -C repo rev-parse main)" &&
	test "$(grep b/2 out | field commit)" = "$(git -C repo rev-parse main)" &&
	test_grep "\"id\":\"b/2\".*\"already_applied\":true" out &&
	! grep "\"id\":\"b/1\".*already_applied" out
'

test_expect_success 'a patch that does not apply and is not there fails' '
	(
		cd work && git fetch -q origin && git checkout -q -f origin/main &&
		sed -i s/^7$/seven/ f && git diff >../f7.patch && git checkout -q f &&
		sed -i s/^7$/SEVEN/ f && git commit -q -am "7 by hand" &&
		git push -q origin HEAD:main
	) &&
	(cd repo && wf-enqueue --patch ../f7.patch --id x/1 --target main &&
		test_expect_code 1 wf-apply) >out &&
	test_grep "\"id\":\"x/1\".*\"state\":\"failed\"" out &&
	! grep already_applied out
'

# The branch side of "already there": a commit's patch id as git
# patch-id --stable gives it for git's diff of the commit (without the
# rename scores, which libgit2 computes its own way), with and without
# renames, on every kind of text change, and on recent history.  The
# diff is git's --binary one, as patches are queued: git patch-id hashes
# a binary file's abbreviated ids, which --binary writes in full.
noscore() {
	grep -v "^similarity index \|^dissimilarity index "
}

ids_agree() {
	for c in $(git -C "$1" rev-list --first-parent --no-merges --max-count=$2 HEAD); do
		git -C "$1" rev-parse -q --verify $c^ >/dev/null || continue
		plain=$(git -C "$1" show --binary --no-renames --format= $c |
			noscore |
			git patch-id --stable | cut -c1-40)
		renamed=$(git -C "$1" show --binary -M --format= $c | noscore |
			git patch-id --stable | cut -c1-40)
		test -n "$plain" || continue
		test -n "$renamed" || renamed=$plain
		echo "$plain $renamed" >expect.id &&
		(cd "$1" && "$TEST_DIRECTORY/test-patch" --commit-id $c) >actual.id &&
		test_cmp expect.id actual.id || { echo "commit $c" >&2; return 1; }
	done
}

test_expect_success 'patch ids of commits are git patch-id --stable ones' '
	git init -q ids && cd ids &&
	seq 1 50 >a && printf "x\n\ty  \n" >"sp ace" && git add . &&
	git commit -q -m one &&
	sed -i "s/^10$/ten/;s/^40$/forty/" a && git commit -q -am edit &&
	git mv a b && git commit -q -m rename &&
	git mv b c && sed -i s/^20$/twenty/ c && git commit -q -am "rename, edit" &&
	chmod +x c && git commit -q -am mode &&
	ln -s c link && git add link && git commit -q -m link &&
	git rm -q "sp ace" && git commit -q -m delete &&
	printf "%s\n" if "	indented" fi >d && git add d && git commit -q -m d &&
	printf "%s\n" if "	indented" fi if "	indented" fi >d && git commit -q -am dd &&
	printf "x\0y\n" >bin && echo more >>d && git add . &&
	git commit -q -m "binary and text" &&
	ids_agree . 20
'

test_expect_success 'and on the recent history of this project' '
	top=$(git -C "$TEST_DIRECTORY" rev-parse --show-toplevel) &&
	ids_agree "$top" 60
'

test_done
