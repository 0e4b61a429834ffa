/*
 * Telemetry events: typed structures, their parsers and their JSON.
 *
 * Parsing checks every field the contract names for its type and, when
 * it is required, its presence; building JSON from a structure checks
 * what a hand-filled one could get wrong.  Nothing else writes an
 * event, so what leaves this file matches the schemas in schema/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "event.h"
#include "hash.h"
#include "json.h"
#include "map.h"

static const char *const type_names[WF_EVENT_TYPE_COUNT] = {
	"multi_workflow.plan_created",
	"multi_workflow.execution_summary",
	"wf.change.enqueued",
	"wf.change.landed",
	"wf.change.failed",
	"wf.change.dead",
	"wf.batch.metrics"
};

static const char *const run_modes[] = { "sequential", "parallel", NULL };
static const char *const statuses[] = { "executed", "skipped", "failed",
	NULL };

/* The states a wf-enqueue line may report (the queue's states). */
static const char *const queue_states[] = { "queued", "leased", "landed",
	"failed", "dead", NULL };

#define PREVIEW_MESSAGE \
	"Multi-workflow execution skipped due to preview-only mode."
#define PREVIEW_SKIP_REASON "preview_only_guard"

const char *
wf_event_type_name(enum wf_event_type type)
{
	if ((unsigned)type >= WF_EVENT_TYPE_COUNT)
		return NULL;
	return type_names[type];
}

int
wf_event_type_parse(enum wf_event_type *out, const char *name)
{
	int i;

	for (i = 0; i < WF_EVENT_TYPE_COUNT; i++)
		if (strcmp(type_names[i], name) == 0) {
			*out = (enum wf_event_type)i;
			return 0;
		}
	return WF_ENOTFOUND;
}

int
wf_event_redact_parse(enum wf_event_redact *out, const char *name)
{
	if (strcmp(name, "keep") == 0)
		*out = WF_EVENT_REDACT_KEEP;
	else if (strcmp(name, "hash") == 0)
		*out = WF_EVENT_REDACT_HASH;
	else if (strcmp(name, "drop") == 0)
		*out = WF_EVENT_REDACT_DROP;
	else
		return wf_error_set(WF_EINPUT, "unknown redaction '%s' (use "
		    "keep, hash or drop)", name);
	return 0;
}

/* Index of `s` in the NULL-terminated `list`, or -1. */
static int
lookup(const char *const *list, const char *s)
{
	int i;

	for (i = 0; list[i]; i++)
		if (strcmp(list[i], s) == 0)
			return i;
	return -1;
}

/*
 * Allocations of a parsed event, freed together.
 */
struct pool {
	void **p;
	size_t n, cap;
};

/* Keep `ptr` (malloc'ed) for wf_event_free(); frees it on failure. */
static int
pool_keep(struct wf_event *ev, void *ptr)
{
	struct pool *pl = ev->priv;

	if (pl->n == pl->cap) {
		size_t cap = pl->cap ? pl->cap * 2 : 16;
		void **p = realloc(pl->p, cap * sizeof(*p));

		if (!p) {
			free(ptr);
			return wf_error_oom();
		}
		pl->p = p;
		pl->cap = cap;
	}
	pl->p[pl->n++] = ptr;
	return 0;
}

/* n zeroed elements of `size` bytes, kept in the event's pool. */
static int
pool_calloc(void **out, struct wf_event *ev, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	*out = NULL;
	if (!p)
		return wf_error_oom();
	if (pool_keep(ev, p) < 0)
		return WF_ENOMEM;
	*out = p;
	return 0;
}

void
wf_event_free(struct wf_event *ev)
{
	struct pool *pl;
	size_t i;

	if (!ev)
		return;
	if ((pl = ev->priv)) {
		for (i = 0; i < pl->n; i++)
			free(pl->p[i]);
		free(pl->p);
		free(pl);
	}
	json_decref(ev->src);
	free(ev);
}

static int
event_new(struct wf_event **out, enum wf_event_type type,
    const struct wf_json_doc *doc)
{
	struct wf_event *ev = calloc(1, sizeof(*ev));

	*out = NULL;
	if (!ev || !(ev->priv = calloc(1, sizeof(struct pool)))) {
		free(ev);
		return wf_error_oom();
	}
	ev->type = type;
	ev->src = json_incref(doc->value);
	*out = ev;
	return 0;
}

/*
 * Parsing.  The path is kept as the walk goes, so errors name the field.
 */
struct parse {
	const struct wf_json_doc *doc;
	struct wf_jpath path;
	struct wf_event *ev;
};

/* The error for a required field `key` missing from the current object. */
static int
missing(struct parse *p, const char *key)
{
	char where[512];
	unsigned long line, col;

	/* Point at the object that lacks it. */
	wf_json_locate(&line, &col, p->doc, &p->path);
	wf_jpath_push_key(&p->path, key);
	wf_jpath_format(where, sizeof(where), &p->path);
	wf_jpath_pop(&p->path);
	return wf_error_set(WF_EINPUT, "%s:%lu:%lu: %s: missing required field",
	    p->doc->name, line, col, where);
}

static int
bad(struct parse *p, const char *key, const char *msg)
{
	int error;

	wf_jpath_push_key(&p->path, key);
	error = wf_json_error(p->doc, &p->path, "%s", msg);
	wf_jpath_pop(&p->path);
	return error;
}

static int
check_object(struct parse *p, json_t *v)
{
	if (!json_is_object(v))
		return wf_json_error(p->doc, &p->path, "expected an object");
	return 0;
}

/* A string; NULL when absent or null and not required. */
static int
get_string(const char **out, struct parse *p, json_t *obj, const char *key,
    int required)
{
	json_t *v = json_object_get(obj, key);
	int error;

	*out = NULL;
	if (!v || (json_is_null(v) && !required)) {
		if (required)
			return missing(p, key);
		return 0;
	}
	wf_jpath_push_key(&p->path, key);
	error = wf_json_check_string(out, p->doc, &p->path, v);
	wf_jpath_pop(&p->path);
	return error;
}

/* One of `list`; *out its index. */
static int
get_enum(int *out, struct parse *p, json_t *obj, const char *key,
    const char *const *list, const char *want)
{
	const char *s;
	int error;

	if ((error = get_string(&s, p, obj, key, 1)) < 0)
		return error;
	if ((*out = lookup(list, s)) < 0) {
		wf_jpath_push_key(&p->path, key);
		error = wf_json_error(p->doc, &p->path, "unknown value '%s' "
		    "(expected %s)", s, want);
		wf_jpath_pop(&p->path);
		return error;
	}
	return 0;
}

/*
 * An integer at least `min`.  *has is WF_EVENT_ABSENT, WF_EVENT_NULL or
 * WF_EVENT_VALUE; a required one must be there and not null unless
 * `nullable`.  `has` may be NULL for a required, non-null one.
 */
static int
get_int(int64_t *out, enum wf_event_has *has, struct parse *p, json_t *obj,
    const char *key, int required, int nullable, int64_t min)
{
	json_t *v = json_object_get(obj, key);
	int error;

	*out = 0;
	if (has)
		*has = WF_EVENT_ABSENT;
	if (!v) {
		if (required)
			return missing(p, key);
		return 0;
	}
	wf_jpath_push_key(&p->path, key);
	if (json_is_null(v) && nullable) {
		if (has)
			*has = WF_EVENT_NULL;
		error = 0;
	} else if ((error = wf_json_check_int(out, p->doc, &p->path, v)) == 0) {
		if (*out < min)
			error = wf_json_error(p->doc, &p->path, "expected at "
			    "least %lld", (long long)min);
		else if (has)
			*has = WF_EVENT_VALUE;
	}
	wf_jpath_pop(&p->path);
	return error;
}

