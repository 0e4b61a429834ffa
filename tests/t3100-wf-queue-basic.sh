#!/bin/sh
# wf-queue: list, show, dead, retry, drop, lease and ack on a real queue.

. "$(dirname "$0")/lib.sh"

# Times change from run to run: blank them for byte comparison.
untime() {
	sed -E -e 's/"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z"/"T"/g' \
		-e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z/T/g' \
		-e 's/"hash":"[0-9a-f]{40}"/"hash":"H"/' \
		-e 's/^hash       [0-9a-f]{40}$/hash       H/' "$@"
}

req() {
	# req ID PRIORITY DEPS [MESSAGE]
	printf '{"id": "%s", "target": "main", "kind": "files", "priority": %s, "depends_on": %s, "message": "%s", "files": [{"path": "f/%s", "content": "aGk="}, {"path": "old", "delete": true}]}\n' \
		"$1" "$2" "$3" "${4:-change $1}" "$1"
}

test_expect_success 'setup: three requests in the default queue' '
	git init -q repo &&
	(cd repo && echo x >old && git add old && git commit -q -m one) &&
	{ req a 0 "[]" "add a\\nwith a body" && req b 5 "[]" && req c 0 "[\"a\"]"; } >reqs.jsonl &&
	# Each on its own: one stream would be a series, where the second
	# deletion of "old" is refused.
	(cd repo && for i in 1 2 3; do
		sed -n "${i}p" ../reqs.jsonl | wf-enqueue || exit 1
	done) >out &&
	test $(wc -l <out) -eq 3 &&
	test -f repo/.git/wf/queue.db
'

test_expect_success 'list writes one entry per line in queue order' '
	(cd repo && wf-queue list) >out &&
	untime out >actual &&
	cat >expect <<-\EOF &&
	{"queue_id":1,"id":"a","target":"main","kind":"files","state":"queued","priority":0,"attempts":0,"max_attempts":5,"blocked":0,"depends_on":[],"not_before":null,"lease_owner":null,"lease_token":null,"lease_expires":null,"created_at":"T","updated_at":"T","finished_at":null,"last_error":null,"hash":"H","paths":["f/a","old"]}
	{"queue_id":2,"id":"b","target":"main","kind":"files","state":"queued","priority":5,"attempts":0,"max_attempts":5,"blocked":0,"depends_on":[],"not_before":null,"lease_owner":null,"lease_token":null,"lease_expires":null,"created_at":"T","updated_at":"T","finished_at":null,"last_error":null,"hash":"H","paths":["f/b","old"]}
	{"queue_id":3,"id":"c","target":"main","kind":"files","state":"queued","priority":0,"attempts":0,"max_attempts":5,"blocked":1,"depends_on":["a"],"not_before":null,"lease_owner":null,"lease_token":null,"lease_expires":null,"created_at":"T","updated_at":"T","finished_at":null,"last_error":null,"hash":"H","paths":["f/c","old"]}
	EOF
	test_cmp expect actual
'

test_expect_success 'list --format text is a table for people' '
	(cd repo && wf-queue --format text list) >out &&
	untime out >actual &&
	cat >expect <<-\EOF &&
	   QID  STATE    PRI   TRIES  TARGET       CREATED                   ID
	     1  queued     0   0/5    main         T  a
	     2  queued     5   0/5    main         T  b
	     3  queued     0   0/5    main         T  c (blocked)
	EOF
	test_cmp expect actual
'

WF_DB=$TRASH/repo/.git/wf/queue.db
export WF_DB

test_expect_success 'list filters by state, target, time and count' '
	wf-queue list --target main --limit 2 >out &&
	test $(wc -l <out) -eq 2 &&
	test_grep "\"id\":\"b\"" out &&
	wf-queue list --target other >out &&
	test ! -s out &&
	wf-queue list --state landed >out &&
	test ! -s out &&
	wf-queue list --since @0 >out &&
	test $(wc -l <out) -eq 3 &&
	wf-queue list --since 1h >out &&
	test $(wc -l <out) -eq 3 &&
	wf-queue list --since 2999-01-01 >out &&
	test ! -s out &&
	wf-queue list --since "2000-01-01T10:30:00Z" --state queued >out &&
	test $(wc -l <out) -eq 3
'

test_expect_success 'bad filters: usage (2) or refused state (3)' '
	test_expect_code 2 wf-queue list --since yesterday 2>err &&
	test_grep "invalid time .yesterday. for --since" err &&
	test_expect_code 2 wf-queue list --limit 0 2>err &&
	test_expect_code 3 wf-queue list --state bogus 2>err &&
	test_grep "^wf-queue: error: unknown state .bogus." err
'

