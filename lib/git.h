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

/*
 * Run `git [--git-dir=<gitdir>] <args...>` (at most 30 arguments; the
 * environment is this process's), `input` (may be NULL) on its
 * standard input.  *out (may be NULL) is a new string of its standard
 * output; *status its exit status.  A git that fails is WF_EOS, with
 * its exit status and standard error in the message; *out is then
 * NULL.  Runs no shell: the arguments are passed as they are.
 */
int wf_git_run(char **out, int *status, const char *gitdir,
    const char *const *args, const char *input);

/*
 * The version in what `git --version` writes ("git version 2.39.5"):
 * out[0..2] major, minor, patch (0 when absent).  WF_EINPUT when the
 * text does not give at least a major and a minor number.
 */
int wf_git_version_parse(unsigned out[3], const char *text);

/* The version of the git on PATH, as wf_git_version_parse().  WF_EOS. */
int wf_git_version(unsigned out[3]);

#endif
