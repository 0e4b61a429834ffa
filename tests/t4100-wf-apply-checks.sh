#!/bin/sh
# wf-apply: checks, bisection, timeouts, a branch that moves, leases.

. "$(dirname "$0")/lib.sh"

# files_req ID PATH CONTENT: a request adding one file.
files_req() {
	printf '{"id": "%s", "target": "main", "kind": "files", "message": "Add %s", "files": [{"path": "%s", "content": "%s"}]}\n' \
		"$1" "$2" "$2" "$(printf '%s\n' "$3" | base64)"
}

# enqueue_n P N MARKER BAD...: changes P0..P(N-1) adding new/PI; the
# BAD ones hold MARKER.
enqueue_n() {
	p=$1 n=$2 marker=$3
	shift 3
	i=0
	while [ $i -lt $n ]; do
		content="good $i"
		for b in "$@"; do
			[ "$b" = $i ] && content="$marker $i"
		done
		files_req $p$i new/$p$i "$content"
		i=$((i + 1))
	done | (cd repo && wf-enqueue) >/dev/null
}

test_expect_success 'setup' '
	git init -q repo &&
	(cd repo && echo base >README && git add . && git commit -q -m base) &&
	cat >check.sh <<-EOF &&
	echo "\$WF_TREE" >>"$TRASH/trees"
	if grep -rl BAD .; then echo "\$WF_TREE fail" >>"$TRASH/results"; exit 1; fi
	echo "\$WF_TREE pass" >>"$TRASH/results"
	EOF
	git -C repo rev-parse main >start
'

test_expect_success 'a failing batch is bisected: the culprit fails, the rest land' '
	enqueue_n c 8 BAD 5 &&
	(cd repo && test_expect_code 1 wf-apply --check "sh $TRASH/check.sh" \
		--retry-delay 1h --progress=text) >out 2>err &&
	test $(grep -c "\"state\":\"landed\"" out) -eq 7 &&
	test_grep "^\{\"id\":\"c5\",\"queue_id\":6,\"state\":\"failed\",\"error\":\"check .sh [^ ]*check.sh. failed \(exit status 1\):\\\\n\./new/c5\\\\n\",\"target\":\"main\"\}$" out &&
	test_grep "bisecting 8 changes" err &&
	test $(wc -l <trees) -le 8 &&
	git -C repo ls-tree --name-only main:new >names &&
	printf "c0\nc1\nc2\nc3\nc4\nc6\nc7\n" >expect &&
	test_cmp expect names &&
	(cd repo && wf-queue show c5) >show &&
	test_grep "new/c5" show
'

test_expect_success 'the branch only ever took checked trees' '
	git -C repo log -g --format=%H main >values &&
	while read c; do
		test "$c" = "$(cat start)" && continue
		t=$(git -C repo rev-parse "$c^{tree}") &&
		grep -q "^$t pass$" results || { echo "unchecked $c"; exit 1; }
	done <values
'

test_expect_success 'the checks of git config wf.<branch>.check run' '
	git -C repo config --add wf.main.check "test -f README" &&
	git -C repo config --add wf.main.check "sh $TRASH/check.sh" &&
	files_req k/1 k1 "fine" >reqs &&
	files_req k/2 k2 "BAD" >>reqs &&
	(cd repo && wf-enqueue ../reqs) >/dev/null &&
	(cd repo && test_expect_code 1 wf-apply --batch 2 \
		--retry-delay 1h) >out &&
	test_grep "\"id\":\"k/1\",.*\"state\":\"landed\"" out &&
	test_grep "\"id\":\"k/2\",.*\"state\":\"failed\",\"error\":\"check .sh " out &&
	git -C repo config --unset-all wf.main.check
'

test_expect_success 'the checks see the batch: WF_* and its objects' '
	cat >env.sh <<-EOF &&
	git --git-dir="\$WF_GIT_DIR" cat-file -e "\$WF_HEAD^{tree}" &&
	test "\$(git --git-dir="\$WF_GIT_DIR" rev-parse "\$WF_HEAD^{tree}")" = "\$WF_TREE" &&
	test "\$(git --git-dir="\$WF_GIT_DIR" rev-parse main)" = "\$WF_BASE" &&
	echo "\$WF_TARGET|\$WF_QUEUE_IDS" >"$TRASH/env"
	EOF
	files_req e/1 e1 one >reqs &&
	files_req e/2 e2 two >>reqs &&
	(cd repo && wf-enqueue ../reqs) >/dev/null &&
	(cd repo && wf-apply --check "sh $TRASH/env.sh") >out &&
	test $(grep -c landed out) -eq 2 &&
	echo "main|e/1 e/2" >expect &&
	test_cmp expect env
