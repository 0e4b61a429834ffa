#ifndef WF_LANE_H
#define WF_LANE_H

#include <git2.h>

/*
 * A lane is the right to land on one branch of a repository: whoever
 * holds it leases, builds, checks and moves that branch; other appliers
 * of the branch wait, or land on other branches.  Without it, appliers
 * of one branch each build a batch on the same tip, and all but one
 * find the branch moved and build again.
 *
 * A lane is an flock(2) on <common git dir>/wf/apply-<branch>.lock (the
 * branch name with '/' and any byte but [A-Za-z0-9._-] written %XX; a
 * name too long for a file is replaced by its blob id).  The kernel
 * drops the lock with its holder however it ends, kill -9 included, so
 * a lane is never left stuck; and since the lock belongs to an open
 * file, two handles of one process exclude each other too.  The holder
 * writes its name in the file, for others to tell who they wait for,
 * and empties it when it lets go: a lane taken with a name still in the
 * file was held by a process that died holding it.
 */
struct wf_lane;

/*
 * The lane of branch `branch` ("main", or "refs/heads/main") of `repo`,
 * not taken: its lock file (and the wf/ directory) is created when
 * missing.  *out is the caller's to wf_lane_free(); NULL on error:
 * WF_EOS when the file cannot be created or opened.
 */
int wf_lane_open(struct wf_lane **out, git_repository *repo,
    const char *branch);

/*
 * Take the lane without waiting, as "NAME@HOST:PID" (`name` NULL:
 * "wf-apply"), the way wf_apply_step() names the owners of its leases.
 * 0 when taken: it is held until wf_lane_drop() or wf_lane_free(), and
 * *out (may be NULL) is 1 when the last holder died holding it (its
 * leases are then for wf_apply_recover() to settle), else 0.  Taking a
 * lane this handle holds already is a no-op.  WF_EBUSY when another
 * holds it, its name in the message and in wf_lane_holder(); WF_EOS.
 */
int wf_lane_take(int *out, struct wf_lane *lane, const char *name);

/* Let the lane go; no-op when not held or NULL. */
void wf_lane_drop(struct wf_lane *lane);

/* Whether this handle holds the lane. */
int wf_lane_held(const struct wf_lane *lane);

/*
 * The name the holder wrote, as read by the last wf_lane_take() that
 * found the lane held ("" when it wrote none, or not yet: a holder
 * writes its name a moment after it took the lane).
 * Borrowed from the handle, valid until its next wf_lane_take().
 */
const char *wf_lane_holder(const struct wf_lane *lane);

/* The lock file's path, borrowed from the handle. */
const char *wf_lane_path(const struct wf_lane *lane);

/* Let the lane go, close its file and free the handle; no-op on NULL. */
void wf_lane_free(struct wf_lane *lane);

#endif
