/*
 * wf-post-receive: the post-receive hook of a server repository, made
 * short.  What the push's pre-receive validated and left in its
 * handover (lib/handover.h) is queued as it is, and landing started,
 * without loading libgit2: its start-up is most of what a hook costs.
 * Anything else -- no handover, an update it does not cover, -o wf.wait
 * -- is `wf-hooks post-receive`'s, which this program then becomes,
 * with the same input.
 */
#define _GNU_SOURCE		/* memfd_create */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "error.h"
#include "handover.h"
#include "landing.h"
#include "push.h"
#include "queue.h"

static const char usage[] =
"usage: wf-post-receive\n"
"\n"
"The post-receive hook that \"wf-hooks install --server\" installs:\n"
"reads git's \"<old> <new> <ref>\" lines on stdin, queues the changes\n"
"the push's pre-receive validated for refs/for/<branch>[/<topic>] and\n"
"starts landing them in the background, as \"wf-hooks post-receive\"\n"
"does, without validating them again; runs \"wf-hooks post-receive\"\n"
"when it cannot (see wf-hooks(1)).\n"
"\n"
"  --help               show this help and exit\n"
"  --version            show the version and exit\n";

static const struct option longopts[] = {
	WF_COMMON_LONGOPTS,
	{ NULL, 0, NULL, 0 }
};

#define HEX_LEN 40
#define FOR_PREFIX "refs/for/"

/* The wf-hooks beside this program, else the one on PATH. */
static char *
wf_hooks_path(void)
{
	char buf[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 16);

	if (n > 0) {
		buf[n] = '\0';
		if ((slash = strrchr(buf, '/'))) {
			strcpy(slash + 1, "wf-hooks");
			if (access(buf, X_OK) == 0)
				return strdup(buf);
		}
	}
	return strdup("wf-hooks");
}

/* Become `wf-hooks post-receive`, its stdin the input read here. */
static int
run_wf_hooks(const char *input, size_t len)
{
	char *prog = wf_hooks_path();
	char *argv[3];
	size_t off = 0;
	ssize_t w;
	int fd;

	if (!prog)
		return wf_cmd_fail(wf_error_oom());
	if ((fd = memfd_create("wf-post-receive", 0)) < 0) {
		FILE *f = tmpfile();

		if (!f || (fd = dup(fileno(f))) < 0) {
			free(prog);
			return wf_cmd_fail(wf_error_set_errno(WF_EOS,
			    "cannot keep the input"));
		}
		fclose(f);
	}
	while (off < len) {
		if ((w = write(fd, input + off, len - off)) < 0) {
			if (errno == EINTR)
				continue;
			free(prog);
			return wf_cmd_fail(wf_error_set_errno(WF_EOS,
			    "cannot keep the input"));
		}
		off += (size_t)w;
	}
	if (lseek(fd, 0, SEEK_SET) < 0 || dup2(fd, 0) < 0) {
		free(prog);
		return wf_cmd_fail(wf_error_set_errno(WF_EOS, "cannot keep the "
		    "input"));
	}
	if (fd != 0)
		close(fd);
	argv[0] = prog;
	argv[1] = (char *)"post-receive";
	argv[2] = NULL;
	fflush(NULL);
	if (strchr(prog, '/'))
		execv(prog, argv);
	else
		execvp(prog, argv);
	wf_cmd_fail(wf_error_set_errno(WF_EOS, "cannot run '%s'", prog));
	free(prog);
	return WF_EXIT_OS;
}

