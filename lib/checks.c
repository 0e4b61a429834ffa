/* pipe2() */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <time.h>
#include <unistd.h>

#include "checks.h"
#include "checks_dir.h"
#include "clock.h"
#include "error.h"

extern char **environ;

void
wf_checks_strv_free(char **v)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

/* Append a copy of s to the NULL-terminated *v of *n strings. */
static int
strv_push(char ***v, size_t *n, const char *s)
{
	char **p = realloc(*v, (*n + 2) * sizeof(**v));

	if (!p)
		return wf_error_oom();
	*v = p;
	if (!(p[*n] = strdup(s)))
		return wf_error_oom();
	p[++*n] = NULL;
	return 0;
}

int
wf_checks_configured(char ***out, git_repository *repo, const char *branch)
{
	git_config *cfg = NULL;
	git_config_iterator *it = NULL;
	git_config_entry *e;
	char key[1100], **v = NULL;
	size_t n = 0;
	int error;

	*out = NULL;
	if (strncmp(branch, "refs/heads/", 11) == 0)
		branch += 11;
	snprintf(key, sizeof(key), "wf.%s.check", branch);
	if (!(v = calloc(1, sizeof(*v)))) {
		error = wf_error_oom();
		goto out;
	}
	if (git_repository_config_snapshot(&cfg, repo) < 0 ||
	    git_config_multivar_iterator_new(&it, cfg, key, NULL) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot read '%s'", key);
		goto out;
	}
	while ((error = git_config_next(&e, it)) == 0)
		if ((error = strv_push(&v, &n, e->value)) < 0)
			goto out;
	if (error != GIT_ITEROVER) {
		error = wf_error_set_git(WF_EOS, "cannot read '%s'", key);
		goto out;
	}
	*out = v;
	v = NULL;
	error = 0;
out:
	git_config_iterator_free(it);
	git_config_free(cfg);
	wf_checks_strv_free(v);
	return error;
}

/*
 * s[0..n) as valid UTF-8 (what JSON strings need): each byte that does
 * not start a well-formed sequence becomes '?', NUL too.  With `cut`,
 * the text was cut at its start: continuation bytes there are dropped.
 */
