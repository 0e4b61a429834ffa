/*
 * wf-hooks: the git hooks that turn a plain `git push` into a merge
 * queue -- installing them, and what they run.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "common.h"
#include "error.h"
#include "git.h"
#include "handover.h"
#include "hooks.h"
#include "landing.h"
#include "match.h"
#include "prepush.h"
#include "push.h"
#include "queue.h"

static const char usage[] =
"usage: wf-hooks install [--server | --client] [-C DIR] [--pretty]\n"
"       wf-hooks uninstall [--server | --client] [-C DIR] [--pretty]\n"
"       wf-hooks status [-C DIR] [--pretty]\n"
"       wf-hooks land [--wait] [-C DIR] [BRANCH...]\n"
"       wf-hooks pre-receive | proc-receive [--negotiated]\n"
"       wf-hooks pre-push REMOTE URL\n"
"\n"
"Install the git hooks that make a push to refs/for/<branch>[/<topic>]\n"
"queue the pushed commits for <branch> and land them (server side, in\n"
"the repository pushed to), or that run the pre-push checks of the\n"
"workflows a push touches (client side, in a clone).  install,\n"
"uninstall and status write one line of JSON per hook:\n"
"{\"hook\", \"path\", \"state\", \"chained\"}.\n"
"\n"
"  --server             the server hooks: pre-receive, proc-receive\n"
"                       (the default in a bare repository)\n"
"  --client             the client hook: pre-push (the default\n"
"                       elsewhere)\n"
"  -C, --repo DIR       the repository (default: the current directory)\n"
"  --wait               land: wait for the runner that holds the lock\n"
"  --negotiated         proc-receive: the protocol's version is answered\n"
"                       already (stdin replays what was read)\n"
"  --pretty             indent the output\n"
"  --help               show this help and exit\n"
"  --version            show the version and exit\n"
"\n"
"The hooks run the commands pre-receive, proc-receive and pre-push,\n"
"with the input and arguments git gives them; land is the landing\n"
"runner proc-receive starts.\n";

enum {
	OPT_SERVER = WF_OPT_TOOL,
	OPT_CLIENT,
	OPT_WAIT,
	OPT_NEGOTIATED
};

static const struct option longopts[] = {
	WF_COMMON_LONGOPTS,
	{ "server", no_argument, NULL, OPT_SERVER },
	{ "client", no_argument, NULL, OPT_CLIENT },
	{ "wait", no_argument, NULL, OPT_WAIT },
	{ "negotiated", no_argument, NULL, OPT_NEGOTIATED },
	{ "repo", required_argument, NULL, 'C' },
	{ NULL, 0, NULL, 0 }
};

struct ctx {
	const char *repo_dir;
	unsigned which;		/* WF_HOOKS_SERVER | WF_HOOKS_CLIENT */
	int wait;
	int negotiated;		/* proc-receive: the version is answered */
	char **operands;
	int noperands;
	const char *self;	/* this program, for the landing runner */
};

/* The repository a hook runs in, as git's environment describes it. */
static int
open_hook_repo(git_repository **out)
{
	*out = NULL;
	if (git_repository_open_ext(out, NULL, GIT_REPOSITORY_OPEN_FROM_ENV,
	    NULL) < 0)
		return wf_error_set_git(WF_EOS, "cannot open the repository "
		    "the hook runs in");
	return 0;
}

/* The push options git hands the receive hooks. */
static int
push_opts(struct wf_push_opts *out, const char ***strv)
{
	const char *count = getenv("GIT_PUSH_OPTION_COUNT"), **v;
	char name[64], *end;
	unsigned long n, i;

	*strv = NULL;
	if (!count || !*count)
		return 0;
	errno = 0;
	n = strtoul(count, &end, 10);
	if (errno || *end || n > 10000)
		return wf_error_set(WF_EINPUT, "bad GIT_PUSH_OPTION_COUNT '%s'",
		    count);
	if (!(v = calloc(n + 1, sizeof(*v))))
		return wf_error_oom();
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "GIT_PUSH_OPTION_%lu", i);
		v[i] = getenv(name) ? getenv(name) : "";
	}
	*strv = v;
	return wf_push_opts_parse(out, v, n);
}

