#ifndef WF_GIT_H
#define WF_GIT_H

#include <git2.h>
#include <jansson.h>

/*
 * Initialise libgit2 for this process; call once before any other wf
 * function that touches git (tools do it at start).  Returns 0 or
 * WF_ERROR.
 */
int wf_git_init(void);

/* Undo wf_git_init(). */
void wf_git_shutdown(void);

/*
 * Open the repository that contains `dir` (searching upwards as git
 * does; the current directory when NULL).  WF_ENOTFOUND when there is
 * none.  *out is the caller's to git_repository_free().
 */
int wf_git_open(git_repository **out, const char *dir);

/*
 * The path of `rel` inside the repository's common git directory (the
 * main one for a worktree), where wf keeps its databases and logs:
 * *out is malloc'ed, the caller's to free.  WF_EOS when the repository
 * has none.
 */
int wf_git_common_path(char **out, git_repository *repo, const char *rel);

/*
 * The paths changed between the trees of `from` and HEAD (both sides of
 * renames, sorted, unique).  *out is a new JSON array of strings.
 * WF_EINPUT when `from` does not name a commit.
 */
int wf_git_changed_paths(json_t **out, git_repository *repo,
    const char *from);

/*
 * The paths changed between the trees of commits `from` (NULL: the empty
 * tree, so every path of `to`) and `to`, as wf_git_changed_paths()
 * gives them.  *out is a new JSON array of strings.  WF_EINPUT when a
 * commit cannot be read.
 */
int wf_git_diff_paths(json_t **out, git_repository *repo, const git_oid *from,
    const git_oid *to);

#endif
