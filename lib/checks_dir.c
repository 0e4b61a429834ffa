/*
 * The checks' directories: made and locked, recorded, swept of the
 * processes their commands left, removed; and found again after their
 * owner was killed (see checks_dir.h for the layout).
 */
/* nftw() */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checks.h"
#include "checks_dir.h"
#include "clock.h"
#include "error.h"

#define PREFIX "wf-check."
#define RECORD_MAX 512

const char *
wf_checks_dir_tmp(const char *tmpdir)
{
	if (!tmpdir || !*tmpdir)
		tmpdir = getenv("TMPDIR");
	return tmpdir && *tmpdir ? tmpdir : "/tmp";
}

static void
host_name(char *buf, size_t n)
{
	if (gethostname(buf, n) < 0)
		snprintf(buf, n, "localhost");
	buf[n - 1] = '\0';
}

static int
rm_open(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)ftw;
	/* A check may leave read-only directories behind. */
	if (flag == FTW_D)
		chmod(path, (st->st_mode & 07777) | S_IRWXU);
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* Remove the tree at `dir`, as well as can be done: 0 when it is gone. */
static int
rm_tree(const char *dir)
{
	struct stat st;

	nftw(dir, rm_open, 16, FTW_PHYS);
	nftw(dir, rm_one, 16, FTW_PHYS | FTW_DEPTH);
	return lstat(dir, &st) < 0 && errno == ENOENT ? 0 : -1;
}

static int
write_record(const struct wf_checks_dir *d)
{
	char host[256], rec[RECORD_MAX];
	int n;

	host_name(host, sizeof(host));
	n = snprintf(rec, sizeof(rec), "wf-check 1\nhost %s\npid %010ld\n"
	    "id %s\npgid %010ld %020llu\n", host, (long)getpid(), d->id,
	    (long)d->pgid, d->start);
	if (n < 0 || (size_t)n >= sizeof(rec))
		return -1;
	/* Same length each time: written in place, in one call. */
	return pwrite(d->fd, rec, (size_t)n, 0) == n ? 0 : -1;
}

/* What a record says; 0 when it is one, -1 when not. */
struct record {
	char host[256];
	char id[33];
	long pid;
	long pgid;
	unsigned long long start;
};

static int
parse_record(struct record *r, const char *s)
{
	const char *line, *end;
	int have = 0;

	memset(r, 0, sizeof(*r));
	if (strncmp(s, "wf-check 1\n", 11) != 0)
		return -1;
	for (line = s + 11; *line; line = end + 1) {
		char *e;

		if (!(end = strchr(line, '\n')))
			return -1;
		if (strncmp(line, "host ", 5) == 0 &&
		    (size_t)(end - line - 5) < sizeof(r->host)) {
			memcpy(r->host, line + 5, (size_t)(end - line - 5));
			have |= 1;
		} else if (strncmp(line, "pid ", 4) == 0) {
			errno = 0;
			r->pid = strtol(line + 4, &e, 10);
			if (errno || e != end)
				return -1;
			have |= 2;
		} else if (strncmp(line, "id ", 3) == 0 &&
		    end - line - 3 == 32) {
			memcpy(r->id, line + 3, 32);
			if (strspn(r->id, "0123456789abcdef") != 32)
				return -1;
			have |= 4;
		} else if (strncmp(line, "pgid ", 5) == 0) {
			errno = 0;
			r->pgid = strtol(line + 5, &e, 10);
			if (errno || *e != ' ')
				return -1;
			r->start = strtoull(e + 1, &e, 10);
			if (errno || e != end)
				return -1;
			have |= 8;
		}
	}
	return have == 15 && r->pgid >= 0 ? 0 : -1;
}

/* What the sweep needs of /proc/PID/stat. */
struct proc {
	char state;
	long pgrp;
	unsigned long long start;
};

static int
read_proc(struct proc *p, long pid)
{
	char path[64], buf[2048], *s;
	ssize_t got;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	got = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (got <= 0)
		return -1;
	buf[got] = '\0';
	/* The command name, in parentheses, may hold anything. */
	if (!(s = strrchr(buf, ')')))
		return -1;
	if (sscanf(s + 1, " %c %*d %ld %*d %*d %*d %*u %*u %*u %*u %*u %*u "
	    "%*u %*d %*d %*d %*d %*d %*d %llu", &p->state, &p->pgrp,
	    &p->start) != 3)
		return -1;
	return 0;
}

