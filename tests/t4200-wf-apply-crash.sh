#!/bin/sh
# wf-apply killed with -9 at random moments and started again: nothing
# lost, nothing landed twice, the repository and the queue agree.

. "$(dirname "$0")/lib.sh"

N=200

# A random number below $1.
random() {
	echo $(( $(od -An -N2 -tu2 /dev/urandom) % $1 ))
}

test_expect_success "setup: $N changes queued" '
	git init -q --bare repo.git &&
	git init -q work &&
	(cd work && echo base >README && git add . && git commit -q -m base &&
		git push -q ../repo.git main) &&
	i=0 &&
	while [ $i -lt $N ]; do
		# Every tenth one edits README, the others add a file.
		if [ $((i % 10)) -eq 9 ]; then
			printf "{\"id\": \"x/%d\", \"target\": \"main\", \"kind\": \"files\", \"files\": [{\"path\": \"f/%d\", \"content\": \"aGkK\"}, {\"path\": \"README\", \"content\": \"%s\"}]}\n" \
				$i $i "$(printf "base %d\n" $i | base64)"
		else
			printf "{\"id\": \"x/%d\", \"target\": \"main\", \"kind\": \"files\", \"files\": [{\"path\": \"f/%d\", \"content\": \"aGkK\"}]}\n" $i $i
		fi
		i=$((i + 1))
	done >reqs &&
	(cd repo.git && wf-enqueue ../reqs) >/dev/null &&
	test $(wc -l <reqs) -eq $N
'

test_expect_success 'killed at random moments, restarted until the queue is empty' '
	runs=0 kills=0 &&
	while :; do
		runs=$((runs + 1)) &&
		test $runs -le 400 || { echo "did not drain"; exit 1; }
		batch=$(( $(random 8) + 1 )) &&
		if [ $(random 2) -eq 0 ]; then check=true; else check=:; fi &&
		(cd repo.git && exec wf-apply --once --batch $batch \
			--retry-delay 0 --check "$check" --progress=json \
			>>"$TRASH/out" 2>>"$TRASH/err") &
		pid=$! &&
		# Later runs live longer, so the queue drains for sure.
		sleep $(awk "BEGIN { print ($(random 40) + 2 * $runs) / 1000 }") &&
		if kill -9 $pid 2>/dev/null; then
			kills=$((kills + 1))
		fi
		wait $pid
		rc=$?
		# Killed (137), or done: ok (0); anything else is a failure.
		case $rc in
		0|137) ;;
		*) echo "wf-apply exited $rc"; grep -v "^{" err; exit 1;;
		esac
		# Done when a run ended by itself with nothing left.
		if [ $rc -eq 0 ] &&
		   (cd repo.git && wf-queue list --state landed) | test $(wc -l) -eq $N; then
			break
		fi
	done &&
	echo "$runs runs, $kills kills, landed by recovery:" \
		$(grep "\"event\":\"recover\"" err | grep -vc "\"landed\":0") &&
	test $kills -ge 10
'

test_expect_success 'no checkout of a killed run is left behind' '
	test -z "$(ls -A "$TMPDIR")"
'

test_expect_success 'every change landed exactly once' '
	git -C repo.git log --format="%(trailers:key=Queue-Id,valueonly,separator=)" main |
		grep . | sort >landed &&
	sed -e "s/.*\"id\": \"\([^\"]*\)\".*/\1/" reqs | sort >ids &&
	test_cmp ids landed &&
	test $(git -C repo.git rev-list --count main) -eq $((N + 1))
'

test_expect_success 'the tree holds every change' '
	git -C repo.git ls-tree --name-only main:f | wc -l >count &&
	echo $N >expect &&
	test_cmp expect count
'

test_expect_success 'git fsck is clean' '
	git -C repo.git fsck --no-dangling >fsck 2>&1 &&
	! grep -v "^Checking" fsck
'

test_expect_success 'the queue agrees with the history' '
	(cd repo.git && wf-queue list) >list &&
	test $(grep -c "\"state\":\"landed\"" list) -eq $N &&
	(cd repo.git && wf-queue list --state landed) |
		sed -e "s/.*\"id\":\"\([^\"]*\)\".*/\1/" | sort >queue-landed &&
	test_cmp ids queue-landed &&
	(cd repo.git && wf-queue doctor) >doctor &&
	test_grep "^\{\"ok\":true" doctor
'

test_expect_success 'no change was reported landed twice' '
	grep "\"state\":\"landed\"" out |
		sed -e "s/.*\"id\":\"\([^\"]*\)\".*/\1/" | sort | uniq -d >twice &&
	test ! -s twice
'

test_done
