#ifndef WF_CACHE_H
#define WF_CACHE_H

#include <stddef.h>

#include <git2.h>
#include <jansson.h>

#include "sandbox.h"
#include "step.h"

/*
 * The step cache.  A shell step's key is a git blob id over the
 * canonical JSON of
 *
 *	{"version": 1, "step": <the step's definition as written>,
 *	 "input": "<input id>" | "inputs": [[path, mode, blob], ...],
 *	 "env": ["NAME=value", ...]}
 *
 * where the input id is the id of the base tree when the checkout is
 * unchanged, else the blob id of "base <tree>\n" and one line
 * "<mode> <blob> <path>\n" per file added or changed, in path order;
 * "inputs", when the step declares "inputs", holds instead the files of
 * the checkout those pathspecs match; "env" is the sandbox's environment
 * without WF_SANDBOX and TMPDIR, which name the sandbox.
 *
 * A success is stored as what the step did to the checkout (the files it
 * added, changed or deleted), its standard output and its output tail:
 * the contents as blobs in the repository's object database, an index
 * row per key in the table step_cache of an SQLite database (by default
 * wf/run.db in the git common directory).  Objects `git gc` pruned make
 * the entry a miss.
 */
struct wf_cache;

/*
 * The default database of a repository: "wf/run.db" in its common git
 * directory.  *out is a new malloc'ed string.
 */
int wf_cache_default_path(char **out, git_repository *repo);

/*
 * Open (creating it and its directory when missing) the cache in the
 * database `path` (NULL: the default), storing objects in `repo`, which
 * must outlive the cache.  `explain` adds what went into each key to
 * the key's explanation.  *out is the caller's to wf_cache_free(); NULL
 * on error (WF_EOS, WF_EBUSY when it stayed locked).
 */
int wf_cache_open(struct wf_cache **out, git_repository *repo,
    const char *path, int explain);

/* Close and free; no-op on NULL. */
void wf_cache_free(struct wf_cache *c);

/*
 * The key of step `step` (its definition `def`) about to run in `sb`,
 * whose files are `files` (wf_sandbox_snapshot()).  *explain, when not
 * NULL, receives a new reference to {"key", "step" (the definition's
 * blob id), "input" or "inputs", "env" (names, each with the blob id of
 * its value, never the value)}, with the ingredients only when the cache
 * was opened with `explain`.  WF_ENOMEM, WF_EINPUT for bad pathspecs.
 */
int wf_cache_key(git_oid *out, json_t **explain, struct wf_cache *c,
    const struct wf_step *step, const json_t *def, struct wf_sandbox *sb,
    const struct wf_sandbox_file *files, size_t nfiles);

/*
 * Look `key` up and, on a hit, replay the stored success in `sb`: files
 * written, changed and deleted as the step did.  Returns 1 on a hit,
 * with *stdout_value (the step's standard output, trailing newlines
 * removed) and *tail (its output tail) new malloc'ed strings; 0 on a
 * miss; an error when the replay failed halfway (the sandbox is then
 * in between, and the step should fail).
 */
int wf_cache_restore(char **stdout_value, char **tail, struct wf_cache *c,
    const git_oid *key, struct wf_sandbox *sb);

/*
 * Store the success of a step keyed `key`: the difference between
 * `before` (its snapshot at the start) and the checkout now, its
 * standard output `out` and output tail `tail`.  `workflow` and `step`
 * label the row.  The cache is unchanged on error.
 */
int wf_cache_store(struct wf_cache *c, const git_oid *key,
    struct wf_sandbox *sb, const struct wf_sandbox_file *before,
    size_t nbefore, const char *out, const char *tail,
    const char *workflow, const char *step);

#endif
