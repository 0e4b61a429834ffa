/*
 * wf-emit: turn what the other tools write into telemetry events and
 * send them to standard output, a file or a unix socket, keeping in an
 * outbox what a sink cannot take.
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "error.h"
#include "event.h"
#include "git.h"
#include "hash.h"
#include "json.h"
#include "outbox.h"
#include "sink.h"

static const char usage[] =
"usage: wf-emit plan_created [options] [FILE...]\n"
"       wf-emit execution_summary [--skipped] [options] [FILE...]\n"
"       wf-emit change [options] [FILE...]\n"
"       wf-emit metrics [options] [FILE...]\n"
"       wf-emit flush [--output FILE] [--socket PATH] [--outbox PATH]\n"
"\n"
"Read JSON values from the FILEs or standard input (\"-\") and emit one\n"
"telemetry event for each, as a line of JSON:\n"
"\n"
"  plan_created       multi_workflow.plan_created, from ExecutionPlans\n"
"                     (what wf-plan writes)\n"
"  execution_summary  multi_workflow.execution_summary, from execution\n"
"                     summaries (what wf-run writes); with --skipped,\n"
"                     the preview-skip summary of preview-only plans\n"
"  change             wf.change.enqueued|landed|failed|dead, from the\n"
"                     lines wf-enqueue and wf-apply write\n"
"  metrics            one wf.batch.metrics event for the whole input:\n"
"                     summaries and change events, bare or CloudEvents\n"
"  flush              deliver the events kept in the outbox\n"
"\n"
"  --output FILE          append the events to FILE, one write each\n"
"  --socket PATH          send the events to the unix socket PATH\n"
"  --fsync                sync FILE (and the outbox) after each event\n"
"  --strict               fail when a sink fails, rather than keep its\n"
"                         events in the outbox for 'wf-emit flush'\n"
"  --outbox PATH          the outbox (default: $WF_OUTBOX, else\n"
"                         wf/outbox.db in the git directory)\n"
"  --tee                  copy each input value to standard output\n"
"                         (needs --output or --socket)\n"
"  --cloudevents          wrap each event in a CloudEvents 1.0 envelope\n"
"  --source URI           the envelope's source (default urn:wf:wf-emit)\n"
"  --time SECONDS|none    the envelope's time (default: now)\n"
"  --redact-paths MODE    keep (default), hash or drop the paths of\n"
"                         created_files and deliverables\n"
"  --skipped              execution_summary of preview-only plans\n"
"  --pretty               indent the events written to standard output\n"
"  --help                 show this help and exit\n"
"  --version              show the version and exit\n";

enum command {
	CMD_PLAN_CREATED,
	CMD_EXECUTION_SUMMARY,
	CMD_CHANGE,
	CMD_METRICS,
	CMD_FLUSH
};

static const char *const command_names[] = {
	"plan_created", "execution_summary", "change", "metrics", "flush", NULL
};

enum {
	OPT_OUTPUT = WF_OPT_TOOL,
	OPT_SOCKET,
	OPT_FSYNC,
	OPT_STRICT,
	OPT_OUTBOX,
	OPT_TEE,
	OPT_CLOUDEVENTS,
	OPT_SOURCE,
	OPT_TIME,
	OPT_REDACT_PATHS,
	OPT_SKIPPED
};

static const struct option longopts[] = {
	WF_COMMON_LONGOPTS,
	{ "output", required_argument, NULL, OPT_OUTPUT },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "fsync", no_argument, NULL, OPT_FSYNC },
	{ "strict", no_argument, NULL, OPT_STRICT },
	{ "outbox", required_argument, NULL, OPT_OUTBOX },
	{ "tee", no_argument, NULL, OPT_TEE },
	{ "cloudevents", no_argument, NULL, OPT_CLOUDEVENTS },
	{ "source", required_argument, NULL, OPT_SOURCE },
	{ "time", required_argument, NULL, OPT_TIME },
	{ "redact-paths", required_argument, NULL, OPT_REDACT_PATHS },
	{ "skipped", no_argument, NULL, OPT_SKIPPED },
	{ NULL, 0, NULL, 0 }
};

#define MAX_SINKS 2

struct run {
	enum command cmd;
	struct wf_event_opts opts;
	const char *output, *socket, *outbox;
	int fsync, strict, tee, skipped, pretty;
	struct wf_sink *sinks[MAX_SINKS];
	int warned[MAX_SINKS];
	size_t nsinks;
	int to_stdout;			/* the one sink is standard output */
	struct wf_event_batch *batch;	/* metrics */
	char *outbox_buf;		/* a default outbox path, owned */
};

