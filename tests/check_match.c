#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "catalog.h"
#include "check_suites.h"
#include "error.h"
#include "match.h"

/*
 * Each test loads a catalog of definitions (one file each, named 0.json,
 * 1.json, ...) from a temporary directory and matches items against it.
 */
static struct wf_catalog *cat;
static char catdir[64];

static void
load(const char *const *defs)
{
	char path[128];
	FILE *f;
	int i, rc;

	snprintf(catdir, sizeof(catdir), "/tmp/wf-check-match.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(catdir));
	for (i = 0; defs[i]; i++) {
		snprintf(path, sizeof(path), "%s/%d.json", catdir, i);
		ck_assert_ptr_nonnull(f = fopen(path, "w"));
		fputs(defs[i], f);
		ck_assert_int_eq(fclose(f), 0);
	}
	rc = wf_catalog_load(&cat, catdir);
	ck_assert_msg(rc == 0, "%s", wf_error_last());
}

static void
unload(void)
{
	char cmd[128];

	wf_catalog_free(cat);
	cat = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", catdir);
	ck_assert_int_eq(system(cmd), 0);
}

static int
match_opts(json_t **plan, const char *item, const struct wf_match_opts *o)
{
	struct wf_json_reader *r;
	struct wf_json_doc d;
	char *before;
	int rc;

	test_doc(&d, &r, item);
	before = json_dumps(d.value, JSON_COMPACT | JSON_ENCODE_ANY);
	rc = wf_match_item(plan, cat, &d, o);
	/* The item is never changed. */
	{
		char *after = json_dumps(d.value,
		    JSON_COMPACT | JSON_ENCODE_ANY);

		ck_assert_str_eq(before, after);
		free(after);
	}
	free(before);
	json_decref(d.value);
	test_reader_free(r);
	return rc;
}

/* Match `item`, which must succeed; the plan is the caller's. */
static json_t *
match(const char *item)
{
	json_t *plan = NULL;
	int rc = match_opts(&plan, item, NULL);

	ck_assert_msg(rc == 0, "%s", wf_error_last());
	ck_assert_ptr_nonnull(plan);
	return plan;
}

/* The candidates' names, comma-separated. */
static const char *
names(const json_t *plan)
{
	static char buf[1024];
	size_t i, n = 0;
	json_t *c;

	buf[0] = '\0';
	json_array_foreach(json_object_get(plan, "candidates"), i, c)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s",
		    i ? "," : "",
		    json_string_value(json_object_get(c, "name")));
	return buf;
}

/* The reasons of candidate `name` as compact JSON; "-" if absent. */
static const char *
reasons(const json_t *plan, const char *name)
{
	static char buf[1024];
	size_t i;
	json_t *c;

	json_array_foreach(json_object_get(plan, "candidates"), i, c) {
		char *s;

		if (strcmp(json_string_value(json_object_get(c, "name")),
		    name) != 0)
			continue;
		s = json_dumps(json_object_get(c, "reasons"), JSON_COMPACT);
		snprintf(buf, sizeof(buf), "%s", s);
		free(s);
		return buf;
	}
	return "-";
}

static const char *
field(const json_t *plan, const char *key)
{
	return json_string_value(json_object_get(plan, key));
}

START_TEST(labels_any_of)
{
	static const char *const defs[] = {
		"{\"name\": \"a\", \"match\": {\"labels\": [\"x\", \"y\"]}}",
		NULL
	};
	json_t *p;

	load(defs);
	p = match("{\"labels\": [\"z\", \"y\"]}");
	ck_assert_str_eq(reasons(p, "a"), "[\"label:y\"]");
	json_decref(p);
	p = match("{\"labels\": [\"y\", \"x\"]}");
	ck_assert_str_eq(reasons(p, "a"), "[\"label:x\",\"label:y\"]");
	json_decref(p);
	p = match("{\"labels\": [\"z\"]}");
	ck_assert_str_eq(names(p), "");
	json_decref(p);
	p = match("{\"title\": \"x\", \"paths\": [\"x\"]}");
	ck_assert_str_eq(names(p), "");
	json_decref(p);
	unload();
}
END_TEST

