/*
 * wf-queue: inspect and maintain the change queue.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "error.h"
#include "git.h"
#include "queue.h"

static const char usage[] =
"usage: wf-queue [--db PATH] [-C DIR] [--format json|text] [--pretty]\n"
"                COMMAND [ARGS]\n"
"\n"
"Inspect and maintain the change queue.  Output is JSON, one value per\n"
"line, unless --format text asks for a table for people.\n"
"\n"
"Commands:\n"
"  list [--state S] [--target T] [--since TIME] [--limit N]\n"
"                       the entries, in queue order\n"
"  show ID [--payload]  one entry, a summary of its request (or all of\n"
"                       it with --payload) and its audit log\n"
"  dead                 the dead entries (list --state dead)\n"
"  retry ID             put a dead or failed entry back in the queue\n"
"  drop ID              delete an entry that is not leased\n"
"  metrics              depth per state, age of the oldest queued entry,\n"
"                       landings and failures per hour, lease latency,\n"
"                       lock waits\n"
"  doctor [--stuck DURATION]\n"
"                       check the queue's health and say what to do\n"
"                       about each problem; exit status 1 on a problem\n"
"  reclaim              return expired leases to the queue now\n"
"  archive --older-than DURATION --to FILE\n"
"                       move the landed and dead entries finished\n"
"                       DURATION ago or earlier, with their audit log,\n"
"                       into FILE, a new .tar.gz of JSON Lines\n"
"  restore FILE         bring the entries of an archive back\n"
"\n"
"Worker commands (for scripts and hooks that land changes):\n"
"  lease --target T [--max N] [--owner NAME] [--for DURATION]\n"
"                       lease up to N (1) ready entries of T for\n"
"                       DURATION (5m); one entry per line, with its\n"
"                       lease_token and payload; none: exit status 1\n"
"  ack ID TOKEN [ID TOKEN...] [--failed [--error TEXT]]\n"
"                       the leased entries landed, or failed (retried\n"
"                       after a backoff until dead); each is acked on\n"
"                       its own, and a refused one does not stop the rest\n"
"  extend ID TOKEN [--for DURATION]\n"
"                       extend a lease\n"
"\n"
"Options:\n"
"  --db PATH            the queue database (default: $WF_DB, or\n"
"                       wf/queue.db in the repository's git directory)\n"
"  -C, --repo DIR       find the repository from DIR\n"
"  --format FORMAT      json (the default) or text\n"
"  --state STATE        queued, leased, landed, failed or dead\n"
"  --target BRANCH      only entries for BRANCH\n"
"  --since TIME         only entries created at or after TIME: a date\n"
"                       (2024-05-01, 2024-05-01T12:00:00Z), @SECONDS,\n"
"                       or a duration ago (90s, 15m, 2h, 7d, 1w)\n"
"  --limit N            at most N entries\n"
"  --max N              lease at most N entries\n"
"  --owner NAME         who holds the lease (default: wf-queue pid N)\n"
"  --for DURATION       how long a lease lasts (ms, s, m, h units)\n"
"  --stuck DURATION     doctor: ready this long and not leased is stuck\n"
"                       (default 1h)\n"
"  --failed             ack a failure, not a landing\n"
"  --error TEXT         why it failed (implies --failed)\n"
"  --older-than DURATION\n"
"                       archive: finished at least this long ago\n"
"  --to FILE            archive: the archive to create (never replaced)\n"
"  --pretty             indent the JSON output\n"
"  --help               show this help and exit\n"
"  --version            show the version and exit\n"
"\n"
"An unknown ID is a negative answer: exit status 1.\n";

enum {
	OPT_DB = WF_OPT_TOOL,
	OPT_FORMAT,
	OPT_STATE,
	OPT_TARGET,
	OPT_SINCE,
	OPT_LIMIT,
	OPT_PAYLOAD,
	OPT_MAX,
	OPT_OWNER,
	OPT_FOR,
	OPT_FAILED,
	OPT_ERROR,
	OPT_STUCK,
	OPT_OLDER_THAN,
	OPT_TO
};

static const struct option longopts[] = {
	WF_COMMON_LONGOPTS,
	{ "db", required_argument, NULL, OPT_DB },
	{ "repo", required_argument, NULL, 'C' },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "state", required_argument, NULL, OPT_STATE },
	{ "target", required_argument, NULL, OPT_TARGET },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "limit", required_argument, NULL, OPT_LIMIT },
	{ "payload", no_argument, NULL, OPT_PAYLOAD },
	{ "max", required_argument, NULL, OPT_MAX },
	{ "owner", required_argument, NULL, OPT_OWNER },
	{ "for", required_argument, NULL, OPT_FOR },
	{ "failed", no_argument, NULL, OPT_FAILED },
	{ "error", required_argument, NULL, OPT_ERROR },
	{ "stuck", required_argument, NULL, OPT_STUCK },
	{ "older-than", required_argument, NULL, OPT_OLDER_THAN },
	{ "to", required_argument, NULL, OPT_TO },
	{ NULL, 0, NULL, 0 }
};

/* Which command-specific options were given, as bits. */
enum {
	HAS_STATE = 1 << 0,
	HAS_TARGET = 1 << 1,
	HAS_SINCE = 1 << 2,
	HAS_LIMIT = 1 << 3,
	HAS_PAYLOAD = 1 << 4,
	HAS_MAX = 1 << 5,
	HAS_OWNER = 1 << 6,
	HAS_FOR = 1 << 7,
	HAS_FAILED = 1 << 8,
	HAS_ERROR = 1 << 9,
	HAS_STUCK = 1 << 10,
	HAS_OLDER_THAN = 1 << 11,
	HAS_TO = 1 << 12
};

