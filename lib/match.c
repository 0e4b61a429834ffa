#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "match.h"

/* The fields of an item that matching reads; strings borrowed. */
struct item {
	const char *title;
	const char **labels;	/* sorted, for bsearch */
	size_t nlabels;
	const char **paths;
	size_t npaths;
	int derived;		/* paths came from opts->changed_paths */
};

/* Per catalog entry, while matching one item. */
struct cand {
	json_t *reasons;	/* NULL until it has one */
	int direct;		/* matched by its own rules */
	int by_label;		/* ... with a label reason */
	int by_path;		/* ... with a path reason */
	int in;			/* a candidate: direct or a dependency */
};

static void
item_release(struct item *it)
{
	free(it->labels);
	free(it->paths);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
has_label(const struct item *it, const char *label)
{
	return it->nlabels > 0 && bsearch(&label, it->labels, it->nlabels,
	    sizeof(*it->labels), cmp_str) != NULL;
}

enum field_type { FIELD_INT, FIELD_STRING, FIELD_STRINGS };

/*
 * Check the item's field `key` when present; a string or the strings
 * are borrowed into *str or *strs and *n when those are given.
 */
static int
check_field(const struct wf_json_doc *doc, struct wf_jpath *path,
    const char *key, enum field_type type, const char **str,
    const char ***strs, size_t *n)
{
	json_t *v = json_object_get(doc->value, key);
	const char *s;
	int64_t num;
	int error;

	if (!v)
		return 0;
	wf_jpath_push_key(path, key);
	switch (type) {
	case FIELD_INT:
		error = wf_json_check_int(&num, doc, path, v);
		break;
	case FIELD_STRING:
		error = wf_json_check_string(str ? str : &s, doc, path, v);
		break;
	default:
		error = wf_json_check_strings(strs, n, doc, path, v);
		break;
	}
	wf_jpath_pop(path);
	return error;
}

static int
parse_item(struct item *it, const struct wf_json_doc *doc,
    const json_t *changed)
{
	static const char *const no_keys[] = { NULL };
	struct wf_jpath path = WF_JPATH_INIT;
	size_t i;
	int error;

	memset(it, 0, sizeof(*it));
	/* Not an object: let the shared helper word the message. */
	if (!json_is_object(doc->value))
		return wf_json_check_object(doc, &path, doc->value, no_keys);
	if ((error = check_field(doc, &path, "number", FIELD_INT, NULL, NULL,
	    NULL)) < 0 ||
	    (error = check_field(doc, &path, "title", FIELD_STRING,
	    &it->title, NULL, NULL)) < 0 ||
	    (error = check_field(doc, &path, "labels", FIELD_STRINGS, NULL,
	    &it->labels, &it->nlabels)) < 0 ||
	    (error = check_field(doc, &path, "paths", FIELD_STRINGS, NULL,
	    &it->paths, &it->npaths)) < 0 ||
	    (error = check_field(doc, &path, "body", FIELD_STRING, NULL, NULL,
	    NULL)) < 0)
		return error;
	if (it->nlabels > 1)
		qsort(it->labels, it->nlabels, sizeof(*it->labels), cmp_str);
	if (json_object_get(doc->value, "paths") || !changed)
		return 0;
	if (!json_is_array(changed))
		return wf_error_set(WF_ERROR, "changed paths are not an array");
	if (!(it->paths = calloc(json_array_size(changed) + 1,
	    sizeof(*it->paths))))
		return wf_error_oom();
	for (i = 0; i < json_array_size(changed); i++) {
		const char *s = json_string_value(json_array_get(changed, i));

		if (!s)
			return wf_error_set(WF_ERROR,
			    "changed paths are not all strings");
		it->paths[i] = s;
	}
	it->npaths = i;
	it->derived = 1;
	return 0;
}

static int
add_reason(struct cand *cd, const char *kind, const char *what)
{
	if (!cd->reasons && !(cd->reasons = json_array()))
		return wf_error_oom();
	if (json_array_append_new(cd->reasons,
	    json_sprintf("%s:%s", kind, what)) < 0)
		return wf_error_oom();
	return 0;
}

static int
in_list(const char *const *list, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return 1;
	return 0;
}

/* Apply the rules of one workflow; fills *cd when it matches. */
static int
match_one(struct cand *cd, const struct wf_catalog_entry *e,
    const struct item *it)
{
	const struct wf_workflow *w = e->workflow;
	int any_rule = w->nlabels > 0 || w->npaths > 0 || w->title != NULL;
	int any = 0, error = 0;
	size_t i, j;

	if (!any_rule && w->nlabels_all == 0)
		return 0;
	for (i = 0; i < w->nexclude_labels; i++)
		if (has_label(it, w->exclude_labels[i]))
			return 0;
	for (i = 0; i < w->nlabels_all; i++)
		if (!has_label(it, w->labels_all[i]))
			return 0;
	for (i = 0; i < w->nlabels_all && error == 0; i++)
		error = add_reason(cd, "label", w->labels_all[i]);
	cd->by_label = w->nlabels_all > 0;
	for (i = 0; i < w->nlabels && error == 0; i++) {
		if (!has_label(it, w->labels[i]))
			continue;
		any = cd->by_label = 1;
		if (!in_list(w->labels_all, w->nlabels_all, w->labels[i]))
			error = add_reason(cd, "label", w->labels[i]);
	}
	for (i = 0; i < w->npaths && error == 0; i++) {
		for (j = 0; j < it->npaths; j++)
			if (git_pathspec_matches_path(e->specs[i],
			    GIT_PATHSPEC_DEFAULT, it->paths[j]) == 1)
				break;
		if (j == it->npaths)
			continue;
		any = cd->by_path = 1;
		error = add_reason(cd, "path", w->paths[i]);
	}
	if (error == 0 && w->has_title_re && it->title &&
	    regexec(&w->title_re, it->title, 0, NULL, 0) == 0) {
		any = 1;
		error = add_reason(cd, "title", w->title);
	}
	if (error < 0 || (any_rule && !any)) {
		json_decref(cd->reasons);
		memset(cd, 0, sizeof(*cd));
		return error;
	}
	cd->direct = cd->in = 1;
	return 0;
}

static json_t *
string_array(const char *const *s, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(s[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* The candidate object, its keys in the documented order. */
static json_t *
candidate_json(const struct wf_workflow *w, json_t *reasons)
{
	json_t *o = json_object(), *dl = json_array();
	size_t i;
	int bad = !o || !dl;

	for (i = 0; !bad && i < w->ndeliverables; i++)
		bad = json_array_append_new(dl, json_pack("{s:s, s:s}",
		    "name", w->deliverables[i].name,
		    "path", w->deliverables[i].path)) < 0;
	bad = bad ||
	    json_object_set_new(o, "name", json_string(w->name)) < 0 ||
	    (w->description && json_object_set_new(o, "description",
	    json_string(w->description)) < 0) ||
	    json_object_set_new(o, "priority",
	    json_integer((json_int_t)w->priority)) < 0 ||
	    json_object_set_new(o, "reasons",
	    reasons ? json_deep_copy(reasons) : json_array()) < 0 ||
	    json_object_set_new(o, "depends_on",
	    string_array(w->depends_on, w->ndepends_on)) < 0 ||
	    json_object_set_new(o, "conflicts",
	    string_array(w->conflicts, w->nconflicts)) < 0 ||
	    json_object_set(o, "deliverables", dl) < 0 ||
	    json_object_set_new(o, "steps",
	    w->steps ? json_deep_copy(w->steps) : json_array()) < 0;
	json_decref(dl);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* "a", "a and b", "a, b and c" */
static void
english_list(FILE *f, const struct wf_catalog *c, const size_t *idx,
    size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		fprintf(f, "%s%s", i == 0 ? "" : i + 1 == n ? " and " : ", ",
		    c->entries[idx[i]].workflow->name);
}

static int
selection(json_t *plan, const struct wf_catalog *c, const struct cand *cd,
    const size_t *order, size_t n)
{
	size_t *direct = NULL, *deps = NULL, ndirect = 0, ndeps = 0, i;
	int all_label = 1, all_path = 1, error = 0;
	const char *reason;
	char *msg = NULL;
	size_t msglen;
	FILE *f;

	if (!(direct = calloc(n + 1, sizeof(*direct))) ||
	    !(deps = calloc(n + 1, sizeof(*deps)))) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < n; i++) {
		const struct cand *x = &cd[order[i]];

		if (!x->direct) {
			deps[ndeps++] = order[i];
			continue;
		}
		direct[ndirect++] = order[i];
		all_label &= x->by_label;
		all_path &= x->by_path;
	}
	if (!(f = open_memstream(&msg, &msglen))) {
		error = wf_error_oom();
		goto out;
	}
	if (ndirect == 0) {
		reason = "no_match";
		fputs("No workflow matched", f);
	} else if (ndirect == 1) {
		reason = "single_match";
		fputs("Matched the ", f);
	} else if (all_label) {
		reason = "multi_label_match";
		fputs("Labels matched ", f);
	} else if (all_path) {
		reason = "multi_path_match";
		fputs("Paths matched ", f);
	} else {
		reason = "multi_match";
		fputs("Matched ", f);
	}
	english_list(f, c, direct, ndirect);
	if (ndirect > 0)
		fputs(ndirect == 1 ? " workflow" : " workflows", f);
	if (ndeps > 0) {
		fputs("; added ", f);
		english_list(f, c, deps, ndeps);
		fputs(ndeps == 1 ? " as a dependency" : " as dependencies", f);
	}
	if (fclose(f) != 0) {
		error = wf_error_oom();
		goto out;
	}
	if (json_object_set_new(plan, "selection_reason",
	    json_string(reason)) < 0 ||
	    json_object_set_new(plan, "selection_message",
	    json_string(msg)) < 0)
		error = wf_error_oom();
out:
	free(msg);
	free(deps);
	free(direct);
	return error;
}

struct ranked {
	int64_t priority;
	size_t index;		/* entries are sorted by name */
};

static int
cmp_ranked(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static json_t *
item_json(const struct wf_json_doc *doc, const struct wf_match_opts *opts,
    const struct item *it)
{
	json_t *item = json_deep_copy(doc->value);

	if (item && it->derived &&
	    json_object_set_new(item, "paths",
	    json_deep_copy(opts->changed_paths)) < 0) {
		json_decref(item);
		return NULL;
	}
	return item;
}

int
wf_match_item(json_t **out, const struct wf_catalog *c,
    const struct wf_json_doc *doc, const struct wf_match_opts *opts)
{
	static const struct wf_match_opts defaults = WF_MATCH_OPTS_INIT;
	struct item it;
	struct cand *cd = NULL;
	struct ranked *rank = NULL;
	size_t *stack = NULL, *order = NULL;
	size_t i, k, top = 0, n = 0;
	json_t *plan = NULL, *cands = NULL;
	int error;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	if ((error = parse_item(&it, doc, opts->changed_paths)) < 0)
		goto out;
	if (!(cd = calloc(c->n + 1, sizeof(*cd))) ||
	    !(stack = calloc(c->n + 1, sizeof(*stack)))) {
		error = wf_error_oom();
		goto out;
	}
	for (k = 0; k < c->n; k++) {
		if ((error = match_one(&cd[k], &c->entries[k], &it)) < 0)
			goto out;
		if (cd[k].direct)
			stack[top++] = k;
	}
	/* Dependencies, transitively; each entry is pushed once. */
	while (top > 0) {
		const struct wf_catalog_entry *e = &c->entries[stack[--top]];

		for (i = 0; i < e->workflow->ndepends_on; i++) {
			if (cd[e->deps[i]].in)
				continue;
			cd[e->deps[i]].in = 1;
			stack[top++] = e->deps[i];
		}
	}
	/* In name order, so each dependency_of list comes out sorted. */
	for (k = 0; k < c->n; k++) {
		const struct wf_catalog_entry *e = &c->entries[k];

		if (!cd[k].in)
			continue;
		for (i = 0; i < e->workflow->ndepends_on; i++)
			if ((error = add_reason(&cd[e->deps[i]],
			    "dependency_of", e->workflow->name)) < 0)
				goto out;
	}
	if (!(rank = calloc(c->n + 1, sizeof(*rank))) ||
	    !(order = calloc(c->n + 1, sizeof(*order)))) {
		error = wf_error_oom();
		goto out;
	}
	for (k = 0; k < c->n; k++) {
		if (!cd[k].in)
			continue;
		rank[n].priority = c->entries[k].workflow->priority;
		rank[n++].index = k;
	}
	if (n > 0)
		qsort(rank, n, sizeof(*rank), cmp_ranked);
	if (!(plan = json_object()) || !(cands = json_array()) ||
	    json_object_set_new(plan, "item", item_json(doc, opts, &it)) < 0 ||
	    json_object_set(plan, "candidates", cands) < 0) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < n; i++) {
		k = order[i] = rank[i].index;
		if (json_array_append_new(cands, candidate_json(
		    c->entries[k].workflow, cd[k].reasons)) < 0) {
			error = wf_error_oom();
			goto out;
		}
	}
	if ((error = selection(plan, c, cd, order, n)) < 0)
		goto out;
	*out = plan;
	plan = NULL;
out:
	for (k = 0; cd && k < c->n; k++)
		json_decref(cd[k].reasons);
	free(cd);
	free(stack);
	free(rank);
	free(order);
	json_decref(cands);
	json_decref(plan);
	item_release(&it);
	return error;
}
