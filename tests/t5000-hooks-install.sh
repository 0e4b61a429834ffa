#!/bin/sh
# wf-hooks install, uninstall and status: idempotent, where git looks
# (core.hooksPath), keeping and chaining a foreign hook, putting it back.

. "$(dirname "$0")/lib.sh"

# status_of REPO HOOK: the state wf-hooks status gives HOOK.
status_of() {
	wf-hooks status -C "$1" | grep "\"hook\":\"$2\"" |
		sed -e 's/.*"state":"\([a-z]*\)".*/\1/'
}

test_expect_success 'setup: a bare server with a first commit and a clone' '
	git init -q --bare srv.git &&
	git clone -q srv.git work 2>/dev/null &&
	(
		cd work && echo hi >README && git add README &&
		git commit -q -m first && git push -q origin HEAD:main
	)
'

test_expect_success 'install in a bare repository: the server hooks, marked, executable, finding this wf-hooks' '
	wf-hooks install -C srv.git >out &&
	cat >expect <<-EOF &&
	{"hook":"pre-receive","path":"$TRASH/srv.git/hooks/pre-receive","state":"installed","chained":null}
	{"hook":"proc-receive","path":"$TRASH/srv.git/hooks/proc-receive","state":"installed","chained":null}
	EOF
	test_cmp expect out &&
	for h in pre-receive proc-receive; do
		test -x srv.git/hooks/$h &&
		test_grep "^# wf-hooks: managed hook \($h\)$" srv.git/hooks/$h &&
		test_grep "^WF_BIN=.$WF_BIN.$" srv.git/hooks/$h || return 1
	done &&
	test ! -e srv.git/hooks/pre-push &&
	test "$(git -C srv.git config receive.advertisePushOptions)" = true &&
	test "$(git -C srv.git config --get-all receive.procReceiveRefs)" = refs/for
'

test_expect_success 'the hooks are the templates with WF_BIN set, and nothing else' '
	sed -e "s|^WF_BIN=.*|WF_BIN=|" srv.git/hooks/pre-receive >actual &&
	test_cmp "$WF_SRC/hooks/pre-receive" actual
'

test_expect_success 'install twice is the same as once' '
	cp srv.git/hooks/pre-receive pre-receive.1 &&
	cp srv.git/hooks/proc-receive proc-receive.1 &&
	cp srv.git/config config.1 &&
	wf-hooks install --server -C srv.git >out &&
	test $(grep -c "\"state\":\"unchanged\"" out) -eq 2 &&
	test_cmp pre-receive.1 srv.git/hooks/pre-receive &&
	test_cmp proc-receive.1 srv.git/hooks/proc-receive &&
	test_cmp config.1 srv.git/config &&
	ls srv.git/hooks | grep -v "\.sample$" >names &&
	printf "pre-receive\nproc-receive\n" >expect &&
	test_cmp expect names
'

test_expect_success 'status tells current, outdated and absent hooks apart; install updates' '
	test "$(status_of srv.git pre-receive)" = installed &&
	test "$(status_of srv.git pre-push)" = absent &&
	echo "# an older version" >>srv.git/hooks/proc-receive &&
	test "$(status_of srv.git proc-receive)" = outdated &&
	wf-hooks install -C srv.git >out &&
	test_grep "\"hook\":\"proc-receive\",.*\"state\":\"updated\"" out &&
	test_cmp proc-receive.1 srv.git/hooks/proc-receive
'

test_expect_success 'a foreign hook is kept, chained, and runs first with the same input' '
	cat >foreign <<-EOF &&
	#!/bin/sh
	echo "foreign pre-push \$*" >>"$TRASH/foreign.log"
	cat >>"$TRASH/foreign.log"
	exit 0
	EOF
	cp foreign work/.git/hooks/pre-push &&
	chmod +x work/.git/hooks/pre-push &&
	wf-hooks install -C work >out &&
	echo "{\"hook\":\"pre-push\",\"path\":\"$TRASH/work/.git/hooks/pre-push\",\"state\":\"installed\",\"chained\":\"$TRASH/work/.git/hooks/pre-push.wf-chained\"}" >expect &&
	test_cmp expect out &&
	test_cmp foreign work/.git/hooks/pre-push.wf-chained &&
	(
		cd work && echo more >>README && git commit -q -am more &&
		git push -q origin HEAD:refs/for/main/more
	) 2>err &&
	test_grep "^foreign pre-push origin $TRASH/srv.git$" foreign.log &&
	test_grep "^HEAD [0-9a-f]{40} refs/for/main/more 0{40}$" foreign.log &&
	test_grep "queued .main:more@" err
'

