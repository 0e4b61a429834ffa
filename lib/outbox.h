#ifndef WF_OUTBOX_H
#define WF_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include <git2.h>

/*
 * The outbox: events a sink could not take, kept in order until they
 * can be delivered.  One SQLite database in WAL mode (by default
 * "wf/outbox.db" beside the queue in the git directory), one row per
 * event and sink, oldest first.  Delivery takes a write lock, writes the
 * oldest row to its sink and deletes it in the same transaction, one row
 * at a time, so concurrent flushers deliver each row once and in order.
 * A crash between the write and the commit delivers that one row again
 * on the next flush: consumers drop it by its event id.
 */
struct wf_outbox;

/*
 * Open the outbox at `path`.  With `create`, a missing file (and its
 * directory) is created; without, a missing file is WF_ENOTFOUND with no
 * message, so a caller can tell "nothing was ever spooled" cheaply.
 * `durable` makes every commit reach the disk (synchronous=FULL).  *out
 * is the caller's to wf_outbox_free(); NULL on error: WF_EOS when the
 * file cannot be opened or is not an outbox, WF_EINPUT when its schema
 * is newer than this code, WF_EBUSY when it stayed locked.
 */
int wf_outbox_open(struct wf_outbox **out, const char *path, int create,
    int durable);

/* Close the database and free the handle; no-op on NULL. */
void wf_outbox_free(struct wf_outbox *ob);

/* The path the outbox was opened with (borrowed). */
const char *wf_outbox_path(const struct wf_outbox *ob);

/*
 * The default outbox of a repository: "wf/outbox.db" in its common git
 * directory, beside the queue.  *out is a new malloc'ed string.
 */
int wf_outbox_default_path(char **out, git_repository *repo);

/*
 * Append the event `line` (len bytes, usually ending in "\n") with id
 * `id` for the sink named `sink` (see wf_sink_key()), noting `why` (may
 * be NULL) the sink did not take it.  WF_EOS or WF_EBUSY when it could
 * not be stored; the outbox is then unchanged.
 */
int wf_outbox_add(struct wf_outbox *ob, const char *sink, const char *id,
    const char *line, size_t len, const char *why);

/* How many events wait for `sink` (NULL: for every sink) in *out. */
int wf_outbox_pending(size_t *out, struct wf_outbox *ob, const char *sink);

/*
 * The sinks that have events waiting, in the order of their oldest
 * event: *out is a new NULL-terminated array of malloc'ed strings,
 * freed with wf_outbox_strings_free(); *n its length.
 */
int wf_outbox_sinks(char ***out, size_t *n, struct wf_outbox *ob);

/* Free an array from wf_outbox_sinks(); no-op on NULL. */
void wf_outbox_strings_free(char **list);

/*
 * Deliver the events waiting for `sink`, oldest first, by calling
 * `deliver` for each; an event is deleted in the same transaction as
 * its delivery.  Stops at the first event `deliver` refuses (a negative
 * return): that event gets its attempt and the message of
 * wf_error_last() recorded and stays, with all after it, and the error
 * is returned.  *delivered (may be NULL) receives how many were
 * delivered, in every case.  WF_EOS or WF_EBUSY for the database.
 */
int wf_outbox_flush(size_t *delivered, struct wf_outbox *ob,
    const char *sink,
    int (*deliver)(const char *line, size_t len, void *payload),
    void *payload);

#endif
