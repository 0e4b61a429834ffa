/*
 * wf-proc-receive: the proc-receive hook of a server repository, made
 * short.  What the push's pre-receive validated and left in its
 * handover (lib/handover.h) is queued as it is, its commits kept at
 * refs/wf/changes/<queue id>, and landing started, without loading
 * libgit2: its start-up is most of what a hook costs.  Anything else --
 * no handover, an update it does not cover, -o wf.wait -- is
 * `wf-hooks proc-receive`'s, which this program then becomes, with the
 * conversation so far replayed on its standard input.
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
"usage: wf-proc-receive\n"
"\n"
"The proc-receive hook that \"wf-hooks install --server\" installs:\n"
"talks git-receive-pack's proc-receive protocol on stdin and stdout,\n"
"queues the changes pushed to refs/for/<branch>[/<topic>] that the\n"
"push's pre-receive validated, keeps their commits at\n"
"refs/wf/changes/<queue id>, answers git with that ref and starts\n"
"landing them in the background, as \"wf-hooks proc-receive\" does,\n"
"without validating them again; runs \"wf-hooks proc-receive\" when it\n"
"cannot (see wf-hooks(1)).\n"
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

/*
 * Become `wf-hooks proc-receive --negotiated`, its stdin what was read
 * here (the version is answered already; stdout is still git's).
 */