static int
get_bool(int *out, struct parse *p, json_t *obj, const char *key,
    int required)
{
	json_t *v = json_object_get(obj, key);
	int error;

	*out = 0;
	if (!v) {
		if (required)
			return missing(p, key);
		return 0;
	}
	wf_jpath_push_key(&p->path, key);
	error = wf_json_check_bool(out, p->doc, &p->path, v);
	wf_jpath_pop(&p->path);
	return error;
}

/* An array of strings, kept in the pool; *has 0 when absent or null. */
static int
get_strings(const char *const **out, size_t *n, int *has, struct parse *p,
    json_t *obj, const char *key, int required)
{
	json_t *v = json_object_get(obj, key);
	const char **a = NULL;
	int error;

	*out = NULL;
	*n = 0;
	if (has)
		*has = 0;
	if (!v || (json_is_null(v) && !required)) {
		if (required)
			return missing(p, key);
		return 0;
	}
	wf_jpath_push_key(&p->path, key);
	error = wf_json_check_strings(&a, n, p->doc, &p->path, v);
	wf_jpath_pop(&p->path);
	if (error < 0)
		return error;
	if ((error = pool_keep(p->ev, a)) < 0)
		return error;
	*out = a;
	if (has)
		*has = 1;
	return 0;
}

/* The array `key` (required unless `required` is 0: then NULL). */
static int
get_array(json_t **out, struct parse *p, json_t *obj, const char *key,
    int required)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || (json_is_null(v) && !required)) {
		if (required)
			return missing(p, key);
		return 0;
	}
	if (!json_is_array(v))
		return bad(p, key, "expected an array");
	*out = v;
	return 0;
}

/* stages[] of a plan or summary: index, run_mode, workflows, conflicts. */
static int
parse_stages(const struct wf_event_stage **out, size_t *n, struct parse *p,
    json_t *arr, int check_index)
{
	struct wf_event_stage *st;
	size_t i;
	int error;

	*out = NULL;
	*n = json_array_size(arr);
	if ((error = pool_calloc((void **)&st, p->ev, *n, sizeof(*st))) < 0)
		return error;
	wf_jpath_push_key(&p->path, "stages");
	for (i = 0; i < *n; i++) {
		json_t *s = json_array_get(arr, i);
		int mode;

		wf_jpath_push_index(&p->path, i);
		if ((error = check_object(p, s)) < 0 ||
		    (error = get_int(&st[i].index, NULL, p, s, "index", 1, 0,
		    0)) < 0 ||
		    (error = get_enum(&mode, p, s, "run_mode", run_modes,
		    "'sequential' or 'parallel'")) < 0 ||
		    (error = get_strings(&st[i].workflows, &st[i].nworkflows,
		    NULL, p, s, "workflows", 1)) < 0 ||
		    (error = get_strings(&st[i].blocking_conflicts,
		    &st[i].nblocking_conflicts, NULL, p, s,
		    "blocking_conflicts", 1)) < 0)
			goto out;
		st[i].run_mode = (enum wf_event_run_mode)mode;
		if (check_index && st[i].index != (int64_t)i) {
			error = bad(p, "index", "expected the stage's position "
			    "in .stages");
			goto out;
		}
		wf_jpath_pop(&p->path);
	}
	wf_jpath_pop(&p->path);
	*out = st;
	return 0;
out:
	return error;
}

/* The plan_created fields of an ExecutionPlan or plan_created payload. */
static int
parse_plan(struct wf_event_plan *pl, struct parse *p, json_t *root)
{
	json_t *stages;
	size_t i, total = 0;
	int error;

	if ((error = check_object(p, root)) < 0 ||
	    (error = get_string(&pl->plan_id, p, root, "plan_id", 1)) < 0 ||
	    (error = get_int(&pl->issue_number, &pl->has_issue_number, p,
	    root, "issue_number", 0, 1, INT64_MIN)) < 0 ||
	    (error = get_string(&pl->batch_id, p, root, "batch_id", 0)) < 0 ||
	    (error = get_int(&pl->stage_count, NULL, p, root, "stage_count",
	    1, 0, 0)) < 0 ||
	    (error = get_int(&pl->workflow_count, NULL, p, root,
	    "workflow_count", 1, 0, 0)) < 0 ||
	    (error = get_bool(&pl->allow_partial_success, p, root,
	    "allow_partial_success", 1)) < 0 ||
	    (error = get_bool(&pl->preview_only, p, root, "preview_only",
	    1)) < 0 ||
	    (error = get_string(&pl->selection_reason, p, root,
	    "selection_reason", 0)) < 0 ||
	    (error = get_string(&pl->selection_message, p, root,
	    "selection_message", 0)) < 0 ||
	    (error = get_array(&stages, p, root, "stages", 1)) < 0 ||
	    (error = parse_stages(&pl->stages, &pl->nstages, p, stages,
	    1)) < 0)
		return error;
	/* The contract defines both counts by the stages. */
	if ((size_t)pl->stage_count != pl->nstages)
		return bad(p, "stage_count", "does not match the number of "
		    "stages");
	for (i = 0; i < pl->nstages; i++)
		total += pl->stages[i].nworkflows;
	if ((size_t)pl->workflow_count != total)
		return bad(p, "workflow_count", "does not match the number of "
		    "workflows in the stages");
	return 0;
}

static int
parse_workflow_runs(struct wf_event_stage_run *sr, struct parse *p,
    json_t *arr)
{
	struct wf_event_workflow_run *w;
	size_t i;
	int error;

	sr->nworkflows = json_array_size(arr);
	if ((error = pool_calloc((void **)&w, p->ev, sr->nworkflows,
	    sizeof(*w))) < 0)
		return error;
	sr->workflows = w;
	wf_jpath_push_key(&p->path, "workflows");
	for (i = 0; i < sr->nworkflows; i++) {
		json_t *o = json_array_get(arr, i);
		int status;

		wf_jpath_push_index(&p->path, i);
		if ((error = check_object(p, o)) < 0 ||
		    (error = get_string(&w[i].workflow_name, p, o,
		    "workflow_name", 1)) < 0 ||
		    (error = get_enum(&status, p, o, "status", statuses,
		    "'executed', 'skipped' or 'failed'")) < 0 ||
		    (error = get_strings(&w[i].created_files,
		    &w[i].ncreated_files, &w[i].has_created_files, p, o,
		    "created_files", 0)) < 0 ||
		    (error = get_string(&w[i].message, p, o, "message", 0)) < 0)
			return error;
		w[i].status = (enum wf_event_status)status;
		wf_jpath_pop(&p->path);
	}
	wf_jpath_pop(&p->path);
	return 0;
}

static int
parse_stage_runs(struct wf_event_summary *s, struct parse *p, json_t *arr)
{
	struct wf_event_stage_run *sr;
	size_t i;
	int error;

	s->nstage_runs = json_array_size(arr);
	if ((error = pool_calloc((void **)&sr, p->ev, s->nstage_runs,
	    sizeof(*sr))) < 0)
		return error;
	s->stage_runs = sr;
	wf_jpath_push_key(&p->path, "stage_runs");
	for (i = 0; i < s->nstage_runs; i++) {
		json_t *o = json_array_get(arr, i), *wfs;
		int mode;

		wf_jpath_push_index(&p->path, i);
		if ((error = check_object(p, o)) < 0 ||
		    (error = get_int(&sr[i].index, NULL, p, o, "index", 1, 0,
		    0)) < 0 ||
		    (error = get_enum(&mode, p, o, "run_mode", run_modes,
		    "'sequential' or 'parallel'")) < 0 ||
		    (error = get_strings(&sr[i].blocking_conflicts,
		    &sr[i].nblocking_conflicts, NULL, p, o,
		    "blocking_conflicts", 1)) < 0 ||
		    (error = get_array(&wfs, p, o, "workflows", 1)) < 0 ||
		    (error = parse_workflow_runs(&sr[i], p, wfs)) < 0)
			return error;
		sr[i].run_mode = (enum wf_event_run_mode)mode;
		wf_jpath_pop(&p->path);
	}
	wf_jpath_pop(&p->path);
	return 0;
}

