#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "path.h"
#include "workflow.h"

int
wf_workflow_name_valid(const char *name)
{
	size_t n = strlen(name), i;

	if (n == 0 || n > 100 || name[0] == '.' || name[0] == '-')
		return -1;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return -1;
	}
	return 0;
}

void
wf_workflow_free(struct wf_workflow *w)
{
	if (!w)
		return;
	free(w->labels);
	free(w->labels_all);
	free(w->exclude_labels);
	free(w->paths);
	free(w->depends_on);
	free(w->conflicts);
	free(w->deliverables);
	free(w->reasons);
	wf_steps_free(w->stepv, w->nsteps);
	git_pathspec_free(w->pathspec);
	if (w->has_title_re)
		regfree(&w->title_re);
	json_decref(w->def);
	free(w);
}

/* A string field; absent leaves *out alone. */
static int
opt_string(const char **out, const struct wf_json_doc *doc,
    struct wf_jpath *path, json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	int error;

	if (!v)
		return 0;
	wf_jpath_push_key(path, key);
	error = wf_json_check_string(out, doc, path, v);
	wf_jpath_pop(path);
	return error;
}

static int
opt_strings(const char ***out, size_t *n, const struct wf_json_doc *doc,
    struct wf_jpath *path, json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	size_t i, j;
	int error;

	if (!v)
		return 0;
	wf_jpath_push_key(path, key);
	if ((error = wf_json_check_strings(out, n, doc, path, v)) < 0)
		goto out;
	for (i = 0; i < *n; i++) {
		wf_jpath_push_index(path, i);
		if ((*out)[i][0] == '\0')
			error = wf_json_error(doc, path, "empty string");
		for (j = 0; error == 0 && j < i; j++)
			if (strcmp((*out)[i], (*out)[j]) == 0)
				error = wf_json_error(doc, path,
				    "duplicate value '%s'", (*out)[i]);
		wf_jpath_pop(path);
		if (error < 0)
			goto out;
	}
out:
	wf_jpath_pop(path);
	return error;
}

/*
 * A deliverable path stays inside the repository (wf_path_problem) and
 * uses only the {number} and {workflow} placeholders.
 */
static const char *
deliverable_path_problem(const char *p)
{
	const char *c, *problem;

	if ((problem = wf_path_problem(p)))
		return problem;
	for (c = p; (c = strchr(c, '{')); c++) {
		if (strncmp(c, "{number}", 8) != 0 &&
		    strncmp(c, "{workflow}", 10) != 0)
			return "unknown placeholder (use {number} or "
			    "{workflow})";
	}
	for (c = p; (c = strchr(c, '}')); c++) {
		if ((c - p < 7 || strncmp(c - 7, "{number}", 8) != 0) &&
		    (c - p < 9 || strncmp(c - 9, "{workflow}", 10) != 0))
			return "unbalanced '}'";
	}
	return NULL;
}

static int
parse_deliverables(struct wf_workflow *w, const struct wf_json_doc *doc,
    struct wf_jpath *path, json_t *v)
{
	static const char *const keys[] = { "name", "path", NULL };
	size_t i, j, n;
	int error = 0;

	if (!json_is_array(v))
		return wf_json_error(doc, path,
		    "expected an array of {\"name\", \"path\"} objects");
	n = json_array_size(v);
	if (!(w->deliverables = calloc(n + 1, sizeof(*w->deliverables))))
		return wf_error_oom();
	for (i = 0; i < n && error == 0; i++) {
		json_t *d = json_array_get(v, i);
		struct wf_deliverable *dl = &w->deliverables[i];
		const char *problem;

		wf_jpath_push_index(path, i);
		if ((error = wf_json_check_object(doc, path, d, keys)) < 0)
			goto next;
		if (!json_object_get(d, "name") || !json_object_get(d, "path")) {
			error = wf_json_error(doc, path,
			    "a deliverable needs \"name\" and \"path\"");
			goto next;
		}
		if ((error = opt_string(&dl->name, doc, path, d, "name")) < 0 ||
		    (error = opt_string(&dl->path, doc, path, d, "path")) < 0)
			goto next;
		wf_jpath_push_key(path, "name");
		if (wf_workflow_name_valid(dl->name) < 0)
			error = wf_json_error(doc, path,
			    "invalid deliverable name '%s'", dl->name);
		for (j = 0; error == 0 && j < i; j++)
			if (strcmp(w->deliverables[j].name, dl->name) == 0)
				error = wf_json_error(doc, path,
				    "duplicate deliverable '%s'", dl->name);
		wf_jpath_pop(path);
		if (error < 0)
			goto next;
		wf_jpath_push_key(path, "path");
		if ((problem = deliverable_path_problem(dl->path)))
			error = wf_json_error(doc, path, "%s: '%s'", problem,
			    dl->path);
		wf_jpath_pop(path);
next:
		wf_jpath_pop(path);
	}
	w->ndeliverables = i;
	return error;
}

static int
parse_match(struct wf_workflow *w, const struct wf_json_doc *doc,
    struct wf_jpath *path, json_t *m)
{
	static const char *const keys[] = { "labels", "labels_all",
	    "exclude_labels", "paths", "title", NULL };
	git_strarray specs;
	int error, rc;

