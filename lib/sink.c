/*
 * Sinks: standard output, files, unix sockets, each with an optional
 * outbox for the events it cannot take.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "error.h"
#include "outbox.h"
#include "sink.h"

enum kind {
	SINK_FD,
	SINK_FILE,
	SINK_SOCKET
};

struct wf_sink {
	enum kind kind;
	int fd;			/* -1 until opened */
	char *path;		/* absolute; NULL for SINK_FD */
	char *key;
	int fsync;
	char *outbox_path;	/* NULL: no outbox */
	struct wf_outbox *ob;	/* opened when first needed */
	int started;		/* the backlog was looked at */
	int down;		/* spool every event from now on */
	int refused;		/* the last delivery failed */
	char *failure;		/* why it went down */
};

static int
sink_new(struct wf_sink **out, enum kind kind, const char *path,
    const struct wf_sink_opts *opts)
{
	struct wf_sink *s = calloc(1, sizeof(*s));
	const char *prefix = kind == SINK_FILE ? "file:" : "socket:";
	char *cwd = NULL;
	size_t n;
	int error = 0;

	*out = NULL;
	if (!s)
		return wf_error_oom();
	s->kind = kind;
	s->fd = -1;
	if (opts) {
		s->fsync = opts->fsync;
		if (opts->outbox && !(s->outbox_path = strdup(opts->outbox)))
			goto oom;
	}
	if (path[0] != '/' && !(cwd = getcwd(NULL, 0))) {
		error = wf_error_set_errno(WF_EOS, "cannot find the current "
		    "directory for '%s'", path);
		goto out;
	}
	n = (cwd ? strlen(cwd) + 1 : 0) + strlen(path) + 1;
	if (!(s->path = malloc(n)) || !(s->key = malloc(strlen(prefix) + n)))
		goto oom;
	snprintf(s->path, n, "%s%s%s", cwd ? cwd : "",
	    cwd && strcmp(cwd, "/") != 0 ? "/" : "", path);
	snprintf(s->key, strlen(prefix) + n, "%s%s", prefix, s->path);
	free(cwd);
	*out = s;
	return 0;
oom:
	error = wf_error_oom();
out:
	free(cwd);
	wf_sink_free(s);
	return error;
}

int
wf_sink_open_fd(struct wf_sink **out, int fd, const char *name)
{
	struct wf_sink *s = calloc(1, sizeof(*s));
	char key[32];

	*out = NULL;
	snprintf(key, sizeof(key), "fd:%d", fd);
	if (!s || !(s->key = strdup(key)) || !(s->path = strdup(name))) {
		wf_sink_free(s);
		return wf_error_oom();
	}
	s->kind = SINK_FD;
	s->fd = fd;
	*out = s;
	return 0;
}

int
wf_sink_open_file(struct wf_sink **out, const char *path,
    const struct wf_sink_opts *opts)
{
	return sink_new(out, SINK_FILE, path, opts);
}

int
wf_sink_open_socket(struct wf_sink **out, const char *path,
    const struct wf_sink_opts *opts)
{
	struct sockaddr_un sun;
	int error;

	if ((error = sink_new(out, SINK_SOCKET, path, opts)) < 0)
		return error;
	if (strlen((*out)->path) >= sizeof(sun.sun_path)) {
		error = wf_error_set(WF_EINPUT, "socket path '%s' is too long "
		    "(at most %zu bytes)", (*out)->path,
		    sizeof(sun.sun_path) - 1);
		wf_sink_free(*out);
		*out = NULL;
	}
	return error;
}

int
wf_sink_open_key(struct wf_sink **out, const char *key,
    const struct wf_sink_opts *opts)
{
	*out = NULL;
	if (strncmp(key, "file:/", 6) == 0)
		return wf_sink_open_file(out, key + 5, opts);
	if (strncmp(key, "socket:/", 8) == 0)
		return wf_sink_open_socket(out, key + 7, opts);
	return wf_error_set(WF_EINPUT, "'%s' names no sink", key);
}

const char *
wf_sink_key(const struct wf_sink *s)
{
	return s->key;
}

const char *
wf_sink_failure(const struct wf_sink *s)
{
	return s->down ? s->failure : NULL;
}

static void
sink_close(struct wf_sink *s)
{
	if (s->kind != SINK_FD && s->fd >= 0)
		close(s->fd);
	if (s->kind != SINK_FD)
		s->fd = -1;
}

void
wf_sink_free(struct wf_sink *s)
{
	if (!s)
		return;
	sink_close(s);
	wf_outbox_free(s->ob);
	free(s->path);
	free(s->key);
	free(s->outbox_path);
	free(s->failure);
	free(s);
}

static int
open_file(struct wf_sink *s)
{
	s->fd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	if (s->fd < 0)
		return wf_error_set_errno(WF_EOS, "cannot open '%s'", s->path);
	return 0;
}

static int
connect_socket(struct wf_sink *s)
{
	static const int types[] = { SOCK_STREAM, SOCK_DGRAM };
	struct sockaddr_un sun;
	size_t i;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, s->path, strlen(s->path) + 1);
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if ((s->fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0)) < 0)
			return wf_error_set_errno(WF_EOS, "cannot make a socket");
		if (connect(s->fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			return 0;
		close(s->fd);
		s->fd = -1;
		/* A datagram listener refuses a stream. */
		if (errno != EPROTOTYPE)
			break;
	}
	return wf_error_set_errno(WF_EOS, "cannot connect to socket '%s'",
	    s->path);
}

