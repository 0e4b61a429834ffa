/*
 * wf-apply: land the queued changes of a branch, batched, checked,
 * bisected, by compare-and-swap; one line of JSON per change settled.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "checks.h"
#include "common.h"
#include "clock.h"
#include "error.h"
#include "git.h"
#include "lane.h"
#include "pack.h"
#include "queue.h"

static const char usage[] =
"usage: wf-apply [--once | --watch] [--target BRANCH]... [--batch N]\n"
"                [--workers N] [--check CMD]... [--check-timeout TIME]\n"
"                [--fuzz N] [--lease TIME] [--retry-delay TIME]\n"
"                [--progress=text|json] [--db PATH] [-C DIR] [--pretty]\n"
"\n"
"Land the changes queued for a branch: lease a batch, build one commit\n"
"per change in memory on the branch tip, run the checks on the result,\n"
"bisect a failing batch down to its culprits, and move the branch by\n"
"compare-and-swap; one wf-apply at a time lands on a branch, the others\n"
"wait for it.  Write one line of JSON per change landed, failed or\n"
"dead: {\"id\", \"queue_id\", \"state\", \"commit\" | \"error\", \"target\"}.\n"
"\n"
"  --once               land what is queued now, then exit (the default;\n"
"                       a branch another wf-apply lands on is waited for)\n"
"  --watch              keep landing what comes, polling with backoff,\n"
"                       until SIGINT or SIGTERM\n"
"  --target BRANCH      the branch to land on (repeatable; default: the\n"
"                       branch HEAD points at)\n"
"  --batch N            changes leased per step (default 8)\n"
"  --workers N          leasing workers, each with its own repository\n"
"                       and queue handles (default 1)\n"
"  --check CMD          a check to pass before landing (repeatable;\n"
"                       default: git config wf.<branch>.check)\n"
"  --check-timeout TIME a check running longer is killed (default 10m)\n"
"  --fuzz N             context lines a patch hunk may drop (default 0)\n"
"  --lease TIME         lease length, extended while a step runs\n"
"                       (default 10m)\n"
"  --retry-delay TIME   first delay before a failed change is retried,\n"
"                       doubled each time (default 1s)\n"
"  --progress=FORMAT    report progress on stderr as text or json\n"
"  --db PATH            the queue database (default: $WF_DB, or\n"
"                       wf/queue.db in the repository's git directory)\n"
"  -C, --repo DIR       find the repository from DIR\n"
"  --pretty             indent the output\n"
"  --help               show this help and exit\n"
"  --version            show the version and exit\n"
"\n"
"TIME is a number with a unit: ms, s, m or h (seconds without one).\n"
"\n"
"SIGINT or SIGTERM ends wf-apply within a second or two: a check that\n"
"runs is killed (SIGTERM to its group, SIGKILL a second later), the\n"
"changes of the step under way are queued again as they were, and\n"
"wf-apply exits 75 if a step was cut short.  On start, it removes the\n"
"checkouts that killed runs left in $TMPDIR, and kills their checks.\n";

enum {
	OPT_ONCE = WF_OPT_TOOL,
	OPT_WATCH,
	OPT_TARGET,
	OPT_BATCH,
	OPT_WORKERS,
	OPT_CHECK,
	OPT_CHECK_TIMEOUT,
	OPT_FUZZ,
	OPT_LEASE,
	OPT_RETRY_DELAY,
	OPT_PROGRESS,
	OPT_DB
};

static const struct option longopts[] = {
	WF_COMMON_LONGOPTS,
	{ "once", no_argument, NULL, OPT_ONCE },
	{ "watch", no_argument, NULL, OPT_WATCH },
	{ "target", required_argument, NULL, OPT_TARGET },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "workers", required_argument, NULL, OPT_WORKERS },
	{ "check", required_argument, NULL, OPT_CHECK },
	{ "check-timeout", required_argument, NULL, OPT_CHECK_TIMEOUT },
	{ "fuzz", required_argument, NULL, OPT_FUZZ },
	{ "lease", required_argument, NULL, OPT_LEASE },
	{ "retry-delay", required_argument, NULL, OPT_RETRY_DELAY },
	{ "progress", required_argument, NULL, OPT_PROGRESS },
	{ "db", required_argument, NULL, OPT_DB },
	{ "repo", required_argument, NULL, 'C' },
	{ NULL, 0, NULL, 0 }
};

enum progress_format { PROGRESS_NONE, PROGRESS_TEXT, PROGRESS_JSON };

struct target {
	const char *name;
	char **checks;		/* NULL-terminated */
};

