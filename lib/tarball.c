#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "tarball.h"
#include "error.h"

struct wf_tarball {
	struct archive *ar;
	char *path, *tmp;
	int fd;
	char stream[32];	/* the stream being buffered ("" for none) */
	unsigned chunk;		/* members written for it so far */
	char *buf;
	size_t len, cap;
	time_t mtime;
	int finished, published, broken;
};

static int
ar_error(struct wf_tarball *a, const char *what)
{
	const char *msg = a->ar ? archive_error_string(a->ar) : NULL;

	a->broken = 1;
	return wf_error_set(WF_EOS, "cannot write archive '%s': %s%s%s",
	    a->path, what, msg ? ": " : "", msg ? msg : "");
}

int
wf_tarball_create(struct wf_tarball **out, const char *path)
{
	struct wf_tarball *a;
	struct stat sb;
	size_t n;
	int error;

	*out = NULL;
	if (lstat(path, &sb) == 0)
		return wf_error_set(WF_ECONFLICT, "archive '%s' exists already",
		    path);
	if (!(a = calloc(1, sizeof(*a))))
		return wf_error_oom();
	a->fd = -1;
	a->mtime = time(NULL);
	n = strlen(path) + sizeof(".tmp-XXXXXX");
	if (!(a->path = strdup(path)) || !(a->tmp = malloc(n))) {
		error = wf_error_oom();
		goto out;
	}
	snprintf(a->tmp, n, "%s.tmp-XXXXXX", path);
	if ((a->fd = mkstemp(a->tmp)) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot create '%s'", a->tmp);
		free(a->tmp);
		a->tmp = NULL;
		goto out;
	}
	if (fchmod(a->fd, 0644) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot create '%s'", a->tmp);
		goto out;
	}
	if (!(a->ar = archive_write_new())) {
		error = wf_error_oom();
		goto out;
	}
	if (archive_write_add_filter_gzip(a->ar) != ARCHIVE_OK ||
	    archive_write_set_format_pax_restricted(a->ar) != ARCHIVE_OK ||
	    archive_write_open_fd(a->ar, a->fd) != ARCHIVE_OK) {
		error = ar_error(a, "cannot start");
		goto out;
	}
	*out = a;
	a = NULL;
	error = 0;
out:
	wf_tarball_free(a);
	return error;
}

static int
write_member(struct wf_tarball *a, const char *name, const char *data,
    size_t len)
{
	struct archive_entry *e;
	la_ssize_t n;
	size_t done = 0;
	int error = 0;

	if (!(e = archive_entry_new()))
		return wf_error_oom();
	archive_entry_set_pathname(e, name);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_mtime(e, a->mtime, 0);
	if (archive_write_header(a->ar, e) != ARCHIVE_OK) {
		error = ar_error(a, name);
		goto out;
	}
	while (done < len) {
		if ((n = archive_write_data(a->ar, data + done, len - done)) <= 0) {
			error = ar_error(a, name);
			goto out;
		}
		done += (size_t)n;
	}
out:
	archive_entry_free(e);
	return error;
}

/* Write the buffered lines of the current stream as its next member. */
static int
flush(struct wf_tarball *a)
{
	char name[64];
	int error;

	if (a->len == 0)
		return 0;
	snprintf(name, sizeof(name), "%s-%04u.jsonl", a->stream, ++a->chunk);
	if ((error = write_member(a, name, a->buf, a->len)) < 0)
		return error;
	a->len = 0;
	return 0;
}

int
wf_tarball_append(struct wf_tarball *a, const char *stream, const char *line,
    size_t len)
{
	int error;

	if (a->broken || a->finished)
		return wf_error_set(WF_ERROR, "archive '%s' is closed", a->path);
	if (memchr(line, '\n', len) || strlen(stream) >= sizeof(a->stream))
		return wf_error_set(WF_ERROR, "archive '%s': bad line for '%s'",
		    a->path, stream);
	if (strcmp(stream, a->stream) != 0) {
		if ((error = flush(a)) < 0)
			return error;
		snprintf(a->stream, sizeof(a->stream), "%s", stream);
		a->chunk = 0;
	}
	if (a->len > 0 && a->len + len + 1 > WF_TARBALL_CHUNK &&
	    (error = flush(a)) < 0)
		return error;
	if (a->len + len + 1 > a->cap) {
		size_t cap = a->cap ? a->cap : 65536;
		char *p;

		while (cap < a->len + len + 1)
			cap *= 2;
		if (!(p = realloc(a->buf, cap)))
			return wf_error_oom();
		a->buf = p;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, line, len);
	a->len += len;
	a->buf[a->len++] = '\n';
	return 0;
}

int
wf_tarball_add(struct wf_tarball *a, const char *name, const char *data,
    size_t len)
{
	int error;

	if (a->broken || a->finished)
		return wf_error_set(WF_ERROR, "archive '%s' is closed", a->path);
	if ((error = flush(a)) < 0)
		return error;
	a->stream[0] = '\0';
	return write_member(a, name, data, len);
}

int
wf_tarball_finish(struct wf_tarball *a)
{
	int error;

	if (a->broken || a->finished)
		return wf_error_set(WF_ERROR, "archive '%s' is closed", a->path);
	if ((error = flush(a)) < 0)
		return error;
	if (archive_write_close(a->ar) != ARCHIVE_OK)
		return ar_error(a, "cannot finish");
	archive_write_free(a->ar);
	a->ar = NULL;
	if (fsync(a->fd) < 0) {
		a->broken = 1;
		return wf_error_set_errno(WF_EOS, "cannot sync '%s'", a->tmp);
	}
	if (close(a->fd) < 0) {
		a->fd = -1;
		a->broken = 1;
		return wf_error_set_errno(WF_EOS, "cannot write '%s'", a->tmp);
	}
	a->fd = -1;
	a->finished = 1;
	return 0;
}