START_TEST(labels_all_gate)
{
	static const char *const defs[] = {
		"{\"name\": \"gated\", \"match\": {\"labels_all\": [\"a\", "
		    "\"b\"], \"labels\": [\"c\", \"a\"]}}",
		"{\"name\": \"only\", \"match\": {\"labels_all\": [\"a\", "
		    "\"b\"]}}",
		NULL
	};
	json_t *p;

	load(defs);
	/* The gate closed: nothing matches, whatever else is there. */
	p = match("{\"labels\": [\"a\", \"c\"]}");
	ck_assert_str_eq(names(p), "");
	json_decref(p);
	/* Gate open; "gated" still needs one of its labels, and "a" is
	 * one (named once). */
	p = match("{\"labels\": [\"b\", \"a\"]}");
	ck_assert_str_eq(names(p), "gated,only");
	ck_assert_str_eq(reasons(p, "gated"), "[\"label:a\",\"label:b\"]");
	ck_assert_str_eq(reasons(p, "only"), "[\"label:a\",\"label:b\"]");
	json_decref(p);
	p = match("{\"labels\": [\"a\", \"b\", \"c\"]}");
	ck_assert_str_eq(reasons(p, "gated"),
	    "[\"label:a\",\"label:b\",\"label:c\"]");
	json_decref(p);
	unload();
}
END_TEST

START_TEST(labels_all_gates_any_of)
{
	static const char *const defs[] = {
		"{\"name\": \"w\", \"match\": {\"labels_all\": [\"ready\"], "
		    "\"paths\": [\"src\"]}}",
		NULL
	};
	json_t *p;

	load(defs);
	p = match("{\"labels\": [\"ready\"], \"paths\": [\"doc/a\"]}");
	ck_assert_str_eq(names(p), "");
	json_decref(p);
	p = match("{\"paths\": [\"src/a\"]}");
	ck_assert_str_eq(names(p), "");
	json_decref(p);
	p = match("{\"labels\": [\"ready\"], \"paths\": [\"src/a\"]}");
	ck_assert_str_eq(reasons(p, "w"), "[\"label:ready\",\"path:src\"]");
	ck_assert_str_eq(field(p, "selection_reason"), "single_match");
	json_decref(p);
	unload();
}
END_TEST

START_TEST(exclude_vetoes)
{
	static const char *const defs[] = {
		"{\"name\": \"w\", \"match\": {\"labels\": [\"x\"], "
		    "\"title\": \"fix\", \"exclude_labels\": [\"wip\", "
		    "\"draft\"]}}",
		"{\"name\": \"veto-only\", \"match\": {\"exclude_labels\": "
		    "[\"wip\"]}}",
		NULL
	};
	json_t *p;

	load(defs);
	p = match("{\"labels\": [\"x\", \"draft\"], \"title\": \"fix\"}");
	ck_assert_str_eq(names(p), "");
	json_decref(p);
	/* exclude_labels alone is no rule to match by. */
	p = match("{\"labels\": [\"x\"], \"title\": \"a fix\"}");
	ck_assert_str_eq(names(p), "w");
	ck_assert_str_eq(reasons(p, "w"), "[\"label:x\",\"title:fix\"]");
	json_decref(p);
	unload();
}
END_TEST

START_TEST(pathspec_semantics)
{
	static const char *const defs[] = {
		"{\"name\": \"dir\", \"match\": {\"paths\": [\"docs\"]}}",
		"{\"name\": \"deep\", \"match\": {\"paths\": [\"src/**/*.c\"]}}",
		"{\"name\": \"star\", \"match\": {\"paths\": [\"*.md\", "
		    "\"Makefile\"]}}",
		"{\"name\": \"slash\", \"match\": {\"paths\": [\"lib/\"]}}",
		"{\"name\": \"class\", \"match\": {\"paths\": [\"t[0-9]*\"]}}",
		NULL
	};
	json_t *p;

	load(defs);
	/* A directory prefix matches everything below it, not "docs2". */
	p = match("{\"paths\": [\"docs/a/b.md\"]}");
	ck_assert_str_eq(names(p), "dir,star");
	ck_assert_str_eq(reasons(p, "dir"), "[\"path:docs\"]");
	ck_assert_str_eq(reasons(p, "star"), "[\"path:*.md\"]");
	json_decref(p);
	p = match("{\"paths\": [\"docs2/x\", \"doc\", \"xdocs/y\"]}");
	ck_assert_str_eq(names(p), "");
	json_decref(p);
	/* '*' crosses '/'; "**" + "/" needs at least one directory. */
	p = match("{\"paths\": [\"src/a.c\"]}");
	ck_assert_str_eq(names(p), "");
	json_decref(p);
	p = match("{\"paths\": [\"src/x/y/a.c\"]}");
	ck_assert_str_eq(names(p), "deep");
	json_decref(p);
	p = match("{\"paths\": [\"src/x/a.h\", \"Makefile\"]}");
	ck_assert_str_eq(names(p), "star");
	ck_assert_str_eq(reasons(p, "star"), "[\"path:Makefile\"]");
	json_decref(p);
	/* Case matters; a trailing '/' is a directory prefix too. */
	p = match("{\"paths\": [\"DOCS/a\", \"lib/x/y.c\", \"t1000-x.sh\"]}");
	ck_assert_str_eq(names(p), "class,slash");
	json_decref(p);
	unload();
}
END_TEST