test_expect_success 'a failing foreign hook stops the push before wf runs' '
	cat >srv.git/hooks/pre-receive.wf-chained <<-\EOF &&
	#!/bin/sh
	echo "foreign: no pushes on Fridays" >&2
	exit 1
	EOF
	chmod +x srv.git/hooks/pre-receive.wf-chained &&
	before=$(wf-queue -C srv.git list | wc -l) &&
	(
		cd work && echo friday >>README && git commit -q -am friday &&
		test_must_fail git push origin HEAD:refs/for/main/friday
	) 2>err &&
	test_grep "^remote: foreign: no pushes on Fridays" err &&
	! grep -q "wf-hooks" err &&
	test "$(wf-queue -C srv.git list | wc -l)" -eq "$before" &&
	rm srv.git/hooks/pre-receive.wf-chained
'

test_expect_success 'uninstall puts the foreign hook back, byte for byte' '
	wf-hooks uninstall -C work >out &&
	echo "{\"hook\":\"pre-receive\",\"path\":\"$TRASH/work/.git/hooks/pre-receive\",\"state\":\"absent\",\"chained\":null}" >expect &&
	echo "{\"hook\":\"proc-receive\",\"path\":\"$TRASH/work/.git/hooks/proc-receive\",\"state\":\"absent\",\"chained\":null}" >>expect &&
	echo "{\"hook\":\"pre-push\",\"path\":\"$TRASH/work/.git/hooks/pre-push\",\"state\":\"restored\",\"chained\":null}" >>expect &&
	test_cmp expect out &&
	test_cmp foreign work/.git/hooks/pre-push &&
	test ! -e work/.git/hooks/pre-push.wf-chained &&
	test "$(status_of work pre-push)" = foreign
'

test_expect_success 'uninstall leaves a hook that is not wf'"'"'s alone' '
	wf-hooks uninstall --client -C work >out &&
	test_grep "\"state\":\"foreign\"" out &&
	test_cmp foreign work/.git/hooks/pre-push
'

test_expect_success 'install refuses a foreign hook with a chained one already there, and changes nothing' '
	cp foreign work/.git/hooks/pre-push.wf-chained &&
	test_expect_code 3 wf-hooks install -C work >out 2>err &&
	test ! -s out &&
	test_grep "^wf-hooks: error: .$TRASH/work/.git/hooks/pre-push. is not wf.s hook, and .$TRASH/work/.git/hooks/pre-push.wf-chained. is there too: move one of them away$" err &&
	test_cmp foreign work/.git/hooks/pre-push &&
	rm work/.git/hooks/pre-push.wf-chained work/.git/hooks/pre-push
'

test_expect_success 'uninstall of the server hooks leaves a clean hooks directory' '
	wf-hooks uninstall --server -C srv.git >out &&
	test $(grep -c "\"state\":\"removed\"" out) -eq 2 &&
	test -z "$(ls srv.git/hooks | grep -v "\.sample$")" &&
	test_must_fail git -C srv.git config --get-all receive.procReceiveRefs
'

test_expect_success 'core.hooksPath is honoured, relative to the work tree, as git does' '
	git -C work config core.hooksPath .githooks &&
	wf-hooks install --client -C work/.git >out &&
	test_grep "\"path\":\"$TRASH/work/.githooks/pre-push\"" out &&
	test -x work/.githooks/pre-push &&
	test "$(cd work && cd "$(git rev-parse --git-path hooks)" && pwd)" = "$TRASH/work/.githooks" &&
	git -C work config core.hooksPath "$TRASH/shared-hooks" &&
	wf-hooks install --client -C work >out &&
	test_grep "\"path\":\"$TRASH/shared-hooks/pre-push\"" out &&
	test -x shared-hooks/pre-push &&
	wf-hooks uninstall -C work >/dev/null &&
	test ! -e shared-hooks/pre-push &&
	git -C work config --unset core.hooksPath
'

test_expect_success 'core.hooksPath in a bare repository is relative to it' '
	git -C srv.git config core.hooksPath my-hooks &&
	wf-hooks install -C srv.git >out &&
	test -x srv.git/my-hooks/pre-receive &&
	test "$(cd srv.git && cd "$(git rev-parse --git-path hooks)" && pwd)" = "$TRASH/srv.git/my-hooks" &&
	(
		cd work && echo hp >>README && git commit -q -am hp &&
		git push origin HEAD:refs/for/main/hp
	) 2>err &&
	test_grep "queued .main:hp@" err &&
	wf-hooks uninstall -C srv.git >/dev/null &&
	git -C srv.git config --unset core.hooksPath
'

test_expect_success 'an installed layout finds its templates beside it' '
	mkdir -p inst/bin inst/share/wf/hooks &&
	cp "$WF_BIN/wf-hooks" inst/bin/ &&
	cp "$WF_SRC"/hooks/pre-receive "$WF_SRC"/hooks/proc-receive \
		"$WF_SRC"/hooks/pre-push inst/share/wf/hooks/ &&
	echo "# installed copy" >>inst/share/wf/hooks/pre-push &&
	git init -q elsewhere &&
	inst/bin/wf-hooks install -C elsewhere >out &&
	test_grep "^# installed copy$" elsewhere/.git/hooks/pre-push &&
	test_grep "^WF_BIN=.$TRASH/inst/bin.$" elsewhere/.git/hooks/pre-push