/* Sync the directory holding `path`, so a new name in it is durable. */
static int
sync_dir(const char *path)
{
	char *dir = strdup(path), *slash;
	int fd, error = 0;

	if (!dir)
		return wf_error_oom();
	if ((slash = strrchr(dir, '/')))
		slash[slash == dir] = '\0';
	fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		error = wf_error_set_errno(WF_EOS, "cannot sync the directory "
		    "of '%s'", path);
	if (fd >= 0)
		close(fd);
	free(dir);
	return error;
}

int
wf_tarball_publish(struct wf_tarball *a)
{
	struct stat sb;

	if (!a->finished || a->published)
		return wf_error_set(WF_ERROR, "archive '%s' is not finished",
		    a->path);
	/* link() never replaces a file; rename() is the fallback for file
	 * systems without hard links. */
	if (link(a->tmp, a->path) < 0) {
		if (errno == EEXIST)
			return wf_error_set(WF_ECONFLICT, "archive '%s' exists "
			    "already", a->path);
		if (lstat(a->path, &sb) == 0)
			return wf_error_set(WF_ECONFLICT, "archive '%s' exists "
			    "already", a->path);
		if (rename(a->tmp, a->path) < 0)
			return wf_error_set_errno(WF_EOS, "cannot rename '%s' to "
			    "'%s'", a->tmp, a->path);
	} else if (unlink(a->tmp) < 0) {
		int error = wf_error_set_errno(WF_EOS, "cannot remove '%s'",
		    a->tmp);

		unlink(a->path);
		return error;
	}
	a->published = 1;
	/*
	 * The name is in place: a failed directory sync is reported, but
	 * the archive stays (it is complete and synced itself).
	 */
	return sync_dir(a->path);
}

void
wf_tarball_free(struct wf_tarball *a)
{
	if (!a)
		return;
	if (a->ar)
		archive_write_free(a->ar);
	if (a->fd >= 0)
		close(a->fd);
	if (a->tmp && !a->published)
		unlink(a->tmp);
	free(a->path);
	free(a->tmp);
	free(a->buf);
	free(a);
}

struct reader {
	const char *path;
	char member[256];
	size_t lineno;
	char *buf;
	size_t len, cap;
	wf_tarball_line_fn fn;
	void *ctx;
};

/* Hand every complete line in the buffer to fn; keep the rest. */
static int
feed(struct reader *r, int last)
{
	size_t start = 0;
	char *nl;
	int error;

	while (start < r->len) {
		nl = memchr(r->buf + start, '\n', r->len - start);
		if (!nl && !last)
			break;
		r->lineno++;
		if ((error = r->fn(r->ctx, r->member, r->lineno, r->buf + start,
		    nl ? (size_t)(nl - (r->buf + start)) : r->len - start)) < 0)
			return error;
		start = nl ? (size_t)(nl - r->buf) + 1 : r->len;
	}
	memmove(r->buf, r->buf + start, r->len - start);
	r->len -= start;
	if (r->len > WF_TARBALL_LINE_MAX)
		return wf_error_set(WF_EINPUT, "archive '%s': %s:%zu: line "
		    "longer than %zu bytes", r->path, r->member, r->lineno + 1,
		    WF_TARBALL_LINE_MAX);
	return 0;
}

int
wf_tarball_read(const char *path, wf_tarball_line_fn fn, void *ctx)
{
	struct reader r;
	struct archive *ar = NULL;
	struct archive_entry *e;
	la_ssize_t n;
	int fd, rc, error;

	memset(&r, 0, sizeof(r));
	r.path = path;
	r.fn = fn;
	r.ctx = ctx;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return wf_error_set_errno(WF_EOS, "cannot open '%s'", path);
	if (!(ar = archive_read_new())) {
		error = wf_error_oom();
		goto out;
	}
	archive_read_support_filter_gzip(ar);
	archive_read_support_format_tar(ar);
	if (archive_read_open_fd(ar, fd, 65536) != ARCHIVE_OK) {
		error = wf_error_set(WF_EINPUT, "'%s' is not a wf archive: %s",
		    path, archive_error_string(ar));
		goto out;
	}
	while ((rc = archive_read_next_header(ar, &e)) == ARCHIVE_OK ||
	    rc == ARCHIVE_WARN) {
		if (archive_entry_filetype(e) != AE_IFREG)
			continue;
		snprintf(r.member, sizeof(r.member), "%s",
		    archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
		r.lineno = 0;
		r.len = 0;
		for (;;) {
			if (r.cap - r.len < 65536) {
				size_t cap = r.cap ? r.cap * 2 : 131072;
				char *p = realloc(r.buf, cap);

				if (!p) {
					error = wf_error_oom();
					goto out;
				}
				r.buf = p;
				r.cap = cap;
			}
			n = archive_read_data(ar, r.buf + r.len, r.cap - r.len);
			if (n < 0) {
				error = wf_error_set(WF_EINPUT, "archive '%s' is "
				    "damaged: %s: %s", path, r.member,
				    archive_error_string(ar));
				goto out;
			}
			if (n == 0)
				break;
			r.len += (size_t)n;
			if ((error = feed(&r, 0)) < 0)
				goto out;
		}
		if ((error = feed(&r, 1)) < 0)
			goto out;
	}
	if (rc != ARCHIVE_EOF) {
		error = wf_error_set(WF_EINPUT, "archive '%s' is damaged: %s",
		    path, archive_error_string(ar) ? archive_error_string(ar) :
		    "cannot read a header");
		goto out;
	}
	error = 0;
out:
	if (ar)
		archive_read_free(ar);
	close(fd);
	free(r.buf);
	return error;
}
