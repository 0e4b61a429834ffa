#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "check_suites.h"
#include "error.h"
#include "event.h"
#include "hash.h"

/* A doc over `text`, named "<stdin>" as the tool names stdin. */
static void
doc_of(struct wf_json_doc *d, const char *text)
{
	json_error_t err;

	memset(d, 0, sizeof(*d));
	d->value = json_loads(text, 0, &err);
	ck_assert_msg(d->value != NULL, "bad test JSON: %s", err.text);
	d->name = "<stdin>";
	d->text = text;
	d->len = strlen(text);
	d->line = 1;
	d->col = 1;
}

typedef int (*parser)(struct wf_event **, const struct wf_json_doc *);

static int
parse(struct wf_event **out, parser fn, const char *text)
{
	struct wf_json_doc d;
	int error;

	doc_of(&d, text);
	error = fn(out, &d);
	/* The event keeps its own reference to the input. */
	json_decref(d.value);
	return error;
}

static struct wf_event *
parse_ok(parser fn, const char *text)
{
	struct wf_event *ev = NULL;
	int rc = parse(&ev, fn, text);

	ck_assert_msg(rc == 0, "%s", wf_error_last());
	ck_assert_ptr_nonnull(ev);
	return ev;
}

/* The rendered event without its newline; the caller frees it. */
static char *
render(const struct wf_event *ev, const struct wf_event_opts *opts)
{
	char *s = NULL;
	size_t len;

	ck_assert_msg(wf_event_render(&s, &len, NULL, ev, opts) == 0, "%s",
	    wf_error_last());
	ck_assert_uint_eq(strlen(s), len);
	ck_assert_int_eq(s[len - 1], '\n');
	s[len - 1] = '\0';
	return s;
}

static void
assert_renders(parser fn, const char *in, const struct wf_event_opts *opts,
    const char *want)
{
	struct wf_event *ev = parse_ok(fn, in);
	char *got = render(ev, opts);

	ck_assert_str_eq(got, want);
	free(got);
	wf_event_free(ev);
}

/* The message of a parse that fails with WF_EINPUT, after "<stdin>:". */
static void
assert_refused(parser fn, const char *in, const char *want)
{
	struct wf_event *ev = (struct wf_event *)1;
	const char *msg;

	ck_assert_int_eq(parse(&ev, fn, in), WF_EINPUT);
	ck_assert_ptr_null(ev);
	msg = wf_error_last();
	ck_assert_msg(strncmp(msg, "<stdin>:", 8) == 0, "%s", msg);
	ck_assert_str_eq(msg + 8, want);
}

/* The contract's plan_created example, as wf-plan would write it. */
static const char plan[] =
    "{\"plan_id\": \"multiwf-6e1f3f6a15c54f3a8366d77ba47cbe1d\","
    " \"issue_number\": 482, \"stage_count\": 2, \"workflow_count\": 3,"
    " \"allow_partial_success\": true, \"preview_only\": false,"
    " \"selection_reason\": \"multi_label_match\","
    " \"selection_message\": \"Labels matched compliance-advisory and"
    " enforcement-snapshot workflows\","
    " \"stages\": [{\"index\": 0, \"run_mode\": \"parallel\","
    " \"workflows\": [\"compliance-advisory\", \"policy-overview\"],"
    " \"blocking_conflicts\": [\"deliverable:weekly-report\"]},"
    " {\"index\": 1, \"run_mode\": \"sequential\","
    " \"workflows\": [\"enforcement-snapshot\"], \"blocking_conflicts\": []}],"
    " \"max_parallel\": 4, \"item\": {\"number\": 482}, \"workflows\": [],"
    " \"deliverable_manifest\": {\"entries\": []}}";