/* What every worker shares; `lock` guards the output and the counts. */
struct run {
	char *gitdir;
	char *db;
	struct target *targets;
	size_t ntargets;
	struct wf_apply_opts opts;
	int64_t retry_delay_ms;
	int watch;
	enum progress_format progress;
	pthread_mutex_t lock;
	int failed;		/* some change failed or is dead */
	int interrupted;	/* a signal cut a step short */
	int error;		/* the first error that ended a worker */
	char message[4096];	/* its message */
	char self[300];		/* "@HOST:PID", ending this process's names */
};

struct worker {
	struct run *run;
	pthread_t thread;
	int index;
};

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int
stopping(struct run *run)
{
	int e;

	pthread_mutex_lock(&run->lock);
	e = run->error;
	pthread_mutex_unlock(&run->lock);
	return stop || (e && !run->watch);
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	nanosleep(&ts, NULL);
}

/* "250ms", "30s", "10m", "1h" or "30" (seconds) as milliseconds. */
static int
parse_time(int64_t *out, const char *arg, const char *name)
{
	unsigned long long v;
	char *end;
	int64_t mult = 1000;

	errno = 0;
	if (*arg < '0' || *arg > '9')
		goto bad;
	v = strtoull(arg, &end, 10);
	if (errno)
		goto bad;
	if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		mult = 1000;
	else if (strcmp(end, "m") == 0)
		mult = 60000;
	else if (strcmp(end, "h") == 0)
		mult = 3600000;
	else
		goto bad;
	if (v > (unsigned long long)INT64_MAX / (unsigned long long)mult)
		goto bad;
	*out = (int64_t)v * mult;
	return 0;
bad:
	return wf_cmd_usage_error("invalid time '%s' for %s (a number and ms, "
	    "s, m or h)", arg, name);
}

static int
parse_count(size_t *out, const char *arg, const char *name, size_t min,
    size_t max)
{
	int code;

	if ((code = wf_cmd_parse_size(out, arg, name)) != 0)
		return code;
	if (*out < min || *out > max)
		return wf_cmd_usage_error("%s must be between %zu and %zu", name,
		    min, max);
	return 0;
}