static int
parse_manifest(struct wf_event_summary *s, struct parse *p, json_t *root)
{
	json_t *m = json_object_get(root, "deliverable_manifest"), *entries;
	struct wf_event_deliverable *d;
	size_t i;
	int error;

	if (!m || json_is_null(m))
		return 0;
	wf_jpath_push_key(&p->path, "deliverable_manifest");
	if ((error = check_object(p, m)) < 0 ||
	    (error = get_array(&entries, p, m, "entries", 1)) < 0)
		return error;
	s->has_deliverable_manifest = 1;
	s->ndeliverables = json_array_size(entries);
	if ((error = pool_calloc((void **)&d, p->ev, s->ndeliverables,
	    sizeof(*d))) < 0)
		return error;
	s->deliverables = d;
	wf_jpath_push_key(&p->path, "entries");
	for (i = 0; i < s->ndeliverables; i++) {
		json_t *e = json_array_get(entries, i);

		wf_jpath_push_index(&p->path, i);
		if ((error = check_object(p, e)) < 0 ||
		    (error = get_string(&d[i].workflow, p, e, "workflow",
		    1)) < 0 ||
		    (error = get_string(&d[i].name, p, e, "name", 1)) < 0 ||
		    (error = get_string(&d[i].path, p, e, "path", 1)) < 0 ||
		    (error = get_string(&d[i].template, p, e, "template",
		    0)) < 0 ||
		    (error = get_string(&d[i].renamed_from, p, e,
		    "renamed_from", 0)) < 0)
			return error;
		wf_jpath_pop(&p->path);
	}
	wf_jpath_pop(&p->path);
	wf_jpath_pop(&p->path);
	return 0;
}

static int
parse_errors(struct wf_event_summary *s, struct parse *p, json_t *root)
{
	struct wf_event_error *e;
	json_t *arr;
	size_t i;
	int error;

	if ((error = get_array(&arr, p, root, "errors", 0)) < 0 || !arr)
		return error;
	s->has_errors = 1;
	s->nerrors = json_array_size(arr);
	if ((error = pool_calloc((void **)&e, p->ev, s->nerrors,
	    sizeof(*e))) < 0)
		return error;
	s->errors = e;
	wf_jpath_push_key(&p->path, "errors");
	for (i = 0; i < s->nerrors; i++) {
		json_t *o = json_array_get(arr, i);

		wf_jpath_push_index(&p->path, i);
		if ((error = check_object(p, o)) < 0 ||
		    (error = get_string(&e[i].workflow_name, p, o,
		    "workflow_name", 1)) < 0 ||
		    (error = get_string(&e[i].error, p, o, "error", 1)) < 0)
			return error;
		wf_jpath_pop(&p->path);
	}
	wf_jpath_pop(&p->path);
	return 0;
}

/* stages made from stage_runs, which carry the same fields. */
static int
stages_from_runs(struct wf_event_summary *s, struct wf_event *ev)
{
	struct wf_event_stage *st;
	size_t i, j;
	int error;

	if ((error = pool_calloc((void **)&st, ev, s->nstage_runs,
	    sizeof(*st))) < 0)
		return error;
	for (i = 0; i < s->nstage_runs; i++) {
		const struct wf_event_stage_run *sr = &s->stage_runs[i];
		const char **names;

		if ((error = pool_calloc((void **)&names, ev,
		    sr->nworkflows, sizeof(*names))) < 0)
			return error;
		for (j = 0; j < sr->nworkflows; j++)
			names[j] = sr->workflows[j].workflow_name;
		st[i].index = sr->index;
		st[i].run_mode = sr->run_mode;
		st[i].workflows = names;
		st[i].nworkflows = sr->nworkflows;
		st[i].blocking_conflicts = sr->blocking_conflicts;
		st[i].nblocking_conflicts = sr->nblocking_conflicts;
	}
	s->stages = st;
	s->nstages = s->nstage_runs;
	return 0;
}

static int
parse_summary(struct wf_event_summary *s, struct parse *p, json_t *root)
{
	json_t *stages, *runs;
	int status, error;

	if ((error = check_object(p, root)) < 0 ||
	    (error = get_int(&s->issue_number, NULL, p, root, "issue_number",
	    1, 0, INT64_MIN)) < 0 ||
	    (error = get_string(&s->plan_id, p, root, "plan_id", 1)) < 0 ||
	    (error = get_int(&s->stage_count, NULL, p, root, "stage_count",
	    1, 0, 0)) < 0 ||
	    (error = get_int(&s->workflow_count, NULL, p, root,
	    "workflow_count", 1, 0, 0)) < 0 ||
	    (error = get_array(&stages, p, root, "stages", 0)) < 0 ||
	    (stages && (error = parse_stages(&s->stages, &s->nstages, p,
	    stages, 1)) < 0) ||
	    (error = get_bool(&s->preview_only, p, root, "preview_only",
	    1)) < 0 ||
	    (error = get_string(&s->selection_reason, p, root,
	    "selection_reason", 0)) < 0 ||
	    (error = get_string(&s->selection_message, p, root,
	    "selection_message", 0)) < 0 ||
	    (error = get_bool(&s->allow_partial_success, p, root,
	    "allow_partial_success", 1)) < 0 ||
	    (error = get_int(&s->overall_timeout_seconds,
	    &s->has_overall_timeout_seconds, p, root,
	    "overall_timeout_seconds", 0, 1, 0)) < 0 ||
	    (error = parse_manifest(s, p, root)) < 0 ||
	    (error = get_array(&runs, p, root, "stage_runs", 1)) < 0 ||
	    (error = parse_stage_runs(s, p, runs)) < 0 ||
	    (error = get_enum(&status, p, root, "status", statuses,
	    "'executed' or 'skipped'")) < 0)
		return error;
	if (status == WF_EVENT_FAILED)
		return bad(p, "status", "unknown value 'failed' (expected "
		    "'executed' or 'skipped')");
	s->status = (enum wf_event_status)status;
	if ((error = get_string(&s->skip_reason, p, root, "skip_reason",
	    0)) < 0 ||
	    (error = parse_errors(s, p, root)) < 0)
		return error;
	if (stages && (size_t)s->stage_count != s->nstages)
		return bad(p, "stage_count", "does not match the number of "
		    "stages");
	if (!stages)
		return stages_from_runs(s, p->ev);
	return 0;
}

/* A commit id: 40 (SHA-1) or 64 (SHA-256) lower-case hex digits. */
static int
is_commit(const char *s)
{
	size_t n = strspn(s, "0123456789abcdef");

	return (n == 40 || n == 64) && s[n] == '\0';
}

/*
 * A change: a wf-enqueue or wf-apply line (`id_key` "id") or a
 * wf.change.* payload ("change_id").  The type follows from "position"
 * (enqueued) or "state".
 */
static int
parse_change(struct wf_event_change *c, enum wf_event_type *type,
    struct parse *p, json_t *root, const char *id_key)
{
	int enqueued, error;

