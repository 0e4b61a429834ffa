#!/bin/sh
# wf-emit: the telemetry contract's three example payloads, CloudEvents
# envelopes and content ids, redaction, and every event checked against
# the shipped JSON Schemas by an independent validator.

. "$(dirname "$0")/lib.sh"

T=$TEST_DIRECTORY/t6000
SCHEMA=$WF_SRC/schema

# A python3 with jsonschema's draft 2020-12 validator (contrib/deps.sh
# installs Debian's python3-jsonschema when there is none).
PY=
for py in python3 /usr/bin/python3; do
	if "$py" -c 'from jsonschema import Draft202012Validator' \
	    >/dev/null 2>&1; then
		PY=$py
		break
	fi
done
export PY

# validate TYPE FILE...: every line of the FILEs is valid.
validate() {
	"$PY" "$T/validate.py" "$SCHEMA" "$@"
}

jt() {
	"$PY" "$T/jsontool.py" "$@"
}

test_expect_success 'an independent JSON Schema validator is installed' '
	test -n "$PY"
'

test_expect_success 'the validator refuses what the schemas forbid' '
	wf-emit execution_summary "$T/summary-executed.json" >good &&
	validate multi_workflow.execution_summary good &&
	sed -e "s/\"status\":\"executed\",\"created/\"status\":\"done\",\"created/" \
		good >bad-status &&
	test_must_fail validate multi_workflow.execution_summary bad-status &&
	jt del plan_id <good >no-plan-id &&
	test_must_fail validate multi_workflow.execution_summary no-plan-id &&
	jt set extra 1 <good >extra &&
	test_must_fail validate multi_workflow.execution_summary extra 2>err &&
	test_grep "extra" err
'

test_expect_success 'plan_created of issue 482 from wf-match | wf-plan' '
	wf-match --catalog "$TEST_DIRECTORY/t1000/catalog" \
		"$TEST_DIRECTORY/t1000/issue-482.json" |
		wf-plan --allow-partial-success >plan &&
	wf-emit plan_created plan >actual &&
	# The plan_id is what wf-plan derived, whatever its recipe.
	id=$(jt get plan_id <plan) &&
	test_grep "^\"multiwf-[0-9a-f]{32}\"$" - <<-EOF &&
	$id
	EOF
	jt set plan_id "$id" <"$T/expect-plan_created.jsonl" >expect &&
	test_cmp expect actual
'

test_expect_success 'it is the contract example, but for two values upstream derives' '
	# wf-plan derives plan_id from the plan, and wf-match names all
	# three matched workflows in selection_message: set the example
	# ones, and the rest must be the example byte for byte.
	jt set plan_id "\"multiwf-6e1f3f6a15c54f3a8366d77ba47cbe1d\"" \
		<"$T/expect-plan_created.jsonl" |
	jt set selection_message \
		"\"Labels matched compliance-advisory and enforcement-snapshot workflows\"" \
		>got &&
	jt doc <"$T/contract-plan_created.json" >want &&
	test_cmp want got
'

test_expect_success 'execution_summary (executed) from a summary as wf-run writes it' '
	wf-emit execution_summary "$T/summary-executed.json" >actual &&
	test_cmp "$T/expect-executed.jsonl" actual &&
	# Without "stages", they are made from stage_runs: the same.
	wf-emit execution_summary "$T/summary-executed-nostages.json" >actual &&
	test_cmp "$T/expect-executed.jsonl" actual
'

test_expect_success 'it is the contract example plus the required stages' '
	jt del stages <"$T/expect-executed.jsonl" >got &&
	jt doc <"$T/contract-executed.json" >want &&
	test_cmp want got &&
	jt get stages <"$T/expect-executed.jsonl" >stages &&
	cat >want-stages <<-\EOF &&
	[{"index":0,"run_mode":"parallel","workflows":["compliance-advisory","policy-overview"],"blocking_conflicts":["deliverable:weekly-report"]},{"index":1,"run_mode":"sequential","workflows":["enforcement-snapshot"],"blocking_conflicts":[]}]
	EOF
	test_cmp want-stages stages
'

