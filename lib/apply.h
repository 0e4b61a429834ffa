#ifndef WF_APPLY_H
#define WF_APPLY_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <git2.h>
#include <jansson.h>

#include "pack.h"
#include "queue.h"

struct wf_lane;

/*
 * Landing: lease a batch of queued changes for a branch, build their
 * commits in memory on the branch tip (one commit per change request,
 * or per replayed commit, each with a "Queue-Id: <id>" trailer), run the
 * branch's checks on the result (lib/checks.h), write the new objects as
 * one pack, and move the branch by compare-and-swap.  All of it happens
 * in the branch's lane (lib/lane.h), so appliers of one branch take
 * turns instead of building on a tip another is about to move; the
 * compare-and-swap guards against every other writer.  A change that
 * does not apply is taken out of the batch with its reason and acked
 * failed; the others go on.  A batch that fails its checks is bisected:
 * the first half is tried on the tip, then the rest on what passed, and
 * so on down to the culprits, which are acked failed with the check's
 * output while everything that passes lands.  The branch only ever
 * moves from its old tip to a commit whose tree passed every check.
 *
 * Leases are extended while a step runs.  A step that fails gives its
 * leases back (without counting the attempt), except for changes that
 * already landed, which are acked or left to wf_apply_recover().
 */
struct wf_apply_opts {
	size_t batch;		/* entries leased per step (8) */
	unsigned fuzz;		/* see struct wf_patch_opts (0) */
	/*
	 * Lease owner (NULL: "wf-apply"); "@HOST:PID" is added, so that
	 * wf_apply_recover() can tell the leases of a process that died.
	 */
	const char *owner;
	int64_t lease_ms;	/* lease length (10 minutes) */
	int max_moves;		/* rebuilds when the branch moved (10) */
	/*
	 * Called after the batch is built, checked and its objects
	 * written, just before the branch moves (NULL: none).  `tip` is
	 * the commit the batch was built on, `head` its last commit.  A
	 * negative return aborts the step with that error.
	 */
	int (*before_land)(git_repository *repo, const git_oid *tip,
	    const git_oid *head, void *payload);
	void *payload;
	/*
	 * The repository's in-memory object store (wf_pack_attach()),
	 * borrowed; NULL attaches one for this step, so pass one when
	 * stepping the same repository handle many times.
	 */
	struct wf_pack *pack;
	/* Check commands, NULL-terminated, borrowed (NULL: no checks). */
	const char *const *checks;
	int64_t check_timeout_ms;	/* per command (10 minutes) */
	int64_t check_grace_ms;		/* SIGTERM to SIGKILL (2 s) */
	const char *tmpdir;		/* for checkouts (NULL: $TMPDIR, /tmp) */
	/*
	 * Told what a step is doing (NULL: nobody), with a borrowed object
	 * {"event", "target", ...}: "lease" {"count"}, "build" {"changes",
	 * "ms"}, "check" {"changes", "tree", "ok", "cached", "ms"},
	 * "bisect" {"changes"}, "moved", "land" {"changes", "commit"},
	 * "found" {"id", "commit"} (already on the branch), "stale-lock"
	 * {"path"} (a lock on the branch left by a killed process, older
	 * than 3 s, was removed).
	 */
	void (*progress)(const json_t *event, void *payload);
	void *progress_payload;
	/*
	 * A flag a signal handler sets (NULL: none).  Once it is non-zero
	 * the step stops at the next clean point before the branch moves
	 * (between the changes it builds, or at once in a check: see
	 * wf_checks_opts), gives its leases back and returns WF_EINTR.
	 */
	const volatile sig_atomic_t *interrupt;
	/*
	 * The target's lane (lib/lane.h), taken by the caller, borrowed;
	 * NULL: the step takes it itself for its length, and fails with
	 * WF_EBUSY when another holds it.
	 */
	struct wf_lane *lane;
};

#define WF_APPLY_OPTS_INIT { 8, 0, NULL, 600000, 10, NULL, NULL, NULL, \
	NULL, 600000, 2000, NULL, NULL, NULL, NULL, NULL }

/*
 * One step for branch `target` ("main" or "refs/heads/main"): lease up
 * to opts->batch entries, build, check, bisect, land, ack.  *out is a
 * new array with one object per leased entry, in queue order:
 * {"id", "queue_id", "state": "landed"|"failed"|"dead", "commit" (the
 * last commit of a landed change) or "error" (why it failed)}; empty
 * when nothing was leasable.  An entry leased before whose trailer is
 * already on the branch is acked landed without building it again.
 * Uses the repository's identity for the committer, and a check result
 * cache in `q`.  WF_ENOTFOUND when the branch does not exist, WF_EBUSY
 * when another holds the lane (opts->lane NULL; nothing is leased
 * then), or the branch kept moving (moved by writers outside the lane),
 * or the queue stayed locked; WF_EINTR when interrupted, WF_EOS /
 * WF_ENOMEM; *out is then NULL, the leases are given back (the attempt
 * not counted), and the branch is unchanged unless the failure came
 * after it moved (then the landed entries are acked, or left leased for
 * wf_apply_recover()).
 */
int wf_apply_step(json_t **out, git_repository *repo, struct wf_queue *q,
    const char *target, const struct wf_apply_opts *opts);

/*
 * After a crash: settle the entries of `target` leased by processes of
 * this host that no longer run (leases whose owner ends "@HOST:PID", as
 * wf_apply_step() writes them).  An entry whose Queue-Id trailer is on
 * the branch (its first-parent history) is acked landed; the others are
 * released, queued again without counting the attempt.  Other leases
 * are left alone.  *out is a new array of {"id", "queue_id", "state",
 * "commit"} for the entries acked landed and {"id", "queue_id", "state":
 * "queued"} for those released.  `opts` may be NULL (only `owner` is
 * not used).  Errors as for wf_apply_step(); what was settled before
 * stays settled.
 */
int wf_apply_recover(json_t **out, git_repository *repo, struct wf_queue *q,
    const char *target, const struct wf_apply_opts *opts);

/*
 * The Queue-Id trailer value of a commit message (in its last paragraph;
 * the last one when there are several), or NULL; *len gets its length.
 * Borrowed from `message`.
 */
const char *wf_apply_queue_id(size_t *len, const char *message);

#endif