START_TEST(title_regex)
{
	static const char *const defs[] = {
		"{\"name\": \"fix\", \"match\": {\"title\": "
		    "\"^fix(\\\\([a-z]+\\\\))?: \"}}",
		"{\"name\": \"alt\", \"match\": {\"title\": \"crash|panic\"}}",
		NULL
	};
	json_t *p;

	load(defs);
	p = match("{\"title\": \"fix(core): panic on exit\"}");
	ck_assert_str_eq(names(p), "alt,fix");
	ck_assert_str_eq(reasons(p, "fix"), "[\"title:^fix(\\\\([a-z]+"
	    "\\\\))?: \"]");
	ck_assert_str_eq(field(p, "selection_reason"), "multi_match");
	json_decref(p);
	p = match("{\"title\": \"a fix: nothing\"}");
	ck_assert_str_eq(names(p), "");
	json_decref(p);
	p = match("{\"body\": \"crash\"}");
	ck_assert_str_eq(names(p), "");
	json_decref(p);
	unload();
}
END_TEST

START_TEST(empty_match_only_as_dependency)
{
	static const char *const defs[] = {
		"{\"name\": \"base\"}",
		"{\"name\": \"empty\", \"match\": {}}",
		"{\"name\": \"empty-lists\", \"match\": {\"labels\": [], "
		    "\"paths\": []}}",
		"{\"name\": \"top\", \"depends_on\": [\"base\"], \"match\": "
		    "{\"labels\": [\"x\"]}}",
		NULL
	};
	json_t *p;

	load(defs);
	p = match("{\"labels\": [\"x\", \"y\"], \"title\": \"\", "
	    "\"paths\": [\"a\"]}");
	ck_assert_str_eq(names(p), "base,top");
	ck_assert_str_eq(reasons(p, "base"), "[\"dependency_of:top\"]");
	ck_assert_str_eq(field(p, "selection_reason"), "single_match");
	ck_assert_str_eq(field(p, "selection_message"),
	    "Matched the top workflow; added base as a dependency");
	json_decref(p);
	p = match("{}");
	ck_assert_str_eq(names(p), "");
	ck_assert_str_eq(field(p, "selection_reason"), "no_match");
	ck_assert_str_eq(field(p, "selection_message"), "No workflow matched");
	json_decref(p);
	unload();
}
END_TEST

START_TEST(transitive_dependencies)
{
	static const char *const defs[] = {
		"{\"name\": \"a\", \"depends_on\": [\"b\"], \"match\": "
		    "{\"labels\": [\"x\"]}}",
		"{\"name\": \"b\", \"depends_on\": [\"c\"], \"match\": "
		    "{\"labels\": [\"y\"]}}",
		"{\"name\": \"c\"}",
		"{\"name\": \"d\", \"depends_on\": [\"c\", \"e\"], \"match\": "
		    "{\"labels\": [\"x\"]}}",
		"{\"name\": \"e\"}",
		"{\"name\": \"f\", \"depends_on\": [\"a\"]}",
		NULL
	};
	json_t *p;

	load(defs);
	p = match("{\"labels\": [\"x\"]}");
	ck_assert_str_eq(names(p), "a,b,c,d,e");
	ck_assert_str_eq(reasons(p, "a"), "[\"label:x\"]");
	ck_assert_str_eq(reasons(p, "b"), "[\"dependency_of:a\"]");
	ck_assert_str_eq(reasons(p, "c"),
	    "[\"dependency_of:b\",\"dependency_of:d\"]");
	ck_assert_str_eq(reasons(p, "e"), "[\"dependency_of:d\"]");
	ck_assert_str_eq(field(p, "selection_reason"), "multi_label_match");
	ck_assert_str_eq(field(p, "selection_message"), "Labels matched a and "
	    "d workflows; added b, c and e as dependencies");
	json_decref(p);
	/* Matched and a dependency: both kinds of reason, own first. */
	p = match("{\"labels\": [\"x\", \"y\"]}");
	ck_assert_str_eq(reasons(p, "b"), "[\"label:y\",\"dependency_of:a\"]");
	ck_assert_str_eq(field(p, "selection_message"), "Labels matched a, b "
	    "and d workflows; added c and e as dependencies");
	json_decref(p);
	unload();
}
END_TEST