/* One line on stderr for a progress event of the library. */
static void
on_progress(const json_t *ev, void *payload)
{
	struct worker *w = payload;
	struct run *run = w->run;
	const char *event = json_string_value(json_object_get(ev, "event"));
	const char *target = json_string_value(json_object_get(ev, "target"));
	json_int_t changes = json_integer_value(json_object_get(ev, "changes"));
	char *s = NULL;

	pthread_mutex_lock(&run->lock);
	if (strcmp(event, "worktree") == 0 && run->progress != PROGRESS_JSON) {
		fprintf(stderr, "%s: warning: %s: %s\n", wf_cmd_name(), target,
		    json_string_value(json_object_get(ev, "message")));
	} else if (strcmp(event, "wait") == 0 &&
	    run->progress != PROGRESS_JSON && (run->progress || !run->watch)) {
		/* --once tells why it takes longer, even without --progress. */
		const char *holder = json_string_value(json_object_get(ev,
		    "holder"));

		if (holder && *holder)
			fprintf(stderr, "%s: %s: waiting for '%s', which is "
			    "landing on it\n", wf_cmd_name(), target, holder);
		else
			fprintf(stderr, "%s: %s: waiting for another process, "
			    "which is landing on it\n", wf_cmd_name(), target);
	} else if (!run->progress) {
		/* Nothing but warnings. */
	} else if (run->progress == PROGRESS_JSON) {
		json_t *v = json_deep_copy(ev);

		if (v && json_object_set_new(v, "worker",
		    json_integer(w->index)) == 0 &&
		    (s = json_dumps(v, JSON_COMPACT)))
			fprintf(stderr, "%s\n", s);
		json_decref(v);
	} else if (strcmp(event, "lease") == 0) {
		fprintf(stderr, "%s: %s: leased %lld change%s\n", wf_cmd_name(),
		    target, (long long)json_integer_value(json_object_get(ev,
		    "count")), json_integer_value(json_object_get(ev,
		    "count")) == 1 ? "" : "s");
	} else if (strcmp(event, "build") == 0) {
		fprintf(stderr, "%s: %s: built %lld change%s in %lld ms\n",
		    wf_cmd_name(), target, (long long)changes, changes == 1 ?
		    "" : "s", (long long)json_integer_value(json_object_get(ev,
		    "ms")));
	} else if (strcmp(event, "check") == 0) {
		fprintf(stderr, "%s: %s: checks %s on %lld change%s (tree "
		    "%.12s, %s%lld ms)\n", wf_cmd_name(), target,
		    json_is_true(json_object_get(ev, "ok")) ? "pass" : "fail",
		    (long long)changes, changes == 1 ? "" : "s",
		    json_string_value(json_object_get(ev, "tree")),
		    json_is_true(json_object_get(ev, "cached")) ? "cached, " :
		    "", (long long)json_integer_value(json_object_get(ev,
		    "ms")));
	} else if (strcmp(event, "bisect") == 0) {
		fprintf(stderr, "%s: %s: bisecting %lld changes\n",
		    wf_cmd_name(), target, (long long)changes);
	} else if (strcmp(event, "moved") == 0) {
		fprintf(stderr, "%s: %s: the branch moved; building again\n",
		    wf_cmd_name(), target);
	} else if (strcmp(event, "land") == 0) {
		fprintf(stderr, "%s: %s: landed %lld change%s at %.12s\n",
		    wf_cmd_name(), target, (long long)changes, changes == 1 ?
		    "" : "s", json_string_value(json_object_get(ev, "commit")));
	} else if (strcmp(event, "found") == 0) {
		fprintf(stderr, "%s: %s: '%s' is on the branch already at "
		    "%.12s\n", wf_cmd_name(), target, json_string_value(
		    json_object_get(ev, "id")), json_string_value(
		    json_object_get(ev, "commit")));
	} else if (strcmp(event, "applied") == 0) {
		fprintf(stderr, "%s: %s: '%s' changes nothing: %.12s has it "
		    "already\n", wf_cmd_name(), target, json_string_value(
		    json_object_get(ev, "id")), json_string_value(
		    json_object_get(ev, "commit")));
	} else if (strcmp(event, "stale-lock") == 0) {
		fprintf(stderr, "%s: %s: removed the stale lock '%s'\n",
		    wf_cmd_name(), target, json_string_value(
		    json_object_get(ev, "path")));
	} else if (strcmp(event, "cleanup") == 0) {
		json_int_t n = json_integer_value(json_object_get(ev,
		    "checkouts"));
		json_int_t k = json_integer_value(json_object_get(ev,
		    "processes"));

		fprintf(stderr, "%s: after a crash: removed %lld checkout%s "
		    "of killed runs, killed %lld process%s of their checks\n",
		    wf_cmd_name(), (long long)n, n == 1 ? "" : "s",
		    (long long)k, k == 1 ? "" : "es");
	} else if (strcmp(event, "recover") == 0) {
		fprintf(stderr, "%s: %s: after a crash: %lld landed, %lld "
		    "queued again\n", wf_cmd_name(), target,
		    (long long)json_integer_value(json_object_get(ev,
		    "landed")), (long long)json_integer_value(
		    json_object_get(ev, "queued")));
	} else if (strcmp(event, "error") == 0) {
		fprintf(stderr, "%s: %s: error: %s (retrying)\n", wf_cmd_name(),
		    target, json_string_value(json_object_get(ev, "message")));
	}
	fflush(stderr);
	free(s);
	pthread_mutex_unlock(&run->lock);
}

