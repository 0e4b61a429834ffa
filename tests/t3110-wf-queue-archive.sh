#!/bin/sh
# wf-queue archive and restore: finished entries move to a .tar.gz of
# JSON Lines and back, byte for byte.

. "$(dirname "$0")/lib.sh"

req() {
	printf '{"id": "%s", "target": "main", "kind": "files", "depends_on": %s, "files": [{"path": "f/%s", "content": "aGk="}]}\n' \
		"$1" "${2:-[]}" "$1"
}

token() {
	sed -E 's/.*"lease_token":"([0-9a-f]+)".*/\1/' "$@"
}

# Everything wf-queue reports about every entry, for before/after.
snapshot() {
	wf-queue list --state "$1" >snap.list &&
	for id in $(sed -E 's/.*"id":"([^"]+)".*/\1/' snap.list); do
		wf-queue show --payload "$id" || return 1
	done >snap.show &&
	cat snap.list snap.show
}

WF_DB=$TRASH/queue.db
export WF_DB

test_expect_success 'setup: a landed, a dead and a waiting entry' '
	{ req a && req b; } | wf-enqueue >/dev/null &&
	req c "[\"a\"]" | wf-enqueue --max-attempts 1 >/dev/null &&
	wf-queue lease --target main >l && wf-queue ack a $(token l) >/dev/null &&
	wf-queue lease --target main >l && wf-queue ack b $(token l) >/dev/null &&
	wf-queue lease --target main >l &&
	wf-queue ack --error "does not apply" c $(token l) >/dev/null &&
	wf-queue list --state dead >out &&
	test_grep "\"id\":\"c\"" out &&
	req d | wf-enqueue >/dev/null &&
	{ snapshot landed && snapshot dead; } >before &&
	test $(grep -c "\"audit\":" before) -eq 3
'

test_expect_success 'nothing finished long enough ago: an empty archive' '
	wf-queue archive --older-than 1h --to young.tar.gz >out &&
	test_grep "^\{\"archive\":\"young.tar.gz\",\"entries\":0,\"audit\":0,\"cutoff\":\"[-0-9T:.]+Z\"\}$" out &&
	tar tzf young.tar.gz >members &&
	echo manifest.json >expect &&
	test_cmp expect members &&
	wf-queue list >out &&
	test $(wc -l <out) -eq 4
'

test_expect_success 'archive moves landed and dead entries into the file' '
	wf-queue archive --older-than 0 --to old.tar.gz >out &&
	test_grep "\"entries\":3," out &&
	ls >files &&
	! grep "tmp" files &&
	tar tzf old.tar.gz >members &&
	printf "%s\n" manifest.json entries-0001.jsonl audit-0001.jsonl >expect &&
	test_cmp expect members &&
	tar xzOf old.tar.gz manifest.json >manifest &&
	test_grep "^\{\"format\":\"wf-queue-archive\",\"version\":1,\"schema\":4,\"created_at\":\"[^\"]+\",\"created_by\":\"[^\"]+\",\"cutoff\":\"[^\"]+\",\"entries\":3,\"audit\":[0-9]+\}$" manifest &&
	tar xzOf old.tar.gz entries-0001.jsonl >entries &&
	test $(wc -l <entries) -eq 3 &&
	test_grep "^\{\"qid\":1,\"id\":\"a\",.*\"payload\":\"\{.*\"state\":\"landed\",.*\"depends_on\":\[\]\}$" entries &&
	test_grep "^\{\"qid\":3,\"id\":\"c\",.*\"state\":\"dead\",.*\"last_error\":\"does not apply\",\"depends_on\":\[\"a\"\]\}$" entries &&
	tar xzOf old.tar.gz audit-0001.jsonl >audit &&
	test_grep "^\{\"seq\":1,\"qid\":1,\"entry_id\":\"a\",\"at\":[0-9]+,\"from_state\":null,\"to_state\":\"queued\",\"detail\":\"\{" audit &&
	wf-queue list >out &&
	test $(wc -l <out) -eq 1 &&
	test_grep "\"id\":\"d\"" out &&
	test_expect_code 1 wf-queue show a 2>err
'

test_expect_success 'an archived id stays taken' '
	req a | sed "s/aGk=/aG8=/" >changed &&
	test_expect_code 3 wf-enqueue changed 2>err &&
	test_grep "already queued with different content" err &&
	req a | wf-enqueue >out &&
	test_grep "\"id\":\"a\",\"queue_id\":null,\"state\":\"landed\"" out
'

test_expect_success 'archive never replaces a file (3)' '
	cp old.tar.gz copy.tar.gz &&
	test_expect_code 3 wf-queue archive --older-than 0 --to old.tar.gz 2>err &&
	test_grep "archive .old.tar.gz. exists already" err &&
	cmp old.tar.gz copy.tar.gz
'

test_expect_success 'restore brings the entries back as they were' '
	wf-queue restore old.tar.gz >out &&
	test_grep "^\{\"archive\":\"old.tar.gz\",\"entries\":3,\"audit\":[0-9]+\}$" out &&
	{ snapshot landed && snapshot dead; } >after &&
	test_cmp before after
'

test_expect_success 'restore refuses ids in the queue (3), changing nothing' '
	test_expect_code 3 wf-queue restore old.tar.gz 2>err &&
	test_grep "entry .a. is in the queue already" err &&
	{ snapshot landed && snapshot dead; } >after &&
	test_cmp before after
'

test_expect_success 'restore refuses a damaged archive (3) or a missing one (4)' '
	wf-queue archive --older-than 0 --to again.tar.gz >/dev/null &&
	gzip -dc again.tar.gz | head -c 1500 | gzip >cut.tar.gz &&
	wf-queue list >before-cut &&
	test_expect_code 3 wf-queue restore cut.tar.gz 2>err &&
	wf-queue list >after-cut &&
	test_cmp before-cut after-cut &&
	test_expect_code 3 wf-queue restore queue.db 2>err &&
	test_expect_code 4 wf-queue restore nope.tar.gz 2>err &&
	test_grep "cannot open .nope.tar.gz." err &&
	wf-queue --format text restore again.tar.gz >out &&
	test_grep "^restored 3 entries \([0-9]+ audit rows\) from again.tar.gz$" out
'

test_expect_success 'usage errors exit 2' '
	test_expect_code 2 wf-queue archive --to x.tar.gz 2>err &&
	test_grep "needs \-\-older-than" err &&
	test_expect_code 2 wf-queue archive --older-than 1d 2>err &&
	test_grep "needs \-\-to" err &&
	test_expect_code 2 wf-queue archive --older-than soon --to x.tar.gz 2>err &&
	test_expect_code 2 wf-queue restore 2>err &&
	test_grep "takes an archive FILE" err &&
	test_expect_code 2 wf-queue list --to x.tar.gz 2>err &&
	test ! -f x.tar.gz
'

test_done
