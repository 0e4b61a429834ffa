#!/bin/sh
# wf-apply: queued changes land on a real repository, built in memory.

. "$(dirname "$0")/lib.sh"

# A line of the output: the fields that do not change from run to run.
states() {
	sed -e 's/"commit":"[0-9a-f]*"/"commit":C/' "$@"
}

test_expect_success 'setup: a repository, and a clone to compare with' '
	git init -q repo &&
	(
		cd repo &&
		seq 1 40 >f && seq 1 40 >g && seq 1 40 >h &&
		echo "read me" >README &&
		git add . && git commit -q -m base && git repack -adq
	) &&
	git clone -q repo ref
'

# mkpatch NAME FILE SED: a patch of FILE edited by SED, against main.
mkpatch() {
	(
		cd ref &&
		git checkout -q -f origin/main 2>/dev/null || git checkout -q -f main
		sed -i "$3" "$2" && git diff >"../$1" && git checkout -q -f "$2"
	)
}

test_expect_success 'disjoint patches land in queue order, one commit each' '
	mkpatch p1 f 3s/3/three/ &&
	mkpatch p2 g 10s/10/ten/ &&
	mkpatch p3 h 30s/30/thirty/ &&
	(
		cd repo &&
		wf-enqueue --patch ../p1 --id p/1 --target main \
			--author "P One <one@example.com>" --message "Edit f" &&
		wf-enqueue --patch ../p2 --id p/2 --target main &&
		wf-enqueue --patch ../p3 --id p/3 --target main
	) >/dev/null &&
	(cd repo && wf-apply) >out &&
	cat >expect <<-\EOF &&
	{"id":"p/1","queue_id":1,"state":"landed","commit":C,"target":"main"}
	{"id":"p/2","queue_id":2,"state":"landed","commit":C,"target":"main"}
	{"id":"p/3","queue_id":3,"state":"landed","commit":C,"target":"main"}
	EOF
	states out >actual &&
	test_cmp expect actual &&
	git -C repo log --format="%an|%s|%(trailers:key=Queue-Id,valueonly,separator=)" main >log &&
	cat >expect <<-\EOF &&
	A U Thor|Apply p/3|p/3
	A U Thor|Apply p/2|p/2
	P One|Edit f|p/1
	A U Thor|base|
	EOF
	test_cmp expect log &&
	test "$(sed -n 3p out | sed "s/.*\"commit\":\"\([0-9a-f]*\)\".*/\1/")" = \
		"$(git -C repo rev-parse main)" &&
	(cd ref && git apply --index ../p1 ../p2 ../p3 && git write-tree) >want &&
	git -C repo rev-parse "main^{tree}" >have &&
	test_cmp want have &&
	git -C repo reflog -1 --format=%gs main >reflog &&
	echo "wf-apply: land p/1 p/2 p/3" >expect &&
	test_cmp expect reflog
'

test_expect_success 'objects are written as one pack, no loose objects' '
	git -C repo count-objects -v >counts &&
	test_grep "^count: 0$" counts
'

test_expect_success 'nothing queued: nothing written, exit 0' '
	(cd repo && wf-apply --once) >out &&
	test ! -s out
'

test_expect_success 'overlapping patches land at an offset, as git apply' '
	git -C ref fetch -q &&
	git -C ref checkout -q -f origin/main &&
	mkpatch o1 f "1i top1\ntop2\ntop3" &&
	mkpatch o2 f "30s/30/thirty/" &&
	(
		cd repo &&
		wf-enqueue --patch ../o1 --id o/1 --target main &&
		wf-enqueue --patch ../o2 --id o/2 --target main
	) >/dev/null &&
	(cd repo && wf-apply) >out &&
	test $(grep -c "\"state\":\"landed\"" out) -eq 2 &&
	(cd ref && git apply --index ../o1 && git apply --index ../o2 &&
		git write-tree) >want &&
	git -C repo rev-parse "main^{tree}" >have &&
	test_cmp want have &&
	git -C repo show main:f | sed -n "1p;33p" >lines &&
	printf "top1\nthirty\n" >expect &&
	test_cmp expect lines
'

test_expect_success 'a conflict fails, is retried, then is dead (exit 1)' '
	git -C ref fetch -q &&
	mkpatch c1 g "20s/20/twenty/" &&
	mkpatch c2 g "20s/20/TWENTY/" &&
	(
		cd repo &&
		wf-enqueue --patch ../c1 --id c/1 --target main &&
		wf-enqueue --patch ../c2 --id c/2 --target main \
			--max-attempts 2
	) >/dev/null &&
	(cd repo && test_expect_code 1 wf-apply --retry-delay 0) >out &&
	states out >actual &&
	cat >expect <<-\EOF &&
	{"id":"c/1","queue_id":6,"state":"landed","commit":C,"target":"main"}
	{"id":"c/2","queue_id":7,"state":"failed","error":"file '"'"'g'"'"': hunk #1 (@@ -17,7 +17,7 @@) does not apply","target":"main"}
	{"id":"c/2","queue_id":7,"state":"dead","error":"file '"'"'g'"'"': hunk #1 (@@ -17,7 +17,7 @@) does not apply","target":"main"}
	EOF
	test_cmp expect actual &&
	(cd repo && wf-queue show c/2) >show &&
	test_grep "dead" show