/* Copy an input value to standard output as it was read. */
static int
tee(const struct wf_json_doc *doc)
{
	if (fwrite(doc->text, 1, doc->len, stdout) != doc->len ||
	    putchar('\n') == EOF || fflush(stdout) == EOF)
		return wf_error_set_errno(WF_EOS, "cannot write to stdout");
	return 0;
}

/* Send one event to every sink. */
static int
emit(struct run *run, const struct wf_event *ev)
{
	char *line = NULL, *pretty = NULL, hex[GIT_OID_HEXSZ + 1];
	size_t len, plen, i;
	git_oid id;
	int spooled, error;

	if ((error = wf_event_render(&line, &len, &id, ev, &run->opts)) < 0)
		goto out;
	wf_hash_hex(hex, &id);
	for (i = 0; i < run->nsinks; i++) {
		const char *l = line;
		size_t n = len;

		if (run->to_stdout && run->pretty) {
			if (!pretty && (error = wf_event_render_pretty(&pretty,
			    &plen, ev, &run->opts)) < 0)
				goto out;
			l = pretty;
			n = plen;
		}
		if ((error = wf_sink_write(&spooled, run->sinks[i], hex, l,
		    n)) < 0)
			goto out;
		if (spooled && !run->warned[i]) {
			wf_cmd_warn("%s; keeping its events in the outbox '%s' "
			    "for 'wf-emit flush'",
			    wf_sink_failure(run->sinks[i]), run->outbox);
			run->warned[i] = 1;
		}
	}
out:
	free(line);
	free(pretty);
	return error;
}

static int
emit_one(const struct wf_json_doc *doc, void *ctx)
{
	struct run *run = ctx;
	struct wf_event *ev = NULL;
	int error;

	switch (run->cmd) {
	case CMD_PLAN_CREATED:
		error = wf_event_from_plan(&ev, doc);
		break;
	case CMD_EXECUTION_SUMMARY:
		error = run->skipped ? wf_event_from_skipped_plan(&ev, doc) :
		    wf_event_from_summary(&ev, doc);
		break;
	case CMD_CHANGE:
		error = wf_event_from_change(&ev, doc);
		break;
	default:
		/* Metrics: counted now, emitted at the end. */
		error = wf_event_batch_add(run->batch, doc);
		break;
	}
	if (error == 0 && ev)
		error = emit(run, ev);
	if (error == 0 && run->tee)
		error = tee(doc);
	wf_event_free(ev);
	return error;
}

/*
 * The outbox when none was named: $WF_OUTBOX; beside the queue of $WF_DB;
 * in the repository's git directory; in the user's state directory.
 */
static int
find_outbox(struct run *run)
{
	const char *env, *home;
	git_repository *repo = NULL;
	size_t n;

	if (run->outbox)
		return 0;
	if ((env = getenv("WF_OUTBOX")) && *env) {
		run->outbox = env;
		return 0;
	}
	if ((env = getenv("WF_DB")) && *env) {
		const char *slash = strrchr(env, '/');
		int dir = slash ? (int)(slash - env + 1) : 0;

		n = (size_t)dir + sizeof("outbox.db");
		if (!(run->outbox_buf = malloc(n)))
			return wf_error_oom();
		snprintf(run->outbox_buf, n, "%.*soutbox.db", dir, env);
		run->outbox = run->outbox_buf;
		return 0;
	}
	if (wf_git_open(&repo, NULL) == 0) {
		int error = wf_outbox_default_path(&run->outbox_buf, repo);

		git_repository_free(repo);
		if (error < 0)
			return error;
		run->outbox = run->outbox_buf;
		return 0;
	}
	wf_error_clear();
	env = getenv("XDG_STATE_HOME");
	home = getenv("HOME");
	if ((!env || !*env) && (!home || !*home))
		return wf_error_set(WF_EOS, "no place for the outbox: give "
		    "--outbox or set WF_OUTBOX");
	n = strlen(env && *env ? env : home) + sizeof("/.local/state/wf/outbox.db");
	if (!(run->outbox_buf = malloc(n)))
		return wf_error_oom();
	if (env && *env)
		snprintf(run->outbox_buf, n, "%s/wf/outbox.db", env);
	else
		snprintf(run->outbox_buf, n, "%s/.local/state/wf/outbox.db",
		    home);
	run->outbox = run->outbox_buf;
	return 0;
}