test_expect_success 'execution_summary --skipped of a preview-only plan' '
	wf-emit execution_summary --skipped "$T/plan-preview.json" >actual &&
	test_cmp "$T/expect-skipped.jsonl" actual &&
	jt del stages <actual >got &&
	jt doc <"$T/contract-skipped.json" >want &&
	test_cmp want got
'

test_expect_success '--skipped of a real wf-plan --preview-only plan' '
	wf-match --catalog "$TEST_DIRECTORY/t1000/catalog" \
		"$TEST_DIRECTORY/t1000/issue-482.json" |
		wf-plan --allow-partial-success --preview-only >plan &&
	wf-emit execution_summary --skipped plan >actual &&
	validate multi_workflow.execution_summary actual &&
	test_grep "\"preview_only\":true,\"selection_reason\":\"multi_label_match\"," actual &&
	test_grep "\"status\":\"skipped\",\"skip_reason\":\"preview_only_guard\"}$" actual &&
	test $(grep -o "\"status\":\"skipped\",\"message\"" actual | wc -l) -eq 3
'

test_expect_success 'the event id is the git blob id of the canonical payload' '
	wf-emit execution_summary --cloudevents --time 1700000000 \
		"$T/summary-executed.json" >ce &&
	test_cmp "$T/expect-executed-ce.jsonl" ce &&
	jt canonical <"$T/expect-executed.jsonl" | tr -d "\n" >canon &&
	id=$(git hash-object canon) &&
	test_grep "^\{\"specversion\":\"1.0\",\"id\":\"$id\",\"source\":\"urn:wf:wf-emit\",\"type\":\"multi_workflow.execution_summary\",\"subject\":\"multiwf-6e1f3f6a15c54f3a8366d77ba47cbe1d\",\"time\":\"2023-11-14T22:13:20Z\",\"datacontenttype\":\"application/json\",\"data\":" ce &&
	jt get data <ce >data &&
	test_cmp "$T/expect-executed.jsonl" data
'

test_expect_success 'the same input gives the same id, other input another' '
	wf-emit execution_summary --cloudevents --time none \
		"$T/summary-executed.json" "$T/summary-executed-nostages.json" \
		>two &&
	test $(jt get id <two | sort -u | wc -l) -eq 1 &&
	! test_grep "\"time\"" two &&
	wf-emit execution_summary --cloudevents --time 1 \
		"$T/summary-executed.json" >later &&
	test "$(jt get id <later)" = "$(jt get id <two | head -n 1)" &&
	wf-emit execution_summary --cloudevents --skipped \
		"$T/plan-preview.json" >other &&
	test "$(jt get id <other)" != "$(jt get id <later)"
'

test_expect_success '--source names the producer' '
	wf-emit plan_created --cloudevents --source /ci/runner-7 \
		"$T/expect-plan_created.jsonl" >ce &&
	test "$(jt get source <ce)" = "\"/ci/runner-7\"" &&
	test "$(jt get type <ce)" = "\"multi_workflow.plan_created\""
'

test_expect_success '--redact-paths hash: created_files become blob ids of the paths' '
	wf-emit execution_summary --redact-paths hash \
		"$T/summary-executed.json" >actual &&
	h=$(printf "%s" study/482/compliance-advisory/report.md |
		git hash-object --stdin) &&
	test_grep "\"created_files\":\[\"$h\"\]" actual &&
	! test_grep "study/" actual &&
	validate multi_workflow.execution_summary actual
'

test_expect_success '--redact-paths drop: created_files are left out' '
	wf-emit execution_summary --redact-paths drop \
		"$T/summary-executed.json" >actual &&
	! test_grep "created_files" actual &&
	test_grep "\"message\":\"Workflow executed successfully.\"" actual &&
	validate multi_workflow.execution_summary actual &&
	wf-emit execution_summary --redact-paths keep \
		"$T/summary-executed.json" >actual &&
	test_cmp "$T/expect-executed.jsonl" actual
'

