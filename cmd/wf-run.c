/*
 * wf-run: execute ExecutionPlans (what wf-plan writes), each workflow in
 * a sandbox, and write one ExecutionSummary per plan, with the change
 * requests its deliverables make.
 */
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "common.h"
#include "error.h"
#include "execution.h"
#include "git.h"
#include "state.h"
#include "step.h"

static const char usage[] =
"usage: wf-run [-j N] [--base REV] [--target BRANCH] [--dry-run]\n"
"              [--collect deliverables|all] [--timeout DURATION]\n"
"              [--env NAME]... [--log-dir DIR] [--keep-sandboxes]\n"
"              [--no-cache] [--explain-cache] [--no-resume] [--db PATH]\n"
"              [-C DIR] [--pretty] [FILE...]\n"
"\n"
"Run each ExecutionPlan read from the FILEs, or from standard input\n"
"(\"-\"), stage by stage: every workflow in a fresh checkout of the\n"
"repository of its own, its deliverables made into one change request.\n"
"Write one ExecutionSummary per plan as a line of JSON.\n"
"\n"
"  -j, --jobs N             workflows, and shell steps, at once (default 4)\n"
"  --base REV               the commit to check out (default HEAD)\n"
"  --target BRANCH          the branch the change requests land on\n"
"                           (default: HEAD's branch)\n"
"  -n, --dry-run            run nothing: every workflow is skipped, as for\n"
"                           a preview_only plan\n"
"  --collect WHAT           deliverables (default): the declared\n"
"                           deliverables; all: every file added, changed\n"
"                           or deleted\n"
"  --timeout DURATION       bound on each whole plan (\"90s\", \"5m\")\n"
"  --env NAME               pass NAME from the environment to the steps\n"
"                           (repeatable)\n"
"  --log-dir DIR            step logs under DIR/<plan_id>/<workflow>/\n"
"                           (default: wf/logs in the git directory)\n"
"  --keep-sandboxes         leave the sandboxes on disk\n"
"  --no-cache               run every step, store nothing in the step cache\n"
"  --explain-cache          say on stderr what went into each step's key\n"
"  --no-resume              run every workflow, even those an interrupted\n"
"                           run of the same plan executed\n"
"  --db PATH                the step cache and run state (default:\n"
"                           wf/run.db in the git directory)\n"
"  -C, --repo DIR           find the repository from DIR\n"
"  --pretty                 indent the JSON output\n"
"  --help                   show this help and exit\n"
"  --version                show the version and exit\n";

enum {
	OPT_BASE = WF_OPT_TOOL,
	OPT_TARGET,
	OPT_COLLECT,
	OPT_TIMEOUT,
	OPT_ENV,
	OPT_LOG_DIR,
	OPT_KEEP,
	OPT_NO_CACHE,
	OPT_EXPLAIN_CACHE,
	OPT_NO_RESUME,
	OPT_DB
};

static const struct option longopts[] = {
	WF_COMMON_LONGOPTS,
	{ "jobs", required_argument, NULL, 'j' },
	{ "base", required_argument, NULL, OPT_BASE },
	{ "target", required_argument, NULL, OPT_TARGET },
	{ "dry-run", no_argument, NULL, 'n' },
	{ "collect", required_argument, NULL, OPT_COLLECT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "env", required_argument, NULL, OPT_ENV },
	{ "log-dir", required_argument, NULL, OPT_LOG_DIR },
	{ "keep-sandboxes", no_argument, NULL, OPT_KEEP },
	{ "no-cache", no_argument, NULL, OPT_NO_CACHE },
	{ "explain-cache", no_argument, NULL, OPT_EXPLAIN_CACHE },
	{ "no-resume", no_argument, NULL, OPT_NO_RESUME },
	{ "db", required_argument, NULL, OPT_DB },
	{ "repo", required_argument, NULL, 'C' },
	{ NULL, 0, NULL, 0 }
};

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

struct run {
	git_repository *repo;
	struct wf_execution_opts opts;
	int explain;		/* --explain-cache */
	int incomplete;		/* some workflow did not execute */
};