/* Read the "<old> <new> <ref>" lines of a receive hook. */
static int
read_updates(struct wf_push_update **out, size_t *n)
{
	struct wf_push_update *us = NULL, *u;
	char *line = NULL;
	size_t cap = 0, len = 0, lcap = 0;
	ssize_t got;
	int error = 0;

	*out = NULL;
	*n = 0;
	while ((got = getline(&line, &lcap, stdin)) > 0) {
		if (got == 1 && line[0] == '\n')
			continue;
		if (len == cap) {
			cap = cap ? cap * 2 : 8;
			if (!(u = realloc(us, cap * sizeof(*us)))) {
				error = wf_error_oom();
				goto out;
			}
			us = u;
		}
		if ((error = wf_push_update_parse(&us[len], line)) < 0)
			goto out;
		len++;
	}
	if (ferror(stdin))
		error = wf_error_set_errno(WF_EOS, "cannot read stdin");
out:
	free(line);
	if (error < 0) {
		while (len > 0)
			wf_push_update_release(&us[--len]);
		free(us);
		return error;
	}
	*out = us;
	*n = len;
	return 0;
}

static void
free_updates(struct wf_push_update *us, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		wf_push_update_release(&us[i]);
	free(us);
}

/*
 * May proc-receive write the refs that keep pushed commits as files of
 * its own (lib/loose_ref.h)?  Only when git would write just such a
 * file: refs stored as files, no reflog for them, no shared
 * permissions to apply.
 */
static int
refs_are_plain_files(git_repository *repo)
{
	git_config *cfg = NULL;
	const char *v;
	int b, plain = 0;

	if (git_repository_config_snapshot(&cfg, repo) < 0)
		goto out;
	if (git_config_get_string(&v, cfg, "extensions.refstorage") == 0 &&
	    strcasecmp(v, "files") != 0)
		goto out;
	if (git_config_get_string(&v, cfg, "core.logallrefupdates") == 0 &&
	    strcasecmp(v, "always") == 0)
		goto out;
	if (git_config_get_string(&v, cfg, "core.sharedrepository") == 0 &&
	    !(git_config_parse_bool(&b, v) == 0 && !b) &&
	    strcasecmp(v, "umask") != 0)
		goto out;
	plain = 1;
out:
	git_config_free(cfg);
	git_error_clear();
	return plain;
}

/*
 * Leave the changes validated for the push to its proc-receive, which
 * then queues them without validating them again (see handover.h).
 * Not being able to is no reason to refuse a push: proc-receive then
 * validates, as it does when nothing was left for it.
 */
static void
hand_over(git_repository *repo, const struct wf_push_update *us, size_t n)
{
	const char *gitdir = git_repository_commondir(repo);
	json_t *doc = NULL;
	char *key = NULL, *replaces = NULL;
	size_t i;

	if (wf_cmd_hook_key(&key) < 0)
		goto out;
	/* Whatever an earlier use of the key left is not this push's. */
	if (wf_handover_discard(gitdir, key) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		if (us[i].kind != WF_PUSH_QUEUE || !us[i].change)
			continue;
		if ((!git_oid_is_zero(&us[i].old_id) &&
		    wf_push_change_id(&replaces, us[i].target, us[i].topic,
		    &us[i].old_id) < 0) ||
		    wf_handover_add(&doc, &us[i], replaces) < 0)
			goto out;
		free(replaces);
		replaces = NULL;
	}
	if (doc && refs_are_plain_files(repo) &&
	    json_object_set_new(doc, "loose_refs", json_true()) < 0)
		goto out;
	if (doc)
		wf_handover_save(gitdir, key, doc);
out:
	wf_error_clear();
	free(replaces);
	free(key);
	json_decref(doc);
}

/* What pre-receive left for this push, unused: it validates again. */
static void
discard_handover(git_repository *repo)
{
	char *key = NULL;

	if (wf_cmd_hook_key(&key) == 0)
		wf_handover_discard(git_repository_commondir(repo), key);
	wf_error_clear();
	free(key);
}

/*
 * pre-receive: refuse the whole push when one update is refused, saying
 * why for each.
 */
static int
cmd_pre_receive(struct ctx *ctx)
{
	struct wf_push_opts opts = WF_PUSH_OPTS_INIT;
	struct wf_push_update *us = NULL;
	git_repository *repo = NULL;
	const char **strv = NULL;
	size_t i, n = 0;
	int error, bad = 0;

	(void)ctx;
	if ((error = read_updates(&us, &n)) < 0 ||
	    (error = open_hook_repo(&repo)) < 0)
		goto out;
	if ((error = push_opts(&opts, &strv)) < 0) {
		wf_cmd_fail(error);
		bad = 1;
	}
	for (i = 0; i < n; i++) {
		error = wf_push_check(&us[i], repo, &opts);
		if (error == WF_EINPUT) {
			wf_cmd_fail(error);
			bad = 1;
		} else if (error < 0) {
			goto out;
		}
	}
	if (bad)
		wf_cmd_say("the push is refused: nothing was queued or "
		    "updated");
	else
		hand_over(repo, us, n);
	error = 0;
out:
	free_updates(us, n);
	free(strv);
	git_repository_free(repo);
	if (error < 0)
		return wf_cmd_fail(error);
	return bad ? WF_EXIT_NO : WF_EXIT_OK;
}