'

test_expect_success 'a missing template is an error, and nothing is installed' '
	git init -q bare2 --bare &&
	(
		WF_HOOK_TEMPLATES=$TRASH/no-such-dir &&
		export WF_HOOK_TEMPLATES &&
		test_expect_code 4 wf-hooks install -C bare2 >out 2>err
	) &&
	test_grep "^wf-hooks: error: no hook template .$TRASH/no-such-dir/pre-receive.$" err &&
	test -z "$(ls bare2/hooks | grep -v "\.sample$")"
'

test_expect_success 'a foreign proc-receive hook is refused, not chained, and nothing changes' '
	git init -q --bare pr.git &&
	printf "#!/bin/sh\nexit 0\n" >pr.git/hooks/proc-receive &&
	chmod +x pr.git/hooks/proc-receive &&
	cp pr.git/hooks/proc-receive foreign-pr &&
	test_expect_code 3 wf-hooks install --server -C pr.git >out 2>err &&
	test ! -s out &&
	test_grep "^wf-hooks: error: .$TRASH/pr.git/hooks/proc-receive. is not wf.s hook, and a proc-receive hook cannot be chained: it answers git for the refs it is given, and only one can; move it away$" err &&
	test_cmp foreign-pr pr.git/hooks/proc-receive &&
	test ! -e pr.git/hooks/pre-receive &&
	test_must_fail git -C pr.git config receive.procReceiveRefs
'

test_expect_success 'install --server refuses a git without proc-receive, and changes nothing' '
	git init -q --bare old.git &&
	mkdir oldgit &&
	printf "#!/bin/sh\necho git version 2.28.1\n" >oldgit/git &&
	chmod +x oldgit/git &&
	(
		PATH=$TRASH/oldgit:$PATH &&
		test_expect_code 4 wf-hooks install --server -C old.git >out 2>err
	) &&
	test_grep "^wf-hooks: error: git 2.28.1 is too old for the server hooks: they need its proc-receive hook, git 2.29 or later$" err &&
	test -z "$(ls old.git/hooks | grep -v "\.sample$")" &&
	test_must_fail git -C old.git config receive.procReceiveRefs
'

test_expect_success 'install takes out the post-receive hook of an older wf, putting its chained hook back' '
	git init -q --bare up.git &&
	printf "#!/bin/sh\n# wf-hooks: managed hook (post-receive)\nexit 0\n" >up.git/hooks/post-receive &&
	printf "#!/bin/sh\necho mine\n" >up.git/hooks/post-receive.wf-chained &&
	chmod +x up.git/hooks/post-receive up.git/hooks/post-receive.wf-chained &&
	cp up.git/hooks/post-receive.wf-chained theirs &&
	test "$(status_of up.git post-receive)" = outdated &&
	wf-hooks install --server -C up.git >out &&
	test_grep "^\{\"hook\":\"post-receive\",\"path\":\"$TRASH/up.git/hooks/post-receive\",\"state\":\"restored\",\"chained\":null\}$" out &&
	test_cmp theirs up.git/hooks/post-receive &&
	test ! -e up.git/hooks/post-receive.wf-chained &&
	wf-hooks install --server -C up.git >out &&
	! grep -q post-receive out
'

test_expect_success 'usage errors exit 2' '
	test_expect_code 2 wf-hooks 2>err &&
	test_grep "^wf-hooks: error: no command given$" err &&
	test_expect_code 2 wf-hooks install extra 2>err &&
	test_grep "^wf-hooks: error: install: unexpected operand .extra.$" err &&
	test_expect_code 2 wf-hooks --wait status 2>err &&
	test_expect_code 2 wf-hooks --server land 2>err &&
	test_expect_code 2 wf-hooks pre-push 2>err
'

test_expect_success 'the examples of the man page run as written' '
	mkdir ex &&
	awk -f "$TEST_DIRECTORY/examples.awk" "$WF_SRC/man/wf-hooks.1" &&
	mv example*.sh ex/ &&
	test $(ls ex/example*.sh | wc -l) -eq 11 &&
	for i in 1 2 3 4 5 6 7 8 9 10 11; do
		(cd ex && sh ./example$i.sh) >out 2>err ||
		{ echo "example$i.sh failed:"; cat ex/example$i.sh out err; exit 1; }
	done &&
	test "$(git -C ex/srv.git show main:README)" = "hi
more" &&
	test -z "$(ls ex/srv.git/hooks | grep -v "\.sample$")"
'

test_done