'

test_expect_success 'a failed change waits for its retry delay' '
	git -C ref fetch -q &&
	mkpatch w1 h "5s/5/five/" &&
	mkpatch w2 h "5s/5/FIVE/" &&
	(
		cd repo &&
		wf-enqueue --patch ../w1 --id w/1 --target main &&
		wf-enqueue --patch ../w2 --id w/2 --target main
	) >/dev/null &&
	(cd repo && test_expect_code 1 wf-apply --retry-delay 1h) >out &&
	test $(wc -l <out) -eq 2 &&
	test_grep "\"id\":\"w/2\",\"queue_id\":9,\"state\":\"failed\"" out &&
	(cd repo && wf-apply) >out2 &&
	test ! -s out2
'

test_expect_success 'a commit range is replayed on the moved tip, authors kept' '
	(
		cd ref &&
		git fetch -q && git checkout -q -b topic origin/main &&
		echo one >>README &&
		git commit -q -am "topic one" --author="T One <t1@example.com>" &&
		echo two >>README &&
		git commit -q -am "topic two" --author="T Two <t2@example.com>"
	) &&
	git -C repo fetch -q ../ref topic:topic &&
	(cd repo && wf-enqueue --commits main..topic --id r/1 --target main &&
		echo new >n && git add n && git commit -q -m "main moves" &&
		git reset -q --hard) >/dev/null &&
	(cd repo && wf-apply) >out &&
	test $(grep -c "\"state\":\"landed\"" out) -eq 1 &&
	git -C repo log -3 --format="%an|%s|%(trailers:key=Queue-Id,valueonly,separator=)" main >log &&
	cat >expect <<-\EOF &&
	T Two|topic two|r/1
	T One|topic one|r/1
	A U Thor|main moves|
	EOF
	test_cmp expect log &&
	git -C repo show main:README >readme &&
	printf "read me\none\ntwo\n" >expect &&
	test_cmp expect readme
'

test_expect_success 'a tar of files adds, replaces and deletes whole files' '
	mkdir t t/sub &&
	echo fresh >t/new && echo replaced >t/README && seq 1 30000 >t/big &&
	printf "#!/bin/sh\n" >t/sub/run && chmod +x t/sub/run &&
	: >t/.wh.g &&
	(cd t && tar cf ../files.tar new README big sub/run .wh.g) &&
	(cd repo && wf-enqueue --tar ../files.tar --id t/1 --target main) \
		>/dev/null &&
	(cd repo && wf-apply) >out &&
	test_grep "\"id\":\"t/1\",\"queue_id\":[0-9]+,\"state\":\"landed\"" out &&
	git -C repo ls-tree -r main >tree &&
	test_grep "^100755 blob [0-9a-f]*	sub/run$" tree &&
	! grep "	g$" tree &&
	git -C repo show main:new main:README >content &&
	printf "fresh\nreplaced\n" >expect &&
	test_cmp expect content &&
	git -C repo show main:big >big &&
	test_cmp t/big big
'

