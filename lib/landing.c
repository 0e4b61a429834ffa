#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "landing.h"
#include "push.h"
#include "queue.h"

extern char **environ;

#define MAX_LOG (1024 * 1024)
#define AFTER_MS 10000
#define MAX_PENDING (1024 * 1024)

/* <gitdir>/wf/<name>, with the directory made. */
static int
wf_file(char **out, const char *gitdir, const char *name)
{
	size_t n = strlen(gitdir);
	int error = 0;

	*out = NULL;
	while (n > 1 && gitdir[n - 1] == '/')
		n--;
	if (!(*out = malloc(n + strlen(name) + 5)))
		return wf_error_oom();
	sprintf(*out, "%.*s/wf", (int)n, gitdir);
	if (mkdir(*out, 0777) < 0 && errno != EEXIST)
		error = wf_error_set_errno(WF_EOS, "cannot create '%s'", *out);
	else
		sprintf(*out + n + 3, "/%s", name);
	if (error < 0) {
		free(*out);
		*out = NULL;
	}
	return error;
}

int
wf_landing_request(const char *gitdir, const char *const *targets, size_t n)
{
	char *path = NULL, *buf = NULL;
	size_t i, len = 0, off = 0;
	int fd = -1, error;

	if ((error = wf_file(&path, gitdir, "land.pending")) < 0)
		return error;
	for (i = 0; i < n; i++)
		len += strlen(targets[i]) + 1;
	if (!(buf = malloc(len + 1))) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < n; i++)
		off += (size_t)sprintf(buf + off, "%s\n", targets[i]);
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0666)) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot open '%s'", path);
		goto out;
	}
	/* One write: concurrent requests do not interleave. */
	if (write(fd, buf, len) != (ssize_t)len) {
		error = wf_error_set_errno(WF_EOS, "cannot write '%s'", path);
		goto out;
	}
	error = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(path);
	return error;
}

/* Read and empty the pending file (the lock is held): unique branches. */
static int
take_pending(json_t **out, const char *path)
{
	json_t *set = NULL, *arr = NULL;
	char *buf = NULL, *line, *nl;
	ssize_t got;
	size_t len = 0;
	const char *name;
	json_t *v;
	int fd, error;

	*out = NULL;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666)) < 0)
		return wf_error_set_errno(WF_EOS, "cannot open '%s'", path);
	if (!(buf = malloc(MAX_PENDING + 1)) || !(set = json_object()) ||
	    !(arr = json_array())) {
		error = wf_error_oom();
		goto out;
	}
	while (len < MAX_PENDING && (got = read(fd, buf + len,
	    MAX_PENDING - len)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			error = wf_error_set_errno(WF_EOS, "cannot read '%s'",
			    path);
			goto out;
		}
		len += (size_t)got;
	}
	buf[len] = '\0';
	if (ftruncate(fd, 0) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot empty '%s'", path);
		goto out;
	}
	for (line = buf; *line; line = nl + 1) {
		if (!(nl = strchr(line, '\n')))
			break;	/* a request being written: cut, seen next time */
		*nl = '\0';
		if (*line && json_object_set_new(set, line, json_true()) < 0) {
			error = wf_error_oom();
			goto out;
		}
	}
	json_object_foreach(set, name, v)
		if (json_array_append_new(arr, json_string(name)) < 0) {
			error = wf_error_oom();
			goto out;
		}
	*out = arr;
	arr = NULL;
	error = 0;
out:
	close(fd);
	free(buf);
	json_decref(set);
	json_decref(arr);
	return error;
}

/* Whether the variable git set for a hook should stay out of wf-apply. */
static int
hook_only(const char *var)
{
	static const char *const names[] = { "GIT_DIR", "GIT_WORK_TREE",
	    "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
	    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH",
	    "GIT_COMMON_DIR", "GIT_PREFIX", "GIT_NAMESPACE",
	    "GIT_IMPLICIT_WORK_TREE", "GIT_GRAFT_FILE", "GIT_SHALLOW_FILE",
	    "GIT_NO_REPLACE_OBJECTS", "GIT_REPLACE_REF_BASE", NULL };
	size_t i, n;

	if (strncmp(var, "GIT_PUSH_OPTION_", 16) == 0)
		return 1;
	for (i = 0; names[i]; i++) {
		n = strlen(names[i]);
		if (strncmp(var, names[i], n) == 0 && var[n] == '=')
			return 1;
	}
	return 0;
}