static char *
queue_path(git_repository *repo)
{
	const char *db = getenv("WF_DB");
	char *path = NULL;

	if (db && *db)
		return strdup(db);
	if (wf_queue_default_path(&path, repo) < 0)
		return NULL;
	return path;
}

/* The length of s without its trailing newlines. */
static size_t
trimmed(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '\n')
		n--;
	return n;
}

/* After a landing the pusher waited for: what became of each change. */
static void
report_states(git_repository *repo, struct wf_queue *q,
    const struct wf_cmd_proc_item *items, size_t n)
{
	json_t *e = NULL;
	git_oid tip;
	char hex[GIT_OID_HEXSZ + 1], ref[1024];
	size_t i;

	for (i = 0; i < n; i++) {
		const struct wf_change *c = items[i].change;
		const char *state, *why;

		if (!c || items[i].error)
			continue;
		if (wf_queue_show(&e, q, c->id) < 0) {
			wf_cmd_say("'%s': %s", c->id, wf_error_last());
			continue;
		}
		state = json_string_value(json_object_get(e, "state"));
		why = json_string_value(json_object_get(e, "last_error"));
		snprintf(ref, sizeof(ref), "refs/heads/%s", c->target);
		if (state && strcmp(state, "landed") == 0 &&
		    git_reference_name_to_id(&tip, repo, ref) == 0)
			wf_cmd_say("'%s' landed: %s is now at %s", c->id,
			    c->target, git_oid_tostr(hex, 13, &tip));
		else if (state && strcmp(state, "dead") == 0)
			wf_cmd_say("'%s' did not land and is dead: %.*s\n%s: "
			    "its commits stay at %s; push a fixed version to "
			    "%s", c->id,
			    why ? (int)trimmed(why) : 19, why ? why :
			    "no reason recorded", wf_cmd_name(),
			    items[i].kept, items[i].ref);
		else
			wf_cmd_say("'%s' is %s%s%.*s", c->id,
			    state ? state : "?", why ? ": " : "",
			    why ? (int)trimmed(why) : 0,
			    why ? why : "");
		json_decref(e);
		e = NULL;
	}
}

/* What proc-receive answers for an update it cannot queue. */
static int
refuse(struct wf_cmd_proc_item *it, const char *fmt, const char *arg)
{
	char buf[512];

	snprintf(buf, sizeof(buf), fmt, arg);
	wf_cmd_error("%s", buf);
	if (!(it->error = strdup(buf)))
		return wf_error_oom();
	return 0;
}

/*
 * Classify and validate the updates of a proc-receive request (the
 * objects are in the repository by now) into items; those refused get
 * their error, said to the pusher.
 */
static int
proc_items(struct wf_cmd_proc_item *items, struct wf_push_update *us,
    const struct wf_push_proc *p, git_repository *repo,
    const struct wf_push_opts *opts, const char *opts_error)
{
	size_t i;
	int error, any = 0;

	for (i = 0; i < p->ncommands; i++) {
		const char *line = p->commands[i];
		struct wf_cmd_proc_item *it = &items[i];

		it->ref = strlen(line) > 2 * GIT_OID_HEXSZ + 2 ?
		    line + 2 * GIT_OID_HEXSZ + 2 : line;
		it->new_hex = line + GIT_OID_HEXSZ + 1;
		if (opts_error) {
			if (!(it->error = strdup(opts_error)))
				return wf_error_oom();
			continue;
		}
		if ((error = wf_push_update_parse(&us[i], line)) < 0 ||
		    (error = wf_push_check(&us[i], repo, opts)) < 0) {
			if (error != WF_EINPUT)
				return error;
			if ((error = refuse(it, "%s", wf_error_last())) < 0)
				return error;
			wf_error_clear();
			continue;
		}
		if (us[i].kind == WF_PUSH_WITHDRAW) {
			if ((error = refuse(it, "%s: nothing to delete: a push "
			    "to refs/for/ creates no ref (a change's commits "
			    "are kept at " WF_PUSH_KEPT_PREFIX "<queue id>)",
			    it->ref)) < 0)
				return error;
		} else if (us[i].kind != WF_PUSH_QUEUE) {
			if ((error = refuse(it, "%s: wf queues only pushes to "
			    "refs/for/<branch>[/<topic>]", it->ref)) < 0)
				return error;
		} else {
			it->ref = us[i].ref;
			it->change = us[i].change;
		}
	}
	/* An atomic push is queued whole or not at all. */
	for (i = 0; p->atomic && i < p->ncommands; i++)
		any |= items[i].error != NULL;
	for (i = 0; any && i < p->ncommands; i++)
		if (!items[i].error && !(items[i].error = strdup("atomic "
		    "push: another update is refused")))
			return wf_error_oom();
	return 0;
}

