#!/bin/sh
# The built-in demo: match sample issues against a sample catalog, plan
# the matched workflows, and show the plans.  Run by `make demo`.
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
