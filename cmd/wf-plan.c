/*
 * wf-plan: turn each WorkflowPlan (what wf-match writes) into an
 * ExecutionPlan: stages of workflows that may run together, and what
 * the executor needs to run them.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "common.h"
#include "error.h"
#include "json.h"
#include "git.h"
#include "plan.h"

static const char usage[] =
"usage: wf-plan [--max-parallel N] [--allow-partial-success]\n"
"               [--preview-only] [--format json|text|dot] [--explain]\n"
"               [--pretty] [FILE...]\n"
"\n"
"Plan each WorkflowPlan read from the FILEs, or from standard input\n"
"(\"-\"), into stages: a workflow runs after the workflows it depends on,\n"
"never beside one sharing a conflict key or a deliverable name, and at\n"
"most N run in one stage.  Write one ExecutionPlan per input as a line\n"
"of JSON.\n"
"\n"
"  --max-parallel N         at most N workflows per stage; 0 for no bound\n"
"                           (default 4)\n"
"  --allow-partial-success  mark the plans as allowing partial success\n"
"  --preview-only           mark the plans as previews, not to execute\n"
"  --format FORMAT          json (default), text for people, or dot for\n"
"                           Graphviz\n"
"  --explain                say why each workflow sits in its stage\n"
"  --pretty                 indent the JSON output\n"
"  --help                   show this help and exit\n"
"  --version                show the version and exit\n";

enum format {
	FORMAT_JSON,
	FORMAT_TEXT,
	FORMAT_DOT
};

enum {
	OPT_MAX_PARALLEL = WF_OPT_TOOL,
	OPT_ALLOW_PARTIAL_SUCCESS,
	OPT_PREVIEW_ONLY,
	OPT_FORMAT,
	OPT_EXPLAIN
};

static const struct option longopts[] = {
	WF_COMMON_LONGOPTS,
	{ "max-parallel", required_argument, NULL, OPT_MAX_PARALLEL },
	{ "allow-partial-success", no_argument, NULL,
	    OPT_ALLOW_PARTIAL_SUCCESS },
	{ "preview-only", no_argument, NULL, OPT_PREVIEW_ONLY },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "explain", no_argument, NULL, OPT_EXPLAIN },
	{ NULL, 0, NULL, 0 }
};

struct run {
	struct wf_plan_opts opts;
	enum format format;
	size_t written;		/* plans written so far */
};

static int
plan_one(const struct wf_json_doc *doc, void *ctx)
{
	struct run *run = ctx;
	json_t *plan = NULL;
	char *text = NULL;
	int error;

	/* Compact JSON straight from the planner: one serialisation. */
	if (run->format == FORMAT_JSON && !wf_cmd_pretty()) {
		size_t len;

		if ((error = wf_plan_build_text(&text, &len, doc,
		    &run->opts)) < 0)
			return error;
		text[len] = '\n';
		error = wf_cmd_write_buf(text, len + 1);
		goto out;
	}
	if ((error = wf_plan_build(&plan, doc, &run->opts)) < 0)
		return error;
	switch (run->format) {
	case FORMAT_JSON:
		error = wf_cmd_write_json(plan);
		break;
	case FORMAT_TEXT:
		if ((error = wf_plan_format_text(&text, plan)) < 0)
			break;
		/* A blank line between plans. */
		if (run->written > 0 && (error = wf_cmd_write_text("\n")) < 0)
			break;
		error = wf_cmd_write_text(text);
		break;
	case FORMAT_DOT:
		if ((error = wf_plan_format_dot(&text, plan)) == 0)
			error = wf_cmd_write_text(text);
		break;
	}
out:
	/* A consumer down the pipe sees each plan as its input ends. */
	if (error == 0 && fflush(stdout) == EOF)
		error = wf_error_set_errno(WF_EOS, "cannot write to stdout");
	if (error == 0)
		run->written++;
	free(text);
	json_decref(plan);
	return error;
}

/* 0, or WF_EXIT_USAGE after saying why. */
static int
parse_format(enum format *out, const char *arg)
{
	if (strcmp(arg, "json") == 0)
		*out = FORMAT_JSON;
	else if (strcmp(arg, "text") == 0)
		*out = FORMAT_TEXT;
	else if (strcmp(arg, "dot") == 0)
		*out = FORMAT_DOT;
	else
		return wf_cmd_usage_error("unknown format '%s' (use json, "
		    "text or dot)", arg);
	return 0;
}

int
main(int argc, char **argv)
{
	struct run run = { WF_PLAN_OPTS_INIT, FORMAT_JSON, 0 };
	int opt, code = WF_EXIT_OK, error = 0;

	/*
	 * jansson's values live in arena chunks: a large WorkflowPlan is a
	 * million of them, and malloc and free would cost as much as the
	 * parse.  Before any value exists, so each is freed where it came
	 * from.
	 */
	json_set_alloc_funcs(wf_arena_alloc, wf_arena_free);
	wf_cmd_init("wf-plan");
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_MAX_PARALLEL:
			if (wf_cmd_parse_size(&run.opts.max_parallel, optarg,
			    "--max-parallel") != 0)
				return WF_EXIT_USAGE;
			if (run.opts.max_parallel > (size_t)INT64_MAX)
				return wf_cmd_usage_error("invalid number '%s' "
				    "for --max-parallel", optarg);
			break;
		case OPT_ALLOW_PARTIAL_SUCCESS:
			run.opts.allow_partial_success = 1;
			break;
		case OPT_PREVIEW_ONLY:
			run.opts.preview_only = 1;
			break;
		case OPT_FORMAT:
			if (parse_format(&run.format, optarg) != 0)
				return WF_EXIT_USAGE;
			break;
		case OPT_EXPLAIN:
			run.opts.explain = 1;
			break;
		default:
			if (wf_cmd_other_option(&code, opt, argv, usage))
				return wf_cmd_finish(code);
		}
	}
	argc -= optind;
	argv += optind;

	error = wf_cmd_each_value(argc, argv, plan_one, &run);
	if (error < 0)
		code = wf_cmd_fail(error);
	wf_arena_release();
	wf_git_shutdown();
	return wf_cmd_finish(code);
}
