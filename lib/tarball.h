#ifndef WF_TARBALL_H
#define WF_TARBALL_H

#include <stddef.h>

/*
 * Tarballs of JSON Lines: a gzip'ed tar (POSIX pax) of text files, each
 * holding one compact JSON value per line.  A long stream of lines is
 * split into members "NAME-0001.jsonl", "NAME-0002.jsonl", ... of about
 * WF_TARBALL_CHUNK bytes, so neither the writer nor the reader ever holds
 * more than one member in memory.
 *
 * Writing is crash safe: the archive is built in a temporary file next
 * to its destination ("PATH.tmp-XXXXXX"), synced by wf_tarball_finish(),
 * and appears under its name, whole, only at wf_tarball_publish().
 */
struct wf_tarball;

/* Members are cut after this many bytes of lines (a longer line is alone). */
#define WF_TARBALL_CHUNK (4 * 1024 * 1024)

/* The longest line wf_tarball_read() accepts. */
#define WF_TARBALL_LINE_MAX ((size_t)256 * 1024 * 1024)

/*
 * Start an archive that will be published at `path`.  *out is the
 * caller's to wf_tarball_free(); NULL on error: WF_ECONFLICT when `path`
 * exists already, WF_EOS when the temporary file cannot be created.
 */
int wf_tarball_create(struct wf_tarball **out, const char *path);

/*
 * Append line[0..len) (which must hold no newline) to the stream named
 * `stream` (a short name, [a-z_]).  Switching to another stream ends the
 * member of the current one.  WF_EOS on a write error; the archive is
 * then unusable and only wf_tarball_free() is left to do.
 */
int wf_tarball_append(struct wf_tarball *a, const char *stream,
    const char *line, size_t len);

/* Add a whole member `name` holding data[0..len).  Errors as above. */
int wf_tarball_add(struct wf_tarball *a, const char *name, const char *data,
    size_t len);

/*
 * Write the last member and the gzip trailer, then fsync and close the
 * temporary file.  WF_EOS on a write or sync error.
 */
int wf_tarball_finish(struct wf_tarball *a);

/*
 * After wf_tarball_finish(): give the temporary file its name, without
 * ever replacing a file (WF_ECONFLICT when `path` appeared meanwhile),
 * and sync the directory.  On error nothing is at `path`.
 */
int wf_tarball_publish(struct wf_tarball *a);

/*
 * Free the handle; the temporary file is removed unless the archive was
 * published.  No-op on NULL.
 */
void wf_tarball_free(struct wf_tarball *a);

/*
 * Called by wf_tarball_read() for each line of each member: the member's
 * name, the line's number in it (from 1) and its text, not
 * NUL-terminated, without its newline (all borrowed for the call).  A
 * negative return stops the reading and is returned.
 */
typedef int (*wf_tarball_line_fn)(void *ctx, const char *member,
    size_t lineno, const char *line, size_t len);

/*
 * Read the archive at `path` (gzip'ed or plain tar), calling `fn` for
 * every line of every regular member in archive order.  WF_EOS when the
 * file cannot be opened or read, WF_EINPUT when it is not such an
 * archive, is damaged or holds a line over WF_TARBALL_LINE_MAX, else what
 * `fn` returned.
 */
int wf_tarball_read(const char *path, wf_tarball_line_fn fn, void *ctx);

#endif