/* Read all of stdin. */
static int
read_all(char **out, size_t *len)
{
	char *buf = NULL, *p;
	size_t cap = 0, n = 0, got;

	*out = NULL;
	*len = 0;
	for (;;) {
		if (cap - n < 4096) {
			cap = cap ? cap * 2 : 16384;
			if (!(p = realloc(buf, cap + 1))) {
				free(buf);
				return wf_error_oom();
			}
			buf = p;
		}
		got = fread(buf + n, 1, cap - n, stdin);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(stdin)) {
		free(buf);
		return wf_error_set_errno(WF_EOS, "cannot read stdin");
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/*
 * The common git directory the hook runs in, as an absolute path, or
 * NULL when only libgit2 can tell (a worktree, GIT_COMMON_DIR).
 */
static char *
git_dir(void)
{
	const char *dir = getenv("GIT_DIR");
	char *abs, *p;
	struct stat st;

	if (!dir || !*dir || (getenv("GIT_COMMON_DIR") &&
	    *getenv("GIT_COMMON_DIR")) || !(abs = realpath(dir, NULL)))
		return NULL;
	if (!(p = malloc(strlen(abs) + sizeof("/commondir")))) {
		free(abs);
		return NULL;
	}
	sprintf(p, "%s/commondir", abs);
	if (stat(p, &st) == 0 || errno != ENOENT) {
		free(abs);
		abs = NULL;
	}
	free(p);
	return abs;
}

/* The push options, to see whether the pusher waits (-o wf.wait). */
static int
waits(int *out)
{
	struct wf_push_opts opts = WF_PUSH_OPTS_INIT;
	const char *count = getenv("GIT_PUSH_OPTION_COUNT"), **v = NULL;
	char name[64], *end;
	unsigned long n, i;
	int error;

	*out = 0;
	if (!count || !*count)
		return 0;
	errno = 0;
	n = strtoul(count, &end, 10);
	if (errno || *end || n > 10000)
		return WF_EINPUT;
	if (!(v = calloc(n + 1, sizeof(*v))))
		return wf_error_oom();
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "GIT_PUSH_OPTION_%lu", i);
		v[i] = getenv(name) ? getenv(name) : "";
	}
	error = wf_push_opts_parse(&opts, v, n);
	*out = opts.wait;
	free(v);
	return error;
}

/* Whether the update line asks for a change to be queued; -1: bad line. */
static int
is_queue_update(const char *line, size_t len)
{
	size_t i;

	if (len < 2 * HEX_LEN + 3 || line[HEX_LEN] != ' ' ||
	    line[2 * HEX_LEN + 1] != ' ')
		return -1;
	if (strncmp(line + 2 * HEX_LEN + 2, FOR_PREFIX,
	    strlen(FOR_PREFIX)) != 0)
		return 0;
	for (i = HEX_LEN + 1; i < 2 * HEX_LEN + 1; i++)
		if (line[i] != '0')
			return 1;
	return 0;	/* a deletion: nothing to queue */
}

/* How many updates of `input` ask for a change to be queued; -1: bad. */
static int
queue_updates(const char *input)
{
	const char *line, *end;
	size_t len;
	int n = 0, rc;

	for (line = input; *line; line = *end ? end + 1 : end) {
		end = strchrnul(line, '\n');
		len = (size_t)(end - line);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len == 0)
			continue;
		if ((rc = is_queue_update(line, len)) < 0)
			return -1;
		n += rc;
	}
	return n;
}

struct work {
	struct wf_change **cs;
	const char **replaces;
	const char **targets;
	size_t n, nt;
};

/*
 * The changes the handover holds for the updates of `input` (modified:
 * its lines are cut).  1 with *w filled when it holds one for every
 * update that asks for one, 0 when post-receive must validate.
 */
static int
take_changes(struct work *w, const json_t *doc, char *input)
{
	char *line, *next;
	size_t len, j;
	int rc;

	for (line = input; *line; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		else
			next = line + strlen(line);
		len = strlen(line);
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len == 0)
			continue;
		if ((rc = is_queue_update(line, len)) < 0)
			return 0;
		if (rc == 0)
			continue;
		if (wf_handover_find(&w->cs[w->n], &w->replaces[w->n], doc,
		    line) < 0)
			return 0;
		for (j = 0; j < w->nt &&
		    strcmp(w->targets[j], w->cs[w->n]->target) != 0; j++)
			;
		if (j == w->nt)
			w->targets[w->nt++] = w->cs[w->n]->target;
		w->n++;
	}
	return 1;
}

