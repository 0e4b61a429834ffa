#ifndef WF_CHECKS_H
#define WF_CHECKS_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <git2.h>
#include <jansson.h>

#include "queue.h"

/*
 * Checks: shell commands that must pass on a tree before it may land.
 * The tree is checked out into a new temporary directory (files only:
 * no .git, no index), and each command runs there in turn, as
 * `/bin/sh -c COMMAND` in a process group of its own, with standard
 * input from /dev/null and standard output and error kept together.  A
 * command that outlives its timeout has its whole group sent SIGTERM,
 * then SIGKILL after a grace period; when a command exits, whatever it
 * left running is killed too: its group, and every process that still
 * holds its WF_CHECK_ID, even one that left the group (setsid, say).
 * The commands see, besides the caller's environment:
 *
 *   WF_TARGET     the branch the tree is for
 *   WF_BASE       the commit the changes were built on (the branch tip)
 *   WF_HEAD       the commit being checked
 *   WF_TREE       its tree
 *   WF_QUEUE_IDS  the ids of the changes in it, separated by spaces
 *   WF_GIT_DIR    the repository's git directory
 *   WF_CHECK_ID   32 hex digits naming the checkout and the processes
 *                 of its commands; unique
 *
 * The checkout is TMP/wf-check.XXXXXX/tree, beside a lock file that
 * its owner holds locked (flock) while the directory exists, where the
 * commands' process group and WF_CHECK_ID are recorded (lib/checks_dir.h):
 * after a kill -9 of the owner, wf_checks_cleanup() finds both.
 *
 * The result of one command is a JSON object, keys in this order:
 * {"command", "ok", "exit" (its exit status, or null), "signal" (the
 * signal that ended it, or null), "timed_out", "ms" (how long it ran),
 * "cached" (true when the result came from the cache), "output" (the
 * last bytes of its output, as UTF-8 with invalid bytes shown as '?')}.
 */

struct wf_checks_opts {
	int64_t timeout_ms;	/* per command (10 minutes) */
	int64_t grace_ms;	/* SIGTERM to SIGKILL on timeout (2 s) */
	size_t tail;		/* bytes of output kept (4096) */
	/*
	 * Results by (tree, command), borrowed; NULL for none.  A result
	 * found there is used instead of running the command; a new one
	 * is stored, unless the command timed out (that may be the
	 * machine's load rather than the tree) or was stopped.
	 */
	struct wf_queue *cache;
	const char *target;	/* WF_TARGET (NULL: "") */
	const char *queue_ids;	/* WF_QUEUE_IDS (NULL: "") */
	/*
	 * Called about every tick_ms while a command runs (NULL: never),
	 * to extend leases, say.  A negative return kills the command's
	 * group at once and wf_checks_run() returns that error.
	 */
	int (*tick)(void *payload);
	/*
	 * Called once before the first command that is not in the cache
	 * runs (NULL: never): to write out objects the commands should
	 * find in the repository, say.  A negative return is returned.
	 */
	int (*prepare)(void *payload);
	void *payload;		/* for tick and prepare */
	int64_t tick_ms;	/* (1000) */
	const char *tmpdir;	/* for the checkout (NULL: $TMPDIR or /tmp) */
	/*
	 * A flag a signal handler sets (NULL: none).  Once it is non-zero,
	 * the command running gets SIGTERM on its group, SIGKILL a second
	 * later (or at the end of grace_ms, if shorter), no other starts,
	 * and wf_checks_run() returns WF_EINTR.
	 */
	const volatile sig_atomic_t *interrupt;
};

#define WF_CHECKS_OPTS_INIT { 600000, 2000, 4096, NULL, NULL, NULL, NULL, \
	NULL, NULL, 1000, NULL, NULL }

/*
 * Run `commands` (NULL-terminated; NULL or empty: nothing to run) on
 * commit `head`, built on `base`, stopping at the first that fails.
 * *out is a new object {"ok", "tree", "checks": [one result per command
 * run, the failing one last]}; a failing check is not an error.  The
 * checkout is made only when some command is not in the cache, and is
 * removed afterwards.  WF_EOS when the tree cannot be checked out or a
 * command cannot be started, WF_ENOMEM, WF_EINTR when interrupted, or
 * the tick's error; *out is then NULL, nothing is cached for the
 * command that was running, and nothing of it runs any more.
 */
int wf_checks_run(json_t **out, git_repository *repo,
    const char *const *commands, const git_oid *base, const git_oid *head,
    const struct wf_checks_opts *opts);

/*
 * The checks configured for `branch` ("main" or "refs/heads/main"): every
 * value of `git config wf.<branch>.check`, in order.  *out is a new
 * NULL-terminated array of new strings, empty when none is set; free it
 * with wf_checks_strv_free().  WF_EOS when the configuration cannot be
 * read.
 */
int wf_checks_configured(char ***out, git_repository *repo,
    const char *branch);

/*
 * After a crash: remove the checkouts that runs of wf_checks_run()
 * killed before they could (kill -9) left in `tmpdir` (NULL: $TMPDIR,
 * or /tmp), and kill (SIGKILL) what their commands left running.  Only
 * wf-check.XXXXXX directories of this user are looked at, and only
 * those whose lock file can be locked (so its owner is gone) and holds
 * a record written on this host; the others, a running check's or an
 * older wf's, are left alone.  A process is killed only when it holds
 * the checkout's WF_CHECK_ID in its environment, or is in the recorded
 * group and that group is provably still the check's: its leader is
 * the recorded process (same pid and start time) or one of its members
 * holds the id.  A process that took the recorded group id again is
 * left alone.  *checkouts (may be NULL) is the number of checkouts
 * removed, *processes (may be NULL) of processes killed.  WF_EOS when
 * `tmpdir` cannot be read (a missing one has nothing to clean),
 * WF_ENOMEM.
 */
int wf_checks_cleanup(size_t *checkouts, size_t *processes,
    const char *tmpdir);

/* Free a NULL-terminated array of strings and the strings; NULL is a no-op. */
void wf_checks_strv_free(char **v);

#endif
