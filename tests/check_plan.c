#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "check_suites.h"
#include "error.h"
#include "hash.h"
#include "plan.h"

/*
 * Plan `text` (one WorkflowPlan, named "<stdin>" as the tool names
 * stdin).  The doc is made by hand rather than through a pipe so the
 * large cases fit.
 */
static int
plan(json_t **out, const char *text, const struct wf_plan_opts *opts)
{
	struct wf_json_doc d;
	json_error_t err;
	int error;

	memset(&d, 0, sizeof(d));
	d.value = json_loads(text, 0, &err);
	ck_assert_msg(d.value != NULL, "bad test JSON: %s", err.text);
	d.name = "<stdin>";
	d.text = text;
	d.len = strlen(text);
	d.line = 1;
	d.col = 1;
	error = wf_plan_build(out, &d, opts);
	json_decref(d.value);
	return error;
}

/* As plan(), through wf_plan_build_text(). */
static int
plan_text(char **out, size_t *len, const char *text,
    const struct wf_plan_opts *opts)
{
	struct wf_json_doc d;
	json_error_t err;
	int error;

	memset(&d, 0, sizeof(d));
	d.value = json_loads(text, 0, &err);
	ck_assert_msg(d.value != NULL, "bad test JSON: %s", err.text);
	d.name = "<stdin>";
	d.text = text;
	d.len = strlen(text);
	d.line = 1;
	d.col = 1;
	error = wf_plan_build_text(out, len, &d, opts);
	json_decref(d.value);
	return error;
}

static json_t *
plan_ok(const char *text, const struct wf_plan_opts *opts)
{
	json_t *p = NULL;
	int rc = plan(&p, text, opts);

	ck_assert_msg(rc == 0, "%s", wf_error_last());
	ck_assert_ptr_nonnull(p);
	return p;
}

/* The plan's stages alone, compact, for comparing with a literal. */
static char *
stages_of(const json_t *p)
{
	return json_dumps(json_object_get(p, "stages"), JSON_COMPACT);
}

static void
assert_stages(const json_t *p, const char *want)
{
	char *got = stages_of(p);

	ck_assert_str_eq(got, want);
	free(got);
}

/* The message (after "<stdin>:") of a plan that fails with WF_EINPUT. */
static void
assert_input_error(const char *text, const char *want)
{
	json_t *p = (json_t *)1;
	char *s = (char *)1;
	size_t len = 1;
	const char *msg;

	ck_assert_int_eq(plan(&p, text, NULL), WF_EINPUT);
	ck_assert_ptr_null(p);
	msg = wf_error_last();
	ck_assert_msg(strncmp(msg, "<stdin>:", 8) == 0, "%s", msg);
	ck_assert_str_eq(msg + 8, want);
	/* The text form fails the same way. */
	ck_assert_int_eq(plan_text(&s, &len, text, NULL), WF_EINPUT);
	ck_assert_ptr_null(s);
	ck_assert_uint_eq(len, 0);
	msg = wf_error_last();
	ck_assert_msg(strncmp(msg, "<stdin>:", 8) == 0, "%s", msg);
	ck_assert_str_eq(msg + 8, want);
}

/* The telemetry contract's example. */
static const char contract[] =
    "{\"item\": {\"number\": 482, \"title\": \"Weekly compliance\","
    " \"labels\": [\"compliance\", \"enforcement\"], \"paths\": []},"
    " \"candidates\": ["
    "{\"name\": \"policy-overview\", \"priority\": 5,"
    " \"reasons\": [\"label:compliance\"],"
    " \"deliverables\": [{\"name\": \"summary\","
    " \"path\": \"study/{number}/{workflow}/summary.md\"}]},"
    "{\"name\": \"enforcement-snapshot\", \"priority\": 5,"
    " \"reasons\": [\"label:enforcement\"],"
    " \"deliverables\": [{\"name\": \"weekly-report\","
    " \"path\": \"study/{number}/weekly-report.md\"}]},"
    "{\"name\": \"compliance-advisory\", \"priority\": 5,"
    " \"reasons\": [\"label:compliance\"],"
    " \"deliverables\": [{\"name\": \"weekly-report\","
    " \"path\": \"study/{number}/weekly-report.md\"}]}],"
    " \"selection_reason\": \"multi_label_match\","
    " \"selection_message\": \"Labels matched compliance-advisory and"
    " enforcement-snapshot workflows\"}";

