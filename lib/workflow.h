#ifndef WF_WORKFLOW_H
#define WF_WORKFLOW_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include <git2.h>
#include <jansson.h>

#include "json.h"
#include "step.h"

/*
 * A workflow definition, as one catalog file (or one candidate of a
 * WorkflowPlan) describes it.  Every string is borrowed from `def`, which
 * the workflow holds a reference to; the arrays are owned.
 */
struct wf_deliverable {
	const char *name;
	const char *path;	/* template with {number} and {workflow} */
};

struct wf_workflow {
	const char *name;
	const char *description;	/* NULL when absent */
	int64_t priority;		/* 0 when absent */

	const char **labels;		/* match.labels: any of */
	size_t nlabels;
	const char **labels_all;	/* match.labels_all: all of */
	size_t nlabels_all;
	const char **exclude_labels;	/* match.exclude_labels: none of */
	size_t nexclude_labels;
	const char **paths;		/* match.paths: git pathspecs */
	size_t npaths;
	const char *title;		/* match.title: POSIX ERE, or NULL */

	const char **depends_on;
	size_t ndepends_on;
	const char **conflicts;
	size_t nconflicts;
	struct wf_deliverable *deliverables;
	size_t ndeliverables;
	json_t *steps;			/* borrowed from def; NULL if absent */
	struct wf_step *stepv;		/* the steps, parsed */
	size_t nsteps;
	const char **reasons;		/* candidates only */
	size_t nreasons;

	/* Compiled match rules; only for WF_WORKFLOW_DEFINITION. */
	git_pathspec *pathspec;		/* NULL when no paths */
	regex_t title_re;
	int has_title_re;

	json_t *def;			/* the definition as read */
};

enum wf_workflow_kind {
	WF_WORKFLOW_DEFINITION,	/* a catalog file: "match" allowed */
	WF_WORKFLOW_CANDIDATE	/* a candidate: "reasons" allowed */
};

/*
 * Parse and validate the workflow at `path` in `doc` (v is that value).
 * Unknown fields, wrong types, bad names, deliverable paths that leave
 * the repository or use unknown placeholders, malformed steps (see
 * step.h), and (for definitions)
 * title regexes that do not compile and bad pathspecs are WF_EINPUT with
 * the place named.  *out is a new workflow (free with wf_workflow_free),
 * NULL on error.
 */
int wf_workflow_parse(struct wf_workflow **out, const struct wf_json_doc *doc,
    struct wf_jpath *path, json_t *v, enum wf_workflow_kind kind);

/* Free the workflow and drop its reference to def; no-op on NULL. */
void wf_workflow_free(struct wf_workflow *w);

/*
 * Check that `name` is a valid workflow name: 1..100 bytes of
 * [A-Za-z0-9._-], not starting with '.' or '-'.  Returns 0 or -1.
 */
int wf_workflow_name_valid(const char *name);

#endif
