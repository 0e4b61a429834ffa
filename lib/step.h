#ifndef WF_STEP_H
#define WF_STEP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "json.h"

/*
 * The steps of a workflow, as its definition lists them.  Every string
 * is borrowed from the definition's JSON; the arrays are owned by the
 * step list.
 *
 * Common fields: "id" (required, unique within the workflow), "type"
 * (shell, assert or template), "description", "needs" (ids of steps
 * listed earlier), "if" (success, failure or always; default success),
 * "timeout" (a duration), "retry" {attempts, delay, factor, max_delay,
 * non_retryable_exit_codes}, "env" {NAME: value}, "inputs" (pathspecs
 * whose content keys the step cache).
 */
enum wf_step_type {
	WF_STEP_SHELL,
	WF_STEP_ASSERT,
	WF_STEP_TEMPLATE
};

enum wf_step_if {
	WF_STEP_IF_SUCCESS,	/* run when every earlier step succeeded */
	WF_STEP_IF_FAILURE,	/* run only when an earlier step failed */
	WF_STEP_IF_ALWAYS
};

enum wf_assert_kind {
	WF_ASSERT_FILE_EXISTS,	/* "file_exists": path */
	WF_ASSERT_FILE_CONTAINS,	/* "file_contains": {path, pattern} */
	WF_ASSERT_EXIT_CODE	/* "exit_code": {step, equals} */
};

struct wf_step_retry {
	int64_t attempts;		/* total tries, >= 1; default 1 */
	int64_t delay_ms;		/* before the second try; default 1000 */
	double factor;			/* growth per try, >= 1; default 2 */
	int64_t max_delay_ms;		/* cap; default 60000 */
	int64_t *non_retryable;		/* exit codes never retried */
	size_t nnon_retryable;
};

struct wf_step {
	const char *id;
	enum wf_step_type type;
	const char *description;	/* NULL when absent */
	const char **needs;
	size_t nneeds;
	enum wf_step_if when;
	int64_t timeout_ms;		/* 0: none */
	struct wf_step_retry retry;
	json_t *env;			/* borrowed object of strings, or NULL */
	const char **inputs;
	size_t ninputs;

	/* shell */
	const char *run;

	/* assert */
	enum wf_assert_kind assert_kind;
	const char *path;		/* file_exists, file_contains */
	const char *pattern;		/* file_contains: POSIX ERE */
	const char *step;		/* exit_code */
	int64_t equals;			/* exit_code */

	/* template: "template" (inline) or "source" (a file in the
	 * repository), rendered to "dest" */
	const char *template_text;
	const char *source;
	const char *dest;
};

/*
 * Parse and validate a workflow's "steps" array (v, at `path` in doc):
 * every field's type, ids valid and unique, needs naming earlier steps,
 * durations, regexes that compile, paths that stay in the sandbox, and
 * template placeholders.  *out is a new array of *n steps (free with
 * wf_steps_free), NULL on error with WF_EINPUT naming the place.
 */
int wf_steps_parse(struct wf_step **out, size_t *n,
    const struct wf_json_doc *doc, struct wf_jpath *path, json_t *v);

/* Free an array from wf_steps_parse(); no-op on NULL. */
void wf_steps_free(struct wf_step *steps, size_t n);

/*
 * Parse a duration: "250ms", "30s", "5m", "2h" or a bare number of
 * seconds.  Returns 0 with milliseconds in *out, or -1.
 */
int wf_duration_parse(int64_t *out, const char *s);

#endif