START_TEST(contract_example)
{
	struct wf_plan_opts o = WF_PLAN_OPTS_INIT;
	json_t *p;
	const char *id;

	o.allow_partial_success = 1;
	p = plan_ok(contract, &o);
	assert_stages(p, "[{\"index\":0,\"run_mode\":\"parallel\","
	    "\"workflows\":[\"compliance-advisory\",\"policy-overview\"],"
	    "\"blocking_conflicts\":[\"deliverable:weekly-report\"]},"
	    "{\"index\":1,\"run_mode\":\"sequential\","
	    "\"workflows\":[\"enforcement-snapshot\"],"
	    "\"blocking_conflicts\":[]}]");
	id = json_string_value(json_object_get(p, "plan_id"));
	ck_assert_ptr_nonnull(id);
	ck_assert_uint_eq(strlen(id), 8 + 32);
	ck_assert(strncmp(id, "multiwf-", 8) == 0);
	ck_assert_int_eq(json_integer_value(json_object_get(p,
	    "issue_number")), 482);
	ck_assert_int_eq(json_integer_value(json_object_get(p,
	    "stage_count")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(p,
	    "workflow_count")), 3);
	ck_assert(json_is_true(json_object_get(p, "allow_partial_success")));
	ck_assert(json_is_false(json_object_get(p, "preview_only")));
	ck_assert_str_eq(json_string_value(json_object_get(p,
	    "selection_reason")), "multi_label_match");
	ck_assert_int_eq(json_integer_value(json_object_get(p,
	    "max_parallel")), 4);
	ck_assert_ptr_null(json_object_get(p, "explain"));
	json_decref(p);
}
END_TEST

START_TEST(key_order)
{
	static const char *const keys[] = { "plan_id", "issue_number",
	    "stage_count", "workflow_count", "allow_partial_success",
	    "preview_only", "selection_reason", "selection_message", "stages",
	    "max_parallel", "item", "workflows", "deliverable_manifest",
	    "explain", NULL };
	struct wf_plan_opts o = WF_PLAN_OPTS_INIT;
	const char *key;
	json_t *p, *v;
	size_t i = 0;

	o.explain = 1;
	p = plan_ok(contract, &o);
	json_object_foreach(p, key, v) {
		ck_assert_ptr_nonnull(keys[i]);
		ck_assert_str_eq(key, keys[i]);
		i++;
	}
	ck_assert_ptr_null(keys[i]);
	json_decref(p);
}
END_TEST

START_TEST(dependencies_order_stages)
{
	json_t *p = plan_ok("{\"item\": {}, \"candidates\": ["
	    "{\"name\": \"a\", \"depends_on\": [\"b\", \"c\"]},"
	    "{\"name\": \"b\", \"depends_on\": [\"c\"]},"
	    "{\"name\": \"c\"}, {\"name\": \"d\"}]}", NULL);

	assert_stages(p, "[{\"index\":0,\"run_mode\":\"parallel\","
	    "\"workflows\":[\"c\",\"d\"],\"blocking_conflicts\":[]},"
	    "{\"index\":1,\"run_mode\":\"sequential\","
	    "\"workflows\":[\"b\"],\"blocking_conflicts\":[]},"
	    "{\"index\":2,\"run_mode\":\"sequential\","
	    "\"workflows\":[\"a\"],\"blocking_conflicts\":[]}]");
	ck_assert(json_is_null(json_object_get(p, "issue_number")));
	json_decref(p);
}
END_TEST

START_TEST(workflows_in_stage_then_name_order)
{
	json_t *p = plan_ok("{\"item\": {}, \"candidates\": ["
	    "{\"name\": \"z\", \"reasons\": [\"label:x\"]},"
	    "{\"name\": \"a\", \"depends_on\": [\"z\"]},"
	    "{\"name\": \"m\", \"priority\": 9}]}", NULL);
	json_t *w = json_object_get(p, "workflows");
	char *s = json_dumps(w, JSON_COMPACT);

	/* Definitions as given, reasons kept. */
	ck_assert_str_eq(s, "[{\"name\":\"m\",\"priority\":9},"
	    "{\"name\":\"z\",\"reasons\":[\"label:x\"]},"
	    "{\"name\":\"a\",\"depends_on\":[\"z\"]}]");
	free(s);
	json_decref(p);
}
END_TEST

START_TEST(conflicts_separate)
{
	json_t *p = plan_ok("{\"item\": {\"number\": 1}, \"candidates\": ["
	    "{\"name\": \"a\", \"conflicts\": [\"db\"]},"
	    "{\"name\": \"b\", \"conflicts\": [\"db\", \"net\"]},"
	    "{\"name\": \"c\", \"conflicts\": [\"net\"]},"
	    "{\"name\": \"d\"}]}", NULL);

	/* a, then b (db taken: stage 1), c (stage 0, net free there). */
	assert_stages(p, "[{\"index\":0,\"run_mode\":\"parallel\","
	    "\"workflows\":[\"a\",\"c\",\"d\"],"
	    "\"blocking_conflicts\":[\"db\",\"net\"]},"
	    "{\"index\":1,\"run_mode\":\"sequential\","
	    "\"workflows\":[\"b\"],\"blocking_conflicts\":[]}]");
	json_decref(p);
}
END_TEST

