#ifndef WF_MATCH_H
#define WF_MATCH_H

#include <jansson.h>

#include "catalog.h"
#include "json.h"

/*
 * Matching: one item (an issue or a pull request, as JSON) against a
 * catalog gives a WorkflowPlan, the input of wf-plan.
 */
struct wf_match_opts {
	unsigned int version;
	/*
	 * Borrowed array of strings: the paths of an item that has no
	 * "paths" field (wf-match --changed-from).  NULL: none.
	 */
	const json_t *changed_paths;
};

#define WF_MATCH_OPTS_VERSION 1
#define WF_MATCH_OPTS_INIT { WF_MATCH_OPTS_VERSION, NULL }

/*
 * Match the item `doc->value` against `c`.  opts NULL means
 * WF_MATCH_OPTS_INIT.
 *
 * The item is an object; "number" must be an integer, "title" and
 * "body" strings, "labels" and "paths" arrays of strings; other fields
 * are kept.  A workflow matches when none of its match.exclude_labels
 * is present, all of its match.labels_all are, and, if it has any of
 * match.labels, match.paths or match.title, at least one of those
 * matches; a workflow with none of labels_all, labels, paths and title
 * never matches.  Every workflow a candidate depends on is a candidate
 * too, transitively.
 *
 * On success *out is a new reference to the WorkflowPlan, its keys in
 * this order: item (the item as given; with "paths" added when they
 * came from opts->changed_paths), candidates (priority descending, then
 * name; each with name, description when there is one, priority,
 * reasons, depends_on, conflicts, deliverables, steps), selection_reason
 * and selection_message.  The plan shares nothing with `c` or `doc`.
 *
 * Returns WF_EINPUT, with the message "<name>:<line>:<col>: <path>: ..."
 * naming the place, for a malformed item; WF_ERROR when
 * opts->changed_paths is not an array of strings; WF_ENOMEM.  *out is
 * NULL on error and `doc` is never changed.
 */
int wf_match_item(json_t **out, const struct wf_catalog *c,
    const struct wf_json_doc *doc, const struct wf_match_opts *opts);

#endif
