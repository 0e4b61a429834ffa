/*
 * wf-match: match items (issues, pull requests) against a catalog of
 * workflow definitions and write one WorkflowPlan per item.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "common.h"
#include "error.h"
#include "git.h"
#include "match.h"

static const char usage[] =
"usage: wf-match [--catalog DIR] [-C DIR] [--changed-from REV]\n"
"                [--exit-status] [--pretty] [FILE...]\n"
"\n"
"Match each JSON item (an issue or pull request) read from the FILEs, or\n"
"from standard input, against a catalog of workflow definitions, and\n"
"write one WorkflowPlan per item as a line of JSON.\n"
"\n"
"  --catalog DIR        the catalog directory (default: $WF_CATALOG, or\n"
"                       .wf/workflows at the root of the repository)\n"
"  -C, --repo DIR       find the repository from DIR, not the current\n"
"                       directory\n"
"  --changed-from REV   give an item without \"paths\" the paths changed\n"
"                       between REV and HEAD\n"
"  --exit-status        exit 1 when no item matched any workflow\n"
"  --pretty             indent the output\n"
"  --help               show this help and exit\n"
"  --version            show the version and exit\n";

enum {
	OPT_CATALOG = WF_OPT_TOOL,
	OPT_CHANGED_FROM,
	OPT_EXIT_STATUS
};

static const struct option longopts[] = {
	WF_COMMON_LONGOPTS,
	{ "catalog", required_argument, NULL, OPT_CATALOG },
	{ "repo", required_argument, NULL, 'C' },
	{ "changed-from", required_argument, NULL, OPT_CHANGED_FROM },
	{ "exit-status", no_argument, NULL, OPT_EXIT_STATUS },
	{ NULL, 0, NULL, 0 }
};

struct run {
	const struct wf_catalog *catalog;
	struct wf_match_opts opts;
	int matched;		/* some item matched some workflow */
};

static int
match_one(const struct wf_json_doc *doc, void *ctx)
{
	struct run *run = ctx;
	json_t *plan = NULL;
	int error;

	if ((error = wf_match_item(&plan, run->catalog, doc,
	    &run->opts)) < 0)
		return error;
	if (json_array_size(json_object_get(plan, "candidates")) > 0)
		run->matched = 1;
	error = wf_cmd_write_json(plan);
	/* A consumer down the pipe sees each plan as its item ends. */
	if (error == 0 && fflush(stdout) == EOF)
		error = wf_error_set_errno(WF_EOS, "cannot write to stdout");
	json_decref(plan);
	return error;
}

/*
 * Report an unreadable operand before the catalog is loaded, as a
 * missing file is the likelier mistake; reading still checks again.
 */
static int
check_operands(int argc, char **argv)
{
	int i;

	for (i = 0; i < argc; i++)
		if (strcmp(argv[i], "-") != 0 && access(argv[i], R_OK) < 0)
			return wf_error_set_errno(WF_EOS, "cannot open '%s'",
			    argv[i]);
	return 0;
}

/* The default catalog: .wf/workflows at the root of the work tree. */
static int
default_catalog(char **out, git_repository *repo)
{
	const char *root = git_repository_workdir(repo);
	size_t n;

	*out = NULL;
	if (!root)
		return wf_error_set(WF_ENOTFOUND, "repository '%s' has no "
		    "work tree for the default catalog; use --catalog",
		    git_repository_path(repo));
	n = strlen(root) + sizeof(".wf/workflows");
	if (!(*out = malloc(n)))
		return wf_error_oom();
	snprintf(*out, n, "%s.wf/workflows", root);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *catalog_dir = NULL, *repo_dir = NULL, *changed_from = NULL;
	struct run run = { NULL, WF_MATCH_OPTS_INIT, 0 };
	struct wf_catalog *catalog = NULL;
	git_repository *repo = NULL;
	json_t *changed = NULL;
	char *dir = NULL;
	int exit_status = 0, opt, code = WF_EXIT_OK, error = 0;

	wf_cmd_init("wf-match");
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":C:", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_CATALOG:
			catalog_dir = optarg;
			break;
		case 'C':
			repo_dir = optarg;
			break;
		case OPT_CHANGED_FROM:
			changed_from = optarg;
			break;
		case OPT_EXIT_STATUS:
			exit_status = 1;
			break;
		default:
			if (wf_cmd_other_option(&code, opt, argv, usage))
				return wf_cmd_finish(code);
		}
	}
	argc -= optind;
	argv += optind;

	if (!catalog_dir && (catalog_dir = getenv("WF_CATALOG")) &&
	    !*catalog_dir)
		catalog_dir = NULL;
	if ((error = check_operands(argc, argv)) < 0)
		goto out;
	if ((!catalog_dir || changed_from) &&
	    (error = wf_git_open(&repo, repo_dir)) < 0)
		goto out;
	if (!catalog_dir) {
		if ((error = default_catalog(&dir, repo)) < 0)
			goto out;
		catalog_dir = dir;
	}
	if ((error = wf_catalog_load(&catalog, catalog_dir)) < 0)
		goto out;
	if (changed_from &&
	    (error = wf_git_changed_paths(&changed, repo, changed_from)) < 0)
		goto out;

	run.catalog = catalog;
	run.opts.changed_paths = changed;
	error = wf_cmd_each_value(argc, argv, match_one, &run);
	if (error == 0 && exit_status && !run.matched)
		code = WF_EXIT_NO;
out:
	if (error < 0)
		code = wf_cmd_fail(error);
	json_decref(changed);
	wf_catalog_free(catalog);
	git_repository_free(repo);
	free(dir);
	wf_git_shutdown();
	return wf_cmd_finish(code);
}
