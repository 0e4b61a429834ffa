#ifndef WF_SINK_H
#define WF_SINK_H

#include <stddef.h>

/*
 * Where events go.  A sink takes one event at a time, a whole line, and
 * writes it with one write(2) (one send(2) to a socket), so lines from
 * concurrent writers never interleave:
 *
 *  - a descriptor the caller gives (standard output), borrowed;
 *  - a file, opened on the first event with O_APPEND | O_CREAT, which
 *    makes each write land at the end whole (Linux appends a regular
 *    file's write under its inode lock);
 *  - a unix socket, connected on the first event: stream, or datagram
 *    when the listener's socket is one, each event one datagram.
 *
 * A file or socket sink may have an outbox (see outbox.h): an event it
 * cannot take goes there instead, and so do the events after it in the
 * same process, so they stay in order; wf_sink_flush() delivers them.
 * Files and sockets are opened lazily: a run that emits nothing creates
 * nothing.
 */
struct wf_sink;

struct wf_sink_opts {
	int fsync;		/* fsync(2) a file after each event */
	const char *outbox;	/* outbox database (NULL: none, fail) */
};

#define WF_SINK_OPTS_INIT { 0, NULL }

/*
 * A sink writing to `fd` (not closed by the sink) called `name` in
 * messages.  It has no outbox: a failure is the caller's.  *out is the
 * caller's to wf_sink_free().
 */
int wf_sink_open_fd(struct wf_sink **out, int fd, const char *name);

/*
 * A sink appending to the file `path`.  `opts` may be NULL.  Nothing is
 * opened yet.  *out is the caller's to wf_sink_free(); WF_ENOMEM, or
 * WF_EOS when a relative path cannot be made absolute.
 */
int wf_sink_open_file(struct wf_sink **out, const char *path,
    const struct wf_sink_opts *opts);

/*
 * A sink writing to the unix socket `path`.  As wf_sink_open_file(),
 * and WF_EINPUT when the path does not fit a socket address.
 */
int wf_sink_open_socket(struct wf_sink **out, const char *path,
    const struct wf_sink_opts *opts);

/*
 * The sink named by `key`, as wf_sink_key() spells it.  WF_EINPUT for a
 * key that names no sink.
 */
int wf_sink_open_key(struct wf_sink **out, const char *key,
    const struct wf_sink_opts *opts);

/*
 * The sink's name in the outbox: "file:" or "socket:" and the absolute
 * path; "fd:N" for a descriptor.  Borrowed.
 */
const char *wf_sink_key(const struct wf_sink *s);

/* Close the sink's file or socket and free it; no-op on NULL. */
void wf_sink_free(struct wf_sink *s);

/*
 * Write the event `line` (len bytes, ending in "\n") with id `id` (hex;
 * kept with a spooled event).
 *
 * The first call on a sink with an outbox delivers what waits there
 * for it first, so a new process does not overtake older events.  When
 * the sink fails (cannot open, connect or write: socket gone, disk full)
 * and has an outbox, the event is spooled, and so is every later event
 * of this sink: *spooled (may be NULL) is set to 1 and the failure is
 * kept for wf_sink_failure().  Returns 0 when the event was written or
 * spooled; WF_EOS (or WF_EBUSY for a locked outbox) when it was
 * neither, the event then lost unless the caller keeps it.
 *
 * A file write cut short (disk full) leaves a partial line; a newline
 * is added after it when possible so the next line starts whole, and
 * the event is spooled whole.
 */
int wf_sink_write(int *spooled, struct wf_sink *s, const char *id,
    const char *line, size_t len);

/*
 * Why the sink failed, when a wf_sink_write() spooled an event; NULL
 * when it has not failed.  Borrowed.
 */
const char *wf_sink_failure(const struct wf_sink *s);

/*
 * Deliver what waits in the sink's outbox for it, in order, each once.
 * *delivered and *pending (either may be NULL) receive how many were
 * delivered and how many still wait.  Returns 0 when nothing waits any
 * more (also when there is no outbox file: nothing was ever spooled),
 * WF_EBUSY when the sink is still down (temporary: its error message
 * says why), WF_EOS for the outbox itself.
 */
int wf_sink_flush(size_t *delivered, size_t *pending, struct wf_sink *s);

#endif