static int
queue_and_land(const char *gitdir, struct work *w)
{
	struct wf_queue_opts qo = WF_QUEUE_OPTS_INIT;
	struct wf_queue *q = NULL;
	const char *env = getenv("WF_DB");
	char *db = NULL, *prog = NULL;
	int error, busy;

	if (env && *env)
		db = strdup(env);
	else if ((db = malloc(strlen(gitdir) + sizeof("/wf/queue.db"))))
		sprintf(db, "%s/wf/queue.db", gitdir);
	if (!db) {
		error = wf_error_oom();
		goto out;
	}
	qo.actor = "wf-hooks post-receive";
	qo.no_checkpoint = 1;
	if ((error = wf_queue_open(&q, db, &qo)) < 0 ||
	    (error = wf_cmd_hook_enqueue(q, w->cs, w->replaces, w->n)) < 0 ||
	    (error = wf_landing_request(gitdir, w->targets, w->nt)) < 0)
		goto out;
	/* Close before the runner opens it: no two writers at once. */
	wf_queue_free(q);
	q = NULL;
	/* A runner at work sees this request when it unlocks. */
	if ((error = wf_landing_busy(&busy, gitdir)) < 0)
		goto out;
	if (busy) {
		wf_cmd_say("a landing runner is at work; it lands this too");
		goto out;
	}
	if (!(prog = wf_hooks_path())) {
		error = wf_error_oom();
		goto out;
	}
	error = wf_cmd_hook_start_runner(prog, gitdir, 0);
out:
	wf_queue_free(q);
	free(prog);
	free(db);
	return error;
}

int
main(int argc, char **argv)
{
	struct work w;
	json_t *doc = NULL;
	char *input = NULL, *copy = NULL, *gitdir = NULL, *key = NULL;
	size_t len = 0, i, lines = 1;
	int opt, code = WF_EXIT_OK, error, wait, nq;

	wf_cmd_init_without_git("wf-post-receive");
	memset(&w, 0, sizeof(w));
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
		if (wf_cmd_other_option(&code, opt, argv, usage))
			goto done;
	if (optind < argc) {
		code = wf_cmd_usage_error("unexpected operand '%s'",
		    argv[optind]);
		goto done;
	}
	/* To the pusher this is wf-hooks' post-receive, whichever runs. */
	wf_cmd_init_without_git("wf-hooks");
	if ((error = read_all(&input, &len)) < 0) {
		code = wf_cmd_fail(error);
		goto done;
	}
	for (i = 0; i < len; i++)
		lines += input[i] == '\n';
	if (!(copy = strdup(input)) ||
	    !(w.cs = calloc(lines, sizeof(*w.cs))) ||
	    !(w.replaces = calloc(lines, sizeof(*w.replaces))) ||
	    !(w.targets = calloc(lines, sizeof(*w.targets)))) {
		code = wf_cmd_fail(wf_error_oom());
		goto done;
	}
	/* Whatever stops the short way leaves the push to wf-hooks. */
	if (strlen(input) != len || (nq = queue_updates(copy)) < 0)
		goto validate;
	/* No update to queue (a branch, a withdrawal): nothing to do. */
	if (nq == 0)
		goto done;
	if (!(gitdir = git_dir()) || waits(&wait) < 0 || wait ||
	    wf_cmd_hook_key(&key) < 0 ||
	    wf_handover_take(&doc, gitdir, key) < 0 || !doc ||
	    !take_changes(&w, doc, copy))
		goto validate;
	if ((error = queue_and_land(gitdir, &w)) < 0)
		/* The refs are updated whatever happens here: report. */
		code = wf_cmd_fail(error);
	goto done;
validate:
	wf_error_clear();
	code = run_wf_hooks(input, len);
done:
	while (w.n > 0)
		wf_change_free(w.cs[--w.n]);
	free(w.cs);
	free(w.replaces);
	free(w.targets);
	json_decref(doc);
	free(key);
	free(gitdir);
	free(copy);
	free(input);
	return wf_cmd_finish(code);
}