START_TEST(parallelism_bound)
{
	struct wf_plan_opts o = WF_PLAN_OPTS_INIT;
	json_t *p;
	const char *text = "{\"item\": {}, \"candidates\": ["
	    "{\"name\": \"e\"}, {\"name\": \"d\"}, {\"name\": \"c\"},"
	    "{\"name\": \"b\", \"priority\": -1},"
	    "{\"name\": \"a\", \"priority\": -1}]}";

	o.max_parallel = 2;
	p = plan_ok(text, &o);
	/* Priority first, then names: c d e a b. */
	assert_stages(p, "[{\"index\":0,\"run_mode\":\"parallel\","
	    "\"workflows\":[\"c\",\"d\"],\"blocking_conflicts\":[]},"
	    "{\"index\":1,\"run_mode\":\"parallel\","
	    "\"workflows\":[\"a\",\"e\"],\"blocking_conflicts\":[]},"
	    "{\"index\":2,\"run_mode\":\"sequential\","
	    "\"workflows\":[\"b\"],\"blocking_conflicts\":[]}]");
	json_decref(p);

	o.max_parallel = 0;
	p = plan_ok(text, &o);
	ck_assert_int_eq(json_integer_value(json_object_get(p,
	    "stage_count")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(p,
	    "max_parallel")), 0);
	json_decref(p);
}
END_TEST

START_TEST(blocking_conflicts_rule)
{
	/*
	 * x holds k in stage 0.  y may not start before stage 1 (after z)
	 * and takes k there: nothing pushed it, so no blocking.  w holds k
	 * and could start in stage 0: stages 0 and 1 hold k, so it lands in
	 * 2 and both stages list k.
	 */
	json_t *p = plan_ok("{\"item\": {}, \"candidates\": ["
	    "{\"name\": \"x\", \"priority\": 3, \"conflicts\": [\"k\"]},"
	    "{\"name\": \"z\", \"priority\": 2},"
	    "{\"name\": \"y\", \"priority\": 2, \"conflicts\": [\"k\"],"
	    " \"depends_on\": [\"z\"]},"
	    "{\"name\": \"w\", \"priority\": 0, \"conflicts\": [\"k\"]}]}",
	    NULL);

	assert_stages(p, "[{\"index\":0,\"run_mode\":\"parallel\","
	    "\"workflows\":[\"x\",\"z\"],\"blocking_conflicts\":[\"k\"]},"
	    "{\"index\":1,\"run_mode\":\"sequential\","
	    "\"workflows\":[\"y\"],\"blocking_conflicts\":[\"k\"]},"
	    "{\"index\":2,\"run_mode\":\"sequential\","
	    "\"workflows\":[\"w\"],\"blocking_conflicts\":[]}]");
	json_decref(p);

	/* Only y, which no one pushed: no stage lists k. */
	p = plan_ok("{\"item\": {}, \"candidates\": ["
	    "{\"name\": \"x\", \"priority\": 3, \"conflicts\": [\"k\"]},"
	    "{\"name\": \"z\", \"priority\": 2},"
	    "{\"name\": \"y\", \"priority\": 2, \"conflicts\": [\"k\"],"
	    " \"depends_on\": [\"z\"]}]}", NULL);
	assert_stages(p, "[{\"index\":0,\"run_mode\":\"parallel\","
	    "\"workflows\":[\"x\",\"z\"],\"blocking_conflicts\":[]},"
	    "{\"index\":1,\"run_mode\":\"sequential\","
	    "\"workflows\":[\"y\"],\"blocking_conflicts\":[]}]");
	json_decref(p);
}
END_TEST

START_TEST(deliverables_conflict_implicitly)
{
	json_t *p = plan_ok("{\"item\": {\"number\": 7}, \"candidates\": ["
	    "{\"name\": \"a\", \"deliverables\": [{\"name\": \"r\","
	    " \"path\": \"out/{workflow}.md\"}]},"
	    "{\"name\": \"b\", \"deliverables\": [{\"name\": \"r\","
	    " \"path\": \"out/{workflow}.md\"}]},"
	    "{\"name\": \"c\", \"deliverables\": [{\"name\": \"s\","
	    " \"path\": \"out/{workflow}.md\"}]}]}", NULL);

	assert_stages(p, "[{\"index\":0,\"run_mode\":\"parallel\","
	    "\"workflows\":[\"a\",\"c\"],"
	    "\"blocking_conflicts\":[\"deliverable:r\"]},"
	    "{\"index\":1,\"run_mode\":\"sequential\","
	    "\"workflows\":[\"b\"],\"blocking_conflicts\":[]}]");
	json_decref(p);
}
END_TEST

