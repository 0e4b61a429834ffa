#ifndef WF_CHANGE_H
#define WF_CHANGE_H

#include <stddef.h>
#include <stdint.h>

#include <git2.h>
#include <jansson.h>

#include "json.h"

/*
 * A change request: what a developer (or agent) asks the queue to land
 * on a target branch.  Parsed from JSON and validated before anything is
 * stored:
 *
 *   {"id": "task-17/1", "target": "main", "kind": "patch",
 *    "patch": "<git diff text>", "base": "<oid>", "priority": 0,
 *    "depends_on": ["task-17/0"], "author": {"name", "email"},
 *    "message": "...", "meta": {...}}
 *
 * kind "commits" takes "base" and "head" (a range already in the object
 * database); kind "files" takes "files", an array of
 * {"path", "mode", "content" (base64) | "blob" (an id in the object
 * database)} or {"path", "delete": true} (see wf_change_files_from_tar()).
 */
enum wf_change_kind {
	WF_CHANGE_PATCH,
	WF_CHANGE_COMMITS,
	WF_CHANGE_FILES
};

/* Limits on what a request may hold; zero means the default. */
struct wf_change_opts {
	size_t max_request;	/* bytes of the canonical form (64 MiB) */
	size_t max_patch;	/* bytes of a patch (16 MiB) */
	size_t max_file;	/* bytes of one file's content (16 MiB) */
	size_t max_files;	/* files in a patch, tar or range (10000) */
	size_t max_message;	/* bytes of the message (64 KiB) */
	size_t max_depends;	/* entries of depends_on (1000) */
	size_t max_commits;	/* commits in a range (10000) */
	/*
	 * For a stream of requests: the trees they are checked against,
	 * each read once (NULL: read for each request).
	 */
	struct wf_change_trees *trees;
};

#define WF_CHANGE_OPTS_INIT { 0, 0, 0, 0, 0, 0, 0, NULL }

/*
 * A memo of the trees (branch tips, bases) the requests of one stream
 * are checked against, for struct wf_change_opts: with it a stream is
 * checked against one snapshot of each branch.  For one repository and
 * one thread.
 */
struct wf_change_trees;

int wf_change_trees_new(struct wf_change_trees **out, git_repository *repo);
void wf_change_trees_free(struct wf_change_trees *t);

#define WF_CHANGE_ID_MAX 256

/*
 * A validated request.  It owns everything it points to;
 * wf_change_free() releases all of it.
 */
struct wf_change {
	const char *id;
	const char *target;
	enum wf_change_kind kind;
	int64_t priority;
	const char **depends_on;	/* sorted, unique, NULL-terminated */
	size_t ndepends;
	char *text;		/* the canonical form: the normalised request,
				   compact, keys sorted (owned) */
	size_t text_len;	/* its length */
	json_t *paths;		/* sorted paths it touches (owned) */
	char *paths_text;	/* the same as compact JSON (owned) */
	git_oid hash;		/* blob id of the canonical form */
	char *strings;		/* what id, target, depends_on point to */
};

/* The canonical form as a new JSON value; NULL when out of memory. */
json_t *wf_change_canonical(const struct wf_change *c);

/*
 * Validate the request in doc->value and build its canonical form.
 * With `repo`, commits, blobs and bases must exist in its object
 * database and a patch may not add a file that exists (or change one
 * that does not) in its base, or else the target branch's tip; without
 * one (NULL) those checks are skipped and kind "commits" is refused.
 * `opts` may be NULL for the defaults.  On success *out is the caller's
 * to wf_change_free(); on failure it is NULL and the message names the
 * request, its place in the input and the reason (WF_EINPUT), or
 * WF_EOS / WF_ENOMEM.
 */
int wf_change_parse(struct wf_change **out, const struct wf_json_doc *doc,
    git_repository *repo, const struct wf_change_opts *opts);

/* Free a change and everything it holds; no-op on NULL. */
void wf_change_free(struct wf_change *c);

/* "patch", "commits" or "files". */
const char *wf_change_kind_name(enum wf_change_kind kind);

/*
 * Read a tar archive (compressed or not) from descriptor `fd`, called
 * `name` in messages, into the "files" array of a request: each regular
 * file or symbolic link becomes {"path", "mode", "content"} with its
 * path under `prefix` (NULL or "" for the top), and an OCI whiteout
 * entry `dir/.wh.name` becomes {"path": "dir/name", "delete": true}.
 * Directories are skipped; hard links, devices and paths that fail
 * wf_path_problem() are refused (WF_EINPUT naming the entry).  *out is a
 * new reference, NULL on error.  The descriptor is not closed.
 */
int wf_change_files_from_tar(json_t **out, int fd, const char *name,
    const char *prefix, const struct wf_change_opts *opts);

/*
 * The base64 (RFC 4648, padded) form of buf[0..len): a new malloc'ed
 * string, NULL when out of memory.
 */
char *wf_change_base64(const void *buf, size_t len);

/*
 * Decode strict base64 (as wf_change_base64() writes it): *out is a new
 * malloc'ed buffer of *len bytes.  WF_EINPUT when `s` is not base64,
 * WF_ENOMEM; *out is then NULL.
 */
int wf_change_unbase64(unsigned char **out, size_t *len, const char *s);

/*
 * Rebuild a change that wf_change_parse() validated earlier, from what
 * it made then: `text` (its c->text), `paths` (its c->paths, borrowed;
 * copied) and `hash` (its c->hash).  Nothing is validated again, and
 * nothing here touches libgit2: the caller must have the three from a
 * place it trusts (the server hooks: pre-receive hands them to
 * post-receive).  Only the form is checked -- `text` must be canonical
 * JSON with the fields the queue reads -- so a damaged file cannot be
 * taken for a request; WF_EINPUT then, WF_ENOMEM.  On success *out is
 * the caller's to wf_change_free(); on failure it is NULL.
 */
int wf_change_from_canonical(struct wf_change **out, const char *text,
    const json_t *paths, const git_oid *hash);

#endif