/* The targets of the items queued, borrowed from their changes. */
static size_t
queued_targets(const char **targets, const struct wf_cmd_proc_item *items,
    size_t n)
{
	size_t i, j, nt = 0;

	for (i = 0; i < n; i++) {
		if (!items[i].change || items[i].error)
			continue;
		for (j = 0; j < nt && strcmp(targets[j],
		    items[i].change->target); j++)
			;
		if (j == nt)
			targets[nt++] = items[i].change->target;
	}
	return nt;
}

/*
 * proc-receive: queue what is pushed to refs/for/, keep its commits at
 * refs/wf/changes/<queue id>, and answer git-receive-pack with that
 * ref; land in the background or, with -o wf.wait, before answering.
 * The updates are validated again here: this is the way of pushes the
 * fast one (wf-proc-receive) leaves, which has taken the handover.
 */
static int
cmd_proc_receive(struct ctx *ctx)
{
	struct wf_push_opts opts = WF_PUSH_OPTS_INIT;
	struct wf_landing_opts lo = WF_LANDING_OPTS_INIT;
	struct wf_queue_opts qo = WF_QUEUE_OPTS_INIT;
	struct wf_push_proc p;
	struct wf_push_update *us = NULL;
	struct wf_cmd_proc_item *items = NULL;
	git_repository *repo = NULL;
	struct wf_queue *q = NULL;
	const char **targets = NULL, *gitdir;
	char *db = NULL, *opts_error = NULL;
	json_t *pass = NULL;
	size_t n = 0, nt;
	int error, answered = 0;

	memset(&p, 0, sizeof(p));
	if ((error = wf_push_proc_read(&p, 0, 1, ctx->negotiated)) < 0)
		goto out;
	n = p.ncommands;
	if ((error = open_hook_repo(&repo)) < 0)
		goto out;
	gitdir = git_repository_commondir(repo);
	discard_handover(repo);
	if (wf_push_opts_parse(&opts, (const char *const *)p.options,
	    p.noptions) < 0) {
		wf_cmd_error("%s", wf_error_last());
		if (!(opts_error = strdup(wf_error_last()))) {
			error = wf_error_oom();
			goto out;
		}
	}
	if (!(us = calloc(n + 1, sizeof(*us))) ||
	    !(items = calloc(n + 1, sizeof(*items))) ||
	    !(targets = calloc(n + 1, sizeof(*targets)))) {
		error = wf_error_oom();
		goto out;
	}
	if ((error = proc_items(items, us, &p, repo, &opts, opts_error)) < 0)
		goto out;
	if (!(nt = queued_targets(targets, items, n)))
		goto answer;
	if (!(db = queue_path(repo))) {
		error = wf_error_oom();
		goto out;
	}
	qo.actor = "wf-hooks proc-receive";
	qo.no_checkpoint = 1;
	if ((error = wf_queue_open(&q, db, &qo)) < 0) {
		wf_cmd_error("%s", wf_error_last());
		for (size_t i = 0; i < n; i++)
			if (items[i].change && !items[i].error &&
			    !(items[i].error = strdup(wf_error_last()))) {
				error = wf_error_oom();
				goto out;
			}
		goto answer;
	}
	if (wf_cmd_hook_proc_queue(q, gitdir, items, n, 0) < 0) {
		wf_cmd_error("%s; nothing was queued", wf_error_last());
		goto answer;
	}
	if (!(nt = queued_targets(targets, items, n)))
		goto answer;
	if ((error = wf_landing_request(gitdir, targets, nt)) < 0)
		goto out;
	if (!opts.wait) {
		int busy;

		/* A runner at work sees this request when it unlocks. */
		if ((error = wf_landing_busy(&busy, gitdir)) < 0)
			goto out;
		if (busy)
			wf_cmd_say("a landing runner is at work; it lands this "
			    "too");
		else
			error = wf_cmd_hook_start_runner(ctx->self, gitdir, 0);
		if (error < 0)
			goto out;
		goto answer;
	}
	/* The pusher waits: land before git hears back. */
	wf_cmd_say("landing now, as -o wf.wait asks");
	wf_queue_free(q);
	q = NULL;
	lo.wait = 1;
	lo.db = getenv("WF_DB") && *getenv("WF_DB") ? getenv("WF_DB") : NULL;
	lo.err_fd = 2;
	if ((error = wf_landing_pass(&pass, repo, &lo)) < 0)
		goto out;
	if (json_is_integer(json_object_get(pass, "status")) &&
	    json_integer_value(json_object_get(pass, "status")) > 1)
		wf_cmd_error("wf-apply exited with status %lld",
		    (long long)json_integer_value(json_object_get(pass,
		    "status")));
	if ((error = wf_queue_open(&q, db, &qo)) < 0)
		goto out;
	report_states(repo, q, items, n);
	/* Pushes that came meanwhile are landed in the background. */
	if (json_is_true(json_object_get(pass, "more")) &&
	    (error = wf_cmd_hook_start_runner(ctx->self, gitdir, 1)) < 0)
		goto out;
answer:
	answered = 1;
	error = wf_cmd_hook_proc_answer(1, items, n);
out:
	if (error < 0 && !answered && items) {
		/* Whatever went wrong, receive-pack hears it for each. */
		wf_cmd_error("%s", wf_error_last());
		wf_cmd_proc_items_release(items, n);
		for (size_t i = 0; i < n; i++)
			items[i].error = NULL, items[i].change = NULL,
			    items[i].why = "wf-hooks failed; see its message";
		wf_cmd_hook_proc_answer(1, items, n);
		error = 0;
	}
	json_decref(pass);
	wf_queue_free(q);
	free(db);
	free(opts_error);
	free(targets);
	wf_cmd_proc_items_release(items, n);
	free(items);
	if (us)
		free_updates(us, n);
	wf_push_proc_release(&p);
	git_repository_free(repo);
	if (error < 0)
		return wf_cmd_fail(error);
	return WF_EXIT_OK;
}

