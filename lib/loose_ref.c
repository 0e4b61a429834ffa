#define _GNU_SOURCE		/* memmem */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "loose_ref.h"

#define HEX 40

static char *
join(const char *gitdir, const char *ref, const char *suffix)
{
	size_t n = strlen(gitdir) + strlen(ref) + strlen(suffix) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s%s", gitdir, ref, suffix);
	return p;
}

/*
 * Is a directory of `ref` (refs/a for refs/a/b) a ref in packed-refs?
 * The file is sorted, but a plain search is fast enough for the few
 * names to look for.  0 no, 1 yes, WF_EOS.
 */
static int
packed_conflict(const char *gitdir, const char *ref)
{
	char *path = join(gitdir, "packed-refs", ""), *want = NULL;
	const char *slash, *data;
	struct stat st;
	void *map = MAP_FAILED;
	int fd = -1, hit = 0, error = 0;

	if (!path)
		return wf_error_oom();
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno != ENOENT)
			error = wf_error_set_errno(WF_EOS, "cannot read '%s'",
			    path);
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot read '%s'", path);
		goto out;
	}
	if (st.st_size == 0)
		goto out;
	if ((map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd,
	    0)) == MAP_FAILED) {
		error = wf_error_set_errno(WF_EOS, "cannot read '%s'", path);
		goto out;
	}
	data = map;
	if (!(want = malloc(strlen(ref) + 3))) {
		error = wf_error_oom();
		goto out;
	}
	/* Each line: "<hex> <name>\n"; look for " <dir>\n". */
	for (slash = strchr(ref, '/'); slash && !hit;
	    slash = strchr(slash + 1, '/')) {
		size_t n = (size_t)(slash - ref);

		want[0] = ' ';
		memcpy(want + 1, ref, n);
		want[n + 1] = '\n';
		hit = memmem(data, (size_t)st.st_size, want, n + 2) != NULL;
	}
out:
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
	if (fd >= 0)
		close(fd);
	free(want);
	free(path);
	return error < 0 ? error : hit;
}

/* Make the directories of `path` below `gitdir`'s length `keep`. */
static int
make_dirs(char *path, size_t keep)
{
	char *s;

	for (s = path + keep + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		if (mkdir(path, 0777) < 0 && errno != EEXIST) {
			int conflict = errno == ENOTDIR;
			int error = conflict ? wf_error_set(WF_ECONFLICT,
			    "cannot create '%s': a ref has that name", path) :
			    wf_error_set_errno(WF_EOS, "cannot create '%s'",
			    path);

			*s = '/';
			return error;
		}
		*s = '/';
	}
	return 0;
}

int
wf_loose_ref_write(const char *gitdir, const char *ref, const char *hex)
{
	char *path = join(gitdir, ref, ""), *lock = join(gitdir, ref, ".lock");
	char line[HEX + 1];
	struct stat st;
	ssize_t w;
	int fd = -1, error;

	if (!path || !lock) {
		error = wf_error_oom();
		goto out;
	}
	if (strncmp(ref, "refs/", 5) != 0 || strlen(hex) < HEX) {
		error = wf_error_set(WF_EINPUT, "cannot write ref '%s'", ref);
		goto out;
	}
	if ((error = packed_conflict(gitdir, ref)) != 0) {
		if (error > 0)
			error = wf_error_set(WF_ECONFLICT, "cannot create "
			    "'%s': a packed ref is named like a directory of "
			    "it", ref);
		goto out;
	}
	if ((error = make_dirs(lock, strlen(gitdir))) < 0)
		goto out;
	if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		error = wf_error_set(WF_ECONFLICT, "cannot create '%s': refs "
		    "exist below it", ref);
		goto out;
	}
	if ((fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0666)) < 0) {
		error = errno == EEXIST ? wf_error_set(WF_ECONFLICT, "cannot "
		    "lock ref '%s': '%s' exists", ref, lock) :
		    wf_error_set_errno(WF_EOS, "cannot create '%s'", lock);
		goto out;
	}
	memcpy(line, hex, HEX);
	line[HEX] = '\n';
	do
		w = write(fd, line, sizeof(line));
	while (w < 0 && errno == EINTR);
	if (w != (ssize_t)sizeof(line) || close(fd) < 0) {
		fd = -1;
		error = wf_error_set_errno(WF_EOS, "cannot write '%s'", lock);
		unlink(lock);
		goto out;
	}
	fd = -1;
	if (rename(lock, path) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot rename '%s'", lock);
		unlink(lock);
		goto out;
	}
	error = 0;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	free(lock);
	return error;
}

int
wf_loose_ref_remove(const char *gitdir, const char *ref, const char *hex)
{
	char *path = join(gitdir, ref, ""), *lock = join(gitdir, ref, ".lock");
	char line[HEX + 2];
	ssize_t r;
	int fd = -1, lfd = -1, error;

	if (!path || !lock) {
		error = wf_error_oom();
		goto out;
	}
	/* Held as git holds it, so no update slips in between. */
	if ((lfd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0666)) < 0) {
		error = errno == EEXIST ? wf_error_set(WF_ECONFLICT, "cannot "
		    "lock ref '%s'", ref) : wf_error_set_errno(WF_EOS,
		    "cannot create '%s'", lock);
		goto out;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		error = errno == ENOENT ? 0 : wf_error_set_errno(WF_EOS,
		    "cannot read '%s'", path);
		goto unlock;
	}
	r = read(fd, line, sizeof(line));
	if (r != HEX + 1 || memcmp(line, hex, HEX) != 0 || line[HEX] != '\n') {
		error = wf_error_set(WF_ECONFLICT, "ref '%s' has moved", ref);
		goto unlock;
	}
	error = unlink(path) < 0 ? wf_error_set_errno(WF_EOS, "cannot remove "
	    "'%s'", path) : 0;
unlock:
	unlink(lock);
out:
	if (fd >= 0)
		close(fd);
	if (lfd >= 0)
		close(lfd);
	free(path);
	free(lock);
	return error;
}