/* --explain-cache: what went into each key, for people, on stderr. */
static void
explain(const json_t *summary)
{
	json_t *st, *w, *step, *cache, *v;
	size_t i, k, m, n;

	json_array_foreach(json_object_get(summary, "stage_runs"), i, st)
	json_array_foreach(json_object_get(st, "workflows"), k, w)
	json_array_foreach(json_object_get(w, "steps"), m, step) {
		if (!(cache = json_object_get(step, "cache")))
			continue;
		fprintf(stderr, "%s: cache: %s/%s: %s %s\n", wf_cmd_name(),
		    json_string_value(json_object_get(w, "workflow_name")),
		    json_string_value(json_object_get(step, "id")),
		    json_is_true(json_object_get(cache, "hit")) ? "hit" :
		    "miss", json_string_value(json_object_get(cache, "key")));
		if ((v = json_object_get(cache, "step")))
			fprintf(stderr, "  step %s\n", json_string_value(v));
		if ((v = json_object_get(cache, "input")))
			fprintf(stderr, "  input %s\n", json_string_value(v));
		json_array_foreach(json_object_get(cache, "inputs"), n, v)
			fprintf(stderr, "  input %s %s %s\n",
			    json_string_value(json_array_get(v, 1)),
			    json_string_value(json_array_get(v, 2)),
			    json_string_value(json_array_get(v, 0)));
		json_array_foreach(json_object_get(cache, "env"), n, v)
			fprintf(stderr, "  env %s\n", json_string_value(v));
	}
}

static int
run_one(const struct wf_json_doc *doc, void *ctx)
{
	struct run *run = ctx;
	json_t *summary = NULL;
	int error;

	if (interrupted)
		return wf_error_set(WF_ERROR, "interrupted");
	if ((error = wf_execution_run(&summary, run->repo, doc,
	    &run->opts)) < 0)
		return error;
	if (!wf_execution_complete(summary))
		run->incomplete = 1;
	if (run->explain)
		explain(summary);
	error = wf_cmd_write_json(summary);
	/* The next tool in the pipe sees each summary as it is done. */
	if (error == 0 && fflush(stdout) == EOF)
		error = wf_error_set_errno(WF_EOS, "cannot write to stdout");
	json_decref(summary);
	return error;
}

static int
add_env(const char ***names, size_t *n, const char *name)
{
	const char **v;
	size_t i;

	for (i = 0; name[i]; i++)
		if (!((name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= 'a' && name[i] <= 'z') || name[i] == '_' ||
		    (i > 0 && name[i] >= '0' && name[i] <= '9')))
			return wf_cmd_usage_error("--env: invalid variable name "
			    "'%s'", name);
	if (i == 0)
		return wf_cmd_usage_error("--env: empty variable name");
	if (!(v = realloc(*names, (*n + 2) * sizeof(*v))))
		return wf_cmd_fail(wf_error_oom());
	v[(*n)++] = name;
	v[*n] = NULL;
	*names = v;
	return 0;
}