/*
 * Write the lines of the changes settled (landed, failed, dead) and
 * count the failures.
 */
static int
report(struct run *run, json_t *res, const char *target)
{
	json_t *v;
	size_t i;
	int error = 0;

	pthread_mutex_lock(&run->lock);
	json_array_foreach(res, i, v) {
		const char *state = json_string_value(json_object_get(v,
		    "state"));

		if (strcmp(state, "landed") != 0 && strcmp(state, "failed") != 0 &&
		    strcmp(state, "dead") != 0)
			continue;
		if (strcmp(state, "landed") != 0)
			run->failed = 1;
		if (json_object_set_new(v, "target", json_string(target)) < 0) {
			error = wf_error_oom();
			break;
		}
		if ((error = wf_cmd_write_json(v)) < 0)
			break;
	}
	if (error == 0 && fflush(stdout) == EOF)
		error = wf_error_set_errno(WF_EOS, "cannot write to stdout");
	pthread_mutex_unlock(&run->lock);
	return error;
}

/* Keep the first error that ended a worker, with its message. */
static void
record_error(struct run *run, int error)
{
	pthread_mutex_lock(&run->lock);
	if (!run->error) {
		run->error = error;
		snprintf(run->message, sizeof(run->message), "%s",
		    wf_error_last());
	}
	pthread_mutex_unlock(&run->lock);
}

static int
open_handles(git_repository **repo, struct wf_queue **q, struct wf_pack **pack,
    struct run *run, int index)
{
	struct wf_queue_opts qo = WF_QUEUE_OPTS_INIT;
	char actor[64];
	int error;

	snprintf(actor, sizeof(actor), "wf-apply/%d", index);
	qo.actor = actor;
	if (run->retry_delay_ms >= 0)
		qo.backoff_ms = run->retry_delay_ms;
	if (git_repository_open(repo, run->gitdir) < 0)
		return wf_error_set_git(WF_EOS, "cannot open the repository "
		    "'%s'", run->gitdir);
	if ((error = wf_queue_open(q, run->db, &qo)) < 0)
		return error;
	return wf_pack_attach(pack, *repo);
}

/* Settle what crashed runs of wf-apply left leased on one target. */
static int
recover_target(struct worker *w, git_repository *repo, struct wf_queue *q,
    const char *target)
{
	struct run *run = w->run;
	json_t *res = NULL, *v;
	size_t i, landed = 0, queued = 0;
	int error;

	if ((error = wf_apply_recover(&res, repo, q, target, &run->opts)) < 0)
		return error;
	json_array_foreach(res, i, v) {
		if (strcmp(json_string_value(json_object_get(v, "state")),
		    "landed") == 0)
			landed++;
		else
			queued++;
	}
	if (landed + queued > 0 && run->progress) {
		json_t *ev = json_pack("{s:s, s:s, s:I, s:I}", "event",
		    "recover", "target", target, "landed", (json_int_t)landed,
		    "queued", (json_int_t)queued);

		if (ev)
			on_progress(ev, w);
		json_decref(ev);
	}
	error = report(run, res, target);
	json_decref(res);
	return error;
}

/* A worker's view of one target. */
struct slot {
	struct wf_lane *lane;
	int64_t due;		/* when to look at it again */
	int64_t nap;		/* how long to leave it when idle */
	int waiting;		/* looks since another process took it */
	int told;		/* that wait was told */
	int done;		/* --once: nothing left to lease there */
};