/* The time now, for the log. */
static const char *
now_text(char *buf, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* land: the landing runner; passes until nothing is pending. */
static int
cmd_land(struct ctx *ctx)
{
	struct wf_landing_opts lo = WF_LANDING_OPTS_INIT;
	git_repository *repo = NULL;
	json_t *pass = NULL, *line = NULL;
	char when[32];
	int error, i;

	if ((error = wf_git_open(&repo, ctx->repo_dir)) < 0)
		goto out;
	if (ctx->noperands > 0 && (error = wf_landing_request(
	    git_repository_commondir(repo),
	    (const char *const *)ctx->operands, (size_t)ctx->noperands)) < 0)
		goto out;
	lo.wait = ctx->wait;
	lo.db = getenv("WF_DB") && *getenv("WF_DB") ? getenv("WF_DB") : NULL;
	lo.out_fd = 2;
	lo.err_fd = 2;
	for (i = 0; i < 1000; i++) {
		if ((error = wf_landing_pass(&pass, repo, &lo)) < 0 || !pass)
			goto out;
		if (!(line = json_pack("{s:s}", "time", now_text(when,
		    sizeof(when)))) || json_object_update(line, pass) < 0) {
			error = wf_error_oom();
			goto out;
		}
		if ((error = wf_cmd_write_json(line)) < 0)
			goto out;
		json_decref(line);
		line = NULL;
		fflush(stdout);
		if (!json_is_true(json_object_get(pass, "more")))
			break;
		json_decref(pass);
		pass = NULL;
	}
	error = 0;
out:
	json_decref(line);
	json_decref(pass);
	git_repository_free(repo);
	return error < 0 ? wf_cmd_fail(error) : WF_EXIT_OK;
}

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* The catalog pre-push uses, or NULL (and 0) when there is none. */
static int
prepush_catalog(struct wf_catalog **out, git_repository *repo)
{
	const char *dir = getenv("WF_CATALOG"), *root;
	char *path = NULL;
	int error;

	*out = NULL;
	if (dir && *dir)
		return wf_catalog_load(out, dir);
	if (!(root = git_repository_workdir(repo)))
		return 0;
	if (!(path = malloc(strlen(root) + 20)))
		return wf_error_oom();
	sprintf(path, "%s.wf/workflows", root);
	if (access(path, F_OK) < 0) {
		free(path);
		return 0;
	}
	error = wf_catalog_load(out, path);
	free(path);
	return error;
}

/* Print the outcome of the checks of one workflow; 1 when it failed. */
static int
print_result(const json_t *r)
{
	const char *name = json_string_value(json_object_get(r, "workflow"));
	const char *status = json_string_value(json_object_get(r, "status"));
	json_t *steps = json_object_get(r, "steps"), *s;
	size_t i, nfailed = 0;

	if (status && strcmp(status, "succeeded") == 0) {
		wf_cmd_say("pre-push: '%s': passed (%zu step%s)", name,
		    json_array_size(steps), json_array_size(steps) == 1 ? "" :
		    "s");
		return 0;
	}
	json_array_foreach(steps, i, s) {
		const char *out = json_string_value(json_object_get(s,
		    "output"));
		const char *st = json_string_value(json_object_get(s, "status"));

		if (!st || strcmp(st, "failed") != 0)
			continue;
		nfailed++;
		wf_cmd_say("pre-push: '%s': %s%s", name, json_string_value(
		    json_object_get(s, "error")), out && *out ? ":" : "");
		if (out && *out)
			fprintf(stderr, "%s%s", out,
			    out[strlen(out) - 1] == '\n' ? "" : "\n");
	}
	if (nfailed == 0)
		wf_cmd_say("pre-push: '%s': failed: %s", name,
		    json_string_value(json_object_get(r, "error")));
	return 1;
}

/* The checks of one pushed commit; *failed is set when one failed. */
static int
prepush_one(int *failed, git_repository *repo, const struct wf_catalog *cat,
    const char *remote, const char *line, json_t *done)
{
	struct wf_prepush_opts po = WF_PREPUSH_OPTS_INIT;
	struct wf_workflow **ws = NULL;
	struct wf_json_doc doc;
	struct wf_match_opts mo = WF_MATCH_OPTS_INIT;
	char lref[1024], lhex[64], rref[1024], rhex[64];
	git_oid local, remote_id, base;
	json_t *paths = NULL, *plan = NULL, *results = NULL, *r;
	size_t i, n = 0;
	int error, found;

	if (sscanf(line, "%1023s %63s %1023s %63s", lref, lhex, rref,
	    rhex) != 4 || git_oid_fromstr(&local, lhex) < 0 ||
	    git_oid_fromstr(&remote_id, rhex) < 0)
		return wf_error_set(WF_EINPUT, "pre-push: expected '<local "
		    "ref> <local oid> <remote ref> <remote oid>', got '%.200s'",
		    line);
	if (git_oid_is_zero(&local) || json_object_get(done, lhex))
		return 0;	/* a deletion, or checked already */
	if ((error = wf_prepush_base(&base, &found, repo, remote, rref,
	    &remote_id, &local)) < 0 ||
	    (error = wf_git_diff_paths(&paths, repo, found ? &base : NULL,
	    &local)) < 0)
		goto out;
	memset(&doc, 0, sizeof(doc));
	if (!(doc.value = json_object())) {
		error = wf_error_oom();
		goto out;
	}
	doc.name = "<push>";
	doc.line = doc.col = 1;
	mo.changed_paths = paths;
	error = wf_match_item(&plan, cat, &doc, &mo);
	json_decref(doc.value);
	if (error < 0 || (error = wf_prepush_select(&ws, &n, cat, plan)) < 0)
		goto out;
	if (json_object_set_new(done, lhex, json_true()) < 0) {
		error = wf_error_oom();
		goto out;
	}
	if (n == 0)
		goto out;
	wf_cmd_say("pre-push: %s: %zu path%s changed; checking %zu workflow%s",
	    rref, json_array_size(paths), json_array_size(paths) == 1 ? "" :
	    "s", n, n == 1 ? "" : "s");
	po.jobs = n < 4 ? n : 4;
	po.interrupt = &interrupted;
	if ((error = wf_prepush_run(&results, repo, ws, n, &local, &po)) < 0)
		goto out;
	json_array_foreach(results, i, r)
		if (print_result(r))
			*failed = 1;
out:
	for (i = 0; i < n; i++)
		wf_workflow_free(ws[i]);
	free(ws);
	json_decref(results);
	json_decref(plan);
	json_decref(paths);
	return error;
}

/* pre-push: run the checks the outgoing paths select; block on failure. */
static int
cmd_pre_push(struct ctx *ctx)
{
	struct wf_catalog *cat = NULL;
	git_repository *repo = NULL;
	struct sigaction sa;
	json_t *done = NULL;
	char *line = NULL;
	size_t lcap = 0;
	const char *skip = getenv("WF_SKIP");
	int error, failed = 0;

	if (ctx->noperands < 1)
		return wf_cmd_usage_error("pre-push needs the remote's name "
		    "and URL");
	if (skip && *skip && strcmp(skip, "0") != 0) {
		wf_cmd_say("pre-push: checks skipped (WF_SKIP is set)");
		return WF_EXIT_OK;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if ((error = open_hook_repo(&repo)) < 0 ||
	    (error = prepush_catalog(&cat, repo)) < 0)
		goto out;
	if (!cat)
		goto out;	/* no catalog, nothing to check */
	if (!(done = json_object())) {
		error = wf_error_oom();
		goto out;
	}
	while (getline(&line, &lcap, stdin) > 0 && !interrupted)
		if (line[0] != '\n' && (error = prepush_one(&failed, repo, cat,
		    ctx->operands[0], line, done)) < 0)
			goto out;
	if (interrupted)
		failed = 1;
	if (failed)
		wf_cmd_error("pre-push checks failed: the push is blocked "
		    "(WF_SKIP=1 git push ... skips the checks)");
	error = 0;
out:
	free(line);
	json_decref(done);
	wf_catalog_free(cat);
	git_repository_free(repo);
	if (error < 0)
		return wf_cmd_fail(error);
	return failed ? WF_EXIT_NO : WF_EXIT_OK;
}

static int cmd_install(struct ctx *ctx);
static int cmd_uninstall(struct ctx *ctx);
static int cmd_status(struct ctx *ctx);

struct command {
	const char *name;
	int (*fn)(struct ctx *ctx);
	int min, max;		/* operands after the command */
};

static const struct command commands[] = {
	{ "install", cmd_install, 0, 0 },
	{ "uninstall", cmd_uninstall, 0, 0 },
	{ "status", cmd_status, 0, 0 },
	{ "land", cmd_land, 0, INT_MAX },
	{ "pre-receive", cmd_pre_receive, 0, 0 },
	{ "proc-receive", cmd_proc_receive, 0, 0 },
	{ "pre-push", cmd_pre_push, 1, 2 },
	{ NULL, NULL, 0, 0 }
};

/* This program's path, for starting it again in the background. */
static char *
self_path(const char *argv0)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n > 0) {
		buf[n] = '\0';
		return strdup(buf);
	}
	return strdup(argv0 && strchr(argv0, '/') ? argv0 : "wf-hooks");
}