START_TEST(order_priority_then_name)
{
	static const char *const defs[] = {
		"{\"name\": \"zeta\", \"priority\": 10, \"match\": "
		    "{\"labels\": [\"x\"]}}",
		"{\"name\": \"alpha\", \"match\": {\"labels\": [\"x\"]}}",
		"{\"name\": \"beta\", \"priority\": -3, \"match\": "
		    "{\"labels\": [\"x\"]}}",
		"{\"name\": \"Gamma\", \"match\": {\"labels\": [\"x\"]}}",
		"{\"name\": \"mid\", \"priority\": 10, \"match\": "
		    "{\"labels\": [\"x\"]}}",
		NULL
	};
	json_t *p;

	load(defs);
	p = match("{\"labels\": [\"x\"]}");
	ck_assert_str_eq(names(p), "mid,zeta,Gamma,alpha,beta");
	ck_assert_str_eq(field(p, "selection_message"), "Labels matched mid, "
	    "zeta, Gamma, alpha and beta workflows");
	json_decref(p);
	unload();
}
END_TEST

START_TEST(selection_reasons)
{
	static const char *const defs[] = {
		"{\"name\": \"l1\", \"match\": {\"labels\": [\"l\"]}}",
		"{\"name\": \"l2\", \"match\": {\"labels_all\": [\"l\"]}}",
		"{\"name\": \"p1\", \"match\": {\"paths\": [\"p\"]}}",
		"{\"name\": \"p2\", \"match\": {\"paths\": [\"p/x\"], "
		    "\"labels\": [\"q\"]}}",
		"{\"name\": \"t\", \"match\": {\"title\": \"t\"}}",
		NULL
	};
	static const struct {
		const char *item, *reason, *message;
	} cases[] = {
		{ "{}", "no_match", "No workflow matched" },
		{ "{\"title\": \"t\"}", "single_match",
		  "Matched the t workflow" },
		{ "{\"labels\": [\"l\"]}", "multi_label_match",
		  "Labels matched l1 and l2 workflows" },
		{ "{\"paths\": [\"p/x/y\"]}", "multi_path_match",
		  "Paths matched p1 and p2 workflows" },
		/* p2 by label and path, l1 and l2 by label. */
		{ "{\"labels\": [\"q\", \"l\"], \"paths\": [\"p/x\"]}",
		  "multi_match", "Matched l1, l2, p1 and p2 workflows" },
		{ "{\"labels\": [\"q\", \"l\"], \"paths\": [\"zzz\"], "
		  "\"title\": \"-\"}", "multi_label_match",
		  "Labels matched l1, l2 and p2 workflows" },
		{ "{\"labels\": [\"q\"], \"paths\": [\"p/x\"]}",
		  "multi_path_match", "Paths matched p1 and p2 workflows" },
		{ "{\"labels\": [\"l\"], \"title\": \"t\"}", "multi_match",
		  "Matched l1, l2 and t workflows" },
	};
	size_t i;

	load(defs);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *p = match(cases[i].item);

		ck_assert_msg(strcmp(field(p, "selection_reason"),
		    cases[i].reason) == 0 && strcmp(field(p,
		    "selection_message"), cases[i].message) == 0,
		    "%s: got %s '%s'", cases[i].item,
		    field(p, "selection_reason"),
		    field(p, "selection_message"));
		json_decref(p);
	}
	unload();
}
END_TEST