	if ((error = check_object(p, root)) < 0 ||
	    (error = get_string(&c->change_id, p, root, id_key, 1)) < 0 ||
	    (error = get_int(&c->queue_id, &c->has_queue_id, p, root,
	    "queue_id", 1, 1, 1)) < 0 ||
	    (error = get_string(&c->state, p, root, "state", 1)) < 0 ||
	    (error = get_string(&c->target, p, root, "target", 0)) < 0 ||
	    (error = get_int(&c->attempts, NULL, p, root, "attempts", 0, 0,
	    0)) < 0 ||
	    (error = get_int(&c->duration_ms, NULL, p, root, "duration_ms", 0,
	    0, 0)) < 0)
		return error;
	if (!json_object_get(root, "attempts"))
		c->attempts = -1;
	if (!json_object_get(root, "duration_ms"))
		c->duration_ms = -1;
	enqueued = json_object_get(root, "position") != NULL;
	if (enqueued) {
		*type = WF_EVENT_CHANGE_ENQUEUED;
		if (lookup(queue_states, c->state) < 0)
			return bad(p, "state", "not a queue state (queued, "
			    "leased, landed, failed or dead)");
		if ((error = get_int(&c->position, &c->has_position, p, root,
		    "position", 1, 1, 1)) < 0)
			return error;
		return get_bool(&c->existing, p, root, "existing", 0);
	}
	/*
	 * wf-apply's recovery gives an entry whose lease died back to the
	 * queue: it is there again, as it was.
	 */
	if (strcmp(c->state, "queued") == 0 && strcmp(id_key, "id") == 0) {
		*type = WF_EVENT_CHANGE_ENQUEUED;
		c->has_position = WF_EVENT_NULL;
		c->existing = 1;
		return 0;
	}
	if (strcmp(c->state, "landed") == 0) {
		*type = WF_EVENT_CHANGE_LANDED;
		if ((error = get_string(&c->commit, p, root, "commit", 1)) < 0)
			return error;
		if (!is_commit(c->commit))
			return bad(p, "commit", "expected a commit id (40 or 64 "
			    "hex digits)");
		return 0;
	}
	if (strcmp(c->state, "failed") == 0)
		*type = WF_EVENT_CHANGE_FAILED;
	else if (strcmp(c->state, "dead") == 0)
		*type = WF_EVENT_CHANGE_DEAD;
	else
		return bad(p, "state", "expected 'landed', 'failed', 'dead' or "
		    "'queued' (or a wf-enqueue line, with \"position\")");
	/* wf-apply may say why as "reason". */
	if (strcmp(id_key, "id") == 0 && !json_object_get(root, "error") &&
	    json_object_get(root, "reason"))
		return get_string(&c->error, p, root, "reason", 1);
	return get_string(&c->error, p, root, "error", 1);
}

static int
parse_start(struct parse *p, struct wf_event **out, enum wf_event_type type,
    const struct wf_json_doc *doc)
{
	struct wf_jpath root = WF_JPATH_INIT;

	*out = NULL;
	p->doc = doc;
	p->path = root;
	return event_new(&p->ev, type, doc);
}

static int
parse_end(struct wf_event **out, struct parse *p, int error)
{
	if (error < 0) {
		wf_event_free(p->ev);
		return error;
	}
	*out = p->ev;
	return 0;
}

int
wf_event_from_plan(struct wf_event **out, const struct wf_json_doc *doc)
{
	struct parse p;
	int error;

	if ((error = parse_start(&p, out, WF_EVENT_PLAN_CREATED, doc)) < 0)
		return error;
	error = parse_plan(&p.ev->u.plan, &p, doc->value);
	return parse_end(out, &p, error);
}

int
wf_event_from_summary(struct wf_event **out, const struct wf_json_doc *doc)
{
	struct parse p;
	int error;

	if ((error = parse_start(&p, out, WF_EVENT_EXECUTION_SUMMARY,
	    doc)) < 0)
		return error;
	error = parse_summary(&p.ev->u.summary, &p, doc->value);
	return parse_end(out, &p, error);
}

/* The preview-skip summary of a parsed plan. */
static int
skip_plan(struct wf_event_summary *s, struct parse *p,
    const struct wf_event_plan *pl)
{
	struct wf_event_stage_run *sr;
	size_t i, j;
	int error;

	if (!pl->preview_only)
		return bad(p, "preview_only", "only a preview-only plan is "
		    "skipped");
	if (pl->has_issue_number != WF_EVENT_VALUE)
		return pl->has_issue_number == WF_EVENT_ABSENT ?
		    missing(p, "issue_number") : bad(p, "issue_number",
		    "expected an integer, got null");
	s->issue_number = pl->issue_number;
	s->plan_id = pl->plan_id;
	s->stage_count = pl->stage_count;
	s->workflow_count = pl->workflow_count;
	s->stages = pl->stages;
	s->nstages = pl->nstages;
	s->preview_only = 1;
	s->selection_reason = pl->selection_reason;
	s->selection_message = pl->selection_message;
	s->allow_partial_success = pl->allow_partial_success;
	if ((error = pool_calloc((void **)&sr, p->ev, pl->nstages,
	    sizeof(*sr))) < 0)
		return error;
	for (i = 0; i < pl->nstages; i++) {
		const struct wf_event_stage *st = &pl->stages[i];
		struct wf_event_workflow_run *w;

		if ((error = pool_calloc((void **)&w, p->ev, st->nworkflows,
		    sizeof(*w))) < 0)
			return error;
		for (j = 0; j < st->nworkflows; j++) {
			w[j].workflow_name = st->workflows[j];
			w[j].status = WF_EVENT_SKIPPED;
			w[j].message = PREVIEW_MESSAGE;
		}
		sr[i].index = st->index;
		sr[i].run_mode = st->run_mode;
		sr[i].blocking_conflicts = st->blocking_conflicts;
		sr[i].nblocking_conflicts = st->nblocking_conflicts;
		sr[i].workflows = w;
		sr[i].nworkflows = st->nworkflows;
	}
	s->stage_runs = sr;
	s->nstage_runs = pl->nstages;
	s->status = WF_EVENT_SKIPPED;
	s->skip_reason = PREVIEW_SKIP_REASON;
	return 0;
}

int
wf_event_from_skipped_plan(struct wf_event **out,
    const struct wf_json_doc *doc)
{
	struct wf_event_plan pl;
	struct parse p;
	int error;

	if ((error = parse_start(&p, out, WF_EVENT_EXECUTION_SUMMARY,
	    doc)) < 0)
		return error;
	memset(&pl, 0, sizeof(pl));
	if ((error = parse_plan(&pl, &p, doc->value)) == 0)
		error = skip_plan(&p.ev->u.summary, &p, &pl);
	return parse_end(out, &p, error);
}

int
wf_event_from_change(struct wf_event **out, const struct wf_json_doc *doc)
{
	struct parse p;
	int error;

	if ((error = parse_start(&p, out, WF_EVENT_CHANGE_ENQUEUED, doc)) < 0)
		return error;
	error = parse_change(&p.ev->u.change, &p.ev->type, &p, doc->value,
	    "id");
	return parse_end(out, &p, error);
}

/*
 * Building JSON.  Each builder checks what the type system cannot: the
 * strings a schema requires are there, enumerations are in range.
 */

/* Set `key` to the new reference `v`, which may be NULL (out of memory). */
static int
set(json_t *o, const char *key, json_t *v)
{
	if (!v || json_object_set_new(o, key, v) < 0)
		return wf_error_oom();
	return 0;
}

static int
need(const void *v, const char *what)
{
	if (!v)
		return wf_error_set(WF_EINPUT, "event: %s: missing required "
		    "field", what);
	return 0;
}

static int
strings_json(json_t **out, const char *const *s, size_t n, const char *what)
{
	json_t *a = json_array();
	size_t i;

	*out = NULL;
	if (!a)
		return wf_error_oom();
	for (i = 0; i < n; i++) {
		if (!s[i]) {
			json_decref(a);
			return wf_error_set(WF_EINPUT, "event: %s[%zu]: missing "
			    "string", what, i);
		}
		if (json_array_append_new(a, json_string(s[i])) < 0) {
			json_decref(a);
			return wf_error_oom();
		}
	}
	*out = a;
	return 0;
}

