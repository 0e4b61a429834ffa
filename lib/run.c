/* posix_spawn_file_actions_addchdir_np() is a GNU extension (glibc 2.29). */
#define _GNU_SOURCE 1

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "error.h"
#include "str.h"
#include "clock.h"
#include "run.h"

#define DEF_TAIL 4096
#define DEF_GRACE 2000
#define VALUE_MAX (64 * 1024)
/* How often a running step's exit is looked for while its pipes are open. */
#define TICK_MS 50
/* How long output is awaited after a step's shell exited. */
#define DRAIN_MS 200

enum state { ST_PENDING, ST_RETRY_WAIT, ST_RUNNING, ST_DONE };
enum result { R_NONE, R_SUCCEEDED, R_FAILED, R_SKIPPED, R_CACHED };

struct buf {
	char *p;
	size_t len, cap;
};

struct step_state {
	const struct wf_step *step;
	size_t *deps;			/* NULL: every earlier step */
	size_t ndeps;
	enum state state;
	enum result result;
	int seen_failure;
	int attempts;
	int exit_code;			/* -1: none */
	int timed_out;
	int stopped;			/* terminated by a cancel */
	int64_t started, ended;
	int64_t retry_at;
	/* while running */
	pid_t pid;
	int fd_out, fd_err;
	int exited, status;
	int64_t term_at, kill_at, drain_until;
	int64_t reap_us;		/* next wait for an exit, pipes shut */
	int log_fd;
	char *log_path;
	struct buf tail;		/* the last try's output, bounded */
	struct buf out;			/* the last try's stdout, bounded */
	char *value;			/* {step.<id>} */
	char *error;
	/* the step cache */
	int nocache;			/* ran beside another step of its job */
	int counted;			/* in its job's nrunning */
	git_oid key;
	json_t *cache;			/* {"key", "hit", ...}; NULL: not used */
	struct wf_sandbox_file *before;	/* the checkout when it started */
	size_t nbefore;
};

struct job {
	struct wf_run_job spec;
	struct step_state *steps;
	size_t n;
	size_t done_prefix;		/* steps[0..done_prefix) are done */
	size_t nrunning;		/* its steps running or between tries */
	int prefix_failure;		/* a failure seen among them */
	int finished, returned;
	char *error;
	char *cancel;			/* why the job was stopped */
};

struct wf_run {
	struct wf_run_opts o;
	struct job *jobs;
	size_t njobs, cap;
	size_t running;
	uint64_t rng;
	int deadline_hit;
	int interrupted;
	char *cancel;			/* why the run was stopped, if it was */
};