/* The whole plan, byte for byte: key order, defaults, item kept. */
START_TEST(plan_shape)
{
	static const char *const defs[] = {
		"{\"steps\": [{\"id\": \"s\", \"type\": \"shell\", \"run\": "
		    "\"true\"}], \"deliverables\": [{\"path\": \"r/{number}.md\","
		    " \"name\": \"report\"}], \"conflicts\": [\"db\"], "
		    "\"depends_on\": [\"dep\"], \"match\": {\"labels\": "
		    "[\"x\"]}, \"priority\": 2, \"description\": \"Does it\", "
		    "\"name\": \"w\"}",
		"{\"name\": \"dep\"}",
		NULL
	};
	json_t *p;
	char *s;

	load(defs);
	p = match("{\"zz\": [1, {\"a\": null}], \"labels\": [\"x\"], "
	    "\"number\": 7, \"body\": \"b\", \"aa\": true}");
	s = json_dumps(p, JSON_COMPACT);
	ck_assert_str_eq(s, "{\"item\":{\"zz\":[1,{\"a\":null}],\"labels\":"
	    "[\"x\"],\"number\":7,\"body\":\"b\",\"aa\":true},\"candidates\":"
	    "[{\"name\":\"w\",\"description\":\"Does it\",\"priority\":2,"
	    "\"reasons\":[\"label:x\"],\"depends_on\":[\"dep\"],\"conflicts\":"
	    "[\"db\"],\"deliverables\":[{\"name\":\"report\",\"path\":"
	    "\"r/{number}.md\"}],\"steps\":[{\"id\":\"s\",\"type\":\"shell\","
	    "\"run\":\"true\"}]},{\"name\":\"dep\",\"priority\":0,\"reasons\":"
	    "[\"dependency_of:w\"],\"depends_on\":[],\"conflicts\":[],"
	    "\"deliverables\":[],\"steps\":[]}],\"selection_reason\":"
	    "\"single_match\",\"selection_message\":\"Matched the w workflow;"
	    " added dep as a dependency\"}");
	free(s);
	json_decref(p);
	unload();
}
END_TEST

/* A candidate is what wf-plan reads: a valid WF_WORKFLOW_CANDIDATE. */
START_TEST(candidates_parse_as_candidates)
{
	static const char *const defs[] = {
		"{\"name\": \"w\", \"description\": \"d\", \"priority\": 3, "
		    "\"match\": {\"labels\": [\"x\"], \"labels_all\": [\"x\"], "
		    "\"paths\": [\"a\"], \"title\": \"t\"}, \"depends_on\": "
		    "[\"v\"], \"deliverables\": [{\"name\": \"r\", \"path\": "
		    "\"{workflow}/r\"}]}",
		"{\"name\": \"v\", \"match\": {\"labels\": [\"x\"]}}",
		NULL
	};
	struct wf_json_reader *r;
	struct wf_json_doc d;
	json_t *p, *c;
	char *text;
	size_t i;

	load(defs);
	p = match("{\"labels\": [\"x\"], \"paths\": [\"a\"], \"title\": \"t\"}");
	ck_assert_str_eq(reasons(p, "w"),
	    "[\"label:x\",\"path:a\",\"title:t\"]");
	ck_assert_str_eq(reasons(p, "v"), "[\"label:x\",\"dependency_of:w\"]");
	json_array_foreach(json_object_get(p, "candidates"), i, c) {
		struct wf_jpath path = WF_JPATH_INIT;
		struct wf_workflow *w;
		int rc;

		text = json_dumps(c, JSON_COMPACT);
		test_doc(&d, &r, text);
		rc = wf_workflow_parse(&w, &d, &path, d.value,
		    WF_WORKFLOW_CANDIDATE);
		ck_assert_msg(rc == 0, "%s", wf_error_last());
		wf_workflow_free(w);
		json_decref(d.value);
		test_reader_free(r);
		free(text);
	}
	json_decref(p);
	unload();
}
END_TEST