'

test_expect_success 'a hanging check is killed at its timeout, with its children' '
	cat >hang.sh <<-EOF &&
	if grep -rq HANG .; then
		(sleep 1.5; touch "$TRASH/survived") &
		sleep 60
	fi
	EOF
	enqueue_n h 3 HANG 1 &&
	start=$(date +%s) &&
	(cd repo && test_expect_code 1 wf-apply --check "sh $TRASH/hang.sh" \
		--check-timeout 500ms --retry-delay 1h) >out 2>err &&
	test $(($(date +%s) - start)) -lt 20 &&
	test $(grep -c landed out) -eq 2 &&
	test_grep "\"id\":\"h1\",.*\"state\":\"failed\",\"error\":\"check .sh [^ ]*hang.sh. timed out after [0-9]+ ms\"" out &&
	sleep 1.5 &&
	test ! -e survived
'

test_expect_success 'the branch moved by someone else mid-batch: built and checked again' '
	cat >move.sh <<-EOF &&
	echo "\$WF_BASE" >>"$TRASH/bases"
	test -e "$TRASH/moved" && exit 0
	touch "$TRASH/moved"
	export GIT_DIR="\$WF_GIT_DIR" GIT_INDEX_FILE="$TRASH/other-index"
	git read-tree main &&
	b=\$(echo outside | git hash-object -w --stdin) &&
	git update-index --add --cacheinfo 100644,\$b,outside &&
	c=\$(git commit-tree -p main -m outside \$(git write-tree)) &&
	git update-ref refs/heads/main \$c
	EOF
	# A push behind its back leaves a work tree behind its branch,
	# which wf then refuses to move: check out no branch here.
	git -C repo checkout -q --detach &&
	files_req mv/1 mv1 one >reqs &&
	files_req mv/2 mv2 two >>reqs &&
	(cd repo && wf-enqueue ../reqs) >/dev/null &&
	(cd repo && wf-apply --target main --check "sh $TRASH/move.sh" \
		--progress=text) >out 2>err &&
	git -C repo checkout -q -f main &&
	test $(grep -c landed out) -eq 2 &&
	test_grep "the branch moved; building again" err &&
	git -C repo log -3 --format=%s main >log &&
	printf "Add mv2\nAdd mv1\noutside\n" >expect &&
	test_cmp expect log &&
	test $(sort -u bases | wc -l) -eq 2 &&
	test "$(tail -1 bases)" = "$(git -C repo rev-parse main~2)"
'

test_expect_success 'leases are extended while a long check runs' '
	files_req l/1 l1 one | (cd repo && wf-enqueue) >/dev/null &&
	(cd repo && wf-apply --lease 1s --check "sleep 2.5 && wf-queue --db \
		\"\$WF_GIT_DIR/wf/queue.db\" reclaim >\"$TRASH/reclaim\"") >out &&
	test_grep "\"id\":\"l/1\",.*\"state\":\"landed\"" out &&
	cat reclaim &&
	test_grep "^\{\"reclaimed\":0\}$" reclaim &&
	(cd repo && wf-queue show l/1) >show &&
	! grep "lease expired" show &&
	test_grep "\"attempts\":1," show
'

test_expect_success '--watch lands what comes and stops cleanly on SIGTERM' '
	(cd repo && exec wf-apply --watch >"$TRASH/watch.out" 2>"$TRASH/watch.err") &
	pid=$! &&
	sleep 0.5 &&
	files_req wa/1 wa1 one | (cd repo && wf-enqueue) >/dev/null &&
	i=0 &&
	while ! grep -q landed watch.out && [ $i -lt 100 ]; do
		sleep 0.1; i=$((i + 1))
	done &&
	kill -TERM $pid &&
	wait $pid &&
	test_grep "\"id\":\"wa/1\",.*\"state\":\"landed\"" watch.out &&
	test ! -s watch.err
'

test_done
