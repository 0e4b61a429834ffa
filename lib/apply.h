#ifndef WF_APPLY_H
#define WF_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include <git2.h>
#include <jansson.h>

#include "pack.h"
#include "queue.h"

/*
 * Landing: lease a batch of queued changes for a branch, build their
 * commits in memory on the branch tip (one commit per change request,
 * or per replayed commit, each with a "Queue-Id: <id>" trailer), write
 * the new objects as one pack, and move the branch by compare-and-swap.
 * A change that does not apply is taken out of the batch with its reason
 * and acked failed; the others go on.
 */
struct wf_apply_opts {
	size_t batch;		/* entries leased per step (8) */
	unsigned fuzz;		/* see struct wf_patch_opts (0) */
	const char *owner;	/* lease owner (NULL: "wf-apply") */
	int64_t lease_ms;	/* lease length (10 minutes) */
	int max_moves;		/* rebuilds when the branch moved (10) */
	/*
	 * Called after the batch is built and its objects written, before
	 * the branch moves (NULL: none).  `tip` is the commit the batch
	 * was built on, `head` its last commit.  A negative return aborts
	 * the step with that error; the entries stay leased until they
	 * expire.
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
};

#define WF_APPLY_OPTS_INIT { 8, 0, NULL, 600000, 10, NULL, NULL, NULL }

/*
 * One step for branch `target` ("main" or "refs/heads/main"): lease up
 * to opts->batch entries, build, land, ack.  *out is a new array with
 * one object per leased entry, in queue order:
 * {"id", "queue_id", "state": "landed"|"failed"|"dead", "commit" (the
 * last commit of a landed change), "reason" (why it failed)}; empty when
 * nothing was leasable.  Uses the repository's identity for the
 * committer.  WF_ENOTFOUND when the branch does not exist, WF_EBUSY when
 * the branch kept moving, WF_EOS / WF_ENOMEM; the branch is then
 * unchanged and the leases are left to expire (or to reconciliation).
 */
int wf_apply_step(json_t **out, git_repository *repo, struct wf_queue *q,
    const char *target, const struct wf_apply_opts *opts);

/*
 * The Queue-Id trailer value of a commit message, or NULL; *len gets
 * its length.  Borrowed from `message`.
 */
const char *wf_apply_queue_id(size_t *len, const char *message);

#endif