int
main(int argc, char **argv)
{
	struct run run;
	struct sigaction sa;
	const char *repo_dir = NULL, **env = NULL, *db = NULL;
	struct wf_cache *cache = NULL;
	struct wf_state *state = NULL;
	char *db_path = NULL;
	size_t nenv = 0, jobs = 4;
	int opt, code = WF_EXIT_OK, error = 0, no_cache = 0, no_resume = 0;

	wf_cmd_init("wf-run");
	memset(&run, 0, sizeof(run));
	{
		struct wf_execution_opts init = WF_EXECUTION_OPTS_INIT;

		run.opts = init;
	}
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":j:nC:", longopts,
	    NULL)) != -1) {
		switch (opt) {
		case 'j':
			if ((code = wf_cmd_parse_size(&jobs, optarg,
			    "--jobs")) != 0)
				goto done;
			if (jobs == 0 || jobs > 1024) {
				code = wf_cmd_usage_error("--jobs must be "
				    "between 1 and 1024");
				goto done;
			}
			break;
		case OPT_BASE:
			run.opts.base = optarg;
			break;
		case OPT_TARGET:
			run.opts.target = optarg;
			break;
		case 'n':
			run.opts.dry_run = 1;
			break;
		case OPT_COLLECT:
			if (strcmp(optarg, "deliverables") == 0)
				run.opts.collect =
				    WF_EXECUTION_COLLECT_DELIVERABLES;
			else if (strcmp(optarg, "all") == 0)
				run.opts.collect = WF_EXECUTION_COLLECT_ALL;
			else {
				code = wf_cmd_usage_error("--collect: expected "
				    "'deliverables' or 'all', got '%s'", optarg);
				goto done;
			}
			break;
		case OPT_TIMEOUT:
			if (wf_duration_parse(&run.opts.timeout_ms, optarg) < 0 ||
			    run.opts.timeout_ms <= 0) {
				code = wf_cmd_usage_error("--timeout: expected a "
				    "duration such as '90s' or '5m', got '%s'",
				    optarg);
				goto done;
			}
			break;
		case OPT_ENV:
			if ((code = add_env(&env, &nenv, optarg)) != 0)
				goto done;
			break;
		case OPT_LOG_DIR:
			run.opts.log_dir = optarg;
			break;
		case OPT_KEEP:
			run.opts.keep_sandboxes = 1;
			break;
		case OPT_NO_CACHE:
			no_cache = 1;
			break;
		case OPT_EXPLAIN_CACHE:
			run.explain = 1;
			break;
		case OPT_NO_RESUME:
			no_resume = 1;
			break;
		case OPT_DB:
			db = optarg;
			break;
		case 'C':
			repo_dir = optarg;
			break;
		case ':':
			code = wf_cmd_usage_error("option '%s' needs a value",
			    argv[optind - 1]);
			goto done;
		case '?':
			if (optopt >= WF_OPT_HELP)
				code = wf_cmd_usage_error("option '%.*s' takes "
				    "no value", (int)strcspn(argv[optind - 1],
				    "="), argv[optind - 1]);
			else if (optopt)
				code = wf_cmd_usage_error("unknown option "
				    "'-%c'", optopt);
			else
				code = wf_cmd_usage_error("unknown option '%s'",
				    argv[optind - 1]);
			goto done;
		default:
			switch (wf_cmd_common_option(opt, usage)) {
			case 1:
				code = WF_EXIT_OK;
				goto done;
			case 0:
				break;
			default:
				code = wf_cmd_usage_error("unknown option '%s'",
				    argv[optind - 1]);
				goto done;
			}
		}
	}
	argc -= optind;
	argv += optind;
	run.opts.jobs = jobs;
	run.opts.env = env;
	run.opts.interrupt = &interrupted;

	/* Stop cleanly: steps are terminated, the summary is still written. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	error = wf_git_open(&run.repo, repo_dir);
	if (error == WF_ENOTFOUND && !repo_dir) {
		/* Previews need no repository; running says it lacks one. */
		wf_error_clear();
		error = 0;
	} else if (error < 0) {
		goto out;
	}
	if (run.explain && no_cache) {
		code = wf_cmd_usage_error("--explain-cache needs the cache");
		goto done;
	}
	if (run.repo && !db &&
	    (error = wf_cache_default_path(&db_path, run.repo)) < 0)
		goto out;
	if (run.repo && !no_cache) {
		if ((error = wf_cache_open(&cache, run.repo, db ? db : db_path,
		    run.explain)) < 0)
			goto out;
		run.opts.cache = cache;
	}
	if (run.repo && !no_resume) {
		if ((error = wf_state_open(&state, db ? db : db_path)) < 0)
			goto out;
		run.opts.state = state;
	}
	error = wf_cmd_each_value(argc, argv, run_one, &run);
out:
	if (interrupted) {
		/* The summary of the plan at hand is written: say why it
		 * stopped there, and no more. */
		wf_cmd_error("interrupted");
		code = WF_EXIT_NO;
	} else if (error < 0) {
		code = wf_cmd_fail(error);
	} else if (run.incomplete) {
		code = WF_EXIT_NO;
	}
done:
	free(env);
	free(db_path);
	wf_cache_free(cache);
	wf_state_free(state);
	git_repository_free(run.repo);
	return wf_cmd_finish(code);
}