START_TEST(manifest_renames)
{
	json_t *p = plan_ok("{\"item\": {\"number\": 9}, \"candidates\": ["
	    "{\"name\": \"a\", \"priority\": 3, \"deliverables\": ["
	    " {\"name\": \"x\", \"path\": \"out/{number}/r.md\"},"
	    " {\"name\": \"y\", \"path\": \"out/9/r.b.md\"}]},"
	    "{\"name\": \"b\", \"priority\": 2, \"deliverables\": ["
	    " {\"name\": \"z\", \"path\": \"out/{number}/r.md\"}]},"
	    "{\"name\": \"c\", \"priority\": 1, \"deliverables\": ["
	    " {\"name\": \"z2\", \"path\": \"out/{number}/r.md\"},"
	    " {\"name\": \"w\", \"path\": \"out/{number}/README\"},"
	    " {\"name\": \"w2\", \"path\": \"out/{number}/README\"}]}]}", NULL);
	char *s = json_dumps(json_object_get(p, "deliverable_manifest"),
	    JSON_COMPACT);

	ck_assert_str_eq(s, "{\"entries\":["
	    "{\"workflow\":\"a\",\"name\":\"x\",\"path\":\"out/9/r.md\","
	    "\"template\":\"out/{number}/r.md\"},"
	    "{\"workflow\":\"a\",\"name\":\"y\",\"path\":\"out/9/r.b.md\","
	    "\"template\":\"out/9/r.b.md\"},"
	    "{\"workflow\":\"b\",\"name\":\"z\",\"path\":\"out/9/r.b-2.md\","
	    "\"template\":\"out/{number}/r.md\","
	    "\"renamed_from\":\"out/9/r.md\"},"
	    "{\"workflow\":\"c\",\"name\":\"z2\",\"path\":\"out/9/r.c.md\","
	    "\"template\":\"out/{number}/r.md\","
	    "\"renamed_from\":\"out/9/r.md\"},"
	    "{\"workflow\":\"c\",\"name\":\"w\",\"path\":\"out/9/README\","
	    "\"template\":\"out/{number}/README\"},"
	    "{\"workflow\":\"c\",\"name\":\"w2\",\"path\":\"out/9/README.c\","
	    "\"template\":\"out/{number}/README\","
	    "\"renamed_from\":\"out/9/README\"}]}");
	free(s);
	json_decref(p);
}
END_TEST

START_TEST(manifest_without_number)
{
	json_t *p = plan_ok("{\"item\": {\"number\": null}, \"candidates\": ["
	    "{\"name\": \"a\", \"deliverables\": [{\"name\": \"x\","
	    " \"path\": \"s/{number}/{workflow}/.env\"}]}]}", NULL);
	json_t *e = json_array_get(json_object_get(json_object_get(p,
	    "deliverable_manifest"), "entries"), 0);

	ck_assert_str_eq(json_string_value(json_object_get(e, "path")),
	    "s/none/a/.env");
	ck_assert(json_is_null(json_object_get(p, "issue_number")));
	json_decref(p);
}
END_TEST

START_TEST(explain_reasons)
{
	struct wf_plan_opts o = WF_PLAN_OPTS_INIT;
	json_t *p;
	char *s;

	o.explain = 1;
	o.max_parallel = 2;
	p = plan_ok("{\"item\": {}, \"candidates\": ["
	    "{\"name\": \"a\", \"priority\": 9, \"conflicts\": [\"k\"]},"
	    "{\"name\": \"b\", \"priority\": 8, \"conflicts\": [\"k\"]},"
	    "{\"name\": \"c\", \"priority\": 7},"
	    "{\"name\": \"d\", \"priority\": 6},"
	    "{\"name\": \"e\", \"depends_on\": [\"a\", \"b\"]}]}", &o);
	s = json_dumps(json_object_get(p, "explain"), JSON_COMPACT);
	ck_assert_str_eq(s, "["
	    "{\"workflow\":\"a\",\"stage\":0,\"reason\":\"none\","
	    "\"detail\":\"no dependency, conflict or bound held it back\"},"
	    "{\"workflow\":\"b\",\"stage\":1,\"reason\":\"conflict\","
	    "\"detail\":\"conflict key 'k' held by 'a' in stage 0\"},"
	    "{\"workflow\":\"c\",\"stage\":0,\"reason\":\"none\","
	    "\"detail\":\"no dependency, conflict or bound held it back\"},"
	    "{\"workflow\":\"d\",\"stage\":1,\"reason\":\"parallelism\","
	    "\"detail\":\"parallelism bound 2 reached in stage 0\"},"
	    "{\"workflow\":\"e\",\"stage\":2,\"reason\":\"dependency\","
	    "\"detail\":\"depends on 'b' in stage 1\"}]");
	free(s);
	json_decref(p);
}
END_TEST

START_TEST(plan_id_is_content)
{
	struct wf_plan_opts o = WF_PLAN_OPTS_INIT;
	json_t *p1, *p2, *p3;

	p1 = plan_ok(contract, &o);
	o.explain = 1;
	p2 = plan_ok(contract, &o);
	o.preview_only = 1;
	p3 = plan_ok(contract, &o);
	ck_assert_str_eq(json_string_value(json_object_get(p1, "plan_id")),
	    json_string_value(json_object_get(p2, "plan_id")));
	ck_assert_str_ne(json_string_value(json_object_get(p1, "plan_id")),
	    json_string_value(json_object_get(p3, "plan_id")));
	json_decref(p1);
	json_decref(p2);
	json_decref(p3);
}
END_TEST

START_TEST(plan_id_is_hash_of_the_rest)
{
	struct wf_plan_opts o = WF_PLAN_OPTS_INIT;
	json_t *p, *rest;
	char hex[GIT_OID_HEXSZ + 1], want[64], *s;
	size_t len;
	git_oid oid;

	o.explain = 1;
	p = plan_ok(contract, &o);
	rest = json_deep_copy(p);
	json_object_del(rest, "plan_id");
	json_object_del(rest, "explain");
	/* The rest as written: compact, keys in the plan's own order. */
	ck_assert_int_eq(wf_json_dump(&s, &len, rest, 0), 0);
	ck_assert(strncmp(s, "{\"issue_number\":482,", 20) == 0);
	ck_assert_int_eq(wf_hash_buf(&oid, s, len), 0);
	snprintf(want, sizeof(want), "multiwf-%.32s", wf_hash_hex(hex, &oid));
	ck_assert_str_eq(json_string_value(json_object_get(p, "plan_id")),
	    want);
	free(s);
	json_decref(rest);
	json_decref(p);
}
END_TEST

