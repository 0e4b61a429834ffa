#ifndef WF_STATE_H
#define WF_STATE_H

#include <jansson.h>

/*
 * What wf-run remembers of the plans it runs, so that a run killed at
 * any point (kill -9 included) and started again with the same plan
 * does not run again the workflows that executed: tables plan_state and
 * workflow_state of an SQLite database, by default the step cache's
 * (wf/run.db in the git common directory), in WAL mode with every
 * record committed before the run goes on.
 *
 * A plan's record holds a run key (what else must match for the
 * results to hold: the base commit, the target, what is collected) and
 * whether the run finished; each workflow that executed adds its entry
 * of the summary and its change request.
 */
struct wf_state;

/*
 * Open (creating it and its directory when missing) the state in the
 * database `path`.  *out is the caller's to wf_state_free(); NULL on
 * error (WF_EOS, WF_EBUSY when it stayed locked).
 */
int wf_state_open(struct wf_state **out, const char *path);

/* Close and free; no-op on NULL. */
void wf_state_free(struct wf_state *st);

/*
 * Start a run of `plan_id` with `run_key`.  When an unfinished run of
 * the same plan and key is recorded, *out is a new reference to an
 * object {workflow: {"entry": {...}, "change": {...} or null}} of the
 * workflows that executed in it, to be reused; otherwise whatever was
 * recorded of the plan is dropped and *out is an empty object.  The
 * plan is recorded as running.  *out is NULL on error.
 */
int wf_state_begin(json_t **out, struct wf_state *st, const char *plan_id,
    const char *run_key);

/*
 * Record that `workflow` of the plan executed, with its summary entry
 * and its change request (NULL when it made none); both are copied.
 */
int wf_state_record(struct wf_state *st, const char *plan_id,
    const char *workflow, const json_t *entry, const json_t *change);

/* The run of the plan finished: the next one starts afresh. */
int wf_state_finish(struct wf_state *st, const char *plan_id);

#endif