#ifndef WF_DATADIR
#define WF_DATADIR "/usr/local/share/wf"
#endif

/*
 * Where the hook templates are: $WF_HOOK_TEMPLATES, else beside this
 * program (<bin>/../share/wf/hooks when installed, <bin>/../hooks in the
 * source tree), else the data directory it was built for.
 */
static char *
templates_dir(const char *self)
{
	const char *env = getenv("WF_HOOK_TEMPLATES");
	static const char *const rel[] = { "/../share/wf/hooks", "/../hooks",
	    NULL };
	char *bin = strdup(self), *slash, *p;
	size_t i;

	if (env && *env) {
		free(bin);
		return strdup(env);
	}
	if (bin && (slash = strrchr(bin, '/'))) {
		*slash = '\0';
		for (i = 0; rel[i]; i++) {
			if (!(p = malloc(strlen(bin) + strlen(rel[i]) + 16)))
				break;
			sprintf(p, "%s%s/pre-receive", bin, rel[i]);
			if (access(p, R_OK) == 0) {
				p[strlen(p) - 12] = '\0';
				free(bin);
				return p;
			}
			free(p);
		}
	}
	free(bin);
	return strdup(WF_DATADIR "/hooks");
}

/* The directory of this program, written into the hooks as WF_BIN. */
static char *
bin_dir(const char *self)
{
	char *d = strdup(self), *slash;

	if (d && (slash = strrchr(d, '/')) && slash != d)
		*slash = '\0';
	else if (d) {
		free(d);
		d = NULL;
	}
	return d;
}