/* wf_plan_build_text() writes what dumping wf_plan_build()'s plan does. */
static void
assert_text_is_dump(const char *text, const struct wf_plan_opts *o)
{
	json_t *p = plan_ok(text, o);
	char *want, *got;
	size_t wlen, glen;

	ck_assert_int_eq(wf_json_dump(&want, &wlen, p, 0), 0);
	ck_assert_int_eq(plan_text(&got, &glen, text, o), 0);
	ck_assert_uint_eq(glen, strlen(got));
	ck_assert_str_eq(got, want);
	ck_assert_uint_eq(glen, wlen);
	free(want);
	free(got);
	json_decref(p);
}

START_TEST(text_is_the_plan_dumped)
{
	struct wf_plan_opts o = WF_PLAN_OPTS_INIT;
	static const char empty[] = "{\"item\": {\"number\": 3},"
	    " \"candidates\": [], \"selection_reason\": \"no_match\"}";

	assert_text_is_dump(contract, &o);
	assert_text_is_dump(empty, &o);
	o.explain = 1;
	assert_text_is_dump(contract, &o);
	assert_text_is_dump(empty, &o);
	o.max_parallel = 1;
	o.preview_only = 1;
	assert_text_is_dump(contract, &o);
}
END_TEST

START_TEST(empty_candidates)
{
	json_t *p = plan_ok("{\"item\": {\"number\": 3}, \"candidates\": [],"
	    " \"selection_reason\": \"no_match\"}", NULL);
	char *s = json_dumps(p, JSON_COMPACT);
	const char *id = json_string_value(json_object_get(p, "plan_id"));
	char want[1024];

	snprintf(want, sizeof(want), "{\"plan_id\":\"%s\",\"issue_number\":3,"
	    "\"stage_count\":0,\"workflow_count\":0,"
	    "\"allow_partial_success\":false,\"preview_only\":false,"
	    "\"selection_reason\":\"no_match\",\"selection_message\":null,"
	    "\"stages\":[],\"max_parallel\":4,\"item\":{\"number\":3},"
	    "\"workflows\":[],\"deliverable_manifest\":{\"entries\":[]}}", id);
	ck_assert_str_eq(s, want);
	free(s);
	json_decref(p);
}
END_TEST

/* Each bad WorkflowPlan and the message (after "<stdin>:") it gives. */
static const struct {
	const char *text;
	const char *msg;
} bad_plans[] = {
	{ "[1]", "1:1: expected an object, got an array" },
	{ "{\"item\": {}}", "1:1: missing field \"candidates\"" },
	{ "{\"candidates\": []}", "1:1: missing field \"item\"" },
	{ "{\"item\": {},\n \"candidates\": {}}",
	  "2:16: .candidates: expected an array of candidate objects" },
	{ "{\"item\": [], \"candidates\": []}",
	  "1:10: .item: expected an object" },
	{ "{\"item\": {\"number\": \"7\"}, \"candidates\": []}",
	  "1:21: .item.number: expected an integer, got a string" },
	{ "{\"item\": {}, \"candidates\": [], \"extra\": 1}",
	  "1:41: .extra: unknown field" },
	{ "{\"item\": {}, \"candidates\": [], \"selection_reason\": 1}",
	  "1:52: .selection_reason: expected a string, got an integer" },
	{ "{\"item\": {}, \"candidates\": [3]}",
	  "1:29: .candidates[0]: expected an object, got an integer" },
	{ "{\"item\": {}, \"candidates\": [{\"name\": \"a\"},\n"
	  " {\"name\": \"a\"}]}",
	  "2:11: .candidates[1].name: duplicate candidate name 'a' "
	  "(also .candidates[0])" },
	{ "{\"item\": {}, \"candidates\": [{\"name\": \"a\",\n"
	  " \"depends_on\": [\"b\", \"x\"]}, {\"name\": \"b\"}]}",
	  "2:22: .candidates[0].depends_on[1]: dependency 'x' of 'a' is not "
	  "among the candidates" },
	{ "{\"item\": {}, \"candidates\": [\n"
	  "{\"name\": \"z\", \"depends_on\": [\"c\"]},\n"
	  "{\"name\": \"c\", \"depends_on\": [\"a\"]},\n"
	  "{\"name\": \"b\", \"depends_on\": [\"c\"]},\n"
	  "{\"name\": \"a\", \"depends_on\": [\"d\", \"b\"]},\n"
	  "{\"name\": \"d\"}]}",
	  "5:35: .candidates[3].depends_on[1]: dependency cycle: "
	  "a -> b -> c -> a" },
	{ "{\"item\": {}, \"candidates\": [\n"
	  "{\"name\": \"q\", \"depends_on\": [\"p\"]},\n"
	  "{\"name\": \"p\", \"depends_on\": [\"q\"]}]}",
	  "3:30: .candidates[1].depends_on[0]: dependency cycle: "
	  "p -> q -> p" },
};