static int
run_wf_hooks(const char *input, size_t len)
{
	char *prog = wf_hooks_path();
	char *argv[4];
	size_t off = 0;
	ssize_t w;
	int fd;

	if (!prog)
		return wf_cmd_fail(wf_error_oom());
	if ((fd = memfd_create("wf-proc-receive", 0)) < 0) {
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
	argv[1] = (char *)"proc-receive";
	argv[2] = (char *)"--negotiated";
	argv[3] = NULL;
	fflush(NULL);
	if (strchr(prog, '/'))
		execv(prog, argv);
	else
		execvp(prog, argv);
	wf_cmd_fail(wf_error_set_errno(WF_EOS, "cannot run '%s'", prog));
	free(prog);
	return WF_EXIT_OS;
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

/* Whether the pusher waits (-o wf.wait); -1 for options that do not parse. */
static int
waits(const struct wf_push_proc *p)
{
	struct wf_push_opts opts = WF_PUSH_OPTS_INIT;

	if (wf_push_opts_parse(&opts, (const char *const *)p->options,
	    p->noptions) < 0)
		return -1;
	return opts.wait;
}

/* Whether the update line creates a refs/for/ ref, as a change does. */
static int
is_queue_update(const char *line)
{
	size_t i, len = strlen(line);

	if (len < 2 * HEX_LEN + 3 || line[HEX_LEN] != ' ' ||
	    line[2 * HEX_LEN + 1] != ' ' || strncmp(line + 2 * HEX_LEN + 2,
	    FOR_PREFIX, strlen(FOR_PREFIX)) != 0)
		return 0;
	for (i = HEX_LEN + 1; i < 2 * HEX_LEN + 1; i++)
		if (line[i] != '0')
			return 1;
	return 0;	/* a deletion: wf-hooks refuses it */
}

/*
 * The items of the request, each with the change the handover holds for
 * it (the caller's to free, in cs[]).  1 when it holds one for every
 * update, 0 when wf-hooks must validate.
 */
static int
take_changes(struct wf_cmd_proc_item *items, struct wf_change **cs,
    const json_t *doc, const struct wf_push_proc *p)
{
	const char *replaces;
	size_t i;

	for (i = 0; i < p->ncommands; i++) {
		const char *line = p->commands[i];

		if (!is_queue_update(line) ||
		    wf_handover_find(&cs[i], &replaces, doc, line) < 0)
			return 0;
		items[i].ref = line + 2 * HEX_LEN + 2;
		items[i].new_hex = line + HEX_LEN + 1;
		items[i].change = cs[i];
	}
	return 1;
}

/* Queue, keep the commits, start landing; the items say how it went. */
static int
queue_and_land(const char *gitdir, struct wf_cmd_proc_item *items, size_t n,
    int loose)
{
	struct wf_queue_opts qo = WF_QUEUE_OPTS_INIT;
	struct wf_queue *q = NULL;
	const char *env = getenv("WF_DB"), **targets = NULL;
	char *db = NULL, *prog = NULL;
	size_t i, j, nt = 0;
	int error, busy;

	if (env && *env)
		db = strdup(env);
	else if ((db = malloc(strlen(gitdir) + sizeof("/wf/queue.db"))))
		sprintf(db, "%s/wf/queue.db", gitdir);
	if (!db || !(targets = calloc(n + 1, sizeof(*targets)))) {
		error = wf_error_oom();
		goto out;
	}
	qo.actor = "wf-hooks proc-receive";
	qo.no_checkpoint = 1;
	if ((error = wf_queue_open(&q, db, &qo)) < 0 ||
	    (error = wf_cmd_hook_proc_queue(q, gitdir, items, n,
	    loose)) < 0)
		goto out;
	/* Close before the runner opens it: no two writers at once. */
	wf_queue_free(q);
	q = NULL;
	for (i = 0; i < n; i++) {
		if (items[i].error)
			continue;
		for (j = 0; j < nt && strcmp(targets[j],
		    items[i].change->target) != 0; j++)
			;
		if (j == nt)
			targets[nt++] = items[i].change->target;
	}
	if (nt == 0)
		goto out;
	if ((error = wf_landing_request(gitdir, targets, nt)) < 0)
		goto out;
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
	free(targets);
	free(prog);
	free(db);
	return error;
}

int
main(int argc, char **argv)
{
	struct wf_push_proc p;
	struct wf_cmd_proc_item *items = NULL;
	struct wf_change **cs = NULL;
	json_t *doc = NULL;
	char *gitdir = NULL, *key = NULL;
	size_t i, n = 0;
	int opt, code = WF_EXIT_OK, error;

	wf_cmd_init_without_git("wf-proc-receive");
	memset(&p, 0, sizeof(p));
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1)
		if (wf_cmd_other_option(&code, opt, argv, usage))
			goto done;
	if (optind < argc) {
		code = wf_cmd_usage_error("unexpected operand '%s'",
		    argv[optind]);
		goto done;
	}
	/* To the pusher this is wf-hooks' proc-receive, whichever runs. */
	wf_cmd_init_without_git("wf-hooks");
	if ((error = wf_push_proc_read(&p, 0, 1, 0)) < 0) {
		code = wf_cmd_fail(error);
		goto done;
	}
	n = p.ncommands;
	if (!(items = calloc(n + 1, sizeof(*items))) ||
	    !(cs = calloc(n + 1, sizeof(*cs)))) {
		code = wf_cmd_fail(wf_error_oom());
		goto done;
	}
	/* Whatever stops the short way leaves the push to wf-hooks. */
	if (n == 0 || !(gitdir = git_dir()) || waits(&p) != 0 ||
	    wf_cmd_hook_key(&key) < 0 ||
	    wf_handover_take(&doc, gitdir, key) < 0 || !doc ||
	    !take_changes(items, cs, doc, &p))
		goto validate;
	if ((error = queue_and_land(gitdir, items, n,
	    json_is_true(json_object_get(doc, "loose_refs")))) < 0)
		wf_cmd_error("%s", wf_error_last());
	if ((error = wf_cmd_hook_proc_answer(1, items, n)) < 0)
		code = wf_cmd_fail(error);
	goto done;
validate:
	wf_error_clear();
	code = run_wf_hooks(p.raw, p.raw_len);
done:
	for (i = 0; cs && i < n; i++)
		wf_change_free(cs[i]);
	free(cs);
	wf_cmd_proc_items_release(items, n);
	free(items);
	json_decref(doc);
	free(key);
	free(gitdir);
	wf_push_proc_release(&p);
	return wf_cmd_finish(code);
}
