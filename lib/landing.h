#ifndef WF_LANDING_H
#define WF_LANDING_H

#include <stddef.h>
#include <sys/types.h>

#include <git2.h>
#include <jansson.h>

/*
 * Landing runs started by the server hooks: at most one runner per
 * repository lands what pushes queued, with wf-apply, and then removes
 * the refs/for/ refs of the changes that landed.
 *
 * Two files in <common git dir>/wf/ coordinate the runners:
 *
 *   land.pending  the branches pushes asked to land, one per line;
 *   land.lock     flock(2)ed by the runner for the length of a pass.
 *
 * A push appends its branches to land.pending, then starts a runner.  A
 * pass takes the lock, reads and empties land.pending, lands those
 * branches, unlocks, and only then looks at land.pending again.  A
 * runner that finds the lock taken leaves: the runner holding it will
 * see the request when it unlocks, since the request was written before
 * the lock was tried.  So no request is ever left behind, and no two
 * runners land at once.
 */

struct wf_landing_opts {
	/* The wf-apply program, found with execvp() (NULL: "wf-apply"). */
	const char *apply;
	/* The queue database (NULL: wf-apply's and wf-queue's default). */
	const char *db;
	/* Wait for the lock instead of leaving the work to its holder. */
	int wait;
	/* wf-apply's standard output and error (-1: /dev/null). */
	int out_fd;
	int err_fd;
};

#define WF_LANDING_OPTS_INIT { NULL, NULL, 0, -1, -1 }

/*
 * Ask for the branches `targets[0..n)` to be landed: append them to
 * land.pending (creating it and its directory) in `gitdir`, the
 * repository's common git directory (git_repository_commondir()).
 * WF_EOS on I/O errors.
 */
int wf_landing_request(const char *gitdir, const char *const *targets,
    size_t n);

/*
 * Run one pass: take the lock (or, without opts->wait, return 0 at once
 * with *out NULL when another runner holds it), take the branches
 * pending, run `wf-apply --once --retry-delay 0 --progress=text
 * -C <git dir> --target B...` on those that exist (without GIT_DIR and
 * the other variables git sets for hooks), then wf_push_sweep(), and
 * unlock.  On return after a pass, *out is a new object
 * {"targets": [...], "status": wf-apply's exit status (null when it did
 * not run: nothing pending), "removed": [{"ref", "id"}...],
 * "more": whether a request came meanwhile}.  WF_EOS when the files
 * cannot be used or wf-apply cannot be started; a failing wf-apply is
 * not an error (see "status").
 */
int wf_landing_pass(json_t **out, git_repository *repo,
    const struct wf_landing_opts *opts);

/*
 * Whether a runner holds the lock in `gitdir` (the common git directory)
 * now: *out is 1 when one does (it will see the requests made before
 * this call), 0 when none does.  WF_EOS when the lock file cannot be
 * opened.
 */
int wf_landing_busy(int *out, const char *gitdir);

/*
 * Start `argv` (argv[0] found with execvp()) in the background, in a new
 * session, detached from the caller: standard input from /dev/null,
 * standard output and error appended to `log` (created; renamed to
 * "<log>.1" first when it holds more than 1 MiB), no other descriptor
 * inherited, and not the caller's child (it is reaped by init).  With
 * `after` (a process id; 0 for none) it waits, detached already, until
 * that process has exited (10 s at most) before it runs `argv`: a hook
 * passes the git-receive-pack it runs for, so that the runner does not
 * compete with the push it serves.  *out (may be NULL) is its process
 * id.  WF_EOS when it cannot be started; the caller learns of a failing
 * exec only from the log.
 */
int wf_landing_spawn(pid_t *out, char *const *argv, const char *log,
    pid_t after);

#endif