/* How often a target another process lands on is looked at again. */
#define LANE_POLL_MS 50

/*
 * Take the lane of target `tg` for worker `w`.  WF_EBUSY when another
 * holds it, told once per wait (unless it is a worker of this process:
 * they take turns; a holder that has not written its name yet is told
 * after a second).  A lane whose holder died has its leases settled
 * before anything else happens there.
 */
static int
take_lane(struct worker *w, struct slot *sl, const struct target *tg,
    git_repository *repo, struct wf_queue *q, const char *name)
{
	struct run *run = w->run;
	const char *holder;
	size_t hn, sn = strlen(run->self);
	int error, orphaned;

	if ((error = wf_lane_take(&orphaned, sl->lane, name)) == WF_EBUSY) {
		holder = wf_lane_holder(sl->lane);
		hn = strlen(holder);
		sl->waiting++;
		if (!sl->told && (hn > 0 || sl->waiting > 1000 /
		    LANE_POLL_MS) && (hn < sn ||
		    strcmp(holder + hn - sn, run->self) != 0)) {
			json_t *ev = json_pack("{s:s, s:s, s:s}", "event",
			    "wait", "target", tg->name, "holder", holder);

			if (ev)
				on_progress(ev, w);
			json_decref(ev);
			sl->told = 1;
		}
		return error;
	}
	if (error < 0)
		return error;
	sl->waiting = sl->told = 0;
	if (orphaned && (error = recover_target(w, repo, q, tg->name)) < 0) {
		wf_lane_drop(sl->lane);
		return error;
	}
	return 0;
}

static void *
work(void *arg)
{
	struct worker *w = arg;
	struct run *run = w->run;
	struct wf_apply_opts o = run->opts;
	git_repository *repo = NULL;
	struct wf_queue *q = NULL;
	struct wf_pack *pack = NULL;
	struct slot *slots = NULL;
	json_t *res = NULL;
	int64_t now, next;
	char owner[64];
	size_t t, k, worked, held;
	int error;

	snprintf(owner, sizeof(owner), "wf-apply/%d", w->index);
	if ((error = open_handles(&repo, &q, &pack, run, w->index)) < 0)
		goto out;
	if (!(slots = calloc(run->ntargets, sizeof(*slots)))) {
		error = wf_error_oom();
		goto out;
	}
	for (t = 0; t < run->ntargets; t++) {
		slots[t].nap = 100;
		if ((error = wf_lane_open(&slots[t].lane, repo,
		    run->targets[t].name)) < 0)
			goto out;
	}
	o.owner = owner;
	o.pack = pack;
	o.progress_payload = w;
	while (!stopping(run)) {
		worked = held = 0;
		now = wf_clock_ms();
		for (t = 0; t < run->ntargets && !stopping(run); t++) {
			/* Workers start on different targets. */
			struct slot *sl = &slots[(k = (t + (size_t)w->index) %
			    run->ntargets)];
			struct target *tg = &run->targets[k];

			if (sl->done || sl->due > now)
				continue;
			/* Another lands there: look again soon. */
			if ((error = take_lane(w, sl, tg, repo, q,
			    owner)) == WF_EBUSY) {
				held++;
				sl->due = now + LANE_POLL_MS;
				continue;
			}
			if (error == 0) {
				o.checks = (const char *const *)tg->checks;
				o.lane = sl->lane;
				error = wf_apply_step(&res, repo, q, tg->name,
				    &o);
				wf_lane_drop(sl->lane);
			}
			if (error == WF_EINTR) {
				pthread_mutex_lock(&run->lock);
				run->interrupted = 1;
				pthread_mutex_unlock(&run->lock);
				error = 0;
				goto out;
			}
			if (error < 0 && run->watch) {
				json_t *ev = json_pack("{s:s, s:s, s:s}", "event",
				    "error", "target", tg->name, "message",
				    wf_error_last());

				if (ev && run->progress)
					on_progress(ev, w);
				else
					wf_cmd_warn("%s: %s", tg->name,
					    wf_error_last());
				json_decref(ev);
				sl->due = now + sl->nap;
				sl->nap = sl->nap < 5000 ? sl->nap * 2 : 5000;
				continue;
			}
			if (error < 0)
				goto out;
			if (json_array_size(res) > 0) {
				worked++;
				sl->nap = 100;
			} else if (!run->watch) {
				sl->done = 1;
			} else {
				/* Idle: later, a little later each time. */
				sl->due = now + sl->nap;
				sl->nap = sl->nap < 5000 ? sl->nap * 2 : 5000;
			}
			error = report(run, res, tg->name);
			json_decref(res);
			res = NULL;
			if (error < 0)
				goto out;
		}
		if (worked > 0) {
			/* What landed may have let others be leased. */
			for (t = 0; t < run->ntargets; t++)
				slots[t].done = 0;
			continue;
		}
		/* --once is done when no target is left to another. */
		if (!run->watch && held == 0)
			break;
		for (next = INT64_MAX, t = 0; t < run->ntargets; t++)
			if (!slots[t].done && slots[t].due < next)
				next = slots[t].due;
		while (!stop && (now = wf_clock_ms()) < next)
			sleep_ms(next - now < 50 ? next - now : 50);
	}
	error = 0;
out:
	if (error < 0)
		record_error(run, error);
	for (t = 0; slots && t < run->ntargets; t++)
		wf_lane_free(slots[t].lane);
	free(slots);
	json_decref(res);
	wf_pack_free(pack);
	wf_queue_free(q);
	git_repository_free(repo);
	return NULL;
}