/* 1 when a stream peer has closed its end (its listener went away). */
static int
peer_closed(int fd)
{
	char c;

	return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static int
write_fd(struct wf_sink *s, const char *line, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(s->fd, line, len)) < 0) {
			if (errno == EINTR)
				continue;
			return wf_error_set_errno(WF_EOS, "cannot write to %s",
			    s->path);
		}
		line += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
write_file(struct wf_sink *s, const char *line, size_t len)
{
	ssize_t n;
	int error;

	if (s->fd < 0 && (error = open_file(s)) < 0)
		return error;
	do
		n = write(s->fd, line, len);
	while (n < 0 && errno == EINTR);
	if (n < 0 || (size_t)n != len) {
		error = n < 0 ? wf_error_set_errno(WF_EOS, "cannot write to "
		    "'%s'", s->path) : wf_error_set(WF_EOS, "cannot write to "
		    "'%s': short write (disk full?)", s->path);
		/* End the torn line so the next one starts whole. */
		if (n > 0) {
			ssize_t nl = write(s->fd, "\n", 1);

			(void)nl;
		}
		sink_close(s);
		return error;
	}
	if (s->fsync && fsync(s->fd) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot sync '%s'", s->path);
		sink_close(s);
		return error;
	}
	return 0;
}

static int
write_socket(struct wf_sink *s, const char *line, size_t len)
{
	int type = SOCK_STREAM, error;
	socklen_t tlen = sizeof(type);
	ssize_t n;

	if (s->fd >= 0 && getsockopt(s->fd, SOL_SOCKET, SO_TYPE, &type,
	    &tlen) == 0 && type == SOCK_STREAM && peer_closed(s->fd))
		sink_close(s);
	if (s->fd < 0 && (error = connect_socket(s)) < 0)
		return error;
	while (len > 0) {
		if ((n = send(s->fd, line, len, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			error = wf_error_set_errno(WF_EOS, "cannot write to "
			    "socket '%s'", s->path);
			sink_close(s);
			return error;
		}
		line += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Write to the sink itself, no outbox. */
static int
deliver(const char *line, size_t len, void *payload)
{
	struct wf_sink *s = payload;
	int error = 0;

	switch (s->kind) {
	case SINK_FD:
		error = write_fd(s, line, len);
		break;
	case SINK_FILE:
		error = write_file(s, line, len);
		break;
	case SINK_SOCKET:
		error = write_socket(s, line, len);
		break;
	}
	s->refused = error < 0;
	return error;
}

static int
go_down(struct wf_sink *s)
{
	free(s->failure);
	if (!(s->failure = strdup(wf_error_last())))
		return wf_error_oom();
	s->down = 1;
	return 0;
}

int
wf_sink_flush(size_t *delivered, size_t *pending, struct wf_sink *s)
{
	size_t n = 0, left = 0;
	int error = 0;

	if (delivered)
		*delivered = 0;
	if (pending)
		*pending = 0;
	if (!s->outbox_path)
		return 0;
	if (!s->ob && (error = wf_outbox_open(&s->ob, s->outbox_path, 0,
	    s->fsync)) < 0)
		return error == WF_ENOTFOUND ? 0 : error;
	error = wf_outbox_flush(&n, s->ob, s->key, deliver, s);
	if (error < 0 && s->refused) {
		if ((error = go_down(s)) == 0)
			error = WF_EBUSY;
	} else if (error == 0) {
		s->down = 0;
	}
	if (delivered)
		*delivered = n;
	if (pending) {
		int e = wf_outbox_pending(&left, s->ob, s->key);

		if (e < 0 && error == 0)
			error = e;
		*pending = left;
	}
	if (error == WF_EBUSY && s->refused)
		wf_error_set(WF_EBUSY, "%s", s->failure);
	return error;
}

static int
spool(struct wf_sink *s, const char *id, const char *line, size_t len)
{
	int error;

	if (!s->ob && (error = wf_outbox_open(&s->ob, s->outbox_path, 1,
	    s->fsync)) < 0)
		return wf_error_prefix(error, "cannot keep an event for '%s'",
		    s->path);
	if ((error = wf_outbox_add(s->ob, s->key, id, line, len,
	    s->failure)) < 0)
		return wf_error_prefix(error, "cannot keep an event for '%s'",
		    s->path);
	return 0;
}

int
wf_sink_write(int *spooled, struct wf_sink *s, const char *id,
    const char *line, size_t len)
{
	int error;

	if (spooled)
		*spooled = 0;
	if (!s->started && s->outbox_path) {
		/* Older events go first. */
		if ((error = wf_sink_flush(NULL, NULL, s)) < 0 &&
		    !(error == WF_EBUSY && s->down))
			return error;
	}
	s->started = 1;
	if (!s->down) {
		if ((error = deliver(line, len, s)) == 0)
			return 0;
		if (!s->outbox_path || (error = go_down(s)) < 0)
			return error;
	}
	if ((error = spool(s, id, line, len)) < 0)
		return error;
	if (spooled)
		*spooled = 1;
	return 0;
}