struct run {
	struct wf_queue *q;
	int text;
	unsigned given;
	struct wf_queue_filter filter;
	int payload;
	size_t max;
	const char *owner;
	int64_t for_ms;
	int failed;
	const char *why;
	int64_t stuck_ms;
	int64_t older_than_ms;
	const char *to;
	int code;		/* exit code for a negative answer */
	char **args;
	int nargs;
};

struct command {
	const char *name;
	int (*fn)(struct run *run);
	int nargs;		/* operands taken (all required) */
	unsigned allowed;	/* HAS_* bits it accepts */
	unsigned required;	/* HAS_* bits it needs */
};

/*
 * A duration: one or more NUMBER UNIT pairs (ms, s, m, h, d, w), as in
 * "90s" or "1h30m"; a bare number is seconds.
 */
static int
parse_duration(int64_t *out, const char *arg)
{
	const char *p = arg;
	int64_t total = 0;

	if (!*p)
		return -1;
	while (*p) {
		unsigned long long n;
		int64_t unit;
		char *end;

		if (*p < '0' || *p > '9')
			return -1;
		errno = 0;
		n = strtoull(p, &end, 10);
		if (errno || n > (1ULL << 40))
			return -1;
		p = end;
		if (strncmp(p, "ms", 2) == 0) {
			unit = 1;
			p += 2;
		} else if (*p == 's' || *p == '\0') {
			unit = 1000;
			p += !!*p;
		} else if (*p == 'm') {
			unit = 60000;
			p++;
		} else if (*p == 'h') {
			unit = 3600000;
			p++;
		} else if (*p == 'd') {
			unit = 86400000;
			p++;
		} else if (*p == 'w') {
			unit = 7 * 86400000LL;
			p++;
		} else {
			return -1;
		}
		total += (int64_t)n * unit;
	}
	*out = total;
	return 0;
}

/*
 * A point in time: YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS]Z (or a space for
 * the T; UTC), @SECONDS since the epoch, or a duration ago.
 */
