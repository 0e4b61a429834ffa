#!/bin/sh
# wf-enqueue: requests into a real queue in a real repository.

. "$(dirname "$0")/lib.sh"

test_expect_success 'setup: a repository with one commit' '
	git init -q repo &&
	cd repo &&
	printf "a\nb\nc\n" >x &&
	mkdir dir && echo y >dir/y &&
	git add . && git commit -q -m one &&
	printf "a\nB\nc\n" >x &&
	git diff >../modify.diff &&
	git checkout -q x &&
	git checkout -q -b topic &&
	echo z >z && git add z && git commit -q -m two &&
	git checkout -q main
'

test_expect_success 'a patch lands in the default queue in the git dir' '
	(cd repo && wf-enqueue --patch ../modify.diff --id t/1 \
		--target main) >out &&
	echo "{\"id\":\"t/1\",\"queue_id\":1,\"state\":\"queued\",\"position\":1}" >expect &&
	test_cmp expect out &&
	test -f repo/.git/wf/queue.db
'

test_expect_success 'the same request again is a no-op reporting the entry' '
	(cd repo && wf-enqueue --patch ../modify.diff --id t/1 \
		--target main) >out &&
	echo "{\"id\":\"t/1\",\"queue_id\":1,\"state\":\"queued\",\"position\":1,\"existing\":true}" >expect &&
	test_cmp expect out
'

test_expect_success 'the same id with other content is refused (exit 3)' '
	(cd repo && test_expect_code 3 wf-enqueue --patch ../modify.diff \
		--id t/1 --target main --priority 2) >out 2>err &&
	test ! -s out &&
	test_grep "^wf-enqueue: error: \.\./modify\.diff:1:1: request .t/1.: already queued with different content" err
'

test_expect_success 'a stream is all or nothing, naming the first bad record' '
	cat >stream.jsonl <<-\EOF &&
	{"id": "s/1", "target": "main", "kind": "files", "files": [{"path": "n1", "content": "aGk="}]}
	{"id": "s/2", "target": "main", "kind": "files",
	 "files": [{"path": "a/.git/hooks/x", "content": "aGk="}]}
	{"id": "s/3", "target": "main", "kind": "files", "files": [{"path": "n3", "content": "aGk="}]}
	EOF
	(cd repo && test_expect_code 3 wf-enqueue ../stream.jsonl) >out 2>err &&
	test ! -s out &&
	test_grep "^wf-enqueue: error: \.\./stream\.jsonl:3:21: \.files\[0\]\.path: request .s/2.: file .a/\.git/hooks/x.: .\.git. component$" err &&
	(cd repo && wf-enqueue --dry-run ../stream.jsonl -k) >dry 2>err2;
	test $? -eq 3 &&
	test $(wc -l <dry) -eq 2 &&
	test_grep "\"id\":\"s/1\",\"kind\":\"files\"" dry
'

test_expect_success 'nothing of the bad stream was stored' '
	(cd repo && wf-enqueue --dry-run ../stream.jsonl -k) >/dev/null 2>&1;
	printf "%s\n" "{\"id\": \"probe\", \"target\": \"main\", \"kind\": \"files\", \"files\": [{\"path\": \"p\", \"content\": \"aGk=\"}]}" |
		(cd repo && wf-enqueue) >out &&
	test_grep "\"state\":\"queued\",\"position\":2" out &&
	(cd repo && wf-queue list) >list &&
	test $(wc -l <list) -eq 2 &&
	! test_grep "s/[13]" list
'

test_expect_success '--keep-going stores the good ones and reports the bad' '
	(cd repo && test_expect_code 3 wf-enqueue -k ../stream.jsonl) >out 2>err &&
	test_grep "\"id\":\"s/1\"" out &&
	test_grep "\"id\":\"s/3\"" out &&
	test $(wc -l <out) -eq 2 &&
	test_grep "stream\.jsonl:3:21: .*request .s/2." err
'

test_expect_success 'adversarial patches are refused with the reason' '
	printf "diff --git a/x b/x\nnew file mode 100644\nindex 0000000..ea0c8a8\n--- /dev/null\n+++ b/x\n@@ -0,0 +1 @@\n+q\n" >add-existing.diff &&
	(cd repo && test_expect_code 3 wf-enqueue --patch ../add-existing.diff \
		--id a/1 --target main) 2>err &&
	test_grep "file .x. already exists in target .main." err &&
	printf -- "--- a/../../etc/passwd\n+++ b/../../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n" >up.diff &&
	(cd repo && test_expect_code 3 wf-enqueue --patch ../up.diff \
		--id a/2 --target main) 2>err &&
	test_grep "file .\.\./\.\./etc/passwd.: .\.. or .\.\.. component" err &&
	printf "diff --git a/x b/x\nindex 1234567..89abcde 100644\nBinary files a/x and b/x differ\n" >bin.diff &&
	(cd repo && test_expect_code 3 wf-enqueue --patch ../bin.diff \
		--id a/3 --target main) 2>err &&
	test_grep "binary patch for .x. has no data" err