static int
open_sinks(struct run *run)
{
	struct wf_sink_opts so = WF_SINK_OPTS_INIT;
	int error;

	if (!run->output && !run->socket) {
		run->to_stdout = 1;
		return wf_sink_open_fd(&run->sinks[run->nsinks++], STDOUT_FILENO,
		    "stdout");
	}
	if (!run->strict && (error = find_outbox(run)) < 0)
		return error;
	so.fsync = run->fsync;
	so.outbox = run->strict ? NULL : run->outbox;
	if (run->output && (error = wf_sink_open_file(
	    &run->sinks[run->nsinks++], run->output, &so)) < 0)
		return error;
	if (run->socket && (error = wf_sink_open_socket(
	    &run->sinks[run->nsinks++], run->socket, &so)) < 0)
		return error;
	return 0;
}

/* Report one sink's flush on stdout. */
static int
report_flush(const char *key, size_t delivered, size_t pending)
{
	json_t *v = json_pack("{s:s, s:I, s:I}", "sink", key, "delivered",
	    (json_int_t)delivered, "pending", (json_int_t)pending);
	int error;

	if (!v)
		return wf_error_oom();
	error = wf_cmd_write_json(v);
	json_decref(v);
	return error;
}

static int
flush_sink(struct wf_sink *s, int *down)
{
	size_t delivered, pending;
	int error;

	error = wf_sink_flush(&delivered, &pending, s);
	if (error == WF_EBUSY && pending > 0) {
		wf_cmd_warn("%s: %zu event%s still waiting", wf_error_last(),
		    pending, pending == 1 ? "" : "s");
		*down = 1;
		error = 0;
	}
	if (error < 0)
		return error;
	return report_flush(wf_sink_key(s), delivered, pending);
}

/*
 * wf-emit flush: deliver the named sinks' events, or every sink's.
 * Returns the exit code.
 */
static int
flush(struct run *run)
{
	struct wf_sink_opts so = WF_SINK_OPTS_INIT;
	struct wf_outbox *ob = NULL;
	struct wf_sink *s = NULL;
	char **keys = NULL;
	size_t i, n;
	int down = 0, error;

	if ((error = find_outbox(run)) < 0)
		goto out;
	so.fsync = run->fsync;
	so.outbox = run->outbox;
	if ((error = open_sinks(run)) < 0)
		goto out;
	if (!run->to_stdout) {
		for (i = 0; i < run->nsinks; i++)
			if ((error = flush_sink(run->sinks[i], &down)) < 0)
				goto out;
		goto out;
	}
	/* No sink named: every sink with events waiting. */
	if ((error = wf_outbox_open(&ob, run->outbox, 0, 0)) < 0) {
		if (error == WF_ENOTFOUND)
			error = 0;
		goto out;
	}
	if ((error = wf_outbox_sinks(&keys, &n, ob)) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		if ((error = wf_sink_open_key(&s, keys[i], &so)) < 0 ||
		    (error = flush_sink(s, &down)) < 0)
			goto out;
		wf_sink_free(s);
		s = NULL;
	}
out:
	wf_sink_free(s);
	wf_outbox_strings_free(keys);
	wf_outbox_free(ob);
	if (error < 0)
		return wf_cmd_fail(error);
	return down ? WF_EXIT_TEMP : WF_EXIT_OK;
}