static void
redirect(int fd, int to)
{
	int nul;

	if (fd >= 0) {
		if (fd != to)
			dup2(fd, to);
		return;
	}
	if ((nul = open("/dev/null", O_RDWR)) >= 0 && nul != to) {
		dup2(nul, to);
		close(nul);
	}
}

/* Run wf-apply on `targets`; *status is its exit status. */
static int
run_apply(int *status, git_repository *repo, const json_t *targets,
    const struct wf_landing_opts *o)
{
	const char *apply = o->apply ? o->apply : "wf-apply";
	char **argv = NULL, **envp = NULL;
	size_t i, n = 0, ne = 0;
	json_t *t;
	pid_t pid;
	int error = 0, ws;

	*status = -1;
	if (!(argv = calloc(json_array_size(targets) * 2 + 12,
	    sizeof(*argv)))) {
		error = wf_error_oom();
		goto out;
	}
	argv[n++] = (char *)apply;
	argv[n++] = (char *)"--once";
	argv[n++] = (char *)"--retry-delay";
	argv[n++] = (char *)"0";
	argv[n++] = (char *)"--progress=text";
	argv[n++] = (char *)"-C";
	argv[n++] = (char *)git_repository_path(repo);
	if (o->db) {
		argv[n++] = (char *)"--db";
		argv[n++] = (char *)o->db;
	}
	json_array_foreach(targets, i, t) {
		argv[n++] = (char *)"--target";
		argv[n++] = (char *)json_string_value(t);
	}
	for (i = 0; environ[i]; i++)
		;
	if (!(envp = calloc(i + 1, sizeof(*envp)))) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; environ[i]; i++)
		if (!hook_only(environ[i]))
			envp[ne++] = environ[i];
	fflush(NULL);
	if ((pid = fork()) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot start '%s'", apply);
		goto out;
	}
	if (pid == 0) {
		redirect(-1, 0);
		redirect(o->out_fd, 1);
		redirect(o->err_fd, 2);
		environ = envp;
		execvp(apply, argv);
		_exit(127);
	}
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR) {
			error = wf_error_set_errno(WF_EOS, "cannot wait for "
			    "'%s'", apply);
			goto out;
		}
	*status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
out:
	free(argv);
	free(envp);
	return error;
}

/* Keep the targets that are branches: wf-apply stops at one that is not. */
static int
existing_branches(json_t **out, git_repository *repo, const json_t *names)
{
	json_t *arr, *v;
	git_reference *ref = NULL;
	size_t i;

	if (!(*out = arr = json_array()))
		return wf_error_oom();
	json_array_foreach(names, i, v) {
		if (git_branch_lookup(&ref, repo, json_string_value(v),
		    GIT_BRANCH_LOCAL) < 0)
			continue;
		git_reference_free(ref);
		if (json_array_append(arr, v) < 0)
			return wf_error_oom();
	}
	return 0;
}

int
wf_landing_pass(json_t **out, git_repository *repo,
    const struct wf_landing_opts *opts)
{
	struct wf_landing_opts o = WF_LANDING_OPTS_INIT;
	struct wf_queue_opts qo = WF_QUEUE_OPTS_INIT;
	struct wf_queue *q = NULL;
	char *lock = NULL, *pending = NULL, *dbpath = NULL;
	json_t *names = NULL, *targets = NULL, *removed = NULL, *res = NULL;
	struct stat st;
	int fd = -1, error, status = -1;

	*out = NULL;
	if (opts)
		o = *opts;
	if ((error = wf_file(&lock, git_repository_commondir(repo),
	    "land.lock")) < 0 ||
	    (error = wf_file(&pending, git_repository_commondir(repo),
	    "land.pending")) < 0)
		goto out;
	if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666)) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot open '%s'", lock);
		goto out;
	}
	while (flock(fd, LOCK_EX | (o.wait ? 0 : LOCK_NB)) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK) {
			error = 0;
			goto out;
		}
		error = wf_error_set_errno(WF_EOS, "cannot lock '%s'", lock);
		goto out;
	}
	if ((error = take_pending(&names, pending)) < 0 ||
	    (error = existing_branches(&targets, repo, names)) < 0)
		goto out;
	if (json_array_size(targets) > 0 &&
	    (error = run_apply(&status, repo, targets, &o)) < 0)
		goto out;
	if (!o.db && (error = wf_queue_default_path(&dbpath, repo)) < 0)
		goto out;
	qo.actor = "wf-hooks";
	if ((error = wf_queue_open(&q, o.db ? o.db : dbpath, &qo)) < 0 ||
	    (error = wf_push_sweep(&removed, repo, q)) < 0)
		goto out;
	if (!(res = json_pack("{s:O, s:o, s:O, s:b}", "targets", targets,
	    "status", status < 0 ? json_null() : json_integer(status),
	    "removed", removed, "more", 0))) {
		error = wf_error_oom();
		goto out;
	}
	/* Unlock first, then look: see the comment in landing.h. */
	close(fd);
	fd = -1;
	if (stat(pending, &st) == 0 && st.st_size > 0)
		json_object_set_new(res, "more", json_true());
	*out = res;
	res = NULL;
	error = 0;