test_expect_success 'show gives the entry, a payload summary and the audit log' '
	wf-queue show a >out &&
	untime out >actual &&
	cat >expect <<-\EOF &&
	{"queue_id":1,"id":"a","target":"main","kind":"files","state":"queued","priority":0,"attempts":0,"max_attempts":5,"blocked":0,"depends_on":[],"not_before":null,"lease_owner":null,"lease_token":null,"lease_expires":null,"created_at":"T","updated_at":"T","finished_at":null,"last_error":null,"hash":"H","paths":["f/a","old"],"payload":{"kind":"files","message":"add a\nwith a body","depends_on":[],"files":2,"deletes":1,"bytes":238},"audit":[{"who":"T","when":"T","why":"enqueue","from":null,"to":"queued"}]}
	EOF
	sed -E "s/\"who\":\"pid [0-9]+\"/\"who\":\"T\"/" actual >actual2 &&
	test_cmp expect actual2
'

test_expect_success 'show --payload gives the whole request' '
	wf-queue show --payload a >out &&
	test_grep "\"payload\":\\{\"depends_on\":\\[\\],\"files\":\\[\\{\"blob\":\"[0-9a-f]{40}\",\"content\":\"aGk=\"" out
'

test_expect_success 'show --format text' '
	wf-queue show c --format text >out &&
	untime out >actual &&
	sed -E "s/\(pid [0-9]+\)/(P)/" actual >actual2 &&
	cat >expect <<-\EOF &&
	entry      c (queue id 3)
	state      queued, attempt 0 of 5, blocked by dependencies
	target     main
	kind       files
	priority   0
	hash       H
	created    T
	updated    T
	depends on a
	paths      f/c
	           old
	message    change c
	payload    231 bytes, 2 files (1 deleted)
	audit
	  T  -       -> queued   enqueue (P)
	EOF
	test_cmp expect actual2
'

test_expect_success 'an unknown id is a negative answer (exit 1)' '
	test_expect_code 1 wf-queue show nope >out 2>err &&
	test ! -s out &&
	echo "wf-queue: error: no entry '"'nope'"' in the queue" >expect &&
	test_cmp expect err &&
	test_expect_code 1 wf-queue retry nope 2>err &&
	test_expect_code 1 wf-queue drop nope 2>err &&
	test_expect_code 1 wf-queue ack nope 0123 2>err
'

