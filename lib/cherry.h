#ifndef WF_CHERRY_H
#define WF_CHERRY_H

#include <git2.h>

/*
 * Which changes a branch already has, found as git cherry and git
 * rebase find them: by stable patch id (git patch-id --stable, without
 * rename scores), over the first-parent history of the branch.  The walk is lazy and
 * bounded: at most `depth` commits back from the tips asked about.
 *
 *	struct wf_cherry *ch;
 *	wf_cherry_new(&ch, repo, 1000);
 *	if (wf_cherry_find(&commit, ch, &tip, &patch_id) == 1)
 *		... the branch has the change, in `commit` ...
 *	wf_cherry_free(ch);
 */
struct wf_cherry;

/* How far back wf looks for a change a branch already has. */
#define WF_CHERRY_DEPTH 1000

struct wf_patch;

/*
 * The id a queued patch is looked for by: git patch-id --stable's
 * without the rename scores (see WF_PATCH_ID_NO_SCORE).  WF_EINPUT
 * when the patch changes no file.
 */
int wf_cherry_patch_id(git_oid *out, const struct wf_patch *p);

/* A new, empty finder on `repo`.  WF_ENOMEM. */
int wf_cherry_new(struct wf_cherry **out, git_repository *repo,
    size_t depth);

void wf_cherry_free(struct wf_cherry *ch);

/*
 * The id of commit `c`'s change against its first parent, diffed as
 * git does (indent heuristic), as wf_cherry_patch_id() gives it for the
 * diff's text; *renamed gets the id with renames found, or the same id
 * when the commit renames nothing.  1 when the
 * commit changes nothing or has no parent (no id), 0, WF_EOS.
 */
int wf_cherry_commit_id(git_oid *out, git_oid *renamed, git_repository *repo,
    const git_commit *c);

/*
 * Look for the change with patch id `pid` on the first-parent history
 * of `tip`: 1 with the newest commit that has it in *commit, 0 when
 * none of the commits walked has it.  WF_EOS, WF_ENOMEM.
 */
int wf_cherry_find(git_oid *commit, struct wf_cherry *ch, const git_oid *tip,
    const git_oid *pid);

#endif