START_TEST(bad_plan)
{
	assert_input_error(bad_plans[_i].text, bad_plans[_i].msg);
}
END_TEST

/* A tiny LCG so the shuffles are the same on every run. */
static unsigned long
lcg(unsigned long *state)
{
	*state = *state * 6364136223846793005UL + 1442695040888963407UL;
	return *state >> 33;
}

START_TEST(shuffled_candidates_same_plan)
{
	struct wf_plan_opts o = WF_PLAN_OPTS_INIT;
	unsigned long st = 42;
	json_t *cands = json_array(), *doc;
	char *first = NULL;
	size_t i, j, n = 40, round;

	o.explain = 1;
	o.max_parallel = 3;
	for (i = 0; i < n; i++) {
		char name[16], dep[16];
		json_t *c = json_object(), *deps = json_array();

		snprintf(name, sizeof(name), "w%02zu", i);
		json_object_set_new(c, "name", json_string(name));
		json_object_set_new(c, "priority",
		    json_integer((json_int_t)(lcg(&st) % 3)));
		for (j = 0; i > 0 && j < 2; j++) {
			json_t *d;

			snprintf(dep, sizeof(dep), "w%02lu", lcg(&st) % i);
			d = json_string(dep);
			if (!json_equal(json_array_get(deps, 0), d))
				json_array_append(deps, d);
			json_decref(d);
		}
		json_object_set_new(c, "depends_on", deps);
		if (lcg(&st) % 3 == 0)
			json_object_set_new(c, "conflicts", json_pack("[s]",
			    lcg(&st) % 2 ? "db" : "net"));
		if (lcg(&st) % 4 == 0)
			json_object_set_new(c, "deliverables", json_pack(
			    "[{s:s, s:s}]", "name", "report", "path",
			    "out/{number}/report.md"));
		json_array_append_new(cands, c);
	}
	doc = json_pack("{s:{s:i}, s:o, s:s}", "item", "number", 5,
	    "candidates", cands, "selection_reason", "multi_match");
	for (round = 0; round < 6; round++) {
		char *text, *out;
		json_t *p;

		/* Fisher-Yates, except for the first round. */
		for (i = n - 1; round > 0 && i > 0; i--) {
			size_t k = lcg(&st) % (i + 1);
			json_t *a = json_incref(json_array_get(cands, i));
			json_t *b = json_incref(json_array_get(cands, k));

			json_array_set_new(cands, i, b);
			json_array_set_new(cands, k, a);
		}
		text = json_dumps(doc, JSON_INDENT(1));
		p = plan_ok(text, &o);
		out = json_dumps(p, JSON_COMPACT);
		if (!first)
			first = out;
		else {
			ck_assert_str_eq(out, first);
			free(out);
		}
		json_decref(p);
		free(text);
	}
	free(first);
	json_decref(doc);
}
END_TEST

START_TEST(format_text)
{
	struct wf_plan_opts o = WF_PLAN_OPTS_INIT;
	json_t *p;
	char *s, want[2048];

	o.explain = 1;
	o.preview_only = 1;
	p = plan_ok(contract, &o);
	ck_assert_int_eq(wf_plan_format_text(&s, p), 0);
	snprintf(want, sizeof(want),
	    "plan: %s\n"
	    "issue: 482\n"
	    "selection: multi_label_match: Labels matched compliance-advisory"
	    " and enforcement-snapshot workflows\n"
	    "workflows: 3 in 2 stages, at most 4 per stage\n"
	    "allow partial success: no\n"
	    "preview only: yes\n"
	    "\n"
	    "stage 0, parallel: compliance-advisory, policy-overview\n"
	    "  blocking conflicts: deliverable:weekly-report\n"
	    "stage 1, sequential: enforcement-snapshot\n"
	    "\n"
	    "deliverables:\n"
	    "  compliance-advisory/weekly-report: study/482/weekly-report.md\n"
	    "  enforcement-snapshot/weekly-report:"
	    " study/482/weekly-report.enforcement-snapshot.md"
	    " (renamed from study/482/weekly-report.md)\n"
	    "  policy-overview/summary:"
	    " study/482/policy-overview/summary.md\n"
	    "\n"
	    "explain:\n"
	    "  compliance-advisory in stage 0: none: no dependency, conflict"
	    " or bound held it back\n"
	    "  enforcement-snapshot in stage 1: conflict: conflict key"
	    " 'deliverable:weekly-report' held by 'compliance-advisory'"
	    " in stage 0\n"
	    "  policy-overview in stage 0: none: no dependency, conflict"
	    " or bound held it back\n",
	    json_string_value(json_object_get(p, "plan_id")));
	ck_assert_str_eq(s, want);
	free(s);
	json_decref(p);
}
END_TEST

