#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "error.h"
#include "git.h"
#include "hash.h"
#include "lane.h"
#include "path.h"

/* Longest escaped branch name kept in a file name; longer ones hash. */
#define NAME_MAX_KEPT 200

struct wf_lane {
	int fd;
	int writable;		/* the holder's name can be written */
	int held;
	char *path;
	char *branch;
	char holder[512];
};

/* "wf/apply-<branch, escaped>.lock" into a new string. */
static int
lock_name(char **out, const char *branch)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, n = 0, len = strlen(branch);
	char *s, id[GIT_OID_HEXSZ + 1];
	git_oid oid;
	int error;

	*out = NULL;
	if (!(s = malloc(len * 3 + 32)))
		return wf_error_oom();
	n = (size_t)sprintf(s, "wf/apply-");
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)branch[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '-') {
			s[n++] = (char)c;
		} else {
			s[n++] = '%';
			s[n++] = hex[c >> 4];
			s[n++] = hex[c & 15];
		}
	}
	if (n - 9 > NAME_MAX_KEPT) {
		if ((error = wf_hash_buf(&oid, branch, len)) < 0) {
			free(s);
			return error;
		}
		n = (size_t)sprintf(s, "wf/apply-%s", wf_hash_hex(id, &oid));
	}
	memcpy(s + n, ".lock", 6);
	*out = s;
	return 0;
}

int
wf_lane_open(struct wf_lane **out, git_repository *repo, const char *branch)
{
	struct wf_lane *l;
	char *rel = NULL;
	int error;

	*out = NULL;
	if (strncmp(branch, "refs/heads/", 11) == 0)
		branch += 11;
	if (!(l = calloc(1, sizeof(*l))))
		return wf_error_oom();
	l->fd = -1;
	if (!(l->branch = strdup(branch))) {
		error = wf_error_oom();
		goto out;
	}
	if ((error = lock_name(&rel, branch)) < 0 ||
	    (error = wf_git_common_path(&l->path, repo, rel)) < 0 ||
	    (error = wf_path_mkdir_parent(l->path)) < 0)
		goto out;
	/* A lock can be taken on a file one may only read. */
	l->writable = 1;
	if ((l->fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0666)) < 0 &&
	    errno == EACCES) {
		l->writable = 0;
		l->fd = open(l->path, O_RDONLY | O_CLOEXEC);
	}
	if (l->fd < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot open the lane '%s'",
		    l->path);
		goto out;
	}
	*out = l;
	l = NULL;
	error = 0;
out:
	free(rel);
	wf_lane_free(l);
	return error;
}

/* The first line of the file into l->holder; "" when it is empty. */
static void
read_holder(struct wf_lane *l)
{
	ssize_t n;
	char *nl;

	while ((n = pread(l->fd, l->holder, sizeof(l->holder) - 1, 0)) < 0 &&
	    errno == EINTR)
		;
	l->holder[n > 0 ? n : 0] = '\0';
	if ((nl = strchr(l->holder, '\n')))
		*nl = '\0';
}

int
wf_lane_take(int *out, struct wf_lane *lane, const char *name)
{
	char host[256], me[512];
	size_t len;

	if (out)
		*out = 0;
	if (lane->held)
		return 0;
	while (flock(lane->fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return wf_error_set_errno(WF_EOS, "cannot lock the "
			    "lane '%s'", lane->path);
		read_holder(lane);
		if (lane->holder[0])
			return wf_error_set(WF_EBUSY, "branch '%s' is being "
			    "landed by '%s'", lane->branch, lane->holder);
		return wf_error_set(WF_EBUSY, "branch '%s' is being landed "
		    "by another process", lane->branch);
	}
	lane->held = 1;
	read_holder(lane);
	if (out)
		*out = lane->holder[0] != '\0';
	lane->holder[0] = '\0';
	if (!lane->writable)
		return 0;
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	len = (size_t)snprintf(me, sizeof(me), "%s@%s:%ld\n",
	    name ? name : "wf-apply", host, (long)getpid());
	if (len >= sizeof(me))
		len = sizeof(me) - 1;
	/* Over what a dead holder left, then cut: never empty meanwhile. */
	if (pwrite(lane->fd, me, len, 0) != (ssize_t)len ||
	    ftruncate(lane->fd, (off_t)len) < 0) {
		int error = wf_error_set_errno(WF_EOS, "cannot write the lane "
		    "'%s'", lane->path);

		wf_lane_drop(lane);
		return error;
	}
	return 0;
}

void
wf_lane_drop(struct wf_lane *lane)
{
	if (!lane || !lane->held)
		return;
	/*
	 * Emptied first: a name left behind says its holder died.  When it
	 * cannot be, the next holder settles leases for nothing, and this
	 * handle writes no more names.
	 */
	if (lane->writable && ftruncate(lane->fd, 0) < 0)
		lane->writable = 0;
	flock(lane->fd, LOCK_UN);
	lane->held = 0;
}

int
wf_lane_held(const struct wf_lane *lane)
{
	return lane && lane->held;
}

const char *
wf_lane_holder(const struct wf_lane *lane)
{
	return lane->holder;
}

const char *
wf_lane_path(const struct wf_lane *lane)
{
	return lane->path;
}

void
wf_lane_free(struct wf_lane *lane)
{
	if (!lane)
		return;
	wf_lane_drop(lane);
	if (lane->fd >= 0)
		close(lane->fd);
	free(lane->path);
	free(lane->branch);
	free(lane);
}
