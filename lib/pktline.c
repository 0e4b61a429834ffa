#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "pktline.h"

/* Read exactly `n` bytes: 0, 1 at a clean end of input, or WF_EOS. */
static int
read_full(int fd, char *buf, size_t n)
{
	size_t off = 0;
	ssize_t got;

	while (off < n) {
		if ((got = read(fd, buf + off, n - off)) < 0) {
			if (errno == EINTR)
				continue;
			return wf_error_set_errno(WF_EOS, "cannot read a pkt-line");
		}
		if (got == 0)
			return 1;
		off += (size_t)got;
	}
	return 0;
}

static int
write_full(int fd, const char *buf, size_t n)
{
	size_t off = 0;
	ssize_t w;

	while (off < n) {
		if ((w = write(fd, buf + off, n - off)) < 0) {
			if (errno == EINTR)
				continue;
			return wf_error_set_errno(WF_EOS, "cannot write a "
			    "pkt-line");
		}
		off += (size_t)w;
	}
	return 0;
}

static int
keep(char **raw, size_t *raw_len, const char *p, size_t n)
{
	char *r;

	if (!raw)
		return 0;
	if (!(r = realloc(*raw, *raw_len + n + 1)))
		return wf_error_oom();
	memcpy(r + *raw_len, p, n);
	*raw_len += n;
	r[*raw_len] = '\0';
	*raw = r;
	return 0;
}

int
wf_pktline_read(char *buf, long *len, int fd, char **raw, size_t *raw_len)
{
	char head[5], *end;
	unsigned long n;
	int rc;

	*len = -1;
	buf[0] = '\0';
	if ((rc = read_full(fd, head, 4)) != 0)
		return rc < 0 ? rc : wf_error_set(WF_EINPUT, "the pkt-line "
		    "input ends early");
	head[4] = '\0';
	n = strtoul(head, &end, 16);
	if (*end || (n != 0 && n < 4) || n > WF_PKTLINE_MAX + 4)
		return wf_error_set(WF_EINPUT, "bad pkt-line length '%s'",
		    head);
	if ((rc = keep(raw, raw_len, head, 4)) < 0)
		return rc;
	if (n == 0)
		return 0;
	n -= 4;
	if ((rc = read_full(fd, buf, n)) != 0)
		return rc < 0 ? rc : wf_error_set(WF_EINPUT, "the pkt-line "
		    "input ends early");
	if ((rc = keep(raw, raw_len, buf, n)) < 0)
		return rc;
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	*len = (long)n;
	return 0;
}

int
wf_pktline_write(int fd, const char *data, size_t len)
{
	char head[5];
	int error;

	if (len > WF_PKTLINE_MAX)
		return wf_error_set(WF_EINPUT, "a pkt-line of %zu bytes is too "
		    "long", len);
	snprintf(head, sizeof(head), "%04zx", len + 4);
	if ((error = write_full(fd, head, 4)) < 0)
		return error;
	return write_full(fd, data, len);
}

int
wf_pktline_flush(int fd)
{
	return write_full(fd, "0000", 4);
}