static json_t *
utf8_json(const unsigned char *s, size_t n, int cut)
{
	char *buf = malloc(n + 1);
	size_t i = 0, o = 0, len, k;
	uint32_t c;
	json_t *v;

	if (!buf)
		return NULL;
	while (cut && i < n && i < 3 && (s[i] & 0xc0) == 0x80)
		i++;
	while (i < n) {
		if (s[i] < 0x80) {
			buf[o++] = s[i] ? (char)s[i] : '?';
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf) {
			len = 2;
			c = s[i] & 0x1f;
		} else if (s[i] >= 0xe0 && s[i] <= 0xef) {
			len = 3;
			c = s[i] & 0x0f;
		} else if (s[i] >= 0xf0 && s[i] <= 0xf4) {
			len = 4;
			c = s[i] & 0x07;
		} else {
			len = 0;
			c = 0;
		}
		for (k = 1; len && k < len; k++) {
			if (i + k >= n || (s[i + k] & 0xc0) != 0x80)
				len = 0;
			else
				c = (c << 6) | (s[i + k] & 0x3f);
		}
		if (len == 0 || (len == 3 && c < 0x800) ||
		    (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
		    (c >= 0xd800 && c <= 0xdfff)) {
			buf[o++] = '?';
			i++;
			continue;
		}
		memcpy(buf + o, s + i, len);
		o += len;
		i += len;
	}
	v = json_stringn(buf, o);
	free(buf);
	return v;
}

/* The last `keep` bytes written to it. */
struct tail {
	unsigned char *buf;
	size_t len, cap, keep;
	uint64_t total;
};

static void
tail_add(struct tail *t, const unsigned char *p, size_t n)
{
	t->total += n;
	if (n >= t->keep) {
		memcpy(t->buf, p + n - t->keep, t->keep);
		t->len = t->keep;
		return;
	}
	if (t->len + n > t->cap) {
		size_t drop = t->len + n - t->keep;

		memmove(t->buf, t->buf + drop, t->len - drop);
		t->len -= drop;
	}
	memcpy(t->buf + t->len, p, n);
	t->len += n;
}

/* The grace from SIGTERM to SIGKILL when the caller interrupts. */
#define STOP_GRACE_MS 1000

static int
interrupted(const struct wf_checks_opts *o)
{
	return o->interrupt && *o->interrupt;
}

/*
 * Run one command in the tree of `d` with `envp` and wait for it,
 * within the timeout; *out is its result object (without "cached").
 * Whatever the command leaves running is killed before this returns.
 */
static int
run_one(json_t **out, const char *command, struct wf_checks_dir *d,
    char **envp, const struct wf_checks_opts *o)
{
	struct tail t = { NULL, 0, 0, 0, 0 };
	char *argv[4];
	unsigned char chunk[8192];
	int fds[2] = { -1, -1 }, devnull = -1, status = 0, exited = 0,
	    eof = 0, timed_out = 0, stopped = 0, killed = 0, error;
	int64_t start = wf_clock_ms(), now, term_at = 0, drain_until = 0,
	    next_tick, nap = 1, grace = o->grace_ms;
	pid_t pid = -1, parent = getpid();
	ssize_t got;

	*out = NULL;
	t.keep = o->tail ? o->tail : 4096;
	t.cap = 2 * t.keep;
	if (!(t.buf = malloc(t.cap))) {
		error = wf_error_oom();
		goto out;
	}
	if (pipe2(fds, O_CLOEXEC) < 0 ||
	    (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot run check '%s'",
		    command);
		goto out;
	}
	argv[0] = (char *)"sh";
	argv[1] = (char *)"-c";
	argv[2] = (char *)command;
	argv[3] = NULL;
	if ((pid = fork()) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot run check '%s'",
		    command);
		goto out;
	}
	if (pid == 0) {
		/* Only async-signal-safe calls from here to exec. */
		struct sigaction sa;
		sigset_t none;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(SIGPIPE, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGQUIT, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setpgid(0, 0);
#ifdef __linux__
		/* Not outlive a wf-apply killed with -9. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(126);
#endif
		if (dup2(devnull, 0) < 0 || dup2(fds[1], 1) < 0 ||
		    dup2(fds[1], 2) < 0 || chdir(d->tree) < 0)
			_exit(126);
		execve("/bin/sh", argv, envp);
		_exit(127);
	}
	(void)parent;
	/* Both sides set the group, so a kill below never misses it. */
	setpgid(pid, pid);
	wf_checks_dir_started(d, pid);
	close(fds[1]);
	fds[1] = -1;
	next_tick = start + (o->tick_ms > 0 ? o->tick_ms : 1000);
	for (;;) {
		struct pollfd pfd;
		int64_t wait;

		now = wf_clock_ms();
		if (!exited) {
			siginfo_t si;

			memset(&si, 0, sizeof(si));
			if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG |
			    WNOWAIT) == 0 && si.si_pid == pid) {
				/* The leader is a zombie: its group id is
				 * still ours to kill what it left behind. */
				exited = 1;
				kill(-pid, SIGKILL);
				waitpid(pid, &status, 0);
				drain_until = now + 1000;
			}
		}
		/* Interrupted while draining: the result stands. */
		if (exited && (eof || now >= drain_until || stopped ||
		    interrupted(o)))
			break;
		if (!exited && !timed_out && !stopped &&
		    now - start >= o->timeout_ms) {
			timed_out = 1;
			term_at = now;
			kill(-pid, SIGTERM);
		}
		if (!exited && !stopped && interrupted(o)) {
			stopped = 1;
			if (!timed_out)
				term_at = now;
			if (grace > STOP_GRACE_MS)
				grace = STOP_GRACE_MS;
			kill(-pid, SIGTERM);
		}
		if (!exited && (timed_out || stopped) && !killed &&
		    now - term_at >= grace) {
			killed = 1;
			kill(-pid, SIGKILL);
		}
		if (o->tick && !exited && now >= next_tick) {
			if ((error = o->tick(o->payload)) < 0) {
				kill(-pid, SIGKILL);
				waitpid(pid, &status, 0);
				pid = -1;
				goto out;
			}
			next_tick = now + (o->tick_ms > 0 ? o->tick_ms : 1000);
		}
		wait = 100;
		if (eof) {
			/* Output closed: the exit is near; look soon. */
			wf_clock_sleep_ms(nap);
			nap = nap < 64 ? nap * 2 : 100;
			continue;
		}
		pfd.fd = fds[0];
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, (int)wait) < 0 && errno != EINTR) {
			error = wf_error_set_errno(WF_EOS, "cannot read the "
			    "output of check '%s'", command);
			goto out;
		}
		if (pfd.revents == 0)
			continue;
		got = read(fds[0], chunk, sizeof(chunk));
		if (got > 0)
			tail_add(&t, chunk, (size_t)got);
		else if (got == 0 || (errno != EINTR && errno != EAGAIN))
			eof = 1;
	}
	pid = -1;
	if (stopped) {
		error = wf_error_set(WF_EINTR, "interrupted");
		goto out;
	}
	{
		int ok = !timed_out && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0;
		size_t keep = t.len < t.keep ? t.len : t.keep;
		json_t *output = utf8_json(t.buf + t.len - keep, keep,
		    t.total > keep);

		*out = json_pack("{s:s, s:b, s:o, s:o, s:b, s:I, s:b, s:o*}",
		    "command", command, "ok", ok,
		    "exit", WIFEXITED(status) ?
		    json_integer(WEXITSTATUS(status)) : json_null(),
		    "signal", WIFSIGNALED(status) ?
		    json_integer(WTERMSIG(status)) : json_null(),
		    "timed_out", timed_out,
		    "ms", (json_int_t)(wf_clock_ms() - start),
		    "cached", 0, "output", output);
	}
	error = *out ? 0 : wf_error_oom();
