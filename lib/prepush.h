#ifndef WF_PREPUSH_H
#define WF_PREPUSH_H

#include <signal.h>
#include <stddef.h>

#include <git2.h>
#include <jansson.h>

#include "catalog.h"
#include "workflow.h"

/*
 * The client's pre-push checks: the steps a workflow of the catalog
 * marks as such, run before a push for the workflows the outgoing paths
 * select.  A step is a pre-push check when its id is "pre-push" or
 * starts with "pre-push-"; such steps are ordinary steps of the
 * workflow (wf-run runs them with the others), so the catalog's schema
 * is unchanged.  Their "needs" may only name other pre-push steps.
 */

/* Whether a step id marks a pre-push check. */
int wf_prepush_is_check(const char *step_id);

/*
 * The commit whose tree the outgoing commits are compared with, for a
 * push of `local` to `remote_ref` of `remote` (a remote's name or a URL)
 * whose tip there is `remote_id` (zero when the ref is new): the merge
 * base of `local` with `remote_id` when that commit is here; else with
 * the remote-tracking branch the push goes to, refs/remotes/<remote>/<b>
 * for refs/heads/<b> and for refs/for/<b>[/<topic>] (the longest <b>
 * that has one); else with refs/remotes/<remote>/HEAD.  *found is 0 when
 * there is none (then every path of `local` is outgoing).
 */
int wf_prepush_base(git_oid *out, int *found, git_repository *repo,
    const char *remote, const char *remote_ref, const git_oid *remote_id,
    const git_oid *local);

/*
 * The pre-push checks of the workflows a WorkflowPlan selects (`plan`,
 * from wf_match_item() against catalog `c`): for each candidate with
 * pre-push steps, in the plan's order, a new workflow named as it and
 * holding only those steps, validated as a definition.  *out is a new
 * array of *n workflows (free each with wf_workflow_free(), then the
 * array with free()); NULL and 0 when none has any.  WF_EINPUT, naming
 * the workflow's file, when the steps do not stand on their own.
 */
int wf_prepush_select(struct wf_workflow ***out, size_t *n,
    const struct wf_catalog *c, const json_t *plan);

/* How to run the checks. */
struct wf_prepush_opts {
	size_t jobs;		/* shell steps at once (0: 1) */
	/* Set by a signal handler to stop the checks (NULL: none). */
	const volatile sig_atomic_t *interrupt;
};

#define WF_PREPUSH_OPTS_INIT { 0, NULL }

/*
 * Run workflows `w[0..n)` (borrowed), each in a sandbox holding the tree
 * of `commit` (the commit being pushed, not the work tree).  *out is a
 * new array, in the order of `w`, of {"workflow", "status": "succeeded"
 * | "failed", "error" (failed only), "steps": [...]}, with steps as
 * wf_run_result() reports them.  A failing check is not an error;
 * WF_EOS when a sandbox cannot be made or the executor fails.
 */
int wf_prepush_run(json_t **out, git_repository *repo,
    struct wf_workflow *const *w, size_t n, const git_oid *commit,
    const struct wf_prepush_opts *opts);

#endif