static int
parse_time(int64_t *out, const char *arg)
{
	struct tm tm;
	int64_t ago;
	const char *rest;
	char *end;
	int n;

	if (arg[0] == '@') {
		long long s;

		errno = 0;
		s = strtoll(arg + 1, &end, 10);
		if (errno || end == arg + 1 || *end || s < 0)
			return -1;
		*out = (int64_t)s * 1000;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	n = 0;
	if (sscanf(arg, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	    &n) == 3 && n == 10) {
		rest = arg + n;
		if ((*rest == 'T' || *rest == ' ') && (n = 0, sscanf(rest + 1,
		    "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &n) == 2) && n == 5) {
			rest += 1 + n;
			if (*rest == ':' && (n = 0, sscanf(rest + 1, "%2d%n",
			    &tm.tm_sec, &n) == 1) && n == 2)
				rest += 1 + n;
			if (*rest == 'Z')
				rest++;
		}
		if (*rest || tm.tm_mon < 1 || tm.tm_mon > 12 ||
		    tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
		    tm.tm_min > 59 || tm.tm_sec > 60)
			return -1;
		tm.tm_year -= 1900;
		tm.tm_mon--;
		*out = (int64_t)timegm(&tm) * 1000;
		return 0;
	}
	if (parse_duration(&ago, arg) < 0)
		return -1;
	*out = wf_queue_now() - ago;
	return 0;
}

static const char *
str(const json_t *v, const char *key)
{
	const char *s = json_string_value(json_object_get(v, key));

	return s ? s : "-";
}

static long long
num(const json_t *v, const char *key)
{
	return (long long)json_integer_value(json_object_get(v, key));
}

static int
write_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
write_line(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vprintf(fmt, ap);
	va_end(ap);
	if (n < 0)
		return wf_error_set_errno(WF_EOS, "cannot write to stdout");
	return 0;
}

/* Entries as JSON Lines, or a table. */
static int
write_entries(const json_t *arr, int text)
{
	const json_t *e;
	size_t i;
	int error;

	if (text && json_array_size(arr) > 0 &&
	    (error = write_line("%6s  %-7s %4s %7s  %-12s %-24s  %s\n", "QID",
	    "STATE", "PRI", "TRIES", "TARGET", "CREATED", "ID")) < 0)
		return error;
	json_array_foreach(arr, i, e) {
		if (!text) {
			if ((error = wf_cmd_write_json(e)) < 0)
				return error;
			continue;
		}
		if ((error = write_line("%6lld  %-7s %4lld %3lld/%-3lld  %-12s "
		    "%-24s  %s%s\n", num(e, "queue_id"), str(e, "state"),
		    num(e, "priority"), num(e, "attempts"),
		    num(e, "max_attempts"), str(e, "target"),
		    str(e, "created_at"), str(e, "id"),
		    num(e, "blocked") > 0 ? " (blocked)" : "")) < 0)
			return error;
	}
	return 0;
}

static int
cmd_list(struct run *run)
{
	json_t *arr = NULL;
	int error;

	if ((error = wf_queue_list(&arr, run->q, &run->filter)) < 0)
		return error;
	error = write_entries(arr, run->text);
	json_decref(arr);
	return error;
}

static int
cmd_dead(struct run *run)
{
	run->filter.state = "dead";
	return cmd_list(run);
}

/*
 * What a request holds, without its bulk: the patch and file contents
 * are counted, not copied.
 */
static json_t *
summary(const json_t *payload)
{
	static const char *const keep[] = { "kind", "base", "head", "message",
	    "author", "depends_on", "meta", NULL };
	json_t *s = json_object(), *x, *f;
	char *dump;
	size_t i;

	if (!s)
		return NULL;
	for (i = 0; keep[i]; i++)
		if ((x = json_object_get(payload, keep[i])) &&
		    json_object_set(s, keep[i], x) < 0)
			goto oom;
	if ((x = json_object_get(payload, "patch")) &&
	    json_object_set_new(s, "patch_bytes",
	    json_integer((json_int_t)json_string_length(x))) < 0)
		goto oom;
	if ((x = json_object_get(payload, "files"))) {
		json_int_t del = 0;

		json_array_foreach(x, i, f)
			del += json_is_true(json_object_get(f, "delete"));
		if (json_object_set_new(s, "files",
		    json_integer((json_int_t)json_array_size(x))) < 0 ||
		    json_object_set_new(s, "deletes", json_integer(del)) < 0)
			goto oom;
	}
	if (!(dump = json_dumps(payload, JSON_COMPACT)))
		goto oom;
	i = strlen(dump);
	free(dump);
	if (json_object_set_new(s, "bytes", json_integer((json_int_t)i)) < 0)
		goto oom;
	return s;
oom:
	json_decref(s);
	return NULL;
}

static int
show_text(const json_t *v)
{
	const json_t *p = json_object_get(v, "payload"), *a, *x;
	size_t i;
	int error;

	if ((error = write_line("entry      %s (queue id %lld)\n"
	    "state      %s, attempt %lld of %lld%s\n"
	    "target     %s\n"
	    "kind       %s\n"
	    "priority   %lld\n"
	    "hash       %s\n"
	    "created    %s\n"
	    "updated    %s\n", str(v, "id"), num(v, "queue_id"),
	    str(v, "state"), num(v, "attempts"), num(v, "max_attempts"),
	    num(v, "blocked") > 0 ? ", blocked by dependencies" : "",
	    str(v, "target"), str(v, "kind"), num(v, "priority"),
	    str(v, "hash"), str(v, "created_at"), str(v, "updated_at"))) < 0)
		return error;
	if (json_is_string(json_object_get(v, "finished_at")) &&
	    (error = write_line("finished   %s\n", str(v, "finished_at"))) < 0)
		return error;
	if (json_is_string(json_object_get(v, "lease_owner")) &&
	    (error = write_line("lease      %s until %s, token %s\n",
	    str(v, "lease_owner"), str(v, "lease_expires"),
	    str(v, "lease_token"))) < 0)
		return error;
	if (json_is_string(json_object_get(v, "not_before")) &&
	    (error = write_line("not before %s\n", str(v, "not_before"))) < 0)
		return error;
	if (json_is_string(json_object_get(v, "last_error")) &&
	    (error = write_line("last error %s\n", str(v, "last_error"))) < 0)
		return error;
	json_array_foreach(json_object_get(v, "depends_on"), i, x)
		if ((error = write_line("depends on %s\n",
		    json_string_value(x))) < 0)
			return error;
	json_array_foreach(json_object_get(v, "paths"), i, x)
		if ((error = write_line("%s %s\n", i ? "          " : "paths     ",
		    json_string_value(x))) < 0)
			return error;
	if (json_is_string(json_object_get(p, "message")) &&
	    (error = write_line("message    %.*s\n",
	    (int)strcspn(str(p, "message"), "\n"), str(p, "message"))) < 0)
		return error;
	if ((x = json_object_get(p, "patch_bytes")) &&
	    (error = write_line("payload    %lld bytes, patch of %lld\n",
	    num(p, "bytes"), (long long)json_integer_value(x))) < 0)
		return error;
	if (json_object_get(p, "files") &&
	    (error = write_line("payload    %lld bytes, %lld files (%lld "
	    "deleted)\n", num(p, "bytes"), num(p, "files"),
	    num(p, "deletes"))) < 0)
		return error;
	if (json_is_string(json_object_get(p, "head")) &&
	    (error = write_line("commits    %s..%s\n", str(p, "base"),
	    str(p, "head"))) < 0)
		return error;
	if ((error = write_line("audit\n")) < 0)
		return error;
	json_array_foreach(json_object_get(v, "audit"), i, a)
		if ((error = write_line("  %s  %-7s -> %-7s  %s (%s)\n",
		    str(a, "when"), str(a, "from"), str(a, "to"), str(a, "why"),
		    str(a, "who"))) < 0)
			return error;
	return 0;
}

static int
cmd_show(struct run *run)
{
	json_t *v = NULL, *s;
	int error;

	if ((error = wf_queue_show(&v, run->q, run->args[0])) < 0)
		return error;
	if (!run->payload || run->text) {
		if (!(s = summary(json_object_get(v, "payload"))) ||
		    json_object_set_new(v, "payload", s) < 0) {
			error = wf_error_oom();
			goto out;
		}
	}
	error = run->text ? show_text(v) : wf_cmd_write_json(v);
out:
	json_decref(v);
	return error;
}

/* The entry `id` as list shows it, for the commands that change one. */
static int
write_entry(struct run *run, const char *id)
{
	json_t *v = NULL, *arr = NULL;
	int error;

	if ((error = wf_queue_show(&v, run->q, id)) < 0)
		return error;
	json_object_del(v, "payload");
	json_object_del(v, "audit");
	if (!(arr = json_array()) || json_array_append(arr, v) < 0)
		error = wf_error_oom();
	else
		error = write_entries(arr, run->text);
	json_decref(arr);
	json_decref(v);
	return error;
}

static int
cmd_retry(struct run *run)
{
	int error;

	if ((error = wf_queue_retry(run->q, run->args[0])) < 0)
		return error;
	return write_entry(run, run->args[0]);
}

static int
cmd_drop(struct run *run)
{
	json_t *v = NULL, *out = NULL;
	int error;

	/* Report what was dropped; drop itself re-checks the state. */
	if ((error = wf_queue_show(&v, run->q, run->args[0])) < 0)
		return error;
	if ((error = wf_queue_drop(run->q, run->args[0])) < 0)
		goto out;
	if (run->text) {
		error = write_line("dropped %s (queue id %lld, %s)\n",
		    str(v, "id"), num(v, "queue_id"), str(v, "state"));
		goto out;
	}
	if (!(out = json_pack("{s:O, s:O, s:s, s:O}", "id",
	    json_object_get(v, "id"), "queue_id",
	    json_object_get(v, "queue_id"), "state", "dropped", "was",
	    json_object_get(v, "state")))) {
		error = wf_error_oom();
		goto out;
	}
	error = wf_cmd_write_json(out);
out:
	json_decref(out);
	json_decref(v);
	return error;
}

static int
metrics_text(const json_t *m)
{
	const json_t *d = json_object_get(m, "depth"), *x;
	size_t i;
	int error;
	static const char *const states[] = { "queued", "leased", "landed",
	    "failed", "dead" };

	for (i = 0; i < sizeof(states) / sizeof(*states); i++)
		if ((error = write_line("depth %-8s %lld\n", states[i],
		    num(d, states[i]))) < 0)
			return error;
	if ((error = write_line("blocked              %lld\n",
	    num(m, "blocked"))) < 0)
		return error;
	x = json_object_get(m, "oldest_queued_age_ms");
	if ((error = json_is_integer(x) ?
	    write_line("oldest queued        %.1f s\n",
	    (double)json_integer_value(x) / 1000.0) :
	    write_line("oldest queued        -\n")) < 0)
		return error;
	if ((error = write_line("landed last hour     %lld\n"
	    "failed last hour     %lld\n"
	    "landed per hour, 24h %.2f\n"
	    "failed per hour, 24h %.2f\n"
	    "leases               %lld\n",
	    num(m, "landed_last_hour"), num(m, "failed_last_hour"),
	    json_real_value(json_object_get(m, "landed_per_hour_24h")),
	    json_real_value(json_object_get(m, "failed_per_hour_24h")),
	    num(m, "leases"))) < 0)
		return error;
	x = json_object_get(m, "lease_latency_ms_mean");
	if ((error = json_is_real(x) ?
	    write_line("lease latency, mean  %.1f ms\n", json_real_value(x)) :
	    write_line("lease latency, mean  -\n")) < 0)
		return error;
	return write_line("busy retries         %lld\n",
	    num(m, "busy_retries"));
}

static int
cmd_metrics(struct run *run)
{
	json_t *m = NULL;
	int error;

	if ((error = wf_queue_metrics(&m, run->q)) < 0)
		return error;
	error = run->text ? metrics_text(m) : wf_cmd_write_json(m);
	json_decref(m);
	return error;
}

static int
cmd_doctor(struct run *run)
{
	struct wf_queue_doctor_opts o = WF_QUEUE_DOCTOR_OPTS_INIT;
	json_t *r = NULL, *c;
	size_t i;
	int error = 0;

	if (run->stuck_ms)
		o.stuck_ms = run->stuck_ms;
	if ((error = wf_queue_doctor(&r, run->q, &o)) < 0)
		return error;
	if (!json_is_true(json_object_get(r, "ok")))
		run->code = WF_EXIT_NO;
	if (!run->text) {
		error = wf_cmd_write_json(r);
		goto out;
	}
	json_array_foreach(json_object_get(r, "checks"), i, c) {
		int ok = json_is_true(json_object_get(c, "ok"));

		if ((error = write_line("%-4s %-15s %s\n", ok ? "ok" : "FAIL",
		    str(c, "check"), str(c, "detail"))) < 0)
			goto out;
		if (!ok && (error = write_line("     %-15s fix: %s\n", "",
		    str(c, "advice"))) < 0)
			goto out;
	}
out:
	json_decref(r);
	return error;
}

static int
cmd_reclaim(struct run *run)
{
	json_t *v;
	size_t n = 0;
	int error;

	if ((error = wf_queue_reclaim(&n, run->q)) < 0)
		return error;
	if (run->text)
		return write_line("reclaimed %zu expired lease%s\n", n,
		    n == 1 ? "" : "s");
	if (!(v = json_pack("{s:I}", "reclaimed", (json_int_t)n)))
		return wf_error_oom();
	error = wf_cmd_write_json(v);
	json_decref(v);
	return error;
}

static int
cmd_lease(struct run *run)
{
	json_t *arr = NULL, *e;
	char owner[64];
	size_t i;
	int error;

	if (!run->owner) {
		snprintf(owner, sizeof(owner), "wf-queue pid %ld",
		    (long)getpid());
		run->owner = owner;
	}
	if ((error = wf_queue_lease(&arr, run->q, run->filter.target,
	    run->max ? run->max : 1, run->owner,
	    run->for_ms ? run->for_ms : 300000)) < 0)
		return error;
	json_array_foreach(arr, i, e) {
		json_t *payload;

		if ((error = wf_queue_payload(&payload, e)) < 0 ||
		    (error = wf_cmd_write_json(e)) < 0)
			goto out;
	}
	if (json_array_size(arr) == 0)
		run->code = WF_EXIT_NO;
out:
	json_decref(arr);
	return error;
}

static int
cmd_ack(struct run *run)
{
	int i, error, first = 0;

	/* Each pair in its own transaction, as separate calls would be. */
	for (i = 0; i + 1 < run->nargs; i += 2) {
		if (run->failed)
			error = wf_queue_ack_failed(run->q, run->args[i],
			    run->args[i + 1], run->why);
		else
			error = wf_queue_ack_landed(run->q, run->args[i],
			    run->args[i + 1], NULL);
		if (error == 0)
			error = write_entry(run, run->args[i]);
		if (error == WF_EOS || error == WF_ENOMEM)
			return error;
		if (error < 0) {
			wf_cmd_error("%s", wf_error_last());
			if (!first)
				first = error;
		}
	}
	if (first == WF_ENOTFOUND)
		run->code = WF_EXIT_NO;
	else if (first < 0)
		run->code = wf_cmd_exit_code(first);
	return 0;
}

static int
cmd_extend(struct run *run)
{
	int error;

	if ((error = wf_queue_extend(run->q, run->args[0], run->args[1],
	    run->for_ms ? run->for_ms : 300000)) < 0)
		return error;
	return write_entry(run, run->args[0]);
}

static int
cmd_archive(struct run *run)
{
	json_t *r = NULL;
	int error;

	if ((error = wf_queue_archive(&r, run->q, run->to,
	    run->older_than_ms)) < 0)
		return error;
	error = run->text ? write_line("archived %lld entr%s (%lld audit "
	    "rows) finished before %s to %s\n", num(r, "entries"),
	    num(r, "entries") == 1 ? "y" : "ies", num(r, "audit"),
	    str(r, "cutoff"), str(r, "archive")) : wf_cmd_write_json(r);
	json_decref(r);
	return error;
}

static int
cmd_restore(struct run *run)
{
	json_t *r = NULL;
	int error;

	if ((error = wf_queue_restore(&r, run->q, run->args[0])) < 0)
		return error;
	error = run->text ? write_line("restored %lld entr%s (%lld audit "
	    "rows) from %s\n", num(r, "entries"), num(r, "entries") == 1 ?
	    "y" : "ies", num(r, "audit"), str(r, "archive")) :
	    wf_cmd_write_json(r);
	json_decref(r);
	return error;
}

static const struct command commands[] = {
	{ "list", cmd_list, 0, HAS_STATE | HAS_TARGET | HAS_SINCE | HAS_LIMIT,
	    0 },
	{ "show", cmd_show, 1, HAS_PAYLOAD, 0 },
	{ "dead", cmd_dead, 0, HAS_TARGET | HAS_SINCE | HAS_LIMIT, 0 },
	{ "retry", cmd_retry, 1, 0, 0 },
	{ "drop", cmd_drop, 1, 0, 0 },
	{ "metrics", cmd_metrics, 0, 0, 0 },
	{ "doctor", cmd_doctor, 0, HAS_STUCK, 0 },
	{ "reclaim", cmd_reclaim, 0, 0, 0 },
	{ "lease", cmd_lease, 0, HAS_TARGET | HAS_MAX | HAS_OWNER | HAS_FOR,
	    HAS_TARGET },
	{ "ack", cmd_ack, 2, HAS_FAILED | HAS_ERROR, 0 },
	{ "extend", cmd_extend, 2, HAS_FOR, 0 },
	{ "archive", cmd_archive, 0, HAS_OLDER_THAN | HAS_TO,
	    HAS_OLDER_THAN | HAS_TO },
	{ "restore", cmd_restore, 1, 0, 0 },
	{ NULL, NULL, 0, 0, 0 }
};

static const char *const option_name[] = {
	"--state", "--target", "--since", "--limit", "--payload", "--max",
	"--owner", "--for", "--failed", "--error", "--stuck", "--older-than",
	"--to"
};

static int
open_queue(struct wf_queue **out, const char *db, const char *repo_dir)
{
	git_repository *repo = NULL;
	char *path = NULL;
	int error;

	*out = NULL;
	if (!db) {
		if ((error = wf_git_open(&repo, repo_dir)) < 0)
			goto out;
		if ((error = wf_queue_default_path(&path, repo)) < 0)
			goto out;
		db = path;
	}
	error = wf_queue_open(out, db, NULL);
out:
	free(path);
	git_repository_free(repo);
	return error;
}

int
main(int argc, char **argv)
{
	struct run run;
	const struct command *cmd;
	const char *db = getenv("WF_DB"), *repo_dir = NULL;
	int opt, code = WF_EXIT_OK, error = 0;
	size_t limit;
	unsigned bit;

	wf_cmd_init("wf-queue");
	memset(&run, 0, sizeof(run));
	run.filter = (struct wf_queue_filter)WF_QUEUE_FILTER_INIT;
	if (db && !*db)
		db = NULL;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":C:", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_DB:
			db = optarg;
			break;
		case 'C':
			repo_dir = optarg;
			break;
		case OPT_FORMAT:
			if (strcmp(optarg, "text") == 0)
				run.text = 1;
			else if (strcmp(optarg, "json") == 0)
				run.text = 0;
			else
				return wf_cmd_usage_error("unknown format '%s' "
				    "(json, text)", optarg);
			break;
		case OPT_STATE:
			run.filter.state = optarg;
			run.given |= HAS_STATE;
			break;
		case OPT_TARGET:
			run.filter.target = optarg;
			run.given |= HAS_TARGET;
			break;
		case OPT_SINCE:
			if (parse_time(&run.filter.since_ms, optarg) < 0)
				return wf_cmd_usage_error("invalid time '%s' for "
				    "--since", optarg);
			run.given |= HAS_SINCE;
			break;
		case OPT_LIMIT:
			if ((code = wf_cmd_parse_size(&limit, optarg,
			    "--limit")) != 0)
				return code;
			if (limit == 0)
				return wf_cmd_usage_error("--limit must be at "
				    "least 1");
			run.filter.limit = limit;
			run.given |= HAS_LIMIT;
			break;
		case OPT_PAYLOAD:
			run.payload = 1;
			run.given |= HAS_PAYLOAD;
			break;
		case OPT_MAX:
			if ((code = wf_cmd_parse_size(&run.max, optarg,
			    "--max")) != 0)
				return code;
			if (run.max == 0 || run.max > 10000)
				return wf_cmd_usage_error("--max must be between "
				    "1 and 10000");
			run.given |= HAS_MAX;
			break;
		case OPT_OWNER:
			if (!*optarg)
				return wf_cmd_usage_error("--owner is empty");
			run.owner = optarg;
			run.given |= HAS_OWNER;
			break;
		case OPT_FOR:
			if (parse_duration(&run.for_ms, optarg) < 0 ||
			    run.for_ms <= 0)
				return wf_cmd_usage_error("invalid duration '%s' "
				    "for --for", optarg);
			run.given |= HAS_FOR;
			break;
		case OPT_STUCK:
			if (parse_duration(&run.stuck_ms, optarg) < 0 ||
			    run.stuck_ms <= 0)
				return wf_cmd_usage_error("invalid duration '%s' "
				    "for --stuck", optarg);
			run.given |= HAS_STUCK;
			break;
		case OPT_OLDER_THAN:
			if (parse_duration(&run.older_than_ms, optarg) < 0)
				return wf_cmd_usage_error("invalid duration '%s' "
				    "for --older-than", optarg);
			run.given |= HAS_OLDER_THAN;
			break;
		case OPT_TO:
			if (!*optarg)
				return wf_cmd_usage_error("--to is empty");
			run.to = optarg;
			run.given |= HAS_TO;
			break;
		case OPT_FAILED:
			run.failed = 1;
			run.given |= HAS_FAILED;
			break;
		case OPT_ERROR:
			run.why = optarg;
			run.failed = 1;
			run.given |= HAS_ERROR;
			break;
		default:
			if (wf_cmd_other_option(&code, opt, argv, usage))
				return wf_cmd_finish(code);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		return wf_cmd_usage_error("no command given");
	for (cmd = commands; cmd->name; cmd++)
		if (strcmp(cmd->name, argv[0]) == 0)
			break;
	if (!cmd->name)
		return wf_cmd_usage_error("unknown command '%s'", argv[0]);
	for (bit = 0; bit < sizeof(option_name) / sizeof(*option_name); bit++)
		if ((run.given & ~cmd->allowed) & (1u << bit))
			return wf_cmd_usage_error("%s does not apply to '%s'",
			    option_name[bit], cmd->name);
		else if ((cmd->required & ~run.given) & (1u << bit))
			return wf_cmd_usage_error("'%s' needs %s", cmd->name,
			    option_name[bit]);
	if (cmd->fn == cmd_ack ? argc - 1 < 2 || (argc - 1) % 2 != 0 :
	    argc - 1 != cmd->nargs)
		return wf_cmd_usage_error("'%s' takes %s", cmd->name,
		    cmd->nargs == 0 ? "no operands" : cmd->fn == cmd_restore ?
		    "an archive FILE" : cmd->nargs == 1 ? "an ID" :
		    "an ID and a lease token");
	run.args = argv + 1;
	run.nargs = argc - 1;
	if ((error = open_queue(&run.q, db, repo_dir)) < 0)
		goto out;
	error = cmd->fn(&run);
out:
	if (error == WF_ENOTFOUND && run.q) {
		/* "No such entry" is an answer, not a failure of the tool. */
		wf_cmd_error("%s", wf_error_last());
		code = WF_EXIT_NO;
	} else if (error < 0) {
		code = wf_cmd_fail(error);
	} else if (run.code) {
		code = run.code;
	}
	wf_queue_free(run.q);
	wf_git_shutdown();
	return wf_cmd_finish(code);
}