START_TEST(format_dot)
{
	json_t *p = plan_ok("{\"item\": {}, \"candidates\": ["
	    "{\"name\": \"a\", \"depends_on\": [\"b\"],"
	    " \"conflicts\": [\"k\"]},"
	    "{\"name\": \"b\", \"conflicts\": [\"k\"]},"
	    "{\"name\": \"c\", \"conflicts\": [\"k\"]}]}", NULL);
	char *s, want[2048];

	ck_assert_int_eq(wf_plan_format_dot(&s, p), 0);
	snprintf(want, sizeof(want),
	    "digraph \"%s\" {\n"
	    "\trankdir=LR;\n"
	    "\tnode [shape=box];\n"
	    "\tsubgraph \"cluster_0\" {\n"
	    "\t\tlabel=\"stage 0 (sequential)\\nblocking: k\";\n"
	    "\t\t\"b\";\n"
	    "\t}\n"
	    "\tsubgraph \"cluster_1\" {\n"
	    "\t\tlabel=\"stage 1 (sequential)\\nblocking: k\";\n"
	    "\t\t\"a\";\n"
	    "\t}\n"
	    "\tsubgraph \"cluster_2\" {\n"
	    "\t\tlabel=\"stage 2 (sequential)\";\n"
	    "\t\t\"c\";\n"
	    "\t}\n"
	    "\t\"b\" -> \"a\";\n"
	    "}\n",
	    json_string_value(json_object_get(p, "plan_id")));
	ck_assert_str_eq(s, want);
	free(s);
	json_decref(p);
}
END_TEST

START_TEST(format_refuses_other_json)
{
	json_t *v = json_pack("{s:i}", "plan_id", 1);
	char *s = (char *)1;

	ck_assert_int_eq(wf_plan_format_text(&s, v), WF_EINPUT);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(wf_plan_format_dot(&s, v), WF_EINPUT);
	ck_assert_ptr_null(s);
	json_decref(v);
}
END_TEST

/* Graph-level cases, without JSON. */

#define BIG 100000

/*
 * Each ck_assert costs a message to the parent process, so the loops
 * below count failures and assert once.
 */
static char **
big_names(void)
{
	char **names = malloc(BIG * sizeof(*names));
	size_t i, failures = 0;

	ck_assert_ptr_nonnull(names);
	for (i = 0; i < BIG; i++) {
		if (!(names[i] = malloc(16)))
			failures++;
		else
			snprintf(names[i], 16, "n%06zu", i);
	}
	ck_assert_uint_eq(failures, 0);
	return names;
}

static void
free_names(char **names)
{
	size_t i;

	for (i = 0; i < BIG; i++)
		free(names[i]);
	free(names);
}

START_TEST(graph_long_chain)
{
	struct wf_plan_graph *g;
	struct wf_plan_placement pl;
	char **names = big_names();
	size_t i, node, failures = 0;

	ck_assert_int_eq(wf_plan_graph_new(&g, 0), 0);
	/* Added from the end, so Kahn's order is not the order of adding. */
	for (i = BIG; i-- > 0;)
		failures += wf_plan_graph_add(&node, g, names[i], 0) != 0;
	for (i = 1; i < BIG; i++)
		failures += wf_plan_graph_depend(g, BIG - 1 - i, BIG - i) != 0;
	ck_assert_uint_eq(failures, 0);
	ck_assert_int_eq(wf_plan_graph_schedule(g, 1), 0);
	ck_assert_uint_eq(wf_plan_graph_stage_count(g), BIG);
	ck_assert_int_eq(wf_plan_graph_placement(&pl, g, 0), 0);
	ck_assert_uint_eq(pl.stage, BIG - 1);
	ck_assert_int_eq(pl.reason, WF_PLAN_REASON_DEPENDENCY);
	ck_assert_str_eq(wf_plan_graph_name(g, wf_plan_graph_order(g)[0]),
	    "n000000");
	wf_plan_graph_free(g);
	free_names(names);
}
END_TEST

START_TEST(graph_hot_key)
{
	struct wf_plan_graph *g;
	struct wf_plan_stage s;
	char **names = big_names();
	size_t i, node, failures = 0;

	ck_assert_int_eq(wf_plan_graph_new(&g, BIG), 0);
	for (i = 0; i < BIG; i++) {
		failures += wf_plan_graph_add(&node, g, names[i], 0) != 0;
		failures += wf_plan_graph_conflict(g, node, "hot") != 0;
		/* Half also hold a second key. */
		if (i % 2)
			failures += wf_plan_graph_conflict(g, node,
			    "warm") != 0;
	}
	ck_assert_uint_eq(failures, 0);
	ck_assert_int_eq(wf_plan_graph_schedule(g, 0), 0);
	ck_assert_uint_eq(wf_plan_graph_stage_count(g), BIG);
	ck_assert_int_eq(wf_plan_graph_stage(&s, g, BIG - 3), 0);
	ck_assert_uint_eq(s.nnodes, 1);
	ck_assert_uint_eq(s.nblocking, 2);
	ck_assert_str_eq(s.blocking[0], "hot");
	ck_assert_str_eq(s.blocking[1], "warm");
	ck_assert_int_eq(wf_plan_graph_stage(&s, g, BIG - 2), 0);
	ck_assert_uint_eq(s.nblocking, 1);
	ck_assert_int_eq(wf_plan_graph_stage(&s, g, BIG - 1), 0);
	ck_assert_uint_eq(s.nblocking, 0);
	ck_assert_int_eq(wf_plan_graph_stage(&s, g, BIG), WF_ENOTFOUND);
	wf_plan_graph_free(g);
	free_names(names);
}
END_TEST