static const char plan_payload[] =
    "{\"plan_id\":\"multiwf-6e1f3f6a15c54f3a8366d77ba47cbe1d\","
    "\"issue_number\":482,\"stage_count\":2,\"workflow_count\":3,"
    "\"allow_partial_success\":true,\"preview_only\":false,"
    "\"selection_reason\":\"multi_label_match\","
    "\"selection_message\":\"Labels matched compliance-advisory and"
    " enforcement-snapshot workflows\","
    "\"stages\":[{\"index\":0,\"run_mode\":\"parallel\","
    "\"workflows\":[\"compliance-advisory\",\"policy-overview\"],"
    "\"blocking_conflicts\":[\"deliverable:weekly-report\"]},"
    "{\"index\":1,\"run_mode\":\"sequential\","
    "\"workflows\":[\"enforcement-snapshot\"],\"blocking_conflicts\":[]}]}";

/* A summary with one executed and one failed workflow and a manifest. */
static const char summary[] =
    "{\"issue_number\": 7, \"plan_id\": \"multiwf-1\", \"stage_count\": 1,"
    " \"workflow_count\": 2, \"preview_only\": false,"
    " \"allow_partial_success\": true,"
    " \"deliverable_manifest\": {\"entries\": [{\"workflow\": \"a\","
    " \"name\": \"r\", \"path\": \"out/a/r.md\","
    " \"template\": \"out/{workflow}/r.md\"}]},"
    " \"stage_runs\": [{\"index\": 0, \"run_mode\": \"parallel\","
    " \"blocking_conflicts\": [],"
    " \"workflows\": [{\"workflow_name\": \"a\", \"status\": \"executed\","
    " \"created_files\": [\"out/a/r.md\"]},"
    " {\"workflow_name\": \"b\", \"status\": \"failed\"}]}],"
    " \"status\": \"executed\","
    " \"errors\": [{\"workflow_name\": \"b\", \"error\": \"exit 1\"}],"
    " \"changes\": []}";

static const char summary_head[] =
    "{\"issue_number\":7,\"plan_id\":\"multiwf-1\",\"stage_count\":1,"
    "\"workflow_count\":2,\"stages\":[{\"index\":0,\"run_mode\":\"parallel\","
    "\"workflows\":[\"a\",\"b\"],\"blocking_conflicts\":[]}],"
    "\"preview_only\":false,\"allow_partial_success\":true,";

START_TEST(test_plan_payload)
{
	assert_renders(wf_event_from_plan, plan, NULL, plan_payload);
}
END_TEST

START_TEST(test_plan_null_issue)
{
	/* Conditional: written null when the plan has none. */
	assert_renders(wf_event_from_plan,
	    "{\"plan_id\": \"p\", \"issue_number\": null, \"stage_count\": 0,"
	    " \"workflow_count\": 0, \"allow_partial_success\": false,"
	    " \"preview_only\": false, \"selection_reason\": null,"
	    " \"stages\": []}", NULL,
	    "{\"plan_id\":\"p\",\"issue_number\":null,\"stage_count\":0,"
	    "\"workflow_count\":0,\"allow_partial_success\":false,"
	    "\"preview_only\":false,\"stages\":[]}");
}
END_TEST

/* Remove `key` from the object at `path` (a JSON pointer) in `text`. */
static char *
without(const char *text, const char *ptr, const char *key)
{
	json_t *v = json_loads(text, 0, NULL), *o = v;
	char *s, *p = strdup(ptr), *tok, *save = NULL;

	ck_assert_ptr_nonnull(v);
	for (tok = strtok_r(p, "/", &save); tok; tok = strtok_r(NULL, "/",
	    &save))
		o = json_is_array(o) ? json_array_get(o, strtoul(tok, NULL,
		    10)) : json_object_get(o, tok);
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(json_object_del(o, key), 0);
	s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(v);
	free(p);
	return s;
}

struct missing_case {
	const char *ptr;	/* where the field's object is */
	const char *key;
	const char *path;	/* how the error names it */
};

