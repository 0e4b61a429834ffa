#ifndef WF_WORKTREE_H
#define WF_WORKTREE_H

#include <git2.h>

/*
 * A branch checked out in a work tree of the repository (its own, or a
 * linked one): moving the branch without its index and files would
 * leave them behind, so that the next commit there reverts what landed.
 * wf does what git's receive.denyCurrentBranch=updateInstead does: the
 * work tree must be clean, and it follows the branch.
 */
struct wf_worktree;

/*
 * Find where `refname` is checked out: *out is NULL when nowhere (a
 * bare repository, another branch checked out), else the caller's to
 * wf_worktree_free().  WF_EOS, WF_ENOMEM.
 */
int wf_worktree_find(struct wf_worktree **out, git_repository *repo,
    const char *refname);

/*
 * Is the work tree clean: index and tracked files as its HEAD has
 * them (untracked files do not count)?  0 clean; WF_ECONFLICT naming
 * the work tree, the branch, the first changed path and what to do;
 * WF_EOS.
 */
int wf_worktree_clean(struct wf_worktree *w);

/*
 * The branch moved from `from` to `to` (commits): bring the index and
 * files there, refusing to overwrite local changes (a safe checkout).
 * WF_ECONFLICT when some file was in the way, WF_EOS.
 */
int wf_worktree_follow(struct wf_worktree *w, const git_oid *from,
    const git_oid *to);

/* The work tree's directory, borrowed. */
const char *wf_worktree_path(const struct wf_worktree *w);

void wf_worktree_free(struct wf_worktree *w);

#endif