START_TEST(graph_small_bound)
{
	struct wf_plan_graph *g;
	struct wf_plan_placement pl;
	char **names = big_names();
	size_t i, node, failures = 0;

	ck_assert_int_eq(wf_plan_graph_new(&g, 0), 0);
	for (i = 0; i < BIG; i++)
		failures += wf_plan_graph_add(&node, g, names[i],
		    (int64_t)(i % 7)) != 0;
	ck_assert_uint_eq(failures, 0);
	ck_assert_int_eq(wf_plan_graph_schedule(g, 3), 0);
	ck_assert_uint_eq(wf_plan_graph_stage_count(g), (BIG + 2) / 3);
	ck_assert_int_eq(wf_plan_graph_placement(&pl, g, 0), 0);
	ck_assert_int_eq(pl.reason, WF_PLAN_REASON_PARALLELISM);
	ck_assert_uint_eq(pl.why_stage, pl.stage - 1);
	wf_plan_graph_free(g);
	free_names(names);
}
END_TEST

START_TEST(graph_rules)
{
	struct wf_plan_graph *g;
	const size_t *cycle;
	size_t a, b, c;

	ck_assert_int_eq(wf_plan_graph_new(&g, 0), 0);
	ck_assert_int_eq(wf_plan_graph_add(&a, g, "a", 0), 0);
	ck_assert_int_eq(wf_plan_graph_add(&b, g, "b", 0), 0);
	ck_assert_int_eq(wf_plan_graph_add(&c, g, "a", 0), WF_ECONFLICT);
	ck_assert_uint_eq(c, a);
	ck_assert_int_eq(wf_plan_graph_find(&c, g, "b"), 0);
	ck_assert_uint_eq(c, b);
	ck_assert_int_eq(wf_plan_graph_find(&c, g, "x"), WF_ENOTFOUND);
	ck_assert_int_eq(wf_plan_graph_depend(g, a, 7), WF_ERROR);
	ck_assert_int_eq(wf_plan_graph_depend(g, a, b), 0);
	ck_assert_int_eq(wf_plan_graph_depend(g, b, a), 0);
	ck_assert_int_eq(wf_plan_graph_schedule(g, 4), WF_EINPUT);
	ck_assert_str_eq(wf_error_last(), "dependency cycle: a -> b -> a");
	ck_assert_uint_eq(wf_plan_graph_cycle(&cycle, g), 2);
	ck_assert_uint_eq(cycle[0], a);
	ck_assert_uint_eq(cycle[1], b);
	ck_assert_int_eq(wf_plan_graph_schedule(g, 4), WF_ERROR);
	ck_assert_int_eq(wf_plan_graph_add(&c, g, "c", 0), WF_ERROR);
	wf_plan_graph_free(g);
	wf_plan_graph_free(NULL);
}
END_TEST

/* Also declared in check_suites.h once listed there. */
Suite *plan_suite(void);

Suite *
plan_suite(void)
{
	Suite *s = suite_create("plan");
	TCase *tc = tcase_create("build");
	TCase *tg = tcase_create("graph");
	TCase *tf = tcase_create("format");

	tcase_add_test(tc, contract_example);
	tcase_add_test(tc, key_order);
	tcase_add_test(tc, dependencies_order_stages);
	tcase_add_test(tc, workflows_in_stage_then_name_order);
	tcase_add_test(tc, conflicts_separate);
	tcase_add_test(tc, parallelism_bound);
	tcase_add_test(tc, blocking_conflicts_rule);
	tcase_add_test(tc, deliverables_conflict_implicitly);
	tcase_add_test(tc, manifest_renames);
	tcase_add_test(tc, manifest_without_number);
	tcase_add_test(tc, explain_reasons);
	tcase_add_test(tc, plan_id_is_content);
	tcase_add_test(tc, plan_id_is_hash_of_the_rest);
	tcase_add_test(tc, text_is_the_plan_dumped);
	tcase_add_test(tc, empty_candidates);
	tcase_add_loop_test(tc, bad_plan, 0,
	    sizeof(bad_plans) / sizeof(bad_plans[0]));
	tcase_add_test(tc, shuffled_candidates_same_plan);
	suite_add_tcase(s, tc);

	tcase_add_test(tg, graph_rules);
	tcase_add_test(tg, graph_long_chain);
	tcase_add_test(tg, graph_hot_key);
	tcase_add_test(tg, graph_small_bound);
	/* Large cases under the sanitizers take a few seconds. */
	tcase_set_timeout(tg, 60);
	suite_add_tcase(s, tg);

	tcase_add_test(tf, format_text);
	tcase_add_test(tf, format_dot);
	tcase_add_test(tf, format_refuses_other_json);
	suite_add_tcase(s, tf);
	return s;
}