static void
assert_missing(parser fn, const char *text, const struct missing_case *c)
{
	char *in = without(text, c->ptr, c->key), want[256];
	struct wf_event *ev = (struct wf_event *)1;
	const char *msg, *rest;

	ck_assert_int_eq(parse(&ev, fn, in), WF_EINPUT);
	ck_assert_ptr_null(ev);
	msg = wf_error_last();
	/* "<stdin>:1:<col>: <path>: missing required field" */
	ck_assert_msg(strncmp(msg, "<stdin>:1:", 10) == 0, "%s", msg);
	rest = strchr(msg + 10, ':');
	ck_assert_ptr_nonnull(rest);
	snprintf(want, sizeof(want), ": %s: missing required field", c->path);
	ck_assert_str_eq(rest, want);
	free(in);
}

START_TEST(test_plan_missing)
{
	static const struct missing_case cases[] = {
		{ "", "plan_id", ".plan_id" },
		{ "", "stage_count", ".stage_count" },
		{ "", "workflow_count", ".workflow_count" },
		{ "", "allow_partial_success", ".allow_partial_success" },
		{ "", "preview_only", ".preview_only" },
		{ "", "stages", ".stages" },
		{ "stages/1", "index", ".stages[1].index" },
		{ "stages/0", "run_mode", ".stages[0].run_mode" },
		{ "stages/1", "workflows", ".stages[1].workflows" },
		{ "stages/0", "blocking_conflicts",
		    ".stages[0].blocking_conflicts" }
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_missing(wf_event_from_plan, plan, &cases[i]);
}
END_TEST

START_TEST(test_summary_missing)
{
	static const struct missing_case cases[] = {
		{ "", "issue_number", ".issue_number" },
		{ "", "plan_id", ".plan_id" },
		{ "", "stage_count", ".stage_count" },
		{ "", "workflow_count", ".workflow_count" },
		{ "", "preview_only", ".preview_only" },
		{ "", "allow_partial_success", ".allow_partial_success" },
		{ "", "stage_runs", ".stage_runs" },
		{ "", "status", ".status" },
		{ "stage_runs/0", "index", ".stage_runs[0].index" },
		{ "stage_runs/0", "run_mode", ".stage_runs[0].run_mode" },
		{ "stage_runs/0", "blocking_conflicts",
		    ".stage_runs[0].blocking_conflicts" },
		{ "stage_runs/0", "workflows", ".stage_runs[0].workflows" },
		{ "stage_runs/0/workflows/1", "workflow_name",
		    ".stage_runs[0].workflows[1].workflow_name" },
		{ "stage_runs/0/workflows/0", "status",
		    ".stage_runs[0].workflows[0].status" },
		{ "errors/0", "workflow_name", ".errors[0].workflow_name" },
		{ "errors/0", "error", ".errors[0].error" },
		{ "deliverable_manifest", "entries",
		    ".deliverable_manifest.entries" },
		{ "deliverable_manifest/entries/0", "path",
		    ".deliverable_manifest.entries[0].path" }
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_missing(wf_event_from_summary, summary, &cases[i]);
}
END_TEST

static const char landed[] =
    "{\"id\": \"t/1\", \"queue_id\": 3, \"state\": \"landed\","
    " \"commit\": \"4b825dc642cb6eb9a060e54bf8d69288fbee4904\"}";

START_TEST(test_change_missing)
{
	static const struct missing_case cases[] = {
		{ "", "id", ".id" },
		{ "", "queue_id", ".queue_id" },
		{ "", "state", ".state" },
		{ "", "commit", ".commit" }
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_missing(wf_event_from_change, landed, &cases[i]);
	assert_refused(wf_event_from_change,
	    "{\"id\": \"t/1\", \"queue_id\": 3, \"state\": \"failed\"}",
	    "1:1: .error: missing required field");
	assert_refused(wf_event_from_change,
	    "{\"id\": \"t/1\", \"queue_id\": 3, \"state\": \"leased\"}",
	    "1:39: .state: expected 'landed', 'failed', 'dead' or 'queued' "
	    "(or a wf-enqueue line, with \"position\")");
	/* wf-apply's recovery: back in the queue, as it was. */
	assert_renders(wf_event_from_change,
	    "{\"id\": \"t/1\", \"queue_id\": 3, \"state\": \"queued\"}", NULL,
	    "{\"change_id\":\"t/1\",\"queue_id\":3,\"state\":\"queued\","
	    "\"position\":null,\"existing\":true}");
}
END_TEST

START_TEST(test_bad_values)
{
	assert_refused(wf_event_from_summary,
	    "{\"issue_number\": 1, \"plan_id\": \"p\", \"stage_count\": 0,"
	    " \"workflow_count\": 0, \"preview_only\": false,"
	    " \"allow_partial_success\": false, \"stage_runs\": [],"
	    " \"status\": \"retrying\"}",
	    "1:159: .status: unknown value 'retrying' (expected 'executed' or "
	    "'skipped')");
	assert_refused(wf_event_from_summary,
	    "{\"issue_number\": 1, \"plan_id\": \"p\", \"stage_count\": -1}",
	    "1:52: .stage_count: expected at least 0");
	assert_refused(wf_event_from_plan, "[]", "1:1: expected an object");
	assert_refused(wf_event_from_change,
	    "{\"id\": \"t/1\", \"queue_id\": 0, \"state\": \"dead\","
	    " \"error\": \"x\"}", "1:27: .queue_id: expected at least 1");
	assert_refused(wf_event_from_skipped_plan, plan,
	    "1:164: .preview_only: only a preview-only plan is skipped");
}
END_TEST

START_TEST(test_summary_payload)
{
	char want[2048];

	snprintf(want, sizeof(want), "%s%s", summary_head,
	    "\"deliverable_manifest\":{\"entries\":[{\"workflow\":\"a\","
	    "\"name\":\"r\",\"path\":\"out/a/r.md\","
	    "\"template\":\"out/{workflow}/r.md\"}]},"
	    "\"stage_runs\":[{\"index\":0,\"run_mode\":\"parallel\","
	    "\"blocking_conflicts\":[],\"workflows\":[{\"workflow_name\":\"a\","
	    "\"status\":\"executed\",\"created_files\":[\"out/a/r.md\"]},"
	    "{\"workflow_name\":\"b\",\"status\":\"failed\"}]}],"
	    "\"status\":\"executed\","
	    "\"errors\":[{\"workflow_name\":\"b\",\"error\":\"exit 1\"}]}");
	assert_renders(wf_event_from_summary, summary, NULL, want);
}
END_TEST

START_TEST(test_redact)
{
	struct wf_event_opts opts = WF_EVENT_OPTS_INIT;
	struct wf_event *ev = parse_ok(wf_event_from_summary, summary);
	char hex[GIT_OID_HEXSZ + 1], hex2[GIT_OID_HEXSZ + 1], want[256];
	enum wf_event_redact mode;
	git_oid id;
	char *got;

	ck_assert_int_eq(wf_event_redact_parse(&mode, "hash"), 0);
	ck_assert_int_eq(mode, WF_EVENT_REDACT_HASH);
	ck_assert_int_eq(wf_event_redact_parse(&mode, "blur"), WF_EINPUT);

	opts.redact = WF_EVENT_REDACT_HASH;
	got = render(ev, &opts);
	ck_assert_int_eq(wf_hash_buf(&id, "out/a/r.md", 10), 0);
	wf_hash_hex(hex, &id);
	ck_assert_int_eq(wf_hash_buf(&id, "out/{workflow}/r.md", 19), 0);
	wf_hash_hex(hex2, &id);
	ck_assert_ptr_null(strstr(got, "out/"));
	snprintf(want, sizeof(want), "\"created_files\":[\"%s\"]", hex);
	ck_assert_ptr_nonnull(strstr(got, want));
	snprintf(want, sizeof(want), "\"path\":\"%s\",\"template\":\"%s\"",
	    hex, hex2);
	ck_assert_ptr_nonnull(strstr(got, want));
	free(got);

	opts.redact = WF_EVENT_REDACT_DROP;
	got = render(ev, &opts);
	ck_assert_ptr_null(strstr(got, "out/"));
	ck_assert_ptr_null(strstr(got, "created_files"));
	ck_assert_ptr_nonnull(strstr(got, "\"entries\":[{\"workflow\":\"a\","
	    "\"name\":\"r\"}]"));
	ck_assert_ptr_nonnull(strstr(got, "{\"workflow_name\":\"a\","
	    "\"status\":\"executed\"}"));
	free(got);

	opts.redact = WF_EVENT_REDACT_KEEP;
	got = render(ev, &opts);
	ck_assert_ptr_nonnull(strstr(got, "\"created_files\":[\"out/a/r.md\"]"));
	free(got);
	wf_event_free(ev);
}
END_TEST

START_TEST(test_id_determinism)
{
	struct wf_event *a = parse_ok(wf_event_from_plan, plan);
	struct wf_event *b;
	git_oid ida, idb, want;
	char *sa, *sb, *canon;
	size_t la, lb;
	json_t *p;

	/* The same content however it is spelled: same id. */
	b = parse_ok(wf_event_from_plan,
	    "{\"stages\": [{\"blocking_conflicts\": [\"deliverable:weekly-report\"],"
	    " \"workflows\": [\"compliance-advisory\", \"policy-overview\"],"
	    " \"run_mode\": \"parallel\", \"index\": 0},"
	    " {\"index\": 1, \"run_mode\": \"sequential\","
	    " \"workflows\": [\"enforcement-snapshot\"], \"blocking_conflicts\": []}],"
	    " \"selection_message\": \"Labels matched compliance-advisory and"
	    " enforcement-snapshot workflows\","
	    " \"selection_reason\": \"multi_label_match\", \"preview_only\": false,"
	    " \"allow_partial_success\": true, \"workflow_count\": 3,"
	    " \"stage_count\": 2, \"issue_number\": 482,"
	    " \"plan_id\": \"multiwf-6e1f3f6a15c54f3a8366d77ba47cbe1d\"}");
	ck_assert_int_eq(wf_event_render(&sa, &la, &ida, a, NULL), 0);
	ck_assert_int_eq(wf_event_render(&sb, &lb, &idb, b, NULL), 0);
	ck_assert_str_eq(sa, sb);
	ck_assert(git_oid_equal(&ida, &idb));

	/* The id is the blob id of the canonical payload. */
	ck_assert_int_eq(wf_event_payload(&p, a, WF_EVENT_REDACT_KEEP), 0);
	canon = wf_json_canonical(p);
	ck_assert_int_eq(wf_hash_buf(&want, canon, strlen(canon)), 0);
	ck_assert(git_oid_equal(&ida, &want));
	ck_assert_int_eq(wf_event_id(&want, p), 0);
	ck_assert(git_oid_equal(&ida, &want));
	free(canon);
	json_decref(p);
	free(sa);
	free(sb);
	wf_event_free(b);

	/* Other content: another id. */
	b = parse_ok(wf_event_from_plan, "{\"plan_id\": \"p\", \"stage_count\": 0,"
	    " \"workflow_count\": 0, \"allow_partial_success\": true,"
	    " \"preview_only\": false, \"stages\": []}");
	ck_assert_int_eq(wf_event_render(&sb, &lb, &idb, b, NULL), 0);
	ck_assert(!git_oid_equal(&ida, &idb));
	free(sb);
	wf_event_free(b);
	wf_event_free(a);
}
END_TEST

START_TEST(test_envelope)
{
	struct wf_event_opts opts = WF_EVENT_OPTS_INIT;
	struct wf_event *ev = parse_ok(wf_event_from_plan, plan);
	char hex[GIT_OID_HEXSZ + 1], want[2048], *got;
	git_oid id;
	size_t len;
	json_t *p, *env;

	opts.cloudevents = 1;
	opts.time = 1700000000;
	ck_assert_int_eq(wf_event_render(&got, &len, &id, ev, &opts), 0);
	snprintf(want, sizeof(want), "{\"specversion\":\"1.0\",\"id\":\"%s\","
	    "\"source\":\"urn:wf:wf-emit\","
	    "\"type\":\"multi_workflow.plan_created\","
	    "\"subject\":\"multiwf-6e1f3f6a15c54f3a8366d77ba47cbe1d\","
	    "\"time\":\"2023-11-14T22:13:20Z\","
	    "\"datacontenttype\":\"application/json\",\"data\":%s}\n",
	    wf_hash_hex(hex, &id), plan_payload);
	ck_assert_str_eq(got, want);
	free(got);

	/* No time, another source. */
	opts.time = -1;
	opts.source = "/ci/7";
	ck_assert_int_eq(wf_event_payload(&p, ev, WF_EVENT_REDACT_KEEP), 0);
	ck_assert_int_eq(wf_event_envelope(&env, ev, p, &opts), 0);
	ck_assert_ptr_null(json_object_get(env, "time"));
	ck_assert_str_eq(json_string_value(json_object_get(env, "source")),
	    "/ci/7");
	ck_assert_ptr_eq(json_object_get(env, "data"), p);
	json_decref(env);

	opts.time = -5;
	ck_assert_int_eq(wf_event_envelope(&env, ev, p, &opts), WF_EINPUT);
	ck_assert_ptr_null(env);
	json_decref(p);
	wf_event_free(ev);
}
END_TEST

START_TEST(test_type_names)
{
	enum wf_event_type t;
	int i;

	for (i = 0; i < WF_EVENT_TYPE_COUNT; i++) {
		ck_assert_int_eq(wf_event_type_parse(&t,
		    wf_event_type_name((enum wf_event_type)i)), 0);
		ck_assert_int_eq(t, i);
	}
	ck_assert_str_eq(wf_event_type_name(WF_EVENT_CHANGE_DEAD),
	    "wf.change.dead");
	ck_assert_int_eq(wf_event_type_parse(&t, "wf.change"), WF_ENOTFOUND);
	ck_assert_ptr_null(wf_event_type_name(WF_EVENT_TYPE_COUNT));
}
END_TEST

START_TEST(test_hand_built)
{
	static const char *const names[] = { "a" };
	struct wf_event_stage st = { 0, WF_EVENT_SEQUENTIAL, names, 1, NULL,
	    0 };
	struct wf_event ev;
	json_t *p = (json_t *)1;

	memset(&ev, 0, sizeof(ev));
	ev.type = WF_EVENT_PLAN_CREATED;
	ev.u.plan.stage_count = 1;
	ev.u.plan.workflow_count = 1;
	ev.u.plan.stages = &st;
	ev.u.plan.nstages = 1;
	/* A required string left NULL is refused, not written. */
	ck_assert_int_eq(wf_event_payload(&p, &ev, WF_EVENT_REDACT_KEEP),
	    WF_EINPUT);
	ck_assert_ptr_null(p);
	ck_assert_str_eq(wf_error_last(), "event: plan_id: missing required "
	    "field");
	ev.u.plan.plan_id = "p";
	st.run_mode = (enum wf_event_run_mode)7;
	ck_assert_int_eq(wf_event_payload(&p, &ev, WF_EVENT_REDACT_KEEP),
	    WF_EINPUT);
	st.run_mode = WF_EVENT_SEQUENTIAL;
	ck_assert_int_eq(wf_event_payload(&p, &ev, WF_EVENT_REDACT_KEEP), 0);
	json_decref(p);

	/* A change whose state does not fit its type. */
	memset(&ev, 0, sizeof(ev));
	ev.type = WF_EVENT_CHANGE_LANDED;
	ev.u.change.change_id = "c";
	ev.u.change.state = "failed";
	ev.u.change.attempts = ev.u.change.duration_ms = -1;
	ck_assert_int_eq(wf_event_payload(&p, &ev, WF_EVENT_REDACT_KEEP),
	    WF_EINPUT);
	ev.u.change.state = "landed";
	ck_assert_int_eq(wf_event_payload(&p, &ev, WF_EVENT_REDACT_KEEP),
	    WF_EINPUT);
	ev.u.change.commit = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
	ck_assert_int_eq(wf_event_payload(&p, &ev, WF_EVENT_REDACT_KEEP), 0);
	json_decref(p);

	/* A summary may not say "failed" overall. */
	memset(&ev, 0, sizeof(ev));
	ev.type = WF_EVENT_EXECUTION_SUMMARY;
	ev.u.summary.plan_id = "p";
	ev.u.summary.status = WF_EVENT_FAILED;
	ck_assert_int_eq(wf_event_payload(&p, &ev, WF_EVENT_REDACT_KEEP),
	    WF_EINPUT);
}
END_TEST

START_TEST(test_skipped)
{
	char *in = strdup(plan), *p, want[4096];

	p = strstr(in, "\"preview_only\": false");
	memcpy(p + strlen("\"preview_only\": "), "true ", 5);
	snprintf(want, sizeof(want),
	    "{\"issue_number\":482,"
	    "\"plan_id\":\"multiwf-6e1f3f6a15c54f3a8366d77ba47cbe1d\","
	    "\"stage_count\":2,\"workflow_count\":3,\"stages\":%.*s,"
	    "\"preview_only\":true,\"selection_reason\":\"multi_label_match\","
	    "\"selection_message\":\"Labels matched compliance-advisory and"
	    " enforcement-snapshot workflows\",\"allow_partial_success\":true,"
	    "\"stage_runs\":[{\"index\":0,\"run_mode\":\"parallel\","
	    "\"blocking_conflicts\":[\"deliverable:weekly-report\"],"
	    "\"workflows\":[{\"workflow_name\":\"compliance-advisory\","
	    "\"status\":\"skipped\",\"message\":\"Multi-workflow execution"
	    " skipped due to preview-only mode.\"},"
	    "{\"workflow_name\":\"policy-overview\",\"status\":\"skipped\","
	    "\"message\":\"Multi-workflow execution skipped due to preview-only"
	    " mode.\"}]},{\"index\":1,\"run_mode\":\"sequential\","
	    "\"blocking_conflicts\":[],\"workflows\":[{\"workflow_name\":"
	    "\"enforcement-snapshot\",\"status\":\"skipped\",\"message\":"
	    "\"Multi-workflow execution skipped due to preview-only mode.\"}]}],"
	    "\"status\":\"skipped\",\"skip_reason\":\"preview_only_guard\"}",
	    (int)(strlen(plan_payload) - (strstr(plan_payload, "\"stages\":") -
	    plan_payload) - strlen("\"stages\":") - 1),
	    strstr(plan_payload, "\"stages\":") + strlen("\"stages\":"));
	assert_renders(wf_event_from_skipped_plan, in, NULL, want);
	free(in);
}
END_TEST

static void
batch_add(struct wf_event_batch *b, const char *text, int want)
{
	struct wf_json_doc d;

	doc_of(&d, text);
	ck_assert_msg(wf_event_batch_add(b, &d) == want, "%s",
	    wf_error_last());
	json_decref(d.value);
}

START_TEST(test_batch)
{
	struct wf_event_batch *b;
	struct wf_event ev;
	const struct wf_event_metrics *m = &ev.u.metrics;

	ck_assert_int_eq(wf_event_batch_new(&b), 0);
	batch_add(b, summary, 0);
	batch_add(b, summary, 0);	/* a duplicate */
	batch_add(b, plan, 0);
	batch_add(b, landed, 0);
	batch_add(b, "{\"id\": \"t/2\", \"queue_id\": 4, \"state\": \"dead\","
	    " \"reason\": \"no\", \"duration_ms\": 30}", 0);
	batch_add(b, "{\"id\": \"t/3\", \"queue_id\": 5, \"state\": \"queued\","
	    " \"position\": 1}", 0);
	batch_add(b, "{\"specversion\": \"1.0\", \"type\": \"wf.change.failed\","
	    " \"data\": {\"change_id\": \"t/4\", \"queue_id\": 6,"
	    " \"state\": \"failed\", \"error\": \"x\", \"duration_ms\": 10}}", 0);
	/* Refused, and not counted. */
	batch_add(b, "{\"specversion\": \"1.0\", \"type\": \"wf.change.landed\","
	    " \"data\": {\"change_id\": \"t/4\", \"queue_id\": 6,"
	    " \"state\": \"failed\", \"error\": \"x\"}}", WF_EINPUT);
	ck_assert_str_eq(wf_error_last(), "<stdin>:1:32: .type: does not fit "
	    "the data's state");
	batch_add(b, "{\"nothing\": 1}", WF_EINPUT);
	wf_event_batch_event(&ev, b);
	ck_assert_int_eq(ev.type, WF_EVENT_BATCH_METRICS);
	ck_assert_uint_eq(m->event_count, 6);
	ck_assert_uint_eq(m->duplicate_count, 1);
	ck_assert_uint_eq(m->summary_count, 1);
	ck_assert_uint_eq(m->plan_count, 1);
	ck_assert_uint_eq(m->multi_workflow_count, 1);
	ck_assert_uint_eq(m->partial_success_count, 1);
	ck_assert_uint_eq(m->workflows_executed, 1);
	ck_assert_uint_eq(m->workflows_failed, 1);
	ck_assert_uint_eq(m->enqueued_count, 1);
	ck_assert_uint_eq(m->landed_count, 1);
	ck_assert_uint_eq(m->failed_count, 1);
	ck_assert_uint_eq(m->dead_count, 1);
	ck_assert_uint_eq(m->landing.count, 2);
	ck_assert_int_eq(m->landing.total_ms, 40);
	ck_assert_int_eq(m->landing.min_ms, 10);
	ck_assert_int_eq(m->landing.max_ms, 30);
	ck_assert_uint_eq(m->execution.count, 0);
	wf_event_batch_free(b);
	wf_event_batch_free(NULL);
	wf_event_free(NULL);
}
END_TEST

Suite *
event_suite(void)
{
	Suite *s = suite_create("event");
	TCase *tc;

	tc = tcase_create("payloads");
	tcase_add_test(tc, test_plan_payload);
	tcase_add_test(tc, test_plan_null_issue);
	tcase_add_test(tc, test_summary_payload);
	tcase_add_test(tc, test_skipped);
	tcase_add_test(tc, test_type_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("required");
	tcase_add_test(tc, test_plan_missing);
	tcase_add_test(tc, test_summary_missing);
	tcase_add_test(tc, test_change_missing);
	tcase_add_test(tc, test_bad_values);
	tcase_add_test(tc, test_hand_built);
	suite_add_tcase(s, tc);

	tc = tcase_create("ids");
	tcase_add_test(tc, test_id_determinism);
	suite_add_tcase(s, tc);

	tc = tcase_create("redaction");
	tcase_add_test(tc, test_redact);
	suite_add_tcase(s, tc);

	tc = tcase_create("envelope");
	tcase_add_test(tc, test_envelope);
	suite_add_tcase(s, tc);

	tc = tcase_create("metrics");
	tcase_add_test(tc, test_batch);
	suite_add_tcase(s, tc);
	return s;
}