/*
 * Remove the checkouts of killed runs of wf-apply, killing what their
 * checks left running: where this run makes its own, so where theirs
 * were made if they ran with the same TMPDIR.
 */
static int
cleanup(struct run *run)
{
	struct worker w;
	size_t checkouts, processes;
	int error;

	if ((error = wf_checks_cleanup(&checkouts, &processes,
	    run->opts.tmpdir)) < 0)
		return error;
	if ((checkouts > 0 || processes > 0) && run->progress) {
		json_t *ev = json_pack("{s:s, s:I, s:I}", "event", "cleanup",
		    "checkouts", (json_int_t)checkouts, "processes",
		    (json_int_t)processes);

		memset(&w, 0, sizeof(w));
		w.run = run;
		if (ev)
			on_progress(ev, &w);
		json_decref(ev);
	}
	return 0;
}

/* Settle what crashed runs of wf-apply left leased, for every target. */
static int
recover(struct run *run, git_repository *repo, struct wf_queue *q)
{
	struct worker w;
	size_t t;
	int error = 0;

	memset(&w, 0, sizeof(w));
	w.run = run;
	for (t = 0; t < run->ntargets && error == 0; t++)
		error = recover_target(&w, repo, q, run->targets[t].name);
	return error;
}

/* The branch HEAD points at, for the default target. */
static int
head_branch(char **out, git_repository *repo)
{
	git_reference *head = NULL;
	const char *name;
	int error = 0;

	*out = NULL;
	if (git_reference_lookup(&head, repo, "HEAD") < 0)
		return wf_error_set_git(WF_EOS, "cannot read HEAD");
	if (git_reference_type(head) != GIT_REFERENCE_SYMBOLIC ||
	    strncmp(name = git_reference_symbolic_target(head), "refs/heads/",
	    11) != 0)
		error = wf_error_set(WF_EINPUT, "HEAD is not on a branch: give "
		    "--target");
	else if (!(*out = strdup(name + 11)))
		error = wf_error_oom();
	git_reference_free(head);
	return error;
}

