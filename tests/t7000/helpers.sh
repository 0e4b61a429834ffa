# Helpers for the wf-run tests (tests/t7*-wf-run-*.sh), sourced after
# lib.sh.  Workflows live in $TRASH/cat; the repository in $TRASH/repo.

# setup_repo: a repository with one commit, on branch main.
setup_repo() {
	git init -q "$TRASH/repo" &&
	(
		cd "$TRASH/repo" &&
		echo "read me" >README &&
		printf "Hello {title}, from {workflow} of #{number}\n" >greet.tpl &&
		git add . &&
		git commit -q -m base
	) &&
	mkdir -p "$TRASH/cat"
}

# plan_of LABEL...: the ExecutionPlan of issue 7 carrying the labels,
# through wf-match and wf-plan (with $PLAN_OPTS).
plan_of() {
	labels=
	for l in "$@"; do
		labels="$labels${labels:+, }\"$l\""
	done
	printf '{"number": 7, "title": "Seven", "labels": [%s]}\n' "$labels" |
	wf-match --catalog "$TRASH/cat" | wf-plan $PLAN_OPTS
}

# now_ms: wall clock in milliseconds.
now_ms() {
	date +%s%3N
}

# wf_status SUMMARY NAME: the status of workflow NAME in the summary.
wf_status() {
	grep -o "{\"workflow_name\":\"$2\",\"status\":\"[a-z]*\"" "$1" |
	sed -e 's/.*"status":"//' -e 's/"$//'
}

# wf_message SUMMARY NAME: its message.
wf_message() {
	grep -o "{\"workflow_name\":\"$2\",\"status\":\"[a-z]*\",\(\"created_files\":\[[^]]*\],\)\{0,1\}\"message\":\"[^\"]*\"" "$1" |
	sed -e 's/.*"message":"//' -e 's/"$//'
}

# plan_id FILE: the plan id in a plan or summary.
plan_id() {
	grep -o '"plan_id":"[^"]*"' "$1" | head -n 1 | sed -e 's/.*:"//' -e 's/"$//'
}

# step_output SUMMARY STEP: the "output" of the (first) step STEP.
step_output() {
	grep -o "{\"id\":\"$2\",[^}]*}" "$1" | head -n 1 |
	sed -e 's/.*"output":"\([^"]*\)".*/\1/'
}
