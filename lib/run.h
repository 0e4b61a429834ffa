#ifndef WF_RUN_H
#define WF_RUN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sandbox.h"
#include "workflow.h"

/*
 * The executor: runs the steps of workflows, each in its sandbox, with
 * at most `jobs` shell steps running at once across all of them.  One
 * thread drives everything: wf_run_next() polls the steps' output,
 * starts what is ready, enforces timeouts and schedules retries.
 *
 * Order and dependencies.  A step without "needs" waits for every step
 * listed before it; a step with "needs" (even an empty list) waits only
 * for those, for the step an exit_code assert names and for the steps
 * its template's {step.<id>} placeholders name, so independent steps run
 * concurrently.  Ready steps start in listed order.
 *
 * Conditions.  A step has seen a failure when one of the steps it waits
 * for failed or had seen one.  "if": "success" (the default) runs only
 * without one, "failure" only with one, "always" in both cases; a step
 * that does not run is "skipped".  The workflow fails when any step
 * failed.
 *
 * Shell steps run `/bin/sh -c RUN` in the sandbox's checkout, stdin from
 * /dev/null, with the sandbox's environment plus the step's "env",
 * WF_STEP and WF_ATTEMPT, in a process group of their own.  A step that
 * exceeds its timeout, or is running when the deadline passes, gets
 * SIGTERM on its group, then SIGKILL after the grace period; whatever
 * a step leaves running in its group when its shell exits is killed.
 * A failed try (non-zero exit, signal or timeout) is retried while
 * attempts remain and its exit code is not listed non-retryable, after
 * delay * factor^(try - 1), at most max_delay, of which a random half is
 * taken off (jitter) so that retries of parallel workflows spread out.
 *
 * Output of every try goes, as it comes, to <log_dir>/<step>.log when
 * the job has a log directory; the last tail_bytes of the last try's
 * stdout and stderr are kept for the result, and its stdout (up to 64
 * KiB, trailing newlines removed) is the step's {step.<id>} value.
 *
 * Assert steps check a file's existence, a file's content against a
 * POSIX ERE (REG_NEWLINE: ^ and $ match at lines), or the exit code of
 * an earlier step (1 for a failed assert or template step, 0 when it
 * succeeded; a step that did not run has none, and the assert fails).
 * Template steps render their text (inline, or the file "source" in the
 * sandbox) and write it to "dest"; placeholders are {number},
 * {workflow}, {title}, {plan_id} and {step.<id>} (a template step's
 * value is its dest), "{{" and "}}" literal braces.  Paths are checked
 * with wf_sandbox_path(): inside the checkout, never through a link.
 */
struct wf_run;

/* Looks up and stores step results; see cache.h.  NULL: no cache. */
struct wf_cache;

struct wf_run_opts {
	unsigned int version;
	size_t jobs;			/* shell steps at once; 0 means 1 */
	size_t tail_bytes;		/* output kept per step; 0: 4096 */
	int64_t grace_ms;		/* SIGTERM to SIGKILL; 0: 2000 */
	int64_t deadline;		/* wf_clock_ms() time to stop; 0: none */
	uint64_t seed;			/* for jitter; 0: from the clock */
	struct wf_cache *cache;		/* borrowed; NULL: no cache */
	/*
	 * A flag a signal handler sets: once it is non-zero the run is
	 * cancelled with the reason "interrupted".  NULL: none.
	 */
	const volatile sig_atomic_t *interrupt;
};

#define WF_RUN_OPTS_VERSION 1
#define WF_RUN_OPTS_INIT \
	{ WF_RUN_OPTS_VERSION, 1, 0, 0, 0, 0, NULL, NULL }

/* One workflow to run, for wf_run_add().  Everything is borrowed. */
struct wf_run_job {
	const struct wf_workflow *workflow;
	struct wf_sandbox *sandbox;
	const char *log_dir;		/* created when missing; NULL: none */
	const char *plan_id;		/* placeholder values; NULL is "" */
	const char *number;
	const char *title;
};

/*
 * Create an executor; `opts` may be NULL.  *out is the caller's to
 * wf_run_free(); NULL on WF_ENOMEM.
 */
int wf_run_new(struct wf_run **out, const struct wf_run_opts *opts);

/*
 * Kill (SIGKILL to their groups) and reap any steps still running, and
 * free the executor; no-op on NULL.
 */
void wf_run_free(struct wf_run *run);

/*
 * Queue a workflow.  *out (may be NULL) receives its number, counted
 * from 0 in the order of adding.  What `job` points to must stay valid
 * until the job has finished.  WF_ENOMEM; WF_EOS when the log
 * directory cannot be created.  The executor is unchanged on error.
 */
int wf_run_add(size_t *out, struct wf_run *run, const struct wf_run_job *job);

/*
 * Run until a queued workflow finishes: returns 1 with its number in
 * *out, 0 when every workflow added has finished and been returned,
 * or an error (WF_EOS: poll or spawn machinery failed; the steps are
 * then killed and every workflow is failed).  Each job is returned once.
 */
int wf_run_next(size_t *out, struct wf_run *run);

/*
 * Stop: running steps are terminated (SIGTERM, grace, SIGKILL) and
 * pending ones skipped, as when the deadline passes; the workflows then
 * fail with `reason` (copied), and so do workflows added later.  Not
 * async-signal-safe: set opts.interrupt from a handler instead.
 */
void wf_run_cancel(struct wf_run *run, const char *reason);

/*
 * The result of finished job `job`: a new reference to
 *   {"status": "succeeded"|"failed", "error": "..." (failed only),
 *    "steps": [{"id", "type", "status", "attempts", "exit_code",
 *               "timed_out", "duration_ms", "output", "log", "error"}]}
 * Step status is succeeded, failed, skipped or cached; attempts is 0
 * for a step that did not run.  Shell steps alone have exit_code (null
 * when there is none: not run, or ended by a signal), timed_out, output
 * (the kept tail of the last try, as UTF-8 with invalid bytes and NULs
 * replaced by U+FFFD) and log (when there is one); "error" is there for
 * failed steps.  WF_ENOTFOUND when the job is unknown or not finished.
 */
int wf_run_result(json_t **out, const struct wf_run *run, size_t job);

#endif
