#!/bin/sh
# Real history replayed as one stream of patches with no base: every
# landed tree equals the original's, in order.

. "$(dirname "$0")/lib.sh"

# replay SRC N DST: the last N first-parent steps of SRC's HEAD as one
# stream of patch requests (patch_base64, so any bytes go), queued in
# DST, a new repository holding the tree the steps start from.
replay() {
	git -C "$1" rev-list --first-parent --reverse -n "$2" HEAD >steps &&
	first=$(head -1 steps) &&
	start=$(git -C "$1" rev-parse "$first^1") &&
	git init -q "$3" &&
	git -C "$1" archive --format=tar "$start" | (cd "$3" && tar xf -) &&
	(cd "$3" && git add -A -f && git commit -q --allow-empty -m start) &&
	test "$(git -C "$3" rev-parse HEAD^{tree})" = \
		"$(git -C "$1" rev-parse "$start^{tree}")" &&
	i=0 &&
	while read -r c; do
		i=$((i + 1))
		p=$(git -C "$1" diff --binary --full-index "$c^1" "$c" | base64 -w0)
		m=$(git -C "$1" log -1 --format=%s "$c" | base64 -w0)
		printf '{"id":"r/%d","target":"main","kind":"patch","patch_base64":"%s","message_base64":"%s"}\n' \
			"$i" "$p" "$m"
	done <steps >stream.jsonl &&
	(cd "$3" && wf-enqueue ../stream.jsonl) >queued &&
	test $(wc -l <queued) -eq "$2" &&
	(cd "$3" && wf-apply --once --batch 16) >landed &&
	test $(grep -c "\"state\":\"landed\"" landed) -eq "$2" &&
	while read -r c; do
		git -C "$1" rev-parse "$c^{tree}"
	done <steps >expect &&
	git -C "$3" log --first-parent --reverse --format=%T -n "$2" main >actual &&
	test_cmp expect actual
}

test_expect_success 'setup: a history with every kind of step' '
	git init -q src &&
	(
		cd src &&
		seq 1 100 >nums && printf "a\0b\n" >bin && echo x >old &&
		mkdir d && echo in >d/f && ln -s nums link &&
		git add . && git commit -q -m start &&
		sed -i s/^50$/fifty/ nums && git commit -q -am edit &&
		git mv old "new name" && git commit -q -m "rename with a space" &&
		chmod +x nums && git commit -q -am "mode" &&
		printf "a\0c\n" >bin && git commit -q -am binary &&
		printf "caf\351\n" >latin1 && git add latin1 &&
		printf "Latin-1 \351\n" | git commit -q -F - &&
		git rm -q -r d && echo file >d && git add d &&
		git commit -q -m "directory to file" &&
		rm link && echo plain >link && git add link &&
		git commit -q -m "symlink to file" &&
		git mv nums n2 && git mv "new name" nums && git mv n2 "new name" &&
		git commit -q -m swap &&
		git rm -q latin1 && git commit -q -m delete &&
		for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
			echo "$i" >>"new name" && echo "$i" >>"f$((i % 3))" &&
			git add . && git commit -q -m "step $i" || exit 1
		done
	)
'

test_expect_success 'a built history replays tree for tree' '
	replay src 21 dst
'

test_expect_success 'each step is ordered after the steps it builds on' '
	(cd dst && wf-queue show r/21) >show &&
	test_grep "\"depends_on\":\\[\"r/" show
'

# The project's own history, when the source is a git checkout.
if git -C "$WF_SRC" rev-parse -q --verify HEAD >/dev/null 2>&1 &&
   test "$(git -C "$WF_SRC" rev-list --first-parent --count HEAD)" -gt 40
then
	test_expect_success 'this project'"'"'s own last 40 steps replay tree for tree' '
		git clone -q --no-local "$WF_SRC" self &&
		replay self 40 selfdst
	'
fi

test_done