test_expect_success 'a change lands after the change it depends on, in its batch' '
	git -C ref fetch -q && git -C ref checkout -q -f origin/main &&
	mkpatch d1 f "s/^12$/twelve/" &&
	mkpatch d2 f "s/^25$/twenty-five/" &&
	(
		cd repo &&
		wf-enqueue --patch ../d2 --id d/2 --target main \
			--depends-on d/1 --priority 5 &&
		wf-enqueue --patch ../d1 --id d/1 --target main
	) >/dev/null &&
	(cd repo && wf-apply --progress=text) >out 2>err &&
	sed -e "s/,\"queue_id.*//" out >actual &&
	cat >expect <<-\EOF &&
	{"id":"d/1"
	{"id":"d/2"
	EOF
	test_cmp expect actual &&
	test $(grep -c "leased 2 changes$" err) -eq 1 &&
	git -C repo log -2 --format=%s main >log &&
	printf "Apply d/2\nApply d/1\n" >expect &&
	test_cmp expect log
'

test_expect_success 'two targets, two workers' '
	git -C repo branch other main &&
	git -C ref fetch -q && git -C ref checkout -q -f origin/main &&
	mkpatch m1 h "1s/1/one/" &&
	(
		cd repo &&
		wf-enqueue --patch ../m1 --id m/main --target main &&
		wf-enqueue --patch ../m1 --id m/other --target other
	) >/dev/null &&
	(cd repo && wf-apply --workers 2 --target main --target other) >out &&
	test $(grep -c "\"state\":\"landed\"" out) -eq 2 &&
	test_grep "\"id\":\"m/other\".*\"target\":\"other\"" out &&
	test "$(git -C repo show main:h | head -1)" = one &&
	test "$(git -C repo show other:h | head -1)" = one
'

test_expect_success 'the packs written are valid: git verify-pack, git fsck' '
	for idx in repo/.git/objects/pack/pack-*.idx; do
		git verify-pack "$idx" || exit 1
	done &&
	git -C repo fsck --strict --no-dangling >fsck 2>&1 &&
	! grep -v "^Checking" fsck
'

test_expect_success 'usage errors exit 2, bad input 3' '
	(cd repo &&
	test_expect_code 2 wf-apply --batch 0 &&
	test_expect_code 2 wf-apply --once --watch &&
	test_expect_code 2 wf-apply --check-timeout 5x &&
	test_expect_code 2 wf-apply --progress=xml &&
	test_expect_code 2 wf-apply extra &&
	test_expect_code 2 wf-apply --nope &&
	test_expect_code 3 wf-apply --target nosuch) 2>err &&
	test_grep "^wf-apply: error: no branch .nosuch.$" err &&
	(cd repo && git checkout -q --detach && test_expect_code 3 wf-apply \
		&& git checkout -q main) 2>err &&
	test_grep "HEAD is not on a branch" err &&
	wf-apply --help >help &&
	test_grep "^usage: wf-apply" help
'

test_expect_success 'the examples of the man page run as written' '
	git init -q ex &&
	(cd ex && echo hi >README && git add . && git commit -q -m one) &&
	git clone -q ex ex2 &&
	(cd ex2 && echo more >>README && git diff) >ex.diff &&
	(cd ex && wf-enqueue --patch ../ex.diff --id ex/1 --target main) \
		>/dev/null &&
	awk -f "$TEST_DIRECTORY/examples.awk" "$WF_SRC/man/wf-apply.1" &&
	test $(ls example*.sh | wc -l) -eq 5 &&
	for f in example*.sh; do
		(cd ex && sh ../$f) >out 2>err ||
		{ echo "$f failed:"; cat $f out err; exit 1; }
	done &&
	test "$(git -C ex show main:README)" = "hi
more"
'

test_expect_success 'a checked-out branch takes its work tree along, as updateInstead' '
	test -z "$(git -C repo status --porcelain --untracked-files=no)" &&
	git -C ref fetch -q && git -C ref checkout -q -f origin/main &&
	mkpatch u1 h "s/^15$/fifteen/" &&
	(cd repo && wf-enqueue --patch ../u1 --id u/1 --target main &&
		wf-apply) >/dev/null &&
	test -z "$(git -C repo status --porcelain --untracked-files=no)" &&
	test_grep "^fifteen$" repo/h &&
	git -C repo diff --quiet HEAD
'

test_expect_success 'local changes in that work tree: nothing moves, nothing is lost' '
	git -C ref fetch -q && git -C ref checkout -q -f origin/main &&
	mkpatch u2 h "s/^17$/seventeen/" &&
	echo "local edit" >>repo/README &&
	before=$(git -C repo rev-parse main) &&
	(cd repo && wf-enqueue --patch ../u2 --id u/2 --target main >/dev/null &&
		test_expect_code 3 wf-apply) 2>err &&
	test_grep "checked out in .*, which has local changes \\(.README.\\)" err &&
	test "$(git -C repo rev-parse main)" = "$before" &&
	test_grep "local edit" repo/README &&
	(cd repo && wf-queue show u/2) >show &&
	test_grep "\"state\":\"queued\"" show &&
	git -C repo checkout -q README &&
	(cd repo && wf-apply) >/dev/null &&
	test_grep "^seventeen$" repo/h &&
	test -z "$(git -C repo status --porcelain --untracked-files=no)"
'

test_expect_success 'a branch checked out in a linked work tree follows there too' '
	git -C repo branch -f side main &&
	git -C repo worktree add -q ../side-wt side &&
	git -C ref fetch -q && git -C ref checkout -q -f origin/main &&
	mkpatch u3 f "s/^20$/twenty/" &&
	(cd repo && wf-enqueue --patch ../u3 --id u/3 --target side &&
		wf-apply --target side) >/dev/null &&
	test_grep "^twenty$" side-wt/f &&
	test -z "$(git -C side-wt status --porcelain --untracked-files=no)"
'

test_done