int
main(int argc, char **argv)
{
	struct run run;
	struct worker *workers = NULL;
	struct sigaction sa;
	git_repository *repo = NULL;
	struct wf_queue *q = NULL;
	const char *db = getenv("WF_DB"), *repo_dir = NULL, **names = NULL;
	char **cli_checks = NULL, *head = NULL;
	size_t i, nnames = 0, ncli = 0, nworkers = 1, v;
	int opt, code = WF_EXIT_OK, error = 0, once = 0, lock_ok = 0;
	int64_t ms;

	wf_cmd_init("wf-apply");
	/*
	 * What is read was written by wf moments ago, or comes from packs
	 * git checked when it indexed them, and what is written names
	 * only objects just written: hashing each object again on every
	 * read, and looking up every id a new tree or commit names, would
	 * double the cost of a build.
	 */
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, 0);
	memset(&run, 0, sizeof(run));
	run.opts = (struct wf_apply_opts)WF_APPLY_OPTS_INIT;
	run.retry_delay_ms = -1;
	if (db && !*db)
		db = NULL;
	if (!(names = calloc((size_t)argc + 1, sizeof(*names))) ||
	    !(cli_checks = calloc((size_t)argc + 1, sizeof(*cli_checks)))) {
		error = wf_error_oom();
		goto out;
	}
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":C:", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_ONCE:
			once = 1;
			break;
		case OPT_WATCH:
			run.watch = 1;
			break;
		case OPT_TARGET:
			names[nnames++] = optarg;
			break;
		case OPT_BATCH:
			if ((code = parse_count(&run.opts.batch, optarg,
			    "--batch", 1, 100000)) != 0)
				goto done;
			break;
		case OPT_WORKERS:
			if ((code = parse_count(&nworkers, optarg, "--workers",
			    1, 64)) != 0)
				goto done;
			break;
		case OPT_CHECK:
			cli_checks[ncli++] = optarg;
			break;
		case OPT_CHECK_TIMEOUT:
			if ((code = parse_time(&run.opts.check_timeout_ms,
			    optarg, "--check-timeout")) != 0)
				goto done;
			if (run.opts.check_timeout_ms == 0) {
				code = wf_cmd_usage_error("--check-timeout must "
				    "be positive");
				goto done;
			}
			break;
		case OPT_FUZZ:
			if ((code = parse_count(&v, optarg, "--fuzz", 0,
			    100)) != 0)
				goto done;
			run.opts.fuzz = (unsigned)v;
			break;
		case OPT_LEASE:
			if ((code = parse_time(&ms, optarg, "--lease")) != 0)
				goto done;
			if (ms < 1000) {
				code = wf_cmd_usage_error("--lease must be at "
				    "least 1s");
				goto done;
			}
			run.opts.lease_ms = ms;
			break;
		case OPT_RETRY_DELAY:
			if ((code = parse_time(&run.retry_delay_ms, optarg,
			    "--retry-delay")) != 0)
				goto done;
			break;
		case OPT_PROGRESS:
			if (strcmp(optarg, "text") == 0) {
				run.progress = PROGRESS_TEXT;
			} else if (strcmp(optarg, "json") == 0) {
				run.progress = PROGRESS_JSON;
			} else {
				code = wf_cmd_usage_error("--progress is text or "
				    "json, not '%s'", optarg);
				goto done;
			}
			break;
		case OPT_DB:
			db = optarg;
			break;
		case 'C':
			repo_dir = optarg;
			break;
		default:
			if (wf_cmd_other_option(&code, opt, argv, usage))
				goto done;
		}
	}
	if (optind < argc) {
		code = wf_cmd_usage_error("unexpected operand '%s'",
		    argv[optind]);
		goto done;
	}
	if (once && run.watch) {
		code = wf_cmd_usage_error("--once and --watch exclude each "
		    "other");
		goto done;
	}
	/* Without --progress, only warnings are told. */
	run.opts.progress = on_progress;
	run.opts.interrupt = &stop;
	if ((error = wf_git_open(&repo, repo_dir)) < 0)
		goto out;
	if (!(run.gitdir = strdup(git_repository_path(repo)))) {
		error = wf_error_oom();
		goto out;
	}
	if (db)
		run.db = strdup(db);
	else if ((error = wf_queue_default_path(&run.db, repo)) < 0)
		goto out;
	if (!run.db) {
		error = wf_error_oom();
		goto out;
	}
	{
		char host[256];

		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		snprintf(run.self, sizeof(run.self), "@%s:%ld", host,
		    (long)getpid());
	}
	if (nnames == 0) {
		if ((error = head_branch(&head, repo)) < 0)
			goto out;
		names[nnames++] = head;
	}
	if (!(run.targets = calloc(nnames, sizeof(*run.targets)))) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < nnames; i++) {
		git_reference *ref = NULL;
		const char *name = names[i];

		if (strncmp(name, "refs/heads/", 11) == 0)
			name += 11;
		if (git_branch_lookup(&ref, repo, name, GIT_BRANCH_LOCAL) < 0) {
			error = wf_error_set(WF_ENOTFOUND, "no branch '%s'",
			    name);
			goto out;
		}
		git_reference_free(ref);
		run.targets[run.ntargets].name = name;
		if (ncli > 0) {
			size_t k;

			if (!(run.targets[run.ntargets].checks = calloc(ncli + 1,
			    sizeof(char *)))) {
				error = wf_error_oom();
				goto out;
			}
			for (k = 0; k < ncli; k++)
				if (!(run.targets[run.ntargets].checks[k] =
				    strdup(cli_checks[k]))) {
					error = wf_error_oom();
					goto out;
				}
		} else if ((error = wf_checks_configured(
		    &run.targets[run.ntargets].checks, repo, name)) < 0) {
			goto out;
		}
		run.ntargets++;
	}
	if (pthread_mutex_init(&run.lock, NULL) != 0) {
		error = wf_error_set(WF_EOS, "cannot create a lock");
		goto out;
	}
	lock_ok = 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A reader that goes away is a write error, not a death. */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	{
		struct wf_queue_opts qo = WF_QUEUE_OPTS_INIT;

		qo.actor = "wf-apply";
		if ((error = cleanup(&run)) < 0 ||
		    (error = wf_queue_open(&q, run.db, &qo)) < 0 ||
		    (error = recover(&run, repo, q)) < 0)
			goto out;
	}
	if (!(workers = calloc(nworkers, sizeof(*workers)))) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < nworkers; i++) {
		workers[i].run = &run;
		workers[i].index = (int)i;
		if (pthread_create(&workers[i].thread, NULL, work,
		    &workers[i]) != 0) {
			error = wf_error_set(WF_EOS, "cannot start a worker");
			stop = 1;
			while (i-- > 0)
				pthread_join(workers[i].thread, NULL);
			goto out;
		}
	}
	for (i = 0; i < nworkers; i++)
		pthread_join(workers[i].thread, NULL);
	if (run.error) {
		error = run.error;
		wf_error_set(error, "%s", run.message);
	} else if (run.interrupted) {
		error = wf_error_set(WF_EINTR, "interrupted: the changes of the "
		    "step under way are queued again");
	}
out:
	if (error < 0)
		code = wf_cmd_fail(error);
	else if (run.failed)
		code = WF_EXIT_NO;
done:
	if (lock_ok)
		pthread_mutex_destroy(&run.lock);
	for (i = 0; i < run.ntargets; i++)
		wf_checks_strv_free(run.targets[i].checks);
	if (run.targets && run.ntargets < nnames)
		wf_checks_strv_free(run.targets[run.ntargets].checks);
	free(run.targets);
	free(workers);
	free(run.gitdir);
	free(run.db);
	free(head);
	free(names);
	free(cli_checks);
	wf_queue_free(q);
	git_repository_free(repo);
	return wf_cmd_finish(code);
}