test_expect_success 'deliverable paths are redacted too' '
	jt doc <"$T/summary-executed.json" |
	jt set deliverable_manifest "{\"entries\": [{\"workflow\": \"w\",
		\"name\": \"weekly-report\", \"path\": \"study/1/w/r.md\",
		\"template\": \"study/{number}/{workflow}/r.md\"}]}" >summary &&
	wf-emit execution_summary summary >keep &&
	test_grep "\"deliverable_manifest\":\{\"entries\":\[\{\"workflow\":\"w\",\"name\":\"weekly-report\",\"path\":\"study/1/w/r.md\",\"template\":\"study/\{number\}/\{workflow\}/r.md\"\}\]\}" keep &&
	wf-emit execution_summary --redact-paths drop summary >drop &&
	test_grep "\"deliverable_manifest\":\{\"entries\":\[\{\"workflow\":\"w\",\"name\":\"weekly-report\"\}\]\}" drop &&
	wf-emit execution_summary --redact-paths hash summary >hash &&
	h=$(printf "%s" study/1/w/r.md | git hash-object --stdin) &&
	test_grep "\"path\":\"$h\"" hash &&
	! test_grep "study/" hash &&
	validate multi_workflow.execution_summary keep drop hash
'

test_expect_success 'every event of every kind is valid, bare and enveloped' '
	wf-emit plan_created "$T/expect-plan_created.jsonl" >plan &&
	validate multi_workflow.plan_created plan &&
	wf-emit execution_summary "$T/summary-executed.json" \
		"$T/summary-failed.json" >summary &&
	wf-emit execution_summary --skipped "$T/plan-preview.json" >>summary &&
	validate multi_workflow.execution_summary summary &&
	for s in enqueued landed failed dead; do
		if test $s = enqueued; then
			grep "\"position\"" "$T/changes.jsonl"
		else
			grep -v "\"position\"" "$T/changes.jsonl" |
			grep "\"state\":\"$s\""
		fi >in-$s &&
		wf-emit change in-$s >change-$s &&
		validate wf.change.$s change-$s || exit 1
	done &&
	cat "$T/summary-executed.json" "$T/summary-failed.json" \
		"$T/changes.jsonl" | wf-emit metrics >metrics &&
	validate wf.batch.metrics metrics &&
	{
		wf-emit plan_created --cloudevents "$T/expect-plan_created.jsonl" &&
		wf-emit execution_summary --cloudevents "$T/summary-executed.json" \
			"$T/summary-failed.json" &&
		wf-emit execution_summary --cloudevents --skipped \
			--redact-paths hash "$T/plan-preview.json" &&
		wf-emit change --cloudevents "$T/changes.jsonl" &&
		wf-emit metrics --cloudevents "$T/changes.jsonl"
	} >ce &&
	test $(wc -l <ce) -eq 12 &&
	validate cloudevents ce
'

test_expect_success 'a summary with failures and errors' '
	wf-emit execution_summary "$T/summary-failed.json" >actual &&
	test_cmp "$T/expect-failed.jsonl" actual
'

test_expect_success '--pretty indents the same event' '
	wf-emit execution_summary --pretty "$T/summary-executed.json" >pretty &&
	test $(wc -l <pretty) -gt 10 &&
	jt doc <pretty >compact &&
	test_cmp "$T/expect-executed.jsonl" compact
'

test_expect_success 'the examples of the man page run as written' '
	mkdir top &&
	cp -R "$WF_SRC/contrib" top/ &&
	git -C top init -q &&
	awk -f "$TEST_DIRECTORY/examples.awk" "$WF_SRC/man/wf-emit.1" &&
	test $(ls example*.sh | wc -l) -eq 5 &&
	for f in example*.sh; do
		(cd top && sh ../$f) >out-$f 2>err
		rc=$?
		if test $rc -ne 0 || test -s err; then
			echo "$f exited $rc:" && cat $f out-$f err
			exit 1
		fi
	done &&
	plans=$(wf-match --catalog top/contrib/demo/catalog \
		top/contrib/demo/issues.jsonl | wc -l) &&
	test $(wc -l <top/events.jsonl) -eq $((2 * plans)) &&
	grep "^{\"plan_id\"" top/events.jsonl >plans &&
	test $(wc -l <plans) -eq $plans &&
	validate multi_workflow.plan_created plans &&
	grep -v "^{\"plan_id\"" top/events.jsonl >summaries &&
	validate multi_workflow.execution_summary summaries &&
	test_grep "\"summary_count\": $plans," out-example2.sh &&
	validate cloudevents out-example3.sh &&
	validate wf.change.landed out-example4.sh &&
	test ! -s out-example5.sh
'

test_done