	if ((error = wf_json_check_object(doc, path, m, keys)) < 0 ||
	    (error = opt_strings(&w->labels, &w->nlabels, doc, path, m,
	    "labels")) < 0 ||
	    (error = opt_strings(&w->labels_all, &w->nlabels_all, doc, path,
	    m, "labels_all")) < 0 ||
	    (error = opt_strings(&w->exclude_labels, &w->nexclude_labels, doc,
	    path, m, "exclude_labels")) < 0 ||
	    (error = opt_strings(&w->paths, &w->npaths, doc, path, m,
	    "paths")) < 0 ||
	    (error = opt_string(&w->title, doc, path, m, "title")) < 0)
		return error;
	if (w->npaths > 0) {
		specs.strings = (char **)w->paths;
		specs.count = w->npaths;
		if (git_pathspec_new(&w->pathspec, &specs) < 0) {
			wf_jpath_push_key(path, "paths");
			error = wf_json_error(doc, path, "invalid pathspec: %s",
			    git_error_last() ? git_error_last()->message : "?");
			wf_jpath_pop(path);
			return error;
		}
	}
	if (w->title) {
		rc = regcomp(&w->title_re, w->title, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			char msg[256];

			regerror(rc, &w->title_re, msg, sizeof(msg));
			wf_jpath_push_key(path, "title");
			error = wf_json_error(doc, path,
			    "invalid regular expression '%s': %s", w->title,
			    msg);
			wf_jpath_pop(path);
			return error;
		}
		w->has_title_re = 1;
	}
	return 0;
}

int
wf_workflow_parse(struct wf_workflow **out, const struct wf_json_doc *doc,
    struct wf_jpath *path, json_t *v, enum wf_workflow_kind kind)
{
	static const char *const def_keys[] = { "name", "description",
	    "priority", "match", "depends_on", "conflicts", "deliverables",
	    "steps", NULL };
	static const char *const cand_keys[] = { "name", "description",
	    "priority", "reasons", "depends_on", "conflicts", "deliverables",
	    "steps", NULL };
	struct wf_workflow *w;
	json_t *f;
	size_t i;
	int error;

	*out = NULL;
	if (!(w = calloc(1, sizeof(*w))))
		return wf_error_oom();
	w->def = json_incref(v);
	if ((error = wf_json_check_object(doc, path, v,
	    kind == WF_WORKFLOW_DEFINITION ? def_keys : cand_keys)) < 0)
		goto out;
	if (!json_object_get(v, "name")) {
		error = wf_json_error(doc, path, "missing field \"name\"");
		goto out;
	}
	if ((error = opt_string(&w->name, doc, path, v, "name")) < 0)
		goto out;
	if (wf_workflow_name_valid(w->name) < 0) {
		wf_jpath_push_key(path, "name");
		error = wf_json_error(doc, path, "invalid workflow name '%s' "
		    "(1-100 of A-Z a-z 0-9 . _ -, not starting with . or -)",
		    w->name);
		wf_jpath_pop(path);
		goto out;
	}
	if ((error = opt_string(&w->description, doc, path, v,
	    "description")) < 0)
		goto out;
	if ((f = json_object_get(v, "priority"))) {
		wf_jpath_push_key(path, "priority");
		error = wf_json_check_int(&w->priority, doc, path, f);
		wf_jpath_pop(path);
		if (error < 0)
			goto out;
	}
	if ((error = opt_strings(&w->depends_on, &w->ndepends_on, doc, path, v,
	    "depends_on")) < 0 ||
	    (error = opt_strings(&w->conflicts, &w->nconflicts, doc, path, v,
	    "conflicts")) < 0 ||
	    (error = opt_strings(&w->reasons, &w->nreasons, doc, path, v,
	    "reasons")) < 0)
		goto out;
	for (i = 0; i < w->ndepends_on; i++) {
		const char *d = w->depends_on[i];

		if (wf_workflow_name_valid(d) == 0 && strcmp(d, w->name) != 0)
			continue;
		wf_jpath_push_key(path, "depends_on");
		wf_jpath_push_index(path, i);
		error = wf_json_error(doc, path, strcmp(d, w->name) == 0 ?
		    "workflow '%s' depends on itself" :
		    "invalid workflow name '%s'", d);
		wf_jpath_pop(path);
		wf_jpath_pop(path);
		goto out;
	}
	if ((f = json_object_get(v, "deliverables"))) {
		wf_jpath_push_key(path, "deliverables");
		error = parse_deliverables(w, doc, path, f);
		wf_jpath_pop(path);
		if (error < 0)
			goto out;
	}
	if ((f = json_object_get(v, "steps"))) {
		wf_jpath_push_key(path, "steps");
		error = wf_steps_parse(&w->stepv, &w->nsteps, doc, path, f);
		wf_jpath_pop(path);
		if (error < 0)
			goto out;
		w->steps = f;
	}
	if (kind == WF_WORKFLOW_DEFINITION &&
	    (f = json_object_get(v, "match"))) {
		wf_jpath_push_key(path, "match");
		error = parse_match(w, doc, path, f);
		wf_jpath_pop(path);
		if (error < 0)
			goto out;
	}
	*out = w;
	w = NULL;
	error = 0;
out:
	wf_workflow_free(w);
	return error;
}