out:
	if (pid > 0) {
		kill(-pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	/* What left the group, and still carries WF_CHECK_ID. */
	if (d->pgid > 0)
		wf_checks_dir_sweep(d, 2000);
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	if (devnull >= 0)
		close(devnull);
	free(t.buf);
	return error;
}

/* Check `tree` out into the (empty) tree of the directory. */
static int
checkout(struct wf_checks_dir *d, git_repository *repo, git_tree *tree)
{
	git_checkout_options co;

	/* Every file is written; the repository's index is left alone. */
	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
	co.checkout_strategy = GIT_CHECKOUT_FORCE |
	    GIT_CHECKOUT_DONT_UPDATE_INDEX;
	co.target_directory = d->tree;
	/* A tree that cannot be written out is the tree's fault. */
	if (git_checkout_tree(repo, (const git_object *)tree, &co) < 0)
		return wf_error_set_git(WF_EINPUT, "cannot check out the tree "
		    "to check");
	return 0;
}

/* The caller's environment with the WF_* variables of the check set. */
static int
make_env(char ***out, const char *const *vars)
{
	char **v = NULL;
	size_t n = 0, i, k;
	int error;

	*out = NULL;
	if (!(v = calloc(1, sizeof(*v))))
		return wf_error_oom();
	for (i = 0; environ && environ[i]; i++) {
		int ours = 0;

		for (k = 0; vars[k]; k++) {
			size_t len = strcspn(vars[k], "=") + 1;

			if (strncmp(environ[i], vars[k], len) == 0)
				ours = 1;
		}
		if (!ours && (error = strv_push(&v, &n, environ[i])) < 0)
			goto out;
	}
	for (k = 0; vars[k]; k++)
		if ((error = strv_push(&v, &n, vars[k])) < 0)
			goto out;
	*out = v;
	v = NULL;
	error = 0;
out:
	wf_checks_strv_free(v);
	return error;
}

static char *
env_var(const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 2;
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "%s=%s", name, value);
	return s;
}