static int
write_items(const json_t *arr)
{
	const json_t *v;
	size_t i;
	int error;

	json_array_foreach(arr, i, v)
		if ((error = wf_cmd_write_json(v)) < 0)
			return error;
	return 0;
}

/* The hooks a command is about: as asked, else by the repository's kind. */
static unsigned
which_hooks(struct ctx *ctx, git_repository *repo)
{
	if (ctx->which)
		return ctx->which;
	return git_repository_is_bare(repo) ? WF_HOOKS_SERVER :
	    WF_HOOKS_CLIENT;
}

static int
cmd_install(struct ctx *ctx)
{
	struct wf_hooks_opts o = WF_HOOKS_OPTS_INIT;
	git_repository *repo = NULL;
	json_t *res = NULL;
	char *tdir = NULL, *bdir = NULL;
	int error;

	if ((error = wf_git_open(&repo, ctx->repo_dir)) < 0)
		goto out;
	if (!(tdir = templates_dir(ctx->self))) {
		error = wf_error_oom();
		goto out;
	}
	bdir = bin_dir(ctx->self);
	o.which = which_hooks(ctx, repo);
	o.templates = tdir;
	o.bin_dir = bdir;
	if ((error = wf_hooks_install(&res, repo, &o)) < 0)
		goto out;
	error = write_items(res);
out:
	json_decref(res);
	free(tdir);
	free(bdir);
	git_repository_free(repo);
	return error < 0 ? wf_cmd_fail(error) : WF_EXIT_OK;
}