/* Whether the environment of `pid` holds the entry `want` ("K=V"). */
static int
environ_has(long pid, const char *want)
{
	char path[64], buf[4096];
	size_t n = strlen(want), k = 0;
	ssize_t got, i;
	int fd, bad = 0;

	snprintf(path, sizeof(path), "/proc/%ld/environ", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	while ((got = read(fd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < got; i++) {
			if (buf[i] == '\0') {
				if (!bad && k == n) {
					close(fd);
					return 1;
				}
				k = 0;
				bad = 0;
			} else if (!bad && k < n && buf[i] == want[k]) {
				k++;
			} else {
				bad = 1;
			}
		}
	}
	close(fd);
	return !bad && k == n;
}

/*
 * One pass over /proc: SIGKILL to every live process holding
 * WF_CHECK_ID=id (none when `id` is empty), and to the group `pgid`
 * when it is provably the check's: its leader is the process recorded
 * (same pid, same start time), or one of its members holds the id.
 * A group whose id was taken again by another process is left alone.
 * Returns how many live processes matched.
 */
static size_t
sweep_once(const char *id, long pgid, unsigned long long start)
{
	char want[64];
	DIR *dir;
	struct dirent *e;
	struct proc p;
	size_t found = 0, members = 0;
	long self = (long)getpid(), pid;
	int ours = 0;

	snprintf(want, sizeof(want), "WF_CHECK_ID=%s", id);
	if (!(dir = opendir("/proc")))
		return 0;
	while ((e = readdir(dir))) {
		char *end;

		pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 1 || pid == self || read_proc(&p, pid) < 0)
			continue;
		if (pgid > 1 && pid == pgid && start && p.start == start)
			ours = 1;
		if (p.state == 'Z' || p.state == 'X')
			continue;
		if (*id && environ_has(pid, want)) {
			kill((pid_t)pid, SIGKILL);
			found++;
			if (pgid > 1 && p.pgrp == pgid)
				ours = 1;
		} else if (pgid > 1 && p.pgrp == pgid) {
			members++;
		}
	}
	closedir(dir);
	if (ours && members > 0 && kill(-(pid_t)pgid, SIGKILL) == 0)
		found += members;
	return found;
}

/* Sweep until nothing of the check is left, for up to wait_ms. */
static size_t
sweep(const char *id, long pgid, unsigned long long start, long wait_ms)
{
	int64_t until = wf_clock_ms() + wait_ms;
	size_t first = sweep_once(id, pgid, start), n = first;

	while (n > 0 && wf_clock_ms() < until) {
		wf_clock_sleep_ms(10);
		n = sweep_once(id, pgid, start);
	}
	return first;
}

size_t
wf_checks_dir_sweep(const struct wf_checks_dir *d, long wait_ms)
{
	return sweep(d->id, (long)d->pgid, d->start, wait_ms);
}

static void
new_id(char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	size_t i;

	if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
		struct timespec ts;
		unsigned long long x;

		clock_gettime(CLOCK_REALTIME, &ts);
		x = (unsigned long long)ts.tv_sec * 1000000007ULL ^
		    (unsigned long long)ts.tv_nsec ^
		    ((unsigned long long)getpid() << 32);
		for (i = 0; i < sizeof(b); i++) {
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			b[i] = (unsigned char)(x >> 56);
		}
	}
	for (i = 0; i < sizeof(b); i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[32] = '\0';
}

/*
 * Make and lock one directory: 0, 1 to try again (a cleanup took it
 * from under us before it was locked), or an error.
 */
static int
create_once(struct wf_checks_dir *d, const char *tmp, char *lock,
    size_t lock_size)
{
	struct stat a, b;

	snprintf(d->path, strlen(tmp) + 32, "%s/" PREFIX "XXXXXX", tmp);
	if (!mkdtemp(d->path))
		return wf_error_set_errno(WF_EOS, "cannot create a directory "
		    "in '%s'", tmp);
	snprintf(lock, lock_size, "%s/lock", d->path);
	if ((d->fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) < 0) {
		if (errno == ENOENT)
			return 1;
		wf_error_set_errno(WF_EOS, "cannot create '%s'", lock);
		rmdir(d->path);
		return WF_EOS;
	}
	if (flock(d->fd, LOCK_EX) < 0) {
		wf_error_set_errno(WF_EOS, "cannot lock '%s'", lock);
		goto fail;
	}
	/* Locked, but is it still the lock file of the directory? */
	if (fstat(d->fd, &a) < 0 || stat(lock, &b) < 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		close(d->fd);
		d->fd = -1;
		rmdir(d->path);
		return 1;
	}
	if (write_record(d) < 0) {
		wf_error_set_errno(WF_EOS, "cannot write '%s'", lock);
		goto fail;
	}
	snprintf(d->tree, strlen(d->path) + 6, "%s/tree", d->path);
	if (mkdir(d->tree, 0700) < 0) {
		wf_error_set_errno(WF_EOS, "cannot create '%s'", d->tree);
		goto fail;
	}
	return 0;
fail:
	unlink(lock);
	rmdir(d->path);
	close(d->fd);
	d->fd = -1;
	return WF_EOS;
}

int
wf_checks_dir_create(struct wf_checks_dir *d, const char *tmp)
{
	size_t n = strlen(tmp) + 32;
	char *lock = NULL;
	int error = 1, tries;

	memset(d, 0, sizeof(*d));
	d->fd = -1;
	new_id(d->id);
	if (!(d->path = malloc(n)) || !(d->tree = malloc(n + 8)) ||
	    !(lock = malloc(n + 8))) {
		error = wf_error_oom();
		goto out;
	}
	for (tries = 0; tries < 10 && error == 1; tries++)
		error = create_once(d, tmp, lock, n + 8);
	if (error == 1)
		error = wf_error_set(WF_EOS, "cannot create a directory in "
		    "'%s': taken away each time", tmp);
out:
	free(lock);
	if (error < 0) {
		free(d->path);
		free(d->tree);
		d->path = d->tree = NULL;
	}
	return error;
}

void
wf_checks_dir_started(struct wf_checks_dir *d, pid_t pgid)
{
	struct proc p;

	d->pgid = pgid;
	d->start = read_proc(&p, (long)pgid) == 0 ? p.start : 0;
	if (d->fd >= 0)
		write_record(d);
}

void
wf_checks_dir_release(struct wf_checks_dir *d)
{
	char *lock;

	if (d->fd >= 0 && d->tree && rm_tree(d->tree) == 0 &&
	    (lock = malloc(strlen(d->path) + 6))) {
		sprintf(lock, "%s/lock", d->path);
		unlink(lock);
		rmdir(d->path);
		free(lock);
	}
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	free(d->path);
	free(d->tree);
	d->path = d->tree = NULL;
}

/* Whether `dir` holds nothing but its lock file. */
static int
only_lock(const char *dir)
{
	DIR *dh = opendir(dir);
	struct dirent *e;
	int only = 1;

	if (!dh)
		return 0;
	while ((e = readdir(dh)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") !=
		    0 && strcmp(e->d_name, "lock") != 0)
			only = 0;
	closedir(dh);
	return only;
}

/*
 * The directory tmp/name, if it was left by a dead owner: its processes
 * are killed and it is removed.  1 when it was removed, else 0.
 */
static int
abandoned(size_t *processes, const char *tmp, const char *name)
{
	char path[4096], lock[4096 + 8], rec[RECORD_MAX + 1], host[256];
	struct record r;
	struct stat st, st2;
	ssize_t got;
	int fd, removed = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", tmp, name) >=
	    sizeof(path))
		return 0;
	snprintf(lock, sizeof(lock), "%s/lock", path);
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != geteuid())
		return 0;
	if ((fd = open(lock, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		/*
		 * Killed before its lock was made: empty, and rmdir()
		 * removes nothing else.  An owner making it now finds it
		 * gone and makes another.
		 */
		return errno == ENOENT && rmdir(path) == 0;
	}
	/* Held: the owner runs. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || flock(fd, LOCK_EX | LOCK_NB) < 0)
		goto out;
	/* Taken by another cleanup, which removed it meanwhile? */
	if (fstat(fd, &st) < 0 || st.st_nlink == 0 || stat(lock, &st2) < 0 ||
	    st.st_dev != st2.st_dev || st.st_ino != st2.st_ino)
		goto out;
	if ((got = pread(fd, rec, RECORD_MAX, 0)) < 0)
		goto out;
	rec[got] = '\0';
	if (got == 0) {
		/* Killed between making the lock and writing it. */
		if (only_lock(path)) {
			unlink(lock);
			removed = rmdir(path) == 0;
		}
		goto out;
	}
	host_name(host, sizeof(host));
	/* Not a record: not ours.  Another host's: not provably dead. */
	if (parse_record(&r, rec) < 0 || strcmp(r.host, host) != 0)
		goto out;
	*processes += sweep(r.id, r.pgid, r.start, 2000);
	snprintf(path + strlen(path), sizeof(path) - strlen(path), "/tree");
	if (rm_tree(path) < 0)
		goto out;	/* the lock stays, for the next cleanup */
	path[strlen(path) - 5] = '\0';
	unlink(lock);
	removed = rmdir(path) == 0;
out:
	close(fd);
	return removed;
}

int
wf_checks_cleanup(size_t *checkouts, size_t *processes, const char *tmpdir)
{
	const char *tmp = wf_checks_dir_tmp(tmpdir);
	DIR *dir;
	struct dirent *e;
	char **names = NULL, **p;
	size_t n = 0, cap = 0, i, dummy = 0;
	int error = 0;

	if (checkouts)
		*checkouts = 0;
	if (!processes)
		processes = &dummy;
	*processes = 0;
	if (!(dir = opendir(tmp))) {
		if (errno == ENOENT)
			return 0;
		return wf_error_set_errno(WF_EOS, "cannot read '%s'", tmp);
	}
	/* The names first: what is removed is not read again. */
	while ((e = readdir(dir))) {
		if (strncmp(e->d_name, PREFIX, strlen(PREFIX)) != 0 ||
		    strlen(e->d_name) != strlen(PREFIX) + 6)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			if (!(p = realloc(names, cap * sizeof(*names)))) {
				error = wf_error_oom();
				goto out;
			}
			names = p;
		}
		if (!(names[n] = strdup(e->d_name))) {
			error = wf_error_oom();
			goto out;
		}
		n++;
	}
	for (i = 0; i < n; i++)
		if (abandoned(processes, tmp, names[i]) && checkouts)
			(*checkouts)++;
out:
	closedir(dir);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return error;
}