static int
parse_time(int64_t *out, const char *arg)
{
	size_t v;

	if (strcmp(arg, "none") == 0) {
		*out = -1;
		return 0;
	}
	if (wf_cmd_parse_size(&v, arg, "--time") != 0)
		return WF_EXIT_USAGE;
	if (v > (size_t)INT64_MAX)
		return wf_cmd_usage_error("invalid number '%s' for --time",
		    arg);
	*out = (int64_t)v;
	return 0;
}

static int
parse_command(enum command *out, const char *name)
{
	int i;

	for (i = 0; command_names[i]; i++)
		if (strcmp(command_names[i], name) == 0) {
			*out = (enum command)i;
			return 0;
		}
	return wf_cmd_usage_error("unknown command '%s'", name);
}

static int
run_command(struct run *run, int argc, char **argv)
{
	struct wf_event ev;
	int error;

	if (run->cmd == CMD_FLUSH)
		return flush(run);
	if ((error = open_sinks(run)) < 0)
		return wf_cmd_fail(error);
	if (run->cmd == CMD_METRICS &&
	    (error = wf_event_batch_new(&run->batch)) < 0)
		return wf_cmd_fail(error);
	if ((error = wf_cmd_each_value(argc, argv, emit_one, run)) < 0)
		return wf_cmd_fail(error);
	if (run->cmd == CMD_METRICS) {
		wf_event_batch_event(&ev, run->batch);
		if ((error = emit(run, &ev)) < 0)
			return wf_cmd_fail(error);
	}
	return WF_EXIT_OK;
}

int
main(int argc, char **argv)
{
	struct run run;
	const char *cmd_name = NULL;
	int opt, code = WF_EXIT_OK, i;

	memset(&run, 0, sizeof(run));
	run.opts.redact = WF_EVENT_REDACT_KEEP;
	run.opts.time = (int64_t)time(NULL);
	wf_cmd_init("wf-emit");
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_OUTPUT:
			run.output = optarg;
			break;
		case OPT_SOCKET:
			run.socket = optarg;
			break;
		case OPT_FSYNC:
			run.fsync = 1;
			break;
		case OPT_STRICT:
			run.strict = 1;
			break;
		case OPT_OUTBOX:
			run.outbox = optarg;
			break;
		case OPT_TEE:
			run.tee = 1;
			break;
		case OPT_CLOUDEVENTS:
			run.opts.cloudevents = 1;
			break;
		case OPT_SOURCE:
			if (!*optarg)
				return wf_cmd_usage_error("--source needs a "
				    "non-empty URI");
			run.opts.source = optarg;
			break;
		case OPT_TIME:
			if (parse_time(&run.opts.time, optarg) != 0)
				return WF_EXIT_USAGE;
			break;
		case OPT_REDACT_PATHS:
			if (wf_event_redact_parse(&run.opts.redact,
			    optarg) < 0)
				return wf_cmd_usage_error("unknown mode '%s' for "
				    "--redact-paths (use keep, hash or drop)",
				    optarg);
			break;
		case OPT_SKIPPED:
			run.skipped = 1;
			break;
		case WF_OPT_PRETTY:
			/* For the events here, for flush's report there. */
			run.pretty = 1;
			wf_cmd_common_option(opt, usage);
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
	cmd_name = argv[0];
	if (parse_command(&run.cmd, cmd_name) != 0)
		return WF_EXIT_USAGE;
	argc--;
	argv++;
	if (run.skipped && run.cmd != CMD_EXECUTION_SUMMARY)
		return wf_cmd_usage_error("--skipped is for execution_summary");
	if (run.tee && !run.output && !run.socket)
		return wf_cmd_usage_error("--tee needs --output or --socket: "
		    "standard output carries the input");
	if (run.cmd == CMD_FLUSH) {
		if (argc > 0)
			return wf_cmd_usage_error("flush reads no input");
		if (run.tee || run.strict)
			return wf_cmd_usage_error("flush takes no --%s",
			    run.tee ? "tee" : "strict");
	}

	code = run_command(&run, argc, argv);
	for (i = 0; i < (int)run.nsinks; i++)
		wf_sink_free(run.sinks[i]);
	wf_event_batch_free(run.batch);
	free(run.outbox_buf);
	wf_git_shutdown();
	return wf_cmd_finish(code);
}
