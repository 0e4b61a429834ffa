#ifndef WF_SANDBOX_H
#define WF_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include <git2.h>

/*
 * A sandbox: a fresh checkout of one commit of a repository in a private
 * temporary directory, never the user's working tree, with a cleaned
 * environment for the commands run in it.  The directory holds
 *
 *	<root>/work	the checkout, where steps run (wf_sandbox_dir())
 *	<root>/tmp	TMPDIR for the steps
 *
 * and nothing else: anything else that appears in <root> was written
 * outside the checkout, which wf_sandbox_collect() reports.
 *
 * The environment holds only the allowlist (PATH, HOME, USER, LOGNAME,
 * SHELL, LANG, LANGUAGE, TZ, TERM and every LC_*), the names the
 * options add, TMPDIR and WF_SANDBOX, and what wf_sandbox_setenv() sets.
 */
struct wf_sandbox;

struct wf_sandbox_opts {
	unsigned int version;
	const char *parent;		/* where to create it; NULL: $TMPDIR,
					 * else /tmp */
	const char *const *env;		/* more names to pass from the
					 * environment; NULL-terminated */
	int keep;			/* leave the directory when freed */
};

#define WF_SANDBOX_OPTS_VERSION 1
#define WF_SANDBOX_OPTS_INIT { WF_SANDBOX_OPTS_VERSION, NULL, NULL, 0 }

/* How a collected file differs from the base tree. */
enum wf_sandbox_change {
	WF_SANDBOX_ADDED,
	WF_SANDBOX_MODIFIED,	/* content or mode */
	WF_SANDBOX_DELETED,
	WF_SANDBOX_UNCHANGED	/* wf_sandbox_snapshot() only */
};

/* One file created, changed or deleted in the sandbox. */
struct wf_sandbox_file {
	char *path;		/* relative to the checkout; owned */
	enum wf_sandbox_change change;
	uint32_t mode;		/* 0100644, 0100755 or 0120000; 0 deleted */
	git_oid id;		/* blob id of the new content; zero deleted */
};

/*
 * Create a sandbox holding the tree of `commit` (a commit id in `repo`),
 * checked out with libgit2 into the target directory <root>/work; the
 * repository's index, HEAD and working tree are not touched.  `opts` may
 * be NULL.  *out is the caller's to wf_sandbox_free(); NULL on error
 * (WF_EINPUT when the commit is not in the repository, WF_EOS when the
 * directory cannot be made or filled), with nothing left on disk.
 */
int wf_sandbox_new(struct wf_sandbox **out, git_repository *repo,
    const git_oid *commit, const struct wf_sandbox_opts *opts);

/*
 * Remove the sandbox's directory (unless opts->keep) and free it; no-op
 * on NULL.  Files a step left read-only are removed as well.
 */
void wf_sandbox_free(struct wf_sandbox *sb);

/* The checkout: an absolute path, borrowed from the sandbox. */
const char *wf_sandbox_dir(const struct wf_sandbox *sb);

/* The sandbox's top directory, holding work/ and tmp/; borrowed. */
const char *wf_sandbox_root(const struct wf_sandbox *sb);

/* The commit and tree checked out. */
const git_oid *wf_sandbox_commit(const struct wf_sandbox *sb);
const git_oid *wf_sandbox_tree(const struct wf_sandbox *sb);

/*
 * Set (or replace) `name` in the sandbox's environment; value NULL
 * removes it.  WF_EINPUT for a name that is not [A-Za-z_][A-Za-z0-9_]*,
 * WF_ENOMEM (the environment is unchanged).
 */
int wf_sandbox_setenv(struct wf_sandbox *sb, const char *name,
    const char *value);

/*
 * The environment as "NAME=value" strings sorted by name, ending with
 * NULL: borrowed, valid until the next wf_sandbox_setenv().
 */
char *const *wf_sandbox_environ(const struct wf_sandbox *sb);

/*
 * The value of `name` in the sandbox's environment (borrowed), or NULL.
 */
const char *wf_sandbox_getenv(const struct wf_sandbox *sb, const char *name);

/*
 * Check `path` (relative to the checkout) for a step to read or write:
 * it must pass wf_path_problem() and no directory on the way may be a
 * symbolic link (nor the file itself when `nofollow`).  With `mkdirs`
 * the missing directories are created.  *out is a new malloc'ed
 * absolute path.  WF_EINPUT naming the problem; WF_EOS when a directory
 * cannot be made.
 */
int wf_sandbox_path(char **out, struct wf_sandbox *sb, const char *path,
    int mkdirs);

/*
 * Compare the checkout with the base tree.  *out is a new array of *n
 * files, sorted by path, that were added, changed (content or mode) or
 * deleted (free with wf_sandbox_files_free()); empty directories do not
 * count.  Refused, with WF_EINPUT naming the path and nothing returned:
 * anything written in the sandbox's root beside work/ and tmp/ (written
 * outside the checkout), a ".git" anywhere in the checkout, a new or
 * changed symbolic link that leads out of the checkout or into ".git",
 * a new or changed file whose path wf_path_problem() refuses, and any
 * other kind of file (fifo, socket, device).  WF_EOS for an I/O error.
 */
int wf_sandbox_collect(struct wf_sandbox_file **out, size_t *n,
    struct wf_sandbox *sb);

/*
 * Every file now in the checkout (regular files and symbolic links),
 * sorted by path, with its blob id: the ones as in the base tree marked
 * WF_SANDBOX_UNCHANGED, the others WF_SANDBOX_ADDED or _MODIFIED; no
 * deletions.  Refusals and errors as for wf_sandbox_collect().  The
 * step cache keys and diffs steps with it.
 */
int wf_sandbox_snapshot(struct wf_sandbox_file **out, size_t *n,
    struct wf_sandbox *sb);

/* Free an array from wf_sandbox_collect() or _snapshot(); no-op on NULL. */
void wf_sandbox_files_free(struct wf_sandbox_file *files, size_t n);

/*
 * Read the file (or a symbolic link's target) at `path` in the checkout,
 * after the checks of wf_sandbox_path() without following a final link.
 * *out is a new malloc'ed buffer of *len bytes, NUL-terminated beyond
 * them.  WF_ENOTFOUND when it does not exist; WF_EINPUT, WF_EOS.
 */
int wf_sandbox_read(char **out, size_t *len, struct wf_sandbox *sb,
    const char *path);

#endif
