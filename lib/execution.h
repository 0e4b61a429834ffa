#ifndef WF_EXECUTION_H
#define WF_EXECUTION_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <git2.h>
#include <jansson.h>

#include "json.h"

/*
 * Executing an ExecutionPlan (what wf-plan writes): stage by stage, each
 * workflow in a sandbox of its own (sandbox.h) with its steps run by the
 * executor (run.h), then its deliverables turned into a change request.
 * The result is an ExecutionSummary: the multi_workflow.execution_summary
 * payload of the telemetry contract, plus the change requests.
 */
struct wf_cache;
struct wf_state;

/* What to collect from a sandbox whose workflow succeeded. */
enum wf_execution_collect {
	WF_EXECUTION_COLLECT_DELIVERABLES,	/* declared deliverables only */
	WF_EXECUTION_COLLECT_ALL		/* every file added, changed or
						 * deleted */
};

struct wf_execution_opts {
	unsigned int version;
	size_t jobs;			/* workflows and steps at once; 0: 1 */
	const char *base;		/* revision to check out; NULL: HEAD */
	const char *target;		/* branch of the change requests;
					 * NULL: HEAD's branch */
	int dry_run;			/* run nothing, as preview_only */
	enum wf_execution_collect collect;
	int64_t timeout_ms;		/* the whole plan; 0: none */
	const char *const *env;		/* names passed to the steps besides
					 * the allowlist; NULL-terminated */
	const char *log_dir;		/* logs under <log_dir>/<plan_id>/
					 * <workflow>/; NULL: wf/logs in the
					 * git common directory */
	const char *tmpdir;		/* where sandboxes go; NULL: $TMPDIR */
	int keep_sandboxes;		/* leave them on disk */
	int64_t grace_ms;		/* SIGTERM to SIGKILL; 0: 2000 */
	struct wf_cache *cache;		/* step cache; NULL: none */
	struct wf_state *state;		/* resume state; NULL: none */
	const volatile sig_atomic_t *interrupt;	/* see wf_run_opts */
};

#define WF_EXECUTION_OPTS_VERSION 1
#define WF_EXECUTION_OPTS_INIT { WF_EXECUTION_OPTS_VERSION, 1, NULL, NULL, \
	0, WF_EXECUTION_COLLECT_DELIVERABLES, 0, NULL, NULL, NULL, 0, 0, \
	NULL, NULL, NULL }

/*
 * Execute the ExecutionPlan doc->value in `repo`.  `opts` may be NULL.
 *
 * Stages run in order; the workflows of a stage run concurrently, at
 * most opts->jobs at a time (and at most that many shell steps at
 * once).  A workflow depending on one that did not execute is skipped.
 * When a workflow fails and the plan does not allow partial success,
 * the stages after its own are skipped and no change request is made;
 * when it does, the workflows that executed still yield theirs.  A
 * workflow that executed yields one change request of kind "files":
 * id "<plan_id>/<workflow>", the files it created or changed that are
 * its deliverables (the manifest's final paths), or with
 * WF_EXECUTION_COLLECT_ALL everything it added, changed or deleted;
 * base the commit checked out, target opts->target, meta {plan_id,
 * workflow, issue_number}.  Writing outside the sandbox, through a link
 * out of it or into ".git" fails the workflow.  A preview_only plan, or
 * opts->dry_run, runs nothing.
 *
 * With opts->cache, shell steps go through the step cache (cache.h).
 * With opts->state, the workflows that executed in an unfinished earlier
 * run of the same plan (same base commit, target and collect) are taken
 * from its record rather than run, each workflow that executes is
 * recorded as soon as it is done, and the record is closed when the plan
 * ran to its end without an interrupt (state.h).
 *
 * On success *out is a new reference to the ExecutionSummary, with the
 * keys in this order: issue_number, plan_id, stage_count,
 * workflow_count, stages, preview_only, selection_reason and
 * selection_message (when the plan has them), allow_partial_success,
 * overall_timeout_seconds (when executed: null without a timeout),
 * deliverable_manifest (when it has entries), stage_runs, status
 * ("executed" or "skipped"), skip_reason ("preview_only_guard", when
 * skipped), errors (when executed: [{workflow_name, error}] of the
 * workflows that failed), changes (the change requests in their
 * canonical form).  stage_runs[].workflows[] are {workflow_name, status
 * (executed, failed or skipped), created_files (executed), message,
 * steps (as wf_run_result() gives them, for workflows that ran)}.
 * Failed workflows are not an error: 0 is returned and the summary
 * says so.
 *
 * Errors: WF_EINPUT with the place named ("<name>:<line>:<col>: .stages
 * [1].workflows[0]: ...") for a malformed plan, an unknown --base or a
 * missing target; WF_EOS when the machinery fails (a sandbox cannot be
 * made, poll fails); WF_ENOMEM.  *out is NULL then.
 */
int wf_execution_run(json_t **out, git_repository *repo,
    const struct wf_json_doc *doc, const struct wf_execution_opts *opts);

/*
 * Did the summary `summary` (from wf_execution_run()) execute every
 * workflow?  1 when it did (or skipped them all as a preview), 0 when
 * some workflow failed or was skipped for a failure or a timeout.
 */
int wf_execution_complete(const json_t *summary);

#endif