/* A path as --redact-paths hash writes it: its git blob id. */
static json_t *
hashed(const char *path)
{
	char hex[GIT_OID_HEXSZ + 1];
	git_oid id;

	if (wf_hash_buf(&id, path, strlen(path)) < 0)
		return NULL;
	return json_string(wf_hash_hex(hex, &id));
}

static int
paths_json(json_t **out, const char *const *s, size_t n,
    enum wf_event_redact redact, const char *what)
{
	size_t i;
	int error;

	if ((error = strings_json(out, s, n, what)) < 0 ||
	    redact != WF_EVENT_REDACT_HASH)
		return error;
	for (i = 0; i < n; i++)
		if (json_array_set_new(*out, i, hashed(s[i])) < 0) {
			json_decref(*out);
			*out = NULL;
			return wf_error_oom();
		}
	return 0;
}

static int
check_count(int64_t v, const char *what)
{
	if (v < 0)
		return wf_error_set(WF_EINPUT, "event: %s: negative", what);
	return 0;
}

static int
stages_json(json_t **out, const struct wf_event_stage *st, size_t n)
{
	json_t *a = json_array(), *o = NULL, *v;
	size_t i;
	int error = 0;

	*out = NULL;
	if (!a)
		return wf_error_oom();
	for (i = 0; i < n; i++) {
		if ((error = check_count(st[i].index, "stages[].index")) < 0)
			goto out;
		if ((unsigned)st[i].run_mode > WF_EVENT_PARALLEL) {
			error = wf_error_set(WF_EINPUT, "event: "
			    "stages[].run_mode: out of range");
			goto out;
		}
		if (!(o = json_object()) ||
		    (error = set(o, "index", json_integer(st[i].index))) < 0 ||
		    (error = set(o, "run_mode",
		    json_string(run_modes[st[i].run_mode]))) < 0 ||
		    (error = strings_json(&v, st[i].workflows,
		    st[i].nworkflows, "stages[].workflows")) < 0 ||
		    (error = set(o, "workflows", v)) < 0 ||
		    (error = strings_json(&v, st[i].blocking_conflicts,
		    st[i].nblocking_conflicts,
		    "stages[].blocking_conflicts")) < 0 ||
		    (error = set(o, "blocking_conflicts", v)) < 0)
			goto out;
		if (json_array_append_new(a, o) < 0) {
			o = NULL;
			error = wf_error_oom();
			goto out;
		}
		o = NULL;
	}
	*out = a;
	return 0;
out:
	if (!error)
		error = wf_error_oom();
	json_decref(o);
	json_decref(a);
	return error;
}

static int
plan_json(json_t **out, const struct wf_event_plan *pl)
{
	json_t *o = json_object(), *v;
	int error;

	*out = NULL;
	if (!o)
		return wf_error_oom();
	if ((error = need(pl->plan_id, "plan_id")) < 0 ||
	    (error = check_count(pl->stage_count, "stage_count")) < 0 ||
	    (error = check_count(pl->workflow_count, "workflow_count")) < 0 ||
	    (error = set(o, "plan_id", json_string(pl->plan_id))) < 0 ||
	    (error = set(o, "issue_number",
	    pl->has_issue_number == WF_EVENT_VALUE ?
	    json_integer(pl->issue_number) : json_null())) < 0 ||
	    (pl->batch_id && (error = set(o, "batch_id",
	    json_string(pl->batch_id))) < 0) ||
	    (error = set(o, "stage_count", json_integer(pl->stage_count))) < 0 ||
	    (error = set(o, "workflow_count",
	    json_integer(pl->workflow_count))) < 0 ||
	    (error = set(o, "allow_partial_success",
	    json_boolean(pl->allow_partial_success))) < 0 ||
	    (error = set(o, "preview_only",
	    json_boolean(pl->preview_only))) < 0 ||
	    (pl->selection_reason && (error = set(o, "selection_reason",
	    json_string(pl->selection_reason))) < 0) ||
	    (pl->selection_message && (error = set(o, "selection_message",
	    json_string(pl->selection_message))) < 0) ||
	    (error = stages_json(&v, pl->stages, pl->nstages)) < 0 ||
	    (error = set(o, "stages", v)) < 0) {
		json_decref(o);
		return error;
	}
	*out = o;
	return 0;
}

static int
workflow_run_json(json_t **out, const struct wf_event_workflow_run *w,
    enum wf_event_redact redact)
{
	json_t *o = json_object(), *v;
	int error;

	*out = NULL;
	if (!o)
		return wf_error_oom();
	if ((error = need(w->workflow_name,
	    "stage_runs[].workflows[].workflow_name")) < 0)
		goto out;
	if ((unsigned)w->status > WF_EVENT_FAILED) {
		error = wf_error_set(WF_EINPUT, "event: stage_runs[].workflows[]"
		    ".status: out of range");
		goto out;
	}
	if ((error = set(o, "workflow_name",
	    json_string(w->workflow_name))) < 0 ||
	    (error = set(o, "status", json_string(statuses[w->status]))) < 0)
		goto out;
	if (w->has_created_files && redact != WF_EVENT_REDACT_DROP &&
	    ((error = paths_json(&v, w->created_files, w->ncreated_files,
	    redact, "stage_runs[].workflows[].created_files")) < 0 ||
	    (error = set(o, "created_files", v)) < 0))
		goto out;
	if (w->message && (error = set(o, "message",
	    json_string(w->message))) < 0)
		goto out;
	*out = o;
	return 0;
out:
	json_decref(o);
	return error;
}

static int
stage_runs_json(json_t **out, const struct wf_event_summary *s,
    enum wf_event_redact redact)
{
	json_t *a = json_array(), *o = NULL, *wfs = NULL, *v;
	size_t i, j;
	int error;

	*out = NULL;
	if (!a)
		return wf_error_oom();
	for (i = 0; i < s->nstage_runs; i++) {
		const struct wf_event_stage_run *sr = &s->stage_runs[i];

		if ((error = check_count(sr->index, "stage_runs[].index")) < 0)
			goto out;
		if ((unsigned)sr->run_mode > WF_EVENT_PARALLEL) {
			error = wf_error_set(WF_EINPUT, "event: "
			    "stage_runs[].run_mode: out of range");
			goto out;
		}
		if (!(o = json_object()) || !(wfs = json_array())) {
			error = wf_error_oom();
			goto out;
		}
		if ((error = set(o, "index", json_integer(sr->index))) < 0 ||
		    (error = set(o, "run_mode",
		    json_string(run_modes[sr->run_mode]))) < 0 ||
		    (error = strings_json(&v, sr->blocking_conflicts,
		    sr->nblocking_conflicts,
		    "stage_runs[].blocking_conflicts")) < 0 ||
		    (error = set(o, "blocking_conflicts", v)) < 0)
			goto out;
		for (j = 0; j < sr->nworkflows; j++) {
			if ((error = workflow_run_json(&v, &sr->workflows[j],
			    redact)) < 0)
				goto out;
			if (json_array_append_new(wfs, v) < 0) {
				error = wf_error_oom();
				goto out;
			}
		}
		error = set(o, "workflows", wfs);
		wfs = NULL;
		if (error < 0)
			goto out;
		if (json_array_append_new(a, o) < 0) {
			o = NULL;
			error = wf_error_oom();
			goto out;
		}
		o = NULL;
	}
	*out = a;
	return 0;
out:
	json_decref(wfs);
	json_decref(o);
	json_decref(a);
	return error;
}

static int
manifest_json(json_t **out, const struct wf_event_summary *s,
    enum wf_event_redact redact)
{
	json_t *m = json_object(), *a = json_array(), *e = NULL;
	size_t i;
	int error = 0;