'

test_expect_success '--commits takes a range of revisions' '
	(cd repo && wf-enqueue --commits main..topic --id c/1 --target main \
		--message "add z" --author "A U Thor <author@example.com>") >out &&
	test_grep "\"id\":\"c/1\",\"queue_id\":[0-9]+,\"state\":\"queued\"" out &&
	(cd repo && test_expect_code 3 wf-enqueue --commits topic..main \
		--id c/2 --target main) 2>err &&
	test_grep "is empty" err
'

test_expect_success '--commits A..B is what B reaches and A does not, as in git' '
	(cd repo && git checkout -q -b side main~0 &&
		echo side >side.txt && git add side.txt &&
		git commit -q -m side && git checkout -q main) &&
	(cd repo && wf-enqueue --db ../range.db --commits side..topic \
		--id c/3 --target main) >out &&
	test_grep "\"id\":\"c/3\"" out &&
	base=$(git -C repo merge-base side topic) &&
	head=$(git -C repo rev-parse topic) &&
	wf-queue --db range.db show c/3 >show &&
	test_grep "\"base\":\"$base\",\"head\":\"$head\"" show &&
	git -C repo branch -D -q side
'

test_expect_success '--tar takes files under a prefix; WF_DB and --db pick the queue' '
	mkdir -p t && echo "int a;" >t/a.c && : >t/.wh.y &&
	(cd t && tar -czf ../files.tar.gz a.c .wh.y) &&
	(cd repo && WF_DB=../other.db wf-enqueue --tar ../files.tar.gz \
		--prefix dir --id f/1 --target main) >out &&
	test_grep "\"queue_id\":1," out &&
	test -f other.db &&
	(cd repo && wf-enqueue --db ../other.db --dry-run --tar ../files.tar.gz \
		--prefix dir --id f/1 --target main) >dry &&
	test_grep "\"paths\":\\[\"dir/a.c\",\"dir/y\"\\]" dry
'

test_expect_success 'a target that is no branch name is refused' '
	(cd repo && test_expect_code 3 wf-enqueue --patch ../modify.diff \
		--id t/9 --target "a..b") 2>err &&
	test_grep "is not a valid branch name" err
'

test_expect_success 'HEAD, an option and a full ref name are no target either' '
	for t in HEAD -x; do
		(cd repo && test_expect_code 3 wf-enqueue --patch ../modify.diff \
			--id t/9 --target "$t") 2>err &&
		test_grep "$t. is not a valid branch name" err || return 1
	done &&
	(cd repo && test_expect_code 3 wf-enqueue --patch ../modify.diff \
		--id t/9 --target refs/heads/main) 2>err &&
	test_grep "name the branch \\(.main.\\), not its ref" err &&
	(cd repo && test_expect_code 3 wf-enqueue --patch ../modify.diff \
		--id t/9 --target refs/tags/v1) 2>err &&
	test_grep "a target is a branch" err &&
	(cd repo && wf-queue list) >list &&
	! grep "t/9" list
'

test_expect_success 'usage errors exit 2' '
	test_expect_code 2 wf-enqueue --patch x.diff </dev/null 2>err &&
	test_grep "required" err &&
	test_expect_code 2 wf-enqueue --patch a --tar b --id i --target t 2>err &&
	test_expect_code 2 wf-enqueue --id x 2>err &&
	test_expect_code 2 wf-enqueue --max-attempts zero 2>err
'

test_expect_success 'outside a repository without --db is an input error' '
	mkdir -p /tmp/wf-t3000-norepo.$$ &&
	(cd /tmp/wf-t3000-norepo.$$ && GIT_CEILING_DIRECTORIES=/tmp &&
		export GIT_CEILING_DIRECTORIES &&
		test_expect_code 3 wf-enqueue </dev/null) 2>err;
	rc=$?; rm -rf /tmp/wf-t3000-norepo.$$; test $rc -eq 0 &&
	test_grep "not a git repository" err
'

test_done