test_expect_success 'lease takes priority first; a stale token is refused' '
	wf-queue lease --target main --owner w1 --for 10m >lease1 &&
	test $(wc -l <lease1) -eq 1 &&
	test_grep "\"id\":\"b\",.*\"state\":\"leased\".*\"lease_owner\":\"w1\"" lease1 &&
	test_grep "\"payload\":\\{" lease1 &&
	token=$(sed -E "s/.*\"lease_token\":\"([0-9a-f]+)\".*/\\1/" lease1) &&
	test ${#token} -eq 32 &&
	test_expect_code 3 wf-queue ack b 00000000000000000000000000000000 2>err &&
	test_grep "stale lease token" err &&
	wf-queue extend b "$token" --for 1h >out &&
	test_grep "\"state\":\"leased\"" out &&
	wf-queue ack b "$token" >out &&
	test_grep "\"id\":\"b\",.*\"state\":\"landed\"" out &&
	test_expect_code 3 wf-queue ack b "$token" 2>err &&
	wf-queue show b >out &&
	test_grep "\"why\":\"landed\",\"paths\":\\[\"f/b\",\"old\"\\]" out
'

test_expect_success 'lease respects dependencies; nothing ready is exit 1' '
	wf-queue lease --target main --max 1 >leased &&
	test $(wc -l <leased) -eq 1 &&
	test_grep "\"id\":\"a\"" leased &&
	test_expect_code 1 wf-queue lease --target main >out &&
	test ! -s out
'

test_expect_success 'drop refuses a leased entry (3) and deletes a queued one' '
	test_expect_code 3 wf-queue drop a 2>err &&
	test_grep "is leased" err &&
	wf-queue drop c >out &&
	echo "{\"id\":\"c\",\"queue_id\":3,\"state\":\"dropped\",\"was\":\"queued\"}" >expect &&
	test_cmp expect out &&
	test_expect_code 1 wf-queue show c 2>err
'

test_expect_success 'a failure past max attempts is dead; retry revives it' '
	req d 0 "[]" | wf-enqueue -C repo --max-attempts 1 >/dev/null &&
	e=$(wf-queue lease --target main) &&
	token=$(printf "%s\n" "$e" | sed -E "s/.*\"lease_token\":\"([0-9a-f]+)\".*/\\1/") &&
	wf-queue ack --error "conflict in f/d" d "$token" >out &&
	test_grep "\"state\":\"dead\".*\"last_error\":\"conflict in f/d\"" out &&
	wf-queue dead >out &&
	test $(wc -l <out) -eq 1 &&
	test_grep "\"id\":\"d\"" out &&
	wf-queue dead --format text >out &&
	test_grep "^ +4  dead +0   1/1 +main +[-0-9T:.Z]+  d$" out &&
	wf-queue retry d >out &&
	test_grep "\"id\":\"d\",.*\"state\":\"queued\",\"priority\":0,\"attempts\":0" out &&
	test_expect_code 3 wf-queue retry d 2>err &&
	test_grep "only dead or failed entries can be retried" err &&
	wf-queue dead >out &&
	test ! -s out &&
	wf-queue show d >out &&
	test_grep "\"why\":\"retry\",\"from\":\"dead\",\"to\":\"queued\"" out
'

test_expect_success 'metrics: depth per state, throughput, leases' '
	wf-queue metrics >out &&
	sed -E -e "s/\"oldest_queued_age_ms\":[0-9]+/\"oldest_queued_age_ms\":A/" \
		-e "s/\"lease_latency_ms_mean\":[0-9.]+/\"lease_latency_ms_mean\":L/" \
		-e "s/_per_hour_24h\":[0-9.]+/_per_hour_24h\":R/g" out >actual &&
	cat >expect <<-\EOF &&
	{"depth":{"queued":1,"leased":1,"landed":1,"failed":0,"dead":0},"blocked":0,"oldest_queued_age_ms":A,"landed_last_hour":1,"failed_last_hour":1,"landed_per_hour_24h":R,"failed_per_hour_24h":R,"leases":3,"lease_latency_ms_mean":L,"busy_retries":0}
	EOF
	test_cmp expect actual &&
	wf-queue metrics --format text >out &&
	test_grep "^depth landed   1$" out &&
	test_grep "^lease latency, mean  [0-9.]+ ms$" out
'

test_expect_success 'doctor: a healthy queue passes (exit 0)' '
	wf-queue doctor >out &&
	test_grep "^\{\"ok\":true,\"problems\":0,\"checks\":\[\{\"check\":\"schema\",\"ok\":true,\"value\":4," out &&
	wf-queue doctor --format text >out &&
	test $(grep -c "^ok " out) -eq 6
'

test_expect_success 'doctor: an expired lease is a problem (exit 1) with advice' '
	wf-queue lease --target main --for 1ms >/dev/null &&
	sleep 1 &&
	test_expect_code 1 wf-queue doctor --stuck 1h --format text >out &&
	test_grep "^FAIL expired_leases  1 expired lease$" out &&
	test_grep "fix: .*wf-queue reclaim" out &&
	wf-queue reclaim >out &&
	echo "{\"reclaimed\":1}" >expect &&
	test_cmp expect out &&
	wf-queue doctor >/dev/null
'

test_expect_success '--db and -C pick the queue' '
	unset WF_DB &&
	wf-queue -C repo list --state landed >out &&
	test_grep "\"id\":\"b\"" out &&
	wf-queue --db other.db list >out &&
	test ! -s out &&
	test -f other.db
'

test_expect_success 'a file that is not a queue is an I/O error (4)' '
	echo "not sqlite, not at all, not in the slightest" >junk.db &&
	test_expect_code 4 wf-queue --db junk.db list 2>err &&
	test_grep "is not a queue database" err
'

test_expect_success 'ack takes several pairs; a refused one does not stop the rest' '
	git -C repo branch -f side $(git -C repo rev-list --max-parents=0 main) &&
	for p in p1 p2; do
		req $p 0 "[]" | sed "s/\"main\"/\"side\"/" |
			wf-enqueue -C repo >/dev/null || return 1
	done &&
	wf-queue -C repo lease --target side --max 2 --owner w9 >pl &&
	test $(wc -l <pl) -eq 2 &&
	t1=$(sed -n "/\"id\":\"p1\"/s/.*\"lease_token\":\"\([0-9a-f]*\)\".*/\1/p" pl) &&
	t2=$(sed -n "/\"id\":\"p2\"/s/.*\"lease_token\":\"\([0-9a-f]*\)\".*/\1/p" pl) &&
	test_expect_code 3 wf-queue -C repo ack p1 00000000000000000000000000000000 p2 "$t2" >out 2>err &&
	test $(wc -l <out) -eq 1 &&
	test_grep "\"id\":\"p2\",.*\"state\":\"landed\"" out &&
	test_grep "entry .p1.: stale lease token" err &&
	wf-queue -C repo ack p1 "$t1" >out &&
	test_grep "\"id\":\"p1\",.*\"state\":\"landed\"" out &&
	test_expect_code 2 wf-queue -C repo ack p1 "$t1" p2 2>err &&
	test_grep "takes an ID and a lease token" err
'

test_expect_success 'usage errors exit 2' '
	test_expect_code 2 wf-queue 2>err &&
	test_grep "no command given" err &&
	test_expect_code 2 wf-queue frobnicate 2>err &&
	test_grep "unknown command .frobnicate." err &&
	test_expect_code 2 wf-queue --db x.db retry 2>err &&
	test_expect_code 2 wf-queue --db x.db show a b 2>err &&
	test_expect_code 2 wf-queue --db x.db show --state queued a 2>err &&
	test_grep "\-\-state does not apply to .show." err &&
	test_expect_code 2 wf-queue --db x.db lease 2>err &&
	test_grep "needs \-\-target" err &&
	test_expect_code 2 wf-queue --db x.db --format xml list 2>err &&
	test ! -f x.db
'

test_done
