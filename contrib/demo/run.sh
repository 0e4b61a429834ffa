#!/bin/sh
# The built-in demo: match sample issues against a sample catalog, plan
# the matched workflows, and show the plans; queue changes; record the
# telemetry events of the run with wf-emit and show them; a bare server
# with wf's hooks and four clones pushing to it at once.  Run by `make demo`.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
demo=$top/contrib/demo
PATH=$top/bin:$PATH
export PATH

say() {
	if [ -t 1 ]; then
		printf '\n\033[1m%s\033[0m\n' "$*"
	else
		printf '\n%s\n' "$*"
	fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wf-demo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
# The telemetry events of this run, appended by every wf-emit below.
events=$tmp/events.jsonl

say "== The catalog ($demo/catalog)"
for f in "$demo"/catalog/*.json; do
	printf '  %s\n' "$(basename "$f" .json)"
done

say "== The issues ($demo/issues.jsonl)"
sed -e 's/^/  /' "$demo/issues.jsonl"

say "== wf-match | wf-plan --format text --explain"
wf-match --catalog "$demo/catalog" "$demo/issues.jsonl" |
	wf-plan --max-parallel 2 --format text --explain

say "== Issue 482 as the multi_workflow.plan_created payload (wf-plan --pretty)"
head -n 1 "$demo/issues.jsonl" |
	wf-match --catalog "$demo/catalog" |
	wf-plan --allow-partial-success --pretty

say "== Which workflows touch src/lexer.c? (wf-match --exit-status)"
if echo '{"paths": ["src/lexer.c"]}' |
	wf-match --catalog "$demo/catalog" --exit-status >/dev/null; then
	echo '{"paths": ["src/lexer.c"]}' |
		wf-match --catalog "$demo/catalog" --pretty
fi

say "== Previews: wf-emit in the middle records each plan, then its skip summary"
wf-match --catalog "$demo/catalog" "$demo/issues.jsonl" |
	wf-plan --allow-partial-success --preview-only |
	wf-emit plan_created --output "$events" --tee |
	wf-emit execution_summary --skipped --output "$events"
echo "$(wc -l <"$events") events in $events"

say "== A throwaway repository, and two change requests queued for main"
repo=$tmp/repo
git init -q -b main "$repo"
git -C "$repo" config user.name 'Demo Author'
git -C "$repo" config user.email 'demo@example.com'
printf 'int parse(const char *s);\n' >"$repo/parser.h"
printf '# Demo\n' >"$repo/README.md"
git -C "$repo" add .
git -C "$repo" commit -q -m 'Start the demo repository'

# A patch, as git diff writes it.
printf 'int parse(const char *s, int len);\n' >"$repo/parser.h"
git -C "$repo" diff >"$tmp/fix.diff"
git -C "$repo" checkout -q parser.h
wf-enqueue -C "$repo" --id issue-501/1 --target main \
	--message 'Pass the length to parse()' --patch "$tmp/fix.diff" |
	wf-emit change --output "$events" --tee

# Whole files from a tar archive, placed under site/.
mkdir "$tmp/site"
printf '<h1>Document the queue</h1>\n' >"$tmp/site/index.html"
tar -C "$tmp/site" -cf "$tmp/site.tar" index.html
wf-enqueue -C "$repo" --id issue-502/1 --target main \
	--message 'Publish the queue page' --tar "$tmp/site.tar" --prefix site |
	wf-emit change --output "$events" --tee

say "== wf-queue list --format text"
wf-queue -C "$repo" list --format text

say "== The whole chain on issues 482 and 502: match | plan | run | emit | enqueue, then apply"
# The workflows of these two issues write their deliverables from
# templates, so they run anywhere; the others need a real build.
grep -E '"number": (482|502),' "$demo/issues.jsonl" |
	wf-match --catalog "$demo/catalog" |
	wf-plan --allow-partial-success |
	wf-run -C "$repo" --target main |
	wf-emit execution_summary --output "$events" --tee |
	wf-enqueue -C "$repo" |
	wf-emit change --output "$events" --tee
wf-apply -C "$repo" --once |
	wf-emit change --output "$events" --tee

say "== What landed on main (git log)"
git -C "$repo" log --format='%h %s%n        %(trailers:key=Queue-Id,valueonly,separator=%x2c)' main

say "== The files the workflows delivered"
git -C "$repo" ls-tree -r --name-only main | sed -e 's/^/  /'
say "== study/482/compliance-advisory/report.md"
git -C "$repo" show main:study/482/compliance-advisory/report.md

say "== A merge queue with nothing but git: a bare server with wf's hooks"
srv=$tmp/server.git
git init -q --bare "$srv"
git -C "$srv" symbolic-ref HEAD refs/heads/main
git -C "$repo" push -q "$srv" main:main
wf-hooks install --server -C "$srv"
git -C "$srv" config wf.main.protect true
git -C "$srv" config wf.main.check 'test -s README.md'
for who in alice bob carol dave; do
	git clone -q "$srv" "$tmp/$who"
	git -C "$tmp/$who" config user.name "$who"
	git -C "$tmp/$who" config user.email "$who@example.com"
	printf '%s was here\n' "$who" >"$tmp/$who/$who.txt"
	git -C "$tmp/$who" add "$who.txt"
	git -C "$tmp/$who" commit -q --author="$who <$who@example.com>" \
		-m "Add $who.txt"
done

say "== Alice, Bob, Carol and Dave push to refs/for/main at the same moment"
# No ref is made under refs/for/ (git leaves those pushes to wf's
# proc-receive hook): four pushes to one name are four changes.
rm -f "$tmp/go"
for who in alice bob carol dave; do
	(
		while [ ! -e "$tmp/go" ]; do sleep 0.01; done
		git -C "$tmp/$who" push origin HEAD:refs/for/main \
			>"$tmp/$who.out" 2>&1
	) &
done
touch "$tmp/go"
wait
cat "$tmp/alice.out" "$tmp/bob.out" "$tmp/carol.out" "$tmp/dave.out"
# They land in the background; the ref keeping each goes once it landed.
i=0
while [ -n "$(git -C "$srv" for-each-ref refs/wf)" ] && [ $i -lt 200 ]; do
	sleep 0.1
	i=$((i + 1))
done
wf-hooks land -C "$srv" --wait >/dev/null 2>&1

say "== Alice pulls and fixes a typo; a direct push to the protected main is refused"
git -C "$tmp/alice" -c advice.skippedCherryPicks=false pull -q --rebase origin main
printf 'alice was here.\n' >"$tmp/alice/alice.txt"
git -C "$tmp/alice" commit -q --author='alice <alice@example.com>' \
	-am 'Punctuate alice.txt'
git -C "$tmp/alice" push origin HEAD:main 2>&1 || true

say "== So she pushes it to refs/for/main and waits for it to land (-o wf.wait)"
git -C "$tmp/alice" push -o wf.wait origin HEAD:refs/for/main/typo 2>&1

say "== What landed on the server's main (git log), and its queue"
git -C "$srv" log --format='%h %an: %s%n        %(trailers:key=Queue-Id,valueonly,separator=%x2c)' -n 5 main
wf-queue -C "$srv" list --format text

say "== The events of this run ($events)"
cat "$events"

say "== Their batch metrics (wf-emit metrics --pretty)"
wf-emit metrics --pretty "$events"