	*out = NULL;
	if (!m || !a)
		goto oom;
	for (i = 0; i < s->ndeliverables; i++) {
		const struct wf_event_deliverable *d = &s->deliverables[i];
		const char *paths[3] = { "path", "template", "renamed_from" };
		const char *vals[3];
		int k;

		vals[0] = d->path;
		vals[1] = d->template;
		vals[2] = d->renamed_from;
		if ((error = need(d->workflow,
		    "deliverable_manifest.entries[].workflow")) < 0 ||
		    (error = need(d->name,
		    "deliverable_manifest.entries[].name")) < 0 ||
		    (error = need(d->path,
		    "deliverable_manifest.entries[].path")) < 0)
			goto out;
		if (!(e = json_object()) ||
		    (error = set(e, "workflow", json_string(d->workflow))) < 0 ||
		    (error = set(e, "name", json_string(d->name))) < 0)
			goto out;
		for (k = 0; k < 3 && redact != WF_EVENT_REDACT_DROP; k++)
			if (vals[k] && (error = set(e, paths[k],
			    redact == WF_EVENT_REDACT_HASH ? hashed(vals[k]) :
			    json_string(vals[k]))) < 0)
				goto out;
		if (json_array_append_new(a, e) < 0) {
			e = NULL;
			goto oom;
		}
		e = NULL;
	}
	error = set(m, "entries", a);
	a = NULL;
	if (error < 0)
		goto out;
	*out = m;
	return 0;
oom:
	error = wf_error_oom();
out:
	if (!error)
		error = wf_error_oom();
	json_decref(e);
	json_decref(a);
	json_decref(m);
	return error;
}

static int
errors_json(json_t **out, const struct wf_event_summary *s)
{
	json_t *a = json_array();
	size_t i;
	int error;

	*out = NULL;
	if (!a)
		return wf_error_oom();
	for (i = 0; i < s->nerrors; i++) {
		if ((error = need(s->errors[i].workflow_name,
		    "errors[].workflow_name")) < 0 ||
		    (error = need(s->errors[i].error, "errors[].error")) < 0) {
			json_decref(a);
			return error;
		}
		if (json_array_append_new(a, json_pack("{s:s, s:s}",
		    "workflow_name", s->errors[i].workflow_name, "error",
		    s->errors[i].error)) < 0) {
			json_decref(a);
			return wf_error_oom();
		}
	}
	*out = a;
	return 0;
}

static int
summary_json(json_t **out, const struct wf_event_summary *s,
    enum wf_event_redact redact)
{
	json_t *o = json_object(), *v;
	int error;

	*out = NULL;
	if (!o)
		return wf_error_oom();
	if (s->status != WF_EVENT_EXECUTED && s->status != WF_EVENT_SKIPPED) {
		error = wf_error_set(WF_EINPUT, "event: status: expected "
		    "executed or skipped");
		goto out;
	}
	if ((error = need(s->plan_id, "plan_id")) < 0 ||
	    (error = check_count(s->stage_count, "stage_count")) < 0 ||
	    (error = check_count(s->workflow_count, "workflow_count")) < 0 ||
	    (s->has_overall_timeout_seconds == WF_EVENT_VALUE &&
	    (error = check_count(s->overall_timeout_seconds,
	    "overall_timeout_seconds")) < 0) ||
	    (error = set(o, "issue_number", json_integer(s->issue_number))) < 0 ||
	    (error = set(o, "plan_id", json_string(s->plan_id))) < 0 ||
	    (error = set(o, "stage_count", json_integer(s->stage_count))) < 0 ||
	    (error = set(o, "workflow_count",
	    json_integer(s->workflow_count))) < 0 ||
	    (error = stages_json(&v, s->stages, s->nstages)) < 0 ||
	    (error = set(o, "stages", v)) < 0 ||
	    (error = set(o, "preview_only", json_boolean(s->preview_only))) < 0 ||
	    (s->selection_reason && (error = set(o, "selection_reason",
	    json_string(s->selection_reason))) < 0) ||
	    (s->selection_message && (error = set(o, "selection_message",
	    json_string(s->selection_message))) < 0) ||
	    (error = set(o, "allow_partial_success",
	    json_boolean(s->allow_partial_success))) < 0 ||
	    (s->has_overall_timeout_seconds != WF_EVENT_ABSENT &&
	    (error = set(o, "overall_timeout_seconds",
	    s->has_overall_timeout_seconds == WF_EVENT_VALUE ?
	    json_integer(s->overall_timeout_seconds) : json_null())) < 0) ||
	    (s->has_deliverable_manifest &&
	    ((error = manifest_json(&v, s, redact)) < 0 ||
	    (error = set(o, "deliverable_manifest", v)) < 0)) ||
	    (error = stage_runs_json(&v, s, redact)) < 0 ||
	    (error = set(o, "stage_runs", v)) < 0 ||
	    (error = set(o, "status", json_string(statuses[s->status]))) < 0 ||
	    (s->skip_reason && (error = set(o, "skip_reason",
	    json_string(s->skip_reason))) < 0) ||
	    (s->has_errors && ((error = errors_json(&v, s)) < 0 ||
	    (error = set(o, "errors", v)) < 0)))
		goto out;
	*out = o;
	return 0;
out:
	json_decref(o);
	return error;
}

/* The state a change event of `type` may have; NULL for enqueued (any). */
static const char *
change_state(enum wf_event_type type)
{
	switch (type) {
	case WF_EVENT_CHANGE_LANDED:
		return "landed";
	case WF_EVENT_CHANGE_FAILED:
		return "failed";
	case WF_EVENT_CHANGE_DEAD:
		return "dead";
	default:
		return NULL;
	}
}

static int
change_json(json_t **out, enum wf_event_type type,
    const struct wf_event_change *c)
{
	const char *state = change_state(type);
	json_t *o = json_object();
	int error;

	*out = NULL;
	if (!o)
		return wf_error_oom();
	if ((error = need(c->change_id, "change_id")) < 0 ||
	    (error = need(c->state, "state")) < 0)
		goto out;
	if (state ? strcmp(state, c->state) != 0 :
	    lookup(queue_states, c->state) < 0) {
		error = wf_error_set(WF_EINPUT, "event: state: '%s' does not "
		    "fit %s", c->state, type_names[type]);
		goto out;
	}
	if ((error = set(o, "change_id", json_string(c->change_id))) < 0 ||
	    (error = set(o, "queue_id", c->has_queue_id == WF_EVENT_VALUE ?
	    json_integer(c->queue_id) : json_null())) < 0 ||
	    (error = set(o, "state", json_string(c->state))) < 0 ||
	    (c->target && (error = set(o, "target",
	    json_string(c->target))) < 0))
		goto out;
	switch (type) {
	case WF_EVENT_CHANGE_ENQUEUED:
		if ((error = set(o, "position",
		    c->has_position == WF_EVENT_VALUE ?
		    json_integer(c->position) : json_null())) < 0 ||
		    (error = set(o, "existing", json_boolean(c->existing))) < 0)
			goto out;
		break;
	case WF_EVENT_CHANGE_LANDED:
		if ((error = need(c->commit, "commit")) < 0)
			goto out;
		if (!is_commit(c->commit)) {
			error = wf_error_set(WF_EINPUT, "event: commit: not a "
			    "commit id");
			goto out;
		}
		if ((error = set(o, "commit", json_string(c->commit))) < 0)
			goto out;
		break;
	default:
		if ((error = need(c->error, "error")) < 0 ||
		    (error = set(o, "error", json_string(c->error))) < 0)
			goto out;
	}
	if ((c->attempts >= 0 && (error = set(o, "attempts",
	    json_integer(c->attempts))) < 0) ||
	    (c->duration_ms >= 0 && (error = set(o, "duration_ms",
	    json_integer(c->duration_ms))) < 0))
		goto out;
	*out = o;
	return 0;
out:
	json_decref(o);
	return error;
}