static int
cmd_uninstall(struct ctx *ctx)
{
	git_repository *repo = NULL;
	json_t *res = NULL;
	int error;

	if ((error = wf_git_open(&repo, ctx->repo_dir)) < 0 ||
	    (error = wf_hooks_uninstall(&res, repo, ctx->which ? ctx->which :
	    WF_HOOKS_ALL)) < 0)
		goto out;
	error = write_items(res);
out:
	json_decref(res);
	git_repository_free(repo);
	return error < 0 ? wf_cmd_fail(error) : WF_EXIT_OK;
}

static int
cmd_status(struct ctx *ctx)
{
	struct wf_hooks_opts o = WF_HOOKS_OPTS_INIT;
	git_repository *repo = NULL;
	json_t *res = NULL;
	char *tdir = NULL, *bdir = NULL;
	int error;

	if ((error = wf_git_open(&repo, ctx->repo_dir)) < 0)
		goto out;
	tdir = templates_dir(ctx->self);
	bdir = bin_dir(ctx->self);
	o.which = ctx->which ? ctx->which : WF_HOOKS_ALL;
	o.templates = tdir;
	o.bin_dir = bdir;
	if ((error = wf_hooks_status(&res, repo, &o)) < 0)
		goto out;
	error = write_items(res);
out:
	json_decref(res);
	free(tdir);
	free(bdir);
	git_repository_free(repo);
	return error < 0 ? wf_cmd_fail(error) : WF_EXIT_OK;
}

int
main(int argc, char **argv)
{
	struct ctx ctx;
	const struct command *cmd;
	char *self = NULL;
	int opt, code = WF_EXIT_OK, n;

	wf_cmd_init("wf-hooks");
	memset(&ctx, 0, sizeof(ctx));
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":C:", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_SERVER:
			ctx.which |= WF_HOOKS_SERVER;
			break;
		case OPT_CLIENT:
			ctx.which |= WF_HOOKS_CLIENT;
			break;
		case OPT_WAIT:
			ctx.wait = 1;
			break;
		case OPT_NEGOTIATED:
			ctx.negotiated = 1;
			break;
		case 'C':
			ctx.repo_dir = optarg;
			break;
		default:
			if (wf_cmd_other_option(&code, opt, argv, usage))
				goto done;
		}
	}
	if (optind >= argc) {
		code = wf_cmd_usage_error("no command given");
		goto done;
	}
	for (cmd = commands; cmd->name; cmd++)
		if (strcmp(cmd->name, argv[optind]) == 0)
			break;
	if (!cmd->name) {
		code = wf_cmd_usage_error("unknown command '%s'", argv[optind]);
		goto done;
	}
	n = argc - optind - 1;
	if (n < cmd->min || n > cmd->max) {
		code = n < cmd->min ? wf_cmd_usage_error("%s: missing operand",
		    cmd->name) : wf_cmd_usage_error("%s: unexpected operand "
		    "'%s'", cmd->name, argv[optind + 1 + cmd->max]);
		goto done;
	}
	if (ctx.negotiated && cmd->fn != cmd_proc_receive) {
		code = wf_cmd_usage_error("--negotiated is for proc-receive");
		goto done;
	}
	if (ctx.wait && cmd->fn != cmd_land) {
		code = wf_cmd_usage_error("--wait is for land");
		goto done;
	}
	if (ctx.which && cmd->fn != cmd_install && cmd->fn != cmd_uninstall &&
	    cmd->fn != cmd_status) {
		code = wf_cmd_usage_error("--server and --client are for "
		    "install, uninstall and status");
		goto done;
	}
	if (!(self = self_path(argv[0]))) {
		code = wf_cmd_fail(wf_error_oom());
		goto done;
	}
	ctx.self = self;
	ctx.operands = argv + optind + 1;
	ctx.noperands = n;
	code = cmd->fn(&ctx);
done:
	free(self);
	return wf_cmd_finish(code);
}