int
wf_checks_run(json_t **out, git_repository *repo,
    const char *const *commands, const git_oid *base, const git_oid *head,
    const struct wf_checks_opts *opts)
{
	struct wf_checks_opts o = WF_CHECKS_OPTS_INIT;
	git_commit *commit = NULL;
	git_tree *tree = NULL;
	json_t *res = NULL, *checks, *r = NULL;
	char base_hex[GIT_OID_HEXSZ + 1], head_hex[GIT_OID_HEXSZ + 1],
	    tree_hex[GIT_OID_HEXSZ + 1];
	struct wf_checks_dir dir = { NULL, NULL, -1, "", 0, 0 };
	char *vars[8] = { NULL }, **envp = NULL;
	size_t i;
	int error, ok = 1;

	*out = NULL;
	if (opts)
		o = *opts;
	if (git_commit_lookup(&commit, repo, head) < 0 ||
	    git_commit_tree(&tree, commit) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot read the commit to "
		    "check");
		goto out;
	}
	git_oid_tostr(base_hex, sizeof(base_hex), base);
	git_oid_tostr(head_hex, sizeof(head_hex), head);
	git_oid_tostr(tree_hex, sizeof(tree_hex), git_tree_id(tree));
	if (!(res = json_pack("{s:b, s:s, s:[]}", "ok", 1, "tree", tree_hex,
	    "checks"))) {
		error = wf_error_oom();
		goto out;
	}
	checks = json_object_get(res, "checks");
	for (i = 0; commands && commands[i]; i++) {
		error = o.cache ? wf_queue_cache_get(&r, o.cache, tree_hex,
		    commands[i]) : WF_ENOTFOUND;
		if (error == 0) {
			json_object_set_new(r, "cached", json_true());
		} else if (error != WF_ENOTFOUND) {
			goto out;
		} else {
			if (interrupted(&o)) {
				error = wf_error_set(WF_EINTR, "interrupted");
				goto out;
			}
			if (!dir.path) {
				if (o.prepare && (error = o.prepare(o.payload)) < 0)
					goto out;
				if ((error = wf_checks_dir_create(&dir,
				    wf_checks_dir_tmp(o.tmpdir))) < 0)
					goto out;
				error = checkout(&dir, repo, tree);
				if (error == WF_EINPUT) {
					/* Failed, as a check that cannot run. */
					if (!(r = json_pack("{s:s, s:b, s:n, s:n, "
					    "s:b, s:i, s:b, s:s, s:s}", "command",
					    commands[i], "ok", 0, "exit", "signal",
					    "timed_out", 0, "ms", 0, "cached", 0,
					    "output", "", "checkout_error",
					    wf_error_last()))) {
						error = wf_error_oom();
						goto out;
					}
					ok = 0;
					json_array_append_new(checks, r);
					r = NULL;
					break;
				}
				if (error < 0)
					goto out;
			}
			if (!envp && (!(vars[0] = env_var("WF_TARGET",
			    o.target ? o.target : "")) ||
			    !(vars[1] = env_var("WF_BASE", base_hex)) ||
			    !(vars[2] = env_var("WF_HEAD", head_hex)) ||
			    !(vars[3] = env_var("WF_TREE", tree_hex)) ||
			    !(vars[4] = env_var("WF_QUEUE_IDS",
			    o.queue_ids ? o.queue_ids : "")) ||
			    !(vars[5] = env_var("WF_GIT_DIR",
			    git_repository_path(repo))) ||
			    !(vars[6] = env_var("WF_CHECK_ID", dir.id)))) {
				error = wf_error_oom();
				goto out;
			}
			if (!envp && (error = make_env(&envp,
			    (const char *const *)vars)) < 0)
				goto out;
			if ((error = run_one(&r, commands[i], &dir, envp,
			    &o)) < 0)
				goto out;
			if (o.cache && !json_is_true(json_object_get(r,
			    "timed_out")) && (error = wf_queue_cache_put(o.cache,
			    tree_hex, commands[i], r)) < 0)
				goto out;
		}
		if (!json_is_true(json_object_get(r, "ok")))
			ok = 0;
		if (json_array_append_new(checks, r) < 0) {
			r = NULL;
			error = wf_error_oom();
			goto out;
		}
		r = NULL;
		if (!ok)
			break;
	}
	json_object_set_new(res, "ok", json_boolean(ok));
	*out = res;
	res = NULL;
	error = 0;
out:
	wf_checks_dir_release(&dir);
	for (i = 0; i < 7; i++)
		free(vars[i]);
	wf_checks_strv_free(envp);
	json_decref(r);
	json_decref(res);
	git_tree_free(tree);
	git_commit_free(commit);
	return error;
}