static uint64_t
rng_next(struct wf_run *run)
{
	uint64_t x = run->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	run->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static int
buf_add(struct buf *b, const char *p, size_t n)
{
	if (b->cap - b->len < n + 1) {
		size_t cap = b->cap ? b->cap : 256;
		char *q;

		while (cap - b->len < n + 1)
			cap *= 2;
		if (!(q = realloc(b->p, cap)))
			return -1;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* Keep the last `keep` bytes of what is appended. */
static void
tail_add(struct buf *b, const char *p, size_t n, size_t keep)
{
	if (n >= keep) {
		b->len = 0;
		p += n - keep;
		n = keep;
	} else if (b->len + n > 2 * keep) {
		size_t drop = b->len + n - keep;

		memmove(b->p, b->p + drop, b->len - drop);
		b->len -= drop;
	}
	buf_add(b, p, n);	/* out of memory: the tail is just shorter */
}

static void
buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* Copy as valid UTF-8, invalid bytes as U+FFFD; NULL when out of memory. */
static char *
utf8_clean(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	char *out = malloc(n * 3 + 1), *o = out;

	if (!out)
		return NULL;
	while (p < end) {
		size_t len, i;
		unsigned int c = *p;

		if (c < 0x80 && c != 0) {
			*o++ = (char)*p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4;
		else
			len = 0;
		for (i = 1; len && i < len; i++)
			if (p + i >= end || (p[i] & 0xc0) != 0x80)
				len = 0;
		/* Overlong, surrogate and out-of-range forms. */
		if (len == 3 && ((c == 0xe0 && p[1] < 0xa0) ||
		    (c == 0xed && p[1] > 0x9f)))
			len = 0;
		if (len == 4 && ((c == 0xf0 && p[1] < 0x90) ||
		    (c == 0xf4 && p[1] > 0x8f)))
			len = 0;
		if (!len) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
			continue;
		}
		memcpy(o, p, len);
		o += len;
		p += len;
	}
	*o = '\0';
	return out;
}

/* The kept tail of a step's output, as clean UTF-8; malloc'ed or NULL. */
static char *
tail_text(const struct buf *b, size_t keep)
{
	const char *p = b->p ? b->p : "";
	size_t n = b->len, skip = 0;

	if (n > keep) {
		p += n - keep;
		n = keep;
	}
	/* The cut may have fallen inside a character. */
	while (skip < 3 && skip < n && ((unsigned char)p[skip] & 0xc0) == 0x80)
		skip++;
	return utf8_clean(p + skip, n - skip);
}

static int
mkdir_p(const char *path)
{
	char *buf = strdup(path), *p;
	int error = 0;

	if (!buf)
		return wf_error_oom();
	for (p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		{
			char c = *p;

			*p = '\0';
			if (mkdir(buf, 0777) < 0 && errno != EEXIST) {
				error = wf_error_set_errno(WF_EOS, "cannot "
				    "create '%s'", buf);
				break;
			}
			*p = c;
		}
		if (!*p)
			break;
	}
	free(buf);
	return error;
}

int
wf_run_new(struct wf_run **out, const struct wf_run_opts *opts)
{
	static const struct wf_run_opts defaults = WF_RUN_OPTS_INIT;
	struct wf_run *run;

	*out = NULL;
	if (!(run = calloc(1, sizeof(*run))))
		return wf_error_oom();
	run->o = opts ? *opts : defaults;
	if (run->o.jobs == 0)
		run->o.jobs = 1;
	if (run->o.tail_bytes == 0)
		run->o.tail_bytes = DEF_TAIL;
	if (run->o.grace_ms <= 0)
		run->o.grace_ms = DEF_GRACE;
	run->rng = run->o.seed ? run->o.seed :
	    (uint64_t)wf_clock_ms() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)getpid();
	if (!run->rng)
		run->rng = 1;
	*out = run;
	return 0;
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void
job_release(struct job *j)
{
	size_t i;

	for (i = 0; i < j->n; i++) {
		struct step_state *s = &j->steps[i];

		if (s->state == ST_RUNNING && !s->exited) {
			kill(-s->pid, SIGKILL);
			waitpid(s->pid, NULL, 0);
		}
		close_fd(&s->fd_out);
		close_fd(&s->fd_err);
		close_fd(&s->log_fd);
		free(s->deps);
		free(s->log_path);
		buf_free(&s->tail);
		buf_free(&s->out);
		free(s->value);
		free(s->error);
		json_decref(s->cache);
		wf_sandbox_files_free(s->before, s->nbefore);
	}
	free(j->steps);
	free(j->error);
	free(j->cancel);
}

void
wf_run_free(struct wf_run *run)
{
	size_t i;

	if (!run)
		return;
	for (i = 0; i < run->njobs; i++)
		job_release(&run->jobs[i]);
	free(run->jobs);
	free(run->cancel);
	free(run);
}

static ssize_t
find_step(const struct job *j, const char *id, size_t len)
{
	size_t i;

	for (i = 0; i < j->n; i++)
		if (strlen(j->steps[i].step->id) == len &&
		    strncmp(j->steps[i].step->id, id, len) == 0)
			return (ssize_t)i;
	return -1;
}

static int
add_dep(struct step_state *s, size_t d)
{
	size_t i, *deps;

	for (i = 0; i < s->ndeps; i++)
		if (s->deps[i] == d)
			return 0;
	if (!(deps = realloc(s->deps, (s->ndeps + 1) * sizeof(*deps))))
		return wf_error_oom();
	s->deps = deps;
	s->deps[s->ndeps++] = d;
	return 0;
}

/* The earlier steps a text's {step.<id>} placeholders name. */
static int
add_text_deps(struct job *j, struct step_state *s, const char *t)
{
	const char *p = t, *close;
	ssize_t k;
	int error;

	while (t && (p = strchr(p, '{'))) {
		if (p[1] == '{') {
			p += 2;
			continue;
		}
		if (!(close = strchr(p, '}')))
			break;
		if (strncmp(p + 1, "step.", 5) == 0 &&
		    (k = find_step(j, p + 6, (size_t)(close - p - 6))) >= 0 &&
		    (error = add_dep(s, (size_t)k)) < 0)
			return error;
		p = close + 1;
	}
	return 0;
}

static int
plan_deps(struct job *j, size_t i)
{
	struct step_state *s = &j->steps[i];
	const struct wf_step *st = s->step;
	ssize_t k;
	size_t d;
	int error;

	if (!st->needs)
		return 0;
	/* "needs": [] is present and empty: no dependency at all. */
	if (!(s->deps = malloc(sizeof(*s->deps))))
		return wf_error_oom();
	for (d = 0; d < st->nneeds; d++)
		if ((k = find_step(j, st->needs[d], strlen(st->needs[d]))) >= 0 &&
		    (size_t)k < i && (error = add_dep(s, (size_t)k)) < 0)
			return error;
	if (st->type == WF_STEP_ASSERT && st->assert_kind == WF_ASSERT_EXIT_CODE &&
	    (k = find_step(j, st->step, strlen(st->step))) >= 0 &&
	    (size_t)k < i && (error = add_dep(s, (size_t)k)) < 0)
		return error;
	if (st->type == WF_STEP_TEMPLATE &&
	    ((error = add_text_deps(j, s, st->template_text)) < 0 ||
	    (error = add_text_deps(j, s, st->dest)) < 0))
		return error;
	return 0;
}

int
wf_run_add(size_t *out, struct wf_run *run, const struct wf_run_job *spec)
{
	struct job j, *jobs;
	size_t i;
	int error;

	memset(&j, 0, sizeof(j));
	j.spec = *spec;
	j.n = spec->workflow->nsteps;
	if (spec->log_dir && (error = mkdir_p(spec->log_dir)) < 0)
		return error;
	if (j.n && !(j.steps = calloc(j.n, sizeof(*j.steps))))
		return wf_error_oom();
	for (i = 0; i < j.n; i++) {
		struct step_state *s = &j.steps[i];

		s->step = &spec->workflow->stepv[i];
		s->fd_out = s->fd_err = s->log_fd = -1;
		s->exit_code = -1;
	}
	for (i = 0; i < j.n; i++)
		if ((error = plan_deps(&j, i)) < 0)
			goto fail;
	/* Added after a stop: it stops at once. */
	if (run->cancel && !(j.cancel = strdup(run->cancel))) {
		error = wf_error_oom();
		goto fail;
	}
	if (run->njobs == run->cap) {
		size_t cap = run->cap ? run->cap * 2 : 8;

		if (!(jobs = realloc(run->jobs, cap * sizeof(*jobs)))) {
			error = wf_error_oom();
			goto fail;
		}
		run->jobs = jobs;
		run->cap = cap;
	}
	if (out)
		*out = run->njobs;
	run->jobs[run->njobs++] = j;
	return 0;
fail:
	job_release(&j);
	return error;
}

/* Durations for people: "1s", "250ms", "1.5s". */
static void
fmt_ms(char *buf, size_t size, int64_t ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, size, "%llds", (long long)(ms / 1000));
	else if (ms < 1000)
		snprintf(buf, size, "%lldms", (long long)ms);
	else
		snprintf(buf, size, "%.3gs", (double)ms / 1000);
}

static void
step_done(struct job *j, struct step_state *s, enum result r, int64_t now)
{
	s->state = ST_DONE;
	s->result = r;
	s->ended = now;
	if (!s->started)
		s->started = now;
	if (r == R_FAILED)
		s->seen_failure = 1;
	if (s->counted) {
		j->nrunning--;
		s->counted = 0;
	}
	close_fd(&s->log_fd);
	while (j->done_prefix < j->n &&
	    j->steps[j->done_prefix].state == ST_DONE) {
		struct step_state *d = &j->steps[j->done_prefix];

		if (d->result == R_FAILED || d->seen_failure)
			j->prefix_failure = 1;
		j->done_prefix++;
	}
}

/* Fail step s with a message made of "step '<id>'" and fmt. */
static void
step_fail(struct job *j, struct step_state *s, int64_t now, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

static void
step_fail(struct job *j, struct step_state *s, int64_t now, const char *fmt,
    ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	free(s->error);
	s->error = wf_str_printf("step '%s' %s", s->step->id, msg);
	step_done(j, s, R_FAILED, now);
}

/*
 * Render a template text: placeholders from the job and the values of
 * finished steps.  *out is malloc'ed; on error *msg says why.
 */
static int
render(char **out, const struct job *j, const char *t, char *msg,
    size_t msize)
{
	struct buf b = { NULL, 0, 0 };
	const char *p = t;

	*out = NULL;
	if (buf_add(&b, "", 0) < 0)
		goto oom;
	while (*p) {
		const char *close, *val = NULL;
		size_t len;

		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
			if (buf_add(&b, p, 1) < 0)
				goto oom;
			p += 2;
			continue;
		}
		if (*p == '}') {
			snprintf(msg, msize, "unbalanced '}' in the template");
			goto fail;
		}
		if (*p != '{') {
			len = strcspn(p, "{}");
			if (buf_add(&b, p, len) < 0)
				goto oom;
			p += len;
			continue;
		}
		if (!(close = strchr(p, '}'))) {
			snprintf(msg, msize, "unterminated '{' in the template");
			goto fail;
		}
		len = (size_t)(close - p - 1);
		if (len == 6 && strncmp(p + 1, "number", 6) == 0)
			val = j->spec.number;
		else if (len == 8 && strncmp(p + 1, "workflow", 8) == 0)
			val = j->spec.workflow->name;
		else if (len == 5 && strncmp(p + 1, "title", 5) == 0)
			val = j->spec.title;
		else if (len == 7 && strncmp(p + 1, "plan_id", 7) == 0)
			val = j->spec.plan_id;
		else if (len > 5 && strncmp(p + 1, "step.", 5) == 0) {
			ssize_t k = find_step(j, p + 6, len - 5);

			if (k < 0) {
				snprintf(msg, msize, "no step '%.*s' for "
				    "'{%.*s}'", (int)(len - 5), p + 6,
				    (int)len, p + 1);
				goto fail;
			}
			if (j->steps[k].state != ST_DONE) {
				snprintf(msg, msize, "step '%.*s' has not "
				    "finished (list it in \"needs\")",
				    (int)(len - 5), p + 6);
				goto fail;
			}
			val = j->steps[k].value;
		} else {
			snprintf(msg, msize, "unknown placeholder '{%.*s}'",
			    (int)len, p + 1);
			goto fail;
		}
		if (val && buf_add(&b, val, strlen(val)) < 0)
			goto oom;
		p = close + 1;
	}
	*out = b.p;
	return 0;
oom:
	snprintf(msg, msize, "out of memory");
fail:
	buf_free(&b);
	return -1;
}

static void
run_assert(struct job *j, struct step_state *s, int64_t now)
{
	const struct wf_step *st = s->step;
	struct wf_sandbox *sb = j->spec.sandbox;
	char *full = NULL, *text = NULL;
	struct stat sst;
	size_t len;
	regex_t re;
	ssize_t k;
	int rc;

	s->attempts = 1;
	switch (st->assert_kind) {
	case WF_ASSERT_FILE_EXISTS:
		if (wf_sandbox_path(&full, sb, st->path, 0) < 0)
			step_fail(j, s, now, "failed: %s", wf_error_last());
		else if (lstat(full, &sst) < 0)
			step_fail(j, s, now, "failed: '%s' does not exist",
			    st->path);
		else
			step_done(j, s, R_SUCCEEDED, now);
		break;
	case WF_ASSERT_FILE_CONTAINS:
		rc = wf_sandbox_read(&text, &len, sb, st->path);
		if (rc == WF_ENOTFOUND) {
			step_fail(j, s, now, "failed: '%s' does not exist",
			    st->path);
			break;
		}
		if (rc < 0) {
			step_fail(j, s, now, "failed: %s", wf_error_last());
			break;
		}
		if (regcomp(&re, st->pattern, REG_EXTENDED | REG_NOSUB |
		    REG_NEWLINE) != 0) {
			step_fail(j, s, now, "failed: invalid pattern '%s'",
			    st->pattern);
			break;
		}
		rc = regexec(&re, text, 0, NULL, 0);
		regfree(&re);
		if (rc == 0)
			step_done(j, s, R_SUCCEEDED, now);
		else
			step_fail(j, s, now, "failed: '%s' does not match "
			    "'%s'", st->path, st->pattern);
		break;
	case WF_ASSERT_EXIT_CODE:
		k = find_step(j, st->step, strlen(st->step));
		if (k < 0 || j->steps[k].state != ST_DONE ||
		    j->steps[k].exit_code < 0)
			step_fail(j, s, now, "failed: step '%s' has no exit "
			    "code (it did not run or was killed)", st->step);
		else if (j->steps[k].exit_code != st->equals)
			step_fail(j, s, now, "failed: step '%s' exited with "
			    "%d, not %lld", st->step, j->steps[k].exit_code,
			    (long long)st->equals);
		else
			step_done(j, s, R_SUCCEEDED, now);
		break;
	}
	if (s->result == R_SUCCEEDED)
		s->exit_code = 0;
	else
		s->exit_code = 1;
	free(full);
	free(text);
}

static int
write_file(const char *full, const char *text, char *msg, size_t msize)
{
	struct stat st;
	size_t len = strlen(text), off = 0;
	int fd;

	if (lstat(full, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			snprintf(msg, msize, "is a directory");
			return -1;
		}
		if (S_ISLNK(st.st_mode))
			unlink(full);
	}
	if ((fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0666)) < 0) {
		snprintf(msg, msize, "cannot write: %s", strerror(errno));
		return -1;
	}
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(msg, msize, "cannot write: %s",
			    strerror(errno));
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	if (close(fd) < 0) {
		snprintf(msg, msize, "cannot write: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void
run_template(struct job *j, struct step_state *s, int64_t now)
{
	const struct wf_step *st = s->step;
	struct wf_sandbox *sb = j->spec.sandbox;
	char *source = NULL, *text = NULL, *dest = NULL, *full = NULL;
	char msg[1024];
	size_t len;

	s->attempts = 1;
	if (st->source && wf_sandbox_read(&source, &len, sb, st->source) < 0) {
		step_fail(j, s, now, "failed: source: %s", wf_error_last());
		goto out;
	}
	if (render(&text, j, source ? source : st->template_text, msg,
	    sizeof(msg)) < 0) {
		step_fail(j, s, now, "failed: %s", msg);
		goto out;
	}
	if (render(&dest, j, st->dest, msg, sizeof(msg)) < 0) {
		step_fail(j, s, now, "failed: dest: %s", msg);
		goto out;
	}
	if (wf_sandbox_path(&full, sb, dest, 1) < 0) {
		step_fail(j, s, now, "failed: dest: %s", wf_error_last());
		goto out;
	}
	if (write_file(full, text, msg, sizeof(msg)) < 0) {
		step_fail(j, s, now, "failed: '%s': %s", dest, msg);
		goto out;
	}
	s->value = dest;
	dest = NULL;
	s->exit_code = 0;
	step_done(j, s, R_SUCCEEDED, now);
out:
	if (s->result == R_FAILED)
		s->exit_code = 1;
	free(source);
	free(text);
	free(dest);
	free(full);
}

/* The environment of a shell step: the sandbox's, then the step's. */
static char **
step_environ(const struct job *j, const struct step_state *s)
{
	char *const *base = wf_sandbox_environ(j->spec.sandbox);
	json_t *env = s->step->env;
	size_t nbase, nextra = json_object_size(env) + 2, i, k = 0;
	const char *key;
	json_t *v;
	char **e, attempt[32];

	for (nbase = 0; base[nbase]; nbase++)
		;
	if (!(e = calloc(nbase + nextra + 1, sizeof(*e))))
		return NULL;
	for (i = 0; i < nbase; i++) {
		size_t len = strcspn(base[i], "=");
		char name[256];

		if (len < sizeof(name)) {
			memcpy(name, base[i], len);
			name[len] = '\0';
			if (json_object_get(env, name) ||
			    strcmp(name, "WF_STEP") == 0 ||
			    strcmp(name, "WF_ATTEMPT") == 0)
				continue;
		}
		if (!(e[k++] = strdup(base[i])))
			goto oom;
	}
	json_object_foreach(env, key, v)
		if (!(e[k++] = wf_str_printf("%s=%s", key,
		    json_string_value(v))))
			goto oom;
	snprintf(attempt, sizeof(attempt), "%d", s->attempts);
	if (!(e[k++] = wf_str_printf("WF_STEP=%s", s->step->id)) ||
	    !(e[k++] = wf_str_printf("WF_ATTEMPT=%s", attempt)))
		goto oom;
	return e;
oom:
	for (i = 0; i < k; i++)
		free(e[i]);
	free(e);
	return NULL;
}

static void
free_environ(char **e)
{
	size_t i;

	for (i = 0; e && e[i]; i++)
		free(e[i]);
	free(e);
}

static void
log_write(struct step_state *s, const char *p, size_t n)
{
	while (s->log_fd >= 0 && n > 0) {
		ssize_t w = write(s->log_fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close_fd(&s->log_fd);	/* the log is lost, not the step */
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Start a try of shell step s; 0, or the step failed (it is done). */
static int
spawn(struct wf_run *run, struct job *j, struct step_state *s, int64_t now)
{
	static const int defsigs[] = { SIGPIPE, SIGTERM, SIGINT, SIGQUIT,
	    SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM, SIGTSTP, SIGTTIN,
	    SIGTTOU };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, def;
	char *argv[4], **envp = NULL, header[128];
	int out[2] = { -1, -1 }, err[2] = { -1, -1 }, rc;
	size_t i;

	if (s->attempts == 0) {
		/* Steps side by side in one checkout cannot be told apart. */
		if (j->nrunning > 0) {
			size_t k;

			s->nocache = 1;
			for (k = 0; k < j->n; k++)
				if (j->steps[k].state == ST_RUNNING ||
				    j->steps[k].state == ST_RETRY_WAIT)
					j->steps[k].nocache = 1;
		}
		j->nrunning++;
		s->counted = 1;
	}
	s->attempts++;
	s->timed_out = 0;
	s->exited = 0;
	s->term_at = s->kill_at = s->drain_until = 0;
	s->reap_us = 20;
	s->tail.len = 0;
	s->out.len = 0;
	if (!s->started)
		s->started = now;
	if (j->spec.log_dir && s->log_fd < 0) {
		if (!s->log_path && !(s->log_path = wf_str_printf("%s/%s.log",
		    j->spec.log_dir, s->step->id))) {
			step_fail(j, s, now, "could not start: out of memory");
			return 0;
		}
		s->log_fd = open(s->log_path, O_WRONLY | O_CREAT | O_CLOEXEC |
		    (s->attempts == 1 ? O_TRUNC : O_APPEND), 0666);
	}
	if (s->attempts > 1) {
		snprintf(header, sizeof(header), "--- attempt %d ---\n",
		    s->attempts);
		log_write(s, header, strlen(header));
	}
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		step_fail(j, s, now, "could not start: pipe: %s",
		    strerror(errno));
		goto out;
	}
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(err[0], F_SETFL, O_NONBLOCK);
	if (!(envp = step_environ(j, s))) {
		step_fail(j, s, now, "could not start: out of memory");
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_addchdir_np(&fa,
	    wf_sandbox_dir(j->spec.sandbox));
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	sigemptyset(&none);
	sigemptyset(&def);
	for (i = 0; i < sizeof(defsigs) / sizeof(defsigs[0]); i++)
		sigaddset(&def, defsigs[i]);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &def);
	argv[0] = (char *)"sh";
	argv[1] = (char *)"-c";
	argv[2] = (char *)s->step->run;
	argv[3] = NULL;
	rc = posix_spawn(&s->pid, "/bin/sh", &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0) {
		step_fail(j, s, now, "could not start /bin/sh: %s",
		    strerror(rc));
		goto out;
	}
	s->fd_out = out[0];
	s->fd_err = err[0];
	out[0] = err[0] = -1;
	s->state = ST_RUNNING;
	if (s->step->timeout_ms > 0)
		s->term_at = now + s->step->timeout_ms;
	run->running++;
out:
	free_environ(envp);
	close_fd(&out[0]);
	close_fd(&out[1]);
	close_fd(&err[0]);
	close_fd(&err[1]);
	return 0;
}

static int
non_retryable(const struct wf_step *st, int code)
{
	size_t i;

	for (i = 0; i < st->retry.nnon_retryable; i++)
		if (st->retry.non_retryable[i] == code)
			return 1;
	return 0;
}

static int64_t
backoff(struct wf_run *run, const struct wf_step *st, int tries)
{
	double d = (double)st->retry.delay_ms *
	    pow(st->retry.factor, tries - 1);
	int64_t ms;

	if (d > (double)st->retry.max_delay_ms)
		d = (double)st->retry.max_delay_ms;
	ms = (int64_t)d;
	/* Equal jitter: somewhere in [d/2, d]. */
	if (ms > 1)
		ms -= (int64_t)(rng_next(run) % (uint64_t)(ms / 2 + 1));
	return ms;
}

/* The step's shell has exited and its output is in: settle the try. */
static void
finish_try(struct wf_run *run, struct job *j, struct step_state *s,
    int64_t now)
{
	const struct wf_step *st = s->step;
	char dur[32];
	int ok;

	run->running--;
	close_fd(&s->fd_out);
	close_fd(&s->fd_err);
	s->exit_code = WIFEXITED(s->status) ? WEXITSTATUS(s->status) : -1;
	ok = s->exit_code == 0 && !s->timed_out && !s->stopped;
	free(s->value);
	s->value = NULL;
	if (s->out.p) {
		size_t n = s->out.len;

		while (n > 0 && s->out.p[n - 1] == '\n')
			n--;
		s->value = strndup(s->out.p, n);
	}
	buf_free(&s->out);
	if (ok) {
		if (run->o.cache && s->before && !s->nocache) {
			char *tail = tail_text(&s->tail, run->o.tail_bytes);

			/* A store that fails costs a later run, not this one. */
			if (!tail || wf_cache_store(run->o.cache, &s->key,
			    j->spec.sandbox, s->before, s->nbefore, s->value,
			    tail, j->spec.workflow->name, s->step->id) < 0)
				wf_error_clear();
			free(tail);
		}
		step_done(j, s, R_SUCCEEDED, now);
		return;
	}
	if (!s->stopped && !j->cancel && s->attempts < st->retry.attempts &&
	    !(s->exit_code >= 0 && non_retryable(st, s->exit_code))) {
		s->state = ST_RETRY_WAIT;
		s->retry_at = now + backoff(run, st, s->attempts);
		return;
	}
	if (s->stopped) {
		step_fail(j, s, now, "was stopped: %s", j->cancel ? j->cancel :
		    "cancelled");
		return;
	}
	if (s->timed_out) {
		fmt_ms(dur, sizeof(dur), st->timeout_ms);
		step_fail(j, s, now, "timed out after %s%s", dur,
		    s->attempts > 1 ? " (last of its attempts)" : "");
		return;
	}
	if (s->exit_code < 0) {
		step_fail(j, s, now, "was killed by signal %d",
		    WIFSIGNALED(s->status) ? WTERMSIG(s->status) : 0);
		return;
	}
	if (s->attempts > 1)
		step_fail(j, s, now, "failed with exit code %d after %d "
		    "attempts", s->exit_code, s->attempts);
	else if (non_retryable(st, s->exit_code) && st->retry.attempts > 1)
		step_fail(j, s, now, "failed with exit code %d (not "
		    "retryable)", s->exit_code);
	else
		step_fail(j, s, now, "failed with exit code %d", s->exit_code);
}

static void
finish_job(struct job *j)
{
	size_t i;

	j->finished = 1;
	for (i = 0; i < j->n; i++)
		if (j->steps[i].result == R_FAILED)
			break;
	if (j->cancel)
		j->error = strdup(j->cancel);
	else if (i < j->n)
		j->error = strdup(j->steps[i].error ? j->steps[i].error :
		    "a step failed");
}

/*
 * Before the first try of shell step i: look its key up.  Returns 1
 * when the step is settled (a hit replayed, or a replay that failed),
 * 0 when it is to run; what the cache needs to store it is kept.
 */
static int
cache_try(struct wf_run *run, struct job *j, struct step_state *s, size_t i,
    int64_t now)
{
	struct wf_sandbox *sb = j->spec.sandbox;
	const json_t *def = json_array_get(j->spec.workflow->steps, i);
	char *value = NULL, *tail = NULL;
	int rc;

	if (!def || wf_sandbox_snapshot(&s->before, &s->nbefore, sb) < 0 ||
	    wf_cache_key(&s->key, &s->cache, run->o.cache, s->step, def, sb,
	    s->before, s->nbefore) < 0) {
		/* Not cacheable as it stands (a link out, say): just run. */
		wf_error_clear();
		s->nocache = 1;
		return 0;
	}
	rc = wf_cache_restore(&value, &tail, run->o.cache, &s->key, sb);
	json_object_set_new(s->cache, "hit", json_boolean(rc == 1));
	if (rc < 0) {
		step_fail(j, s, now, "could not replay its cached result: %s",
		    wf_error_last());
		return 1;
	}
	if (rc == 0)
		return 0;
	s->value = value;
	buf_add(&s->tail, tail, strlen(tail));
	free(tail);
	s->exit_code = 0;
	step_done(j, s, R_CACHED, now);
	return 1;
}

/* Has s everything it waits for, and has it seen a failure? */
static int
ready(const struct job *j, size_t i, int *seen)
{
	const struct step_state *s = &j->steps[i];
	size_t d;

	*seen = 0;
	if (!s->deps) {
		*seen = j->prefix_failure;
		return j->done_prefix >= i;
	}
	for (d = 0; d < s->ndeps; d++) {
		const struct step_state *t = &j->steps[s->deps[d]];

		if (t->state != ST_DONE)
			return 0;
		if (t->result == R_FAILED || t->seen_failure)
			*seen = 1;
	}
	return 1;
}

/* Start or settle whatever is ready; finish jobs whose steps are done. */
static void
advance(struct wf_run *run, int64_t now)
{
	size_t ji, i;

	for (ji = 0; ji < run->njobs; ji++) {
		struct job *j = &run->jobs[ji];

		if (j->finished)
			continue;
		for (i = j->done_prefix; i < j->n; i++) {
			struct step_state *s = &j->steps[i];
			int seen, go;

			switch (s->state) {
			case ST_DONE:
			case ST_RUNNING:
				continue;
			case ST_RETRY_WAIT:
				if (j->cancel) {
					step_fail(j, s, now, "was stopped: %s",
					    j->cancel);
					continue;
				}
				if (now >= s->retry_at &&
				    run->running < run->o.jobs)
					spawn(run, j, s, now);
				continue;
			case ST_PENDING:
				break;
			}
			if (!ready(j, i, &seen))
				continue;
			if (j->cancel) {
				s->seen_failure = seen;
				step_done(j, s, R_SKIPPED, now);
				continue;
			}
			go = s->step->when == WF_STEP_IF_ALWAYS ||
			    (s->step->when == WF_STEP_IF_SUCCESS && !seen) ||
			    (s->step->when == WF_STEP_IF_FAILURE && seen);
			s->seen_failure = seen;
			if (!go) {
				step_done(j, s, R_SKIPPED, now);
				continue;
			}
			switch (s->step->type) {
			case WF_STEP_SHELL:
				if (run->running >= run->o.jobs)
					break;
				if (run->o.cache && j->nrunning == 0 &&
				    cache_try(run, j, s, i, now))
					break;
				spawn(run, j, s, now);
				break;
			case WF_STEP_ASSERT:
				run_assert(j, s, now);
				break;
			case WF_STEP_TEMPLATE:
				run_template(j, s, now);
				break;
			}
		}
		if (j->done_prefix == j->n)
			finish_job(j);
	}
}

/* Read what one of a step's pipes holds; close it at its end. */
static void
drain(struct wf_run *run, struct step_state *s, int *fd, int is_stdout)
{
	char buf[65536];
	int reads;

	for (reads = 0; *fd >= 0 && reads < 16; reads++) {
		ssize_t n = read(*fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			close_fd(fd);
			return;
		}
		log_write(s, buf, (size_t)n);
		tail_add(&s->tail, buf, (size_t)n, run->o.tail_bytes);
		if (is_stdout && s->out.len < VALUE_MAX)
			buf_add(&s->out, buf, (size_t)n < VALUE_MAX -
			    s->out.len ? (size_t)n : VALUE_MAX - s->out.len);
	}
}

/* Has the step's shell exited?  Then kill what it left and reap it. */
static void
check_exit(struct step_state *s, int64_t now)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
	    si.si_pid != s->pid)
		return;
	/* Still a zombie: its group cannot have been reused yet. */
	kill(-s->pid, SIGKILL);
	while (waitpid(s->pid, &s->status, 0) < 0 && errno == EINTR)
		;
	s->exited = 1;
	s->drain_until = now + DRAIN_MS;
}

static void
terminate(struct wf_run *run, struct step_state *s, int64_t now)
{
	kill(-s->pid, SIGTERM);
	s->term_at = 0;
	s->kill_at = now + run->o.grace_ms;
}

/* Lower the wait, in microseconds, to t (clamped at 0). */
#define MIN_WAIT_US(t) do { \
	int64_t t_ = (t) < 0 ? 0 : (t); \
	if (tmo < 0 || t_ < tmo) \
		tmo = t_; \
} while (0)
#define MIN_WAIT(ms) MIN_WAIT_US((ms) * 1000)

static int
wait_events(struct wf_run *run)
{
	struct pollfd *fds = NULL;
	struct { struct step_state *s; int *fd; int out; } *who = NULL;
	size_t ji, i, nfds = 0, cap = 2 * run->running + 1;
	int64_t now = wf_clock_ms(), tmo = -1;
	struct timespec ts;
	int rc, error = 0;

	if (!(fds = calloc(cap, sizeof(*fds))) ||
	    !(who = calloc(cap, sizeof(*who)))) {
		error = wf_error_oom();
		goto out;
	}
	for (ji = 0; ji < run->njobs; ji++) {
		struct job *j = &run->jobs[ji];

		for (i = j->done_prefix; !j->finished && i < j->n; i++) {
			struct step_state *s = &j->steps[i];

			if (s->state == ST_RETRY_WAIT) {
				MIN_WAIT(s->retry_at - now);
				continue;
			}
			if (s->state != ST_RUNNING)
				continue;
			if (s->exited) {
				MIN_WAIT(s->drain_until - now);
			} else if (s->fd_out < 0 && s->fd_err < 0) {
				/*
				 * A shell closes its files a moment before it
				 * can be reaped: look again soon, then less
				 * often (it may have closed them and gone on).
				 */
				MIN_WAIT_US(s->reap_us);
				if (s->reap_us < 5000)
					s->reap_us *= 2;
			} else {
				MIN_WAIT(TICK_MS);
			}
			if (!s->exited) {
				if (s->term_at)
					MIN_WAIT(s->term_at - now);
				if (s->kill_at)
					MIN_WAIT(s->kill_at - now);
			}
			if (s->fd_out >= 0 && nfds < cap) {
				fds[nfds].fd = s->fd_out;
				fds[nfds].events = POLLIN;
				who[nfds].s = s;
				who[nfds].fd = &s->fd_out;
				who[nfds++].out = 1;
			}
			if (s->fd_err >= 0 && nfds < cap) {
				fds[nfds].fd = s->fd_err;
				fds[nfds].events = POLLIN;
				who[nfds].s = s;
				who[nfds].fd = &s->fd_err;
				who[nfds++].out = 0;
			}
		}
	}
	if (run->o.deadline && !run->deadline_hit)
		MIN_WAIT(run->o.deadline - now);
	if (tmo < 0 && nfds == 0)
		tmo = TICK_MS * 1000;
	if (tmo > 3600000000LL)
		tmo = 3600000000LL;
	ts.tv_sec = (time_t)(tmo / 1000000);
	ts.tv_nsec = (long)(tmo % 1000000) * 1000;
	rc = ppoll(fds, (nfds_t)nfds, tmo < 0 ? NULL : &ts, NULL);
	if (rc < 0 && errno != EINTR) {
		error = wf_error_set_errno(WF_EOS, "poll");
		goto out;
	}
	for (i = 0; rc > 0 && i < nfds; i++)
		if (fds[i].revents)
			drain(run, who[i].s, who[i].fd, who[i].out);
	now = wf_clock_ms();
	for (ji = 0; ji < run->njobs; ji++) {
		struct job *j = &run->jobs[ji];

		for (i = j->done_prefix; !j->finished && i < j->n; i++) {
			struct step_state *s = &j->steps[i];

			if (s->state != ST_RUNNING)
				continue;
			if (!s->exited)
				check_exit(s, now);
			if (!s->exited) {
				if (s->term_at && now >= s->term_at) {
					s->timed_out = 1;
					terminate(run, s, now);
				} else if (s->kill_at && now >= s->kill_at) {
					kill(-s->pid, SIGKILL);
					s->kill_at = 0;
				}
				continue;
			}
			if (s->fd_out >= 0)
				drain(run, s, &s->fd_out, 1);
			if (s->fd_err >= 0)
				drain(run, s, &s->fd_err, 0);
			if ((s->fd_out < 0 && s->fd_err < 0) ||
			    now >= s->drain_until)
				finish_try(run, j, s, now);
		}
	}
out:
	free(fds);
	free(who);
	return error;
}

void
wf_run_cancel(struct wf_run *run, const char *reason)
{
	int64_t now = wf_clock_ms();
	size_t ji, i;

	if (!run->cancel)
		run->cancel = strdup(reason ? reason : "cancelled");
	for (ji = 0; ji < run->njobs; ji++) {
		struct job *j = &run->jobs[ji];

		if (j->finished || j->cancel)
			continue;
		/* Out of memory: a generic reason, still a stop. */
		j->cancel = strdup(reason ? reason : "cancelled");
		if (!j->cancel)
			j->cancel = strdup("");
		for (i = j->done_prefix; i < j->n; i++) {
			struct step_state *s = &j->steps[i];

			if (s->state != ST_RUNNING || s->exited)
				continue;
			s->stopped = 1;
			terminate(run, s, now);
		}
	}
}

int
wf_run_next(size_t *out, struct wf_run *run)
{
	size_t ji;
	int error, pending;

	for (;;) {
		pending = 0;
		for (ji = 0; ji < run->njobs; ji++) {
			struct job *j = &run->jobs[ji];

			if (j->finished && !j->returned) {
				j->returned = 1;
				*out = ji;
				return 1;
			}
			if (!j->finished)
				pending = 1;
		}
		if (!pending)
			return 0;
		if (run->o.interrupt && *run->o.interrupt &&
		    !run->interrupted) {
			run->interrupted = 1;
			wf_run_cancel(run, "interrupted");
		}
		if (run->o.deadline && !run->deadline_hit &&
		    wf_clock_ms() >= run->o.deadline) {
			run->deadline_hit = 1;
			wf_run_cancel(run, "the overall timeout passed");
		}
		advance(run, wf_clock_ms());
		for (ji = 0; ji < run->njobs; ji++)
			if (run->jobs[ji].finished && !run->jobs[ji].returned)
				break;
		if (ji < run->njobs)
			continue;
		if ((error = wait_events(run)) < 0) {
			wf_run_cancel(run, wf_error_last());
			return error;
		}
	}
}

static const char *
result_name(enum result r)
{
	switch (r) {
	case R_SUCCEEDED: return "succeeded";
	case R_FAILED: return "failed";
	case R_SKIPPED: return "skipped";
	case R_CACHED: return "cached";
	case R_NONE: break;
	}
	return "pending";
}

static const char *
type_name(enum wf_step_type t)
{
	switch (t) {
	case WF_STEP_SHELL: return "shell";
	case WF_STEP_ASSERT: return "assert";
	case WF_STEP_TEMPLATE: return "template";
	}
	return "?";
}

static int
set_new(json_t *o, const char *key, json_t *v)
{
	if (!v || json_object_set_new(o, key, v) < 0)
		return wf_error_oom();
	return 0;
}

static json_t *
step_json(const struct step_state *s, size_t keep)
{
	json_t *o = json_object();
	char *tail = NULL;
	int shell = s->step->type == WF_STEP_SHELL, error;

	if (!o)
		return NULL;
	if ((error = set_new(o, "id", json_string(s->step->id))) < 0 ||
	    (error = set_new(o, "type",
	    json_string(type_name(s->step->type)))) < 0 ||
	    (error = set_new(o, "status",
	    json_string(result_name(s->result)))) < 0 ||
	    (error = set_new(o, "attempts", json_integer(s->attempts))) < 0)
		goto fail;
	if (shell && ((error = set_new(o, "exit_code", s->exit_code >= 0 ?
	    json_integer(s->exit_code) : json_null())) < 0 ||
	    (error = set_new(o, "timed_out", json_boolean(s->timed_out))) < 0))
		goto fail;
	if ((error = set_new(o, "duration_ms",
	    json_integer(s->ended - s->started))) < 0)
		goto fail;
	if (shell && (s->attempts > 0 || s->result == R_CACHED) &&
	    (!(tail = tail_text(&s->tail, keep)) ||
	    (error = set_new(o, "output", json_string(tail))) < 0))
		goto fail;
	if (shell && s->log_path &&
	    (error = set_new(o, "log", json_string(s->log_path))) < 0)
		goto fail;
	if (s->error && (error = set_new(o, "error", json_string(s->error))) < 0)
		goto fail;
	if (s->cache && (error = set_new(o, "cache", json_incref(s->cache))) < 0)
		goto fail;
	free(tail);
	return o;
fail:
	free(tail);
	json_decref(o);
	return NULL;
}

int
wf_run_result(json_t **out, const struct wf_run *run, size_t job)
{
	const struct job *j;
	json_t *o = NULL, *steps;
	size_t i;
	int error;

	*out = NULL;
	if (job >= run->njobs || !run->jobs[job].finished)
		return wf_error_set(WF_ENOTFOUND, "no finished job %zu", job);
	j = &run->jobs[job];
	if (!(o = json_object()) ||
	    (error = set_new(o, "status", json_string(j->error ? "failed" :
	    "succeeded"))) < 0 ||
	    (j->error && (error = set_new(o, "error",
	    json_string(j->error))) < 0) ||
	    (error = set_new(o, "steps", steps = json_array())) < 0)
		goto fail;
	for (i = 0; i < j->n; i++)
		if (json_array_append_new(steps, step_json(&j->steps[i],
		    run->o.tail_bytes)) < 0)
			goto fail;
	*out = o;
	return 0;
fail:
	json_decref(o);
	return wf_error_oom();
}