out:
	if (fd >= 0)
		close(fd);
	wf_queue_free(q);
	json_decref(res);
	json_decref(names);
	json_decref(targets);
	json_decref(removed);
	free(dbpath);
	free(lock);
	free(pending);
	return error;
}

int
wf_landing_busy(int *out, const char *gitdir)
{
	char *lock = NULL;
	int fd, rc, error;

	*out = 0;
	if ((error = wf_file(&lock, gitdir, "land.lock")) < 0)
		return error;
	if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666)) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot open '%s'", lock);
		free(lock);
		return error;
	}
	while ((rc = flock(fd, LOCK_EX | LOCK_NB)) < 0 && errno == EINTR)
		;
	*out = rc < 0 && errno == EWOULDBLOCK;
	close(fd);
	free(lock);
	return 0;
}

/* Close every descriptor from lowfd up. */
static void
close_from(int lowfd)
{
	long max;
	int fd;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0)
		return;
#endif
	if ((max = sysconf(_SC_OPEN_MAX)) < 0 || max > 65536)
		max = 65536;
	for (fd = lowfd; fd < max; fd++)
		close(fd);
}

/* Wait until process `pid` has exited, for `ms` milliseconds at most. */
static void
wait_gone(pid_t pid, int ms)
{
	struct pollfd p;
	int waited = 0;

#ifdef SYS_pidfd_open
	if ((p.fd = (int)syscall(SYS_pidfd_open, pid, 0)) >= 0) {
		p.events = POLLIN;
		while (poll(&p, 1, ms) < 0 && errno == EINTR)
			;
		close(p.fd);
		return;
	}
#endif
	while (waited < ms && (kill(pid, 0) == 0 || errno == EPERM)) {
		usleep(2000);
		waited += 2;
	}
}

int
wf_landing_spawn(pid_t *out, char *const *argv, const char *log, pid_t after)
{
	struct stat st;
	pid_t child, grand = -1;
	int p[2], ws, logfd;
	char *old;

	if (out)
		*out = -1;
	if (stat(log, &st) == 0 && st.st_size > MAX_LOG &&
	    (old = malloc(strlen(log) + 3))) {
		sprintf(old, "%s.1", log);
		rename(log, old);
		free(old);
	}
	if (pipe(p) < 0)
		return wf_error_set_errno(WF_EOS, "cannot make a pipe");
	fflush(NULL);
	if ((child = fork()) < 0) {
		close(p[0]);
		close(p[1]);
		return wf_error_set_errno(WF_EOS, "cannot start '%s'", argv[0]);
	}
	if (child == 0) {
		close(p[0]);
		if (setsid() < 0 || (grand = fork()) < 0)
			_exit(1);
		if (grand > 0) {
			ssize_t w = write(p[1], &grand, sizeof(grand));

			_exit(w == (ssize_t)sizeof(grand) ? 0 : 1);
		}
		if ((logfd = open(log, O_WRONLY | O_APPEND | O_CREAT,
		    0666)) < 0)
			_exit(127);
		redirect(-1, 0);
		redirect(logfd, 1);
		redirect(logfd, 2);
		close_from(3);
		if (after > 0)
			wait_gone(after, AFTER_MS);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	if (read(p[0], &grand, sizeof(grand)) != (ssize_t)sizeof(grand))
		grand = -1;
	close(p[0]);
	while (waitpid(child, &ws, 0) < 0 && errno == EINTR)
		;
	if (grand < 0)
		return wf_error_set(WF_EOS, "cannot start '%s' in the "
		    "background", argv[0]);
	if (out)
		*out = grand;
	return 0;
}