static json_t *
durations_json(const struct wf_event_durations *d)
{
	if (d->count == 0)
		return json_pack("{s:I, s:I, s:n, s:n, s:n}", "count",
		    (json_int_t)0, "total_ms", (json_int_t)0, "min_ms",
		    "max_ms", "mean_ms");
	return json_pack("{s:I, s:I, s:I, s:I, s:I}", "count",
	    (json_int_t)d->count, "total_ms", (json_int_t)d->total_ms,
	    "min_ms", (json_int_t)d->min_ms, "max_ms", (json_int_t)d->max_ms,
	    "mean_ms", (json_int_t)(d->total_ms / (int64_t)d->count));
}

static int
metrics_json(json_t **out, const struct wf_event_metrics *m)
{
	*out = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
	    " s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o}",
	    "event_count", (json_int_t)m->event_count,
	    "duplicate_count", (json_int_t)m->duplicate_count,
	    "plan_count", (json_int_t)m->plan_count,
	    "summary_count", (json_int_t)m->summary_count,
	    "executed_count", (json_int_t)m->executed_count,
	    "skipped_count", (json_int_t)m->skipped_count,
	    "multi_workflow_count", (json_int_t)m->multi_workflow_count,
	    "partial_success_count", (json_int_t)m->partial_success_count,
	    "conflict_count", (json_int_t)m->conflict_count,
	    "workflow_executed_count", (json_int_t)m->workflows_executed,
	    "workflow_skipped_count", (json_int_t)m->workflows_skipped,
	    "workflow_failed_count", (json_int_t)m->workflows_failed,
	    "enqueued_count", (json_int_t)m->enqueued_count,
	    "landed_count", (json_int_t)m->landed_count,
	    "failed_count", (json_int_t)m->failed_count,
	    "dead_count", (json_int_t)m->dead_count,
	    "execution_duration_ms", durations_json(&m->execution),
	    "step_duration_ms", durations_json(&m->step),
	    "landing_duration_ms", durations_json(&m->landing));
	return *out ? 0 : wf_error_oom();
}

int
wf_event_payload(json_t **out, const struct wf_event *ev,
    enum wf_event_redact redact)
{
	*out = NULL;
	if ((unsigned)redact > WF_EVENT_REDACT_DROP)
		return wf_error_set(WF_EINPUT, "event: unknown redaction");
	switch (ev->type) {
	case WF_EVENT_PLAN_CREATED:
		return plan_json(out, &ev->u.plan);
	case WF_EVENT_EXECUTION_SUMMARY:
		return summary_json(out, &ev->u.summary, redact);
	case WF_EVENT_CHANGE_ENQUEUED:
	case WF_EVENT_CHANGE_LANDED:
	case WF_EVENT_CHANGE_FAILED:
	case WF_EVENT_CHANGE_DEAD:
		return change_json(out, ev->type, &ev->u.change);
	case WF_EVENT_BATCH_METRICS:
		return metrics_json(out, &ev->u.metrics);
	}
	return wf_error_set(WF_EINPUT, "event: unknown type");
}

int
wf_event_id(git_oid *out, const json_t *payload)
{
	return wf_hash_json(out, payload);
}

/* The event's subject for CloudEvents: what it is about, or NULL. */
static const char *
subject(const struct wf_event *ev)
{
	switch (ev->type) {
	case WF_EVENT_PLAN_CREATED:
		return ev->u.plan.plan_id;
	case WF_EVENT_EXECUTION_SUMMARY:
		return ev->u.summary.plan_id;
	case WF_EVENT_BATCH_METRICS:
		return NULL;
	default:
		return ev->u.change.change_id;
	}
}