START_TEST(changed_paths)
{
	static const char *const defs[] = {
		"{\"name\": \"src\", \"match\": {\"paths\": [\"src\"]}}",
		NULL
	};
	struct wf_match_opts opts = WF_MATCH_OPTS_INIT;
	json_t *changed = json_pack("[s, s]", "README", "src/a.c"), *p;
	char *s;

	load(defs);
	opts.changed_paths = changed;
	ck_assert_int_eq(match_opts(&p, "{\"number\": 1}", &opts), 0);
	s = json_dumps(json_object_get(p, "item"), JSON_COMPACT);
	ck_assert_str_eq(s, "{\"number\":1,\"paths\":[\"README\",\"src/a.c\"]}");
	free(s);
	ck_assert_str_eq(names(p), "src");
	json_decref(p);
	/* Paths given, even none, are the item's own. */
	ck_assert_int_eq(match_opts(&p, "{\"paths\": []}", &opts), 0);
	ck_assert_str_eq(names(p), "");
	ck_assert_uint_eq(json_array_size(json_object_get(
	    json_object_get(p, "item"), "paths")), 0);
	json_decref(p);
	json_decref(changed);

	changed = json_pack("[s, i]", "src/a.c", 1);
	opts.changed_paths = changed;
	p = (json_t *)1;
	ck_assert_int_eq(match_opts(&p, "{}", &opts), WF_ERROR);
	ck_assert_ptr_null(p);
	json_decref(changed);
	unload();
}
END_TEST

/* Each bad item and the message (after "<stdin>:") it gives. */
static const struct {
	const char *text;
	const char *msg;
} bad[] = {
	{ "[{\"labels\": []}]", "1:1: expected an object, got an array" },
	{ "\"title\"", "1:1: expected an object, got a string" },
	{ "{\"number\": \"482\"}",
	  "1:12: .number: expected an integer, got a string" },
	{ "{\"number\": 4.5}",
	  "1:12: .number: expected an integer, got a number" },
	{ "{\"title\": null}", "1:11: .title: expected a string, got null" },
	{ "{\"body\": []}", "1:10: .body: expected a string, got an array" },
	{ "{\"labels\": \"bug\"}",
	  "1:12: .labels: expected an array of strings, got a string" },
	{ "{\"x\": 1,\n \"labels\": [\"a\", 2]}",
	  "2:18: .labels[1]: expected a string, got an integer" },
	{ "{\"paths\": [null]}",
	  "1:12: .paths[0]: expected a string, got null" },
};

START_TEST(bad_item)
{
	static const char *const defs[] = { "{\"name\": \"w\"}", NULL };
	json_t *p = (json_t *)1;
	const char *got;

	load(defs);
	ck_assert_int_eq(match_opts(&p, bad[_i].text, NULL), WF_EINPUT);
	ck_assert_ptr_null(p);
	got = wf_error_last();
	ck_assert_msg(strncmp(got, "<stdin>:", 8) == 0 &&
	    strcmp(got + 8, bad[_i].msg) == 0,
	    "case %d: got '%s', want '<stdin>:%s'", _i, got, bad[_i].msg);
	unload();
}
END_TEST

START_TEST(empty_catalog)
{
	static const char *const defs[] = { NULL };
	json_t *p;

	load(defs);
	p = match("{\"labels\": [\"x\"]}");
	ck_assert_str_eq(names(p), "");
	ck_assert_str_eq(field(p, "selection_reason"), "no_match");
	json_decref(p);
	unload();
}
END_TEST

Suite *
match_suite(void)
{
	Suite *s = suite_create("match");
	TCase *rules = tcase_create("rules");
	TCase *plan = tcase_create("plan");
	TCase *item = tcase_create("item");

	tcase_add_test(rules, labels_any_of);
	tcase_add_test(rules, labels_all_gate);
	tcase_add_test(rules, labels_all_gates_any_of);
	tcase_add_test(rules, exclude_vetoes);
	tcase_add_test(rules, pathspec_semantics);
	tcase_add_test(rules, title_regex);
	tcase_add_test(rules, empty_match_only_as_dependency);
	tcase_add_test(rules, empty_catalog);
	suite_add_tcase(s, rules);
	tcase_add_test(plan, transitive_dependencies);
	tcase_add_test(plan, order_priority_then_name);
	tcase_add_test(plan, selection_reasons);
	tcase_add_test(plan, plan_shape);
	tcase_add_test(plan, candidates_parse_as_candidates);
	tcase_add_test(plan, changed_paths);
	suite_add_tcase(s, plan);
	tcase_add_loop_test(item, bad_item, 0,
	    (int)(sizeof(bad) / sizeof(bad[0])));
	suite_add_tcase(s, item);
	return s;
}