int
wf_event_envelope(json_t **out, const struct wf_event *ev,
    const json_t *payload, const struct wf_event_opts *opts)
{
	static const struct wf_event_opts defaults = WF_EVENT_OPTS_INIT;
	char hex[GIT_OID_HEXSZ + 1], when[32];
	const char *subj = subject(ev);
	json_t *o;
	git_oid id;
	int error;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (opts->time != -1) {
		time_t t = (time_t)opts->time;
		struct tm tm;

		if (opts->time < 0 || (int64_t)t != opts->time ||
		    !gmtime_r(&t, &tm) || tm.tm_year > 9999 - 1900)
			return wf_error_set(WF_EINPUT, "time %lld out of range",
			    (long long)opts->time);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	if ((error = wf_event_id(&id, payload)) < 0)
		return error;
	if (!(o = json_object()))
		return wf_error_oom();
	if ((error = set(o, "specversion", json_string("1.0"))) < 0 ||
	    (error = set(o, "id", json_string(wf_hash_hex(hex, &id)))) < 0 ||
	    (error = set(o, "source", json_string(opts->source ?
	    opts->source : WF_EVENT_SOURCE_DEFAULT))) < 0 ||
	    (error = set(o, "type", json_string(type_names[ev->type]))) < 0 ||
	    (subj && (error = set(o, "subject", json_string(subj))) < 0) ||
	    (opts->time != -1 && (error = set(o, "time",
	    json_string(when))) < 0) ||
	    (error = set(o, "datacontenttype",
	    json_string("application/json"))) < 0 ||
	    (error = set(o, "data", json_incref((json_t *)payload))) < 0) {
		json_decref(o);
		return error;
	}
	*out = o;
	return 0;
}

static int
render(char **out, size_t *len, git_oid *id, const struct wf_event *ev,
    const struct wf_event_opts *opts, int pretty)
{
	static const struct wf_event_opts defaults = WF_EVENT_OPTS_INIT;
	json_t *payload = NULL, *env = NULL;
	const json_t *v;
	char *s = NULL, *t;
	size_t n;
	int error;

	*out = NULL;
	*len = 0;
	if (!opts)
		opts = &defaults;
	if ((error = wf_event_payload(&payload, ev, opts->redact)) < 0)
		goto out;
	if (id && (error = wf_event_id(id, payload)) < 0)
		goto out;
	v = payload;
	if (opts->cloudevents) {
		if ((error = wf_event_envelope(&env, ev, payload, opts)) < 0)
			goto out;
		v = env;
	}
	if (pretty) {
		if (!(s = json_dumps(v, JSON_INDENT(2)))) {
			error = wf_error_oom();
			goto out;
		}
		n = strlen(s);
	} else if ((error = wf_json_dump(&s, &n, v, 0)) < 0) {
		goto out;
	}
	if (!(t = realloc(s, n + 2))) {
		error = wf_error_oom();
		goto out;
	}
	s = t;
	s[n++] = '\n';
	s[n] = '\0';
	*out = s;
	*len = n;
	s = NULL;
out:
	free(s);
	json_decref(env);
	json_decref(payload);
	return error;
}

int
wf_event_render(char **out, size_t *len, git_oid *id,
    const struct wf_event *ev, const struct wf_event_opts *opts)
{
	return render(out, len, id, ev, opts, 0);
}

int
wf_event_render_pretty(char **out, size_t *len, const struct wf_event *ev,
    const struct wf_event_opts *opts)
{
	return render(out, len, NULL, ev, opts, 1);
}

/*
 * Batch metrics.
 */
struct wf_event_batch {
	struct wf_event_metrics m;
	struct wf_map seen;	/* ids of the inputs counted; keys owned */
};

int
wf_event_batch_new(struct wf_event_batch **out)
{
	if (!(*out = calloc(1, sizeof(**out))))
		return wf_error_oom();
	wf_map_init(&(*out)->seen);
	return 0;
}

void
wf_event_batch_free(struct wf_event_batch *b)
{
	size_t i;

	if (!b)
		return;
	for (i = 0; i < b->seen.cap; i++)
		free((char *)b->seen.slots[i].key);
	wf_map_release(&b->seen);
	free(b);
}

static void
durations_add(struct wf_event_durations *d, int64_t ms)
{
	if (ms < 0)
		return;
	if (d->count == 0 || ms < d->min_ms)
		d->min_ms = ms;
	if (d->count == 0 || ms > d->max_ms)
		d->max_ms = ms;
	d->count++;
	d->total_ms += ms;
}

static void
durations_merge(struct wf_event_durations *d,
    const struct wf_event_durations *add)
{
	if (add->count == 0)
		return;
	if (d->count == 0 || add->min_ms < d->min_ms)
		d->min_ms = add->min_ms;
	if (d->count == 0 || add->max_ms > d->max_ms)
		d->max_ms = add->max_ms;
	d->count += add->count;
	d->total_ms += add->total_ms;
}

/* What one summary adds. */
static void
count_summary(struct wf_event_metrics *m, const struct wf_event_summary *s)
{
	uint64_t executed = 0, failed = 0;
	size_t i, j;

	m->summary_count++;
	if (s->status == WF_EVENT_EXECUTED)
		m->executed_count++;
	else
		m->skipped_count++;
	if (s->workflow_count > 1)
		m->multi_workflow_count++;
	for (i = 0; i < s->nstage_runs; i++) {
		const struct wf_event_stage_run *sr = &s->stage_runs[i];

		m->conflict_count += sr->nblocking_conflicts;
		for (j = 0; j < sr->nworkflows; j++)
			switch (sr->workflows[j].status) {
			case WF_EVENT_EXECUTED:
				executed++;
				break;
			case WF_EVENT_SKIPPED:
				m->workflows_skipped++;
				break;
			case WF_EVENT_FAILED:
				failed++;
				break;
			}
	}
	m->workflows_executed += executed;
	m->workflows_failed += failed;
	if (executed > 0 && failed > 0)
		m->partial_success_count++;
}

static void
count_change(struct wf_event_metrics *m, enum wf_event_type type,
    const struct wf_event_change *c)
{
	switch (type) {
	case WF_EVENT_CHANGE_ENQUEUED:
		if (!c->existing)
			m->enqueued_count++;
		break;
	case WF_EVENT_CHANGE_LANDED:
		m->landed_count++;
		break;
	case WF_EVENT_CHANGE_FAILED:
		m->failed_count++;
		break;
	case WF_EVENT_CHANGE_DEAD:
		m->dead_count++;
		break;
	default:
		break;
	}
	if (c->duration_ms >= 0)
		durations_add(&m->landing, c->duration_ms);
}

/* The duration_ms of the steps wf-run reports with each workflow. */
static void
count_steps(struct wf_event_durations *d, const json_t *summary)
{
	const json_t *sr, *w, *st, *ms;
	size_t i, j, k;

	json_array_foreach(json_object_get(summary, "stage_runs"), i, sr)
		json_array_foreach(json_object_get(sr, "workflows"), j, w)
			json_array_foreach(json_object_get(w, "steps"), k, st)
				if (json_is_integer(ms = json_object_get(st,
				    "duration_ms")))
					durations_add(d, json_integer_value(ms));
}

/* Classify and count `v` (the payload, at p->path) into *d. */
static int
count_value(struct wf_event_metrics *d, struct parse *p, json_t *v,
    const char *type)
{
	struct wf_event *ev = p->ev;
	enum wf_event_type t, declared = WF_EVENT_BATCH_METRICS;
	int64_t ms;
	int error;

	if (type) {
		if (wf_event_type_parse(&declared, type) < 0)
			return bad(p, "type", "not a wf event type");
		t = declared;
		wf_jpath_push_key(&p->path, "data");
	} else if (json_is_object(v) && json_object_get(v, "stage_runs")) {
		t = WF_EVENT_EXECUTION_SUMMARY;
	} else if (json_is_object(v) && json_object_get(v, "stages")) {
		t = WF_EVENT_PLAN_CREATED;
	} else if (json_is_object(v) && json_object_get(v, "change_id")) {
		t = WF_EVENT_CHANGE_ENQUEUED;	/* refined by parse_change */
	} else if (json_is_object(v) && json_object_get(v, "id") &&
	    json_object_get(v, "state")) {
		if ((error = parse_change(&ev->u.change, &t, p, v, "id")) < 0)
			return error;
		count_change(d, t, &ev->u.change);
		return 0;
	} else {
		return wf_json_error(p->doc, &p->path, "not an execution "
		    "summary, plan or change event");
	}
	switch (t) {
	case WF_EVENT_PLAN_CREATED:
		if ((error = parse_plan(&ev->u.plan, p, v)) < 0)
			return error;
		d->plan_count++;
		return 0;
	case WF_EVENT_EXECUTION_SUMMARY:
		if ((error = parse_summary(&ev->u.summary, p, v)) < 0 ||
		    (error = get_int(&ms, NULL, p, v, "duration_ms", 0, 0,
		    0)) < 0)
			return error;
		count_summary(d, &ev->u.summary);
		if (json_object_get(v, "duration_ms"))
			durations_add(&d->execution, ms);
		count_steps(&d->step, v);
		return 0;
	case WF_EVENT_BATCH_METRICS:
		/* Metrics of an earlier batch are not counted again. */
		return 0;
	default:
		if ((error = parse_change(&ev->u.change, &t, p, v,
		    "change_id")) < 0)
			return error;
		if (type && t != declared) {
			p->path.depth = 0;
			return bad(p, "type", "does not fit the data's state");
		}
		count_change(d, t, &ev->u.change);
		return 0;
	}
}

int
wf_event_batch_add(struct wf_event_batch *b, const struct wf_json_doc *doc)
{
	struct wf_event_metrics d;
	struct parse p;
	struct wf_event *unused;
	json_t *v = doc->value, *data = NULL;
	const char *type = NULL;
	char hex[GIT_OID_HEXSZ + 1], *key;
	git_oid id;
	int error;

	memset(&d, 0, sizeof(d));
	/* The parse's event holds the arrays while one input is counted. */
	if ((error = parse_start(&p, &unused, WF_EVENT_BATCH_METRICS, doc)) < 0)
		return error;
	if (json_is_object(v) && json_object_get(v, "specversion")) {
		if ((error = get_string(&type, &p, v, "type", 1)) < 0)
			goto out;
		if (!(data = json_object_get(v, "data"))) {
			error = missing(&p, "data");
			goto out;
		}
		v = data;
	}
	if ((error = count_value(&d, &p, v, type)) < 0)
		goto out;
	if ((error = wf_hash_json(&id, v)) < 0)
		goto out;
	if (!(key = strdup(wf_hash_hex(hex, &id)))) {
		error = wf_error_oom();
		goto out;
	}
	if ((error = wf_map_put(NULL, &b->seen, key, 0)) < 0) {
		free(key);
		if (error != WF_ECONFLICT)
			goto out;
		b->m.duplicate_count++;
		error = 0;
		goto out;
	}
	b->m.event_count++;
	b->m.plan_count += d.plan_count;
	b->m.summary_count += d.summary_count;
	b->m.executed_count += d.executed_count;
	b->m.skipped_count += d.skipped_count;
	b->m.multi_workflow_count += d.multi_workflow_count;
	b->m.partial_success_count += d.partial_success_count;
	b->m.conflict_count += d.conflict_count;
	b->m.workflows_executed += d.workflows_executed;
	b->m.workflows_skipped += d.workflows_skipped;
	b->m.workflows_failed += d.workflows_failed;
	b->m.enqueued_count += d.enqueued_count;
	b->m.landed_count += d.landed_count;
	b->m.failed_count += d.failed_count;
	b->m.dead_count += d.dead_count;
	durations_merge(&b->m.execution, &d.execution);
	durations_merge(&b->m.step, &d.step);
	durations_merge(&b->m.landing, &d.landing);
out:
	wf_event_free(p.ev);
	return error;
}

void
wf_event_batch_event(struct wf_event *out, const struct wf_event_batch *b)
{
	memset(out, 0, sizeof(*out));
	out->type = WF_EVENT_BATCH_METRICS;
	out->u.metrics = b->m;
}
