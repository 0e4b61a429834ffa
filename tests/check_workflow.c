#include <string.h>

#include <check.h>

#include "check_suites.h"
#include "error.h"
#include "workflow.h"

static int
parse(struct wf_workflow **w, const char *text, enum wf_workflow_kind kind)
{
	struct wf_json_reader *r;
	struct wf_json_doc d;
	struct wf_jpath p = WF_JPATH_INIT;
	int error;

	test_doc(&d, &r, text);
	error = wf_workflow_parse(w, &d, &p, d.value, kind);
	json_decref(d.value);
	test_reader_free(r);
	return error;
}

START_TEST(full_definition)
{
	struct wf_workflow *w;
	int rc;

	rc = parse(&w, "{\"name\": \"lint\", \"priority\": 7,"
	    "\"description\": \"d\", \"match\": {\"labels\": [\"a\", \"b\"],"
	    "\"labels_all\": [\"c\"], \"exclude_labels\": [\"wip\"],"
	    "\"paths\": [\"src/**/*.c\"], \"title\": \"^fix(\\\\(.*\\\\))?:\"},"
	    "\"depends_on\": [\"build\"], \"conflicts\": [\"db\"],"
	    "\"deliverables\": [{\"name\": \"r\", \"path\": "
	    "\"out/{number}/{workflow}.md\"}], \"steps\": [{\"id\": \"s\","
	    "\"type\": \"shell\", \"run\": \"true\"}]}",
	    WF_WORKFLOW_DEFINITION);
	ck_assert_msg(rc == 0, "%s", wf_error_last());
	ck_assert_str_eq(w->name, "lint");
	ck_assert_int_eq(w->priority, 7);
	ck_assert_uint_eq(w->nlabels, 2);
	ck_assert_str_eq(w->labels[1], "b");
	ck_assert_uint_eq(w->nlabels_all, 1);
	ck_assert_uint_eq(w->nexclude_labels, 1);
	ck_assert_ptr_nonnull(w->pathspec);
	ck_assert_int_eq(w->has_title_re, 1);
	ck_assert_uint_eq(w->ndepends_on, 1);
	ck_assert_uint_eq(w->nconflicts, 1);
	ck_assert_uint_eq(w->ndeliverables, 1);
	ck_assert_str_eq(w->deliverables[0].path, "out/{number}/{workflow}.md");
	ck_assert_ptr_nonnull(w->steps);
	ck_assert_uint_eq(w->nsteps, 1);
	ck_assert_str_eq(w->stepv[0].run, "true");
	wf_workflow_free(w);
}
END_TEST

/* Each bad definition, and the message (after "<stdin>:") it gives. */
static const struct {
	const char *text;
	const char *msg;
} bad[] = {
	{ "[]", "1:1: expected an object, got an array" },
	{ "{}", "1:1: missing field \"name\"" },
	{ "{\"name\": \"a\",\n \"steps\": [], \"colour\": 1}",
	  "2:25: .colour: unknown field" },
	{ "{\"name\": \"a b\"}", "1:10: .name: invalid workflow name 'a b'" },
	{ "{\"name\": \"a\", \"priority\": \"high\"}",
	  "1:27: .priority: expected an integer, got a string" },
	{ "{\"name\": \"a\", \"match\": {\"title\": \"(\"}}",
	  "1:34: .match.title: invalid regular expression '('" },
	{ "{\"name\": \"a\", \"match\": {\"labels\": [\"x\", 3]}}",
	  "1:41: .match.labels[1]: expected a string, got an integer" },
	{ "{\"name\": \"a\", \"match\": {\"label\": []}}",
	  "1:34: .match.label: unknown field" },
	{ "{\"name\": \"a\", \"depends_on\": [\"a\"]}",
	  "1:30: .depends_on[0]: workflow 'a' depends on itself" },
	{ "{\"name\": \"a\", \"deliverables\": [{\"name\": \"r\", "
	  "\"path\": \"../x\"}]}",
	  "1:54: .deliverables[0].path: '.' or '..' component: '../x'" },
	{ "{\"name\": \"a\", \"deliverables\": [{\"name\": \"r\", "
	  "\"path\": \"x/.GIT/y\"}]}",
	  "1:54: .deliverables[0].path: '.git' component" },
	{ "{\"name\": \"a\", \"deliverables\": [{\"name\": \"r\", "
	  "\"path\": \"/etc/x\"}]}",
	  "1:54: .deliverables[0].path: absolute path" },
	{ "{\"name\": \"a\", \"deliverables\": [{\"name\": \"r\", "
	  "\"path\": \"{title}.md\"}]}",
	  "1:54: .deliverables[0].path: unknown placeholder" },
	{ "{\"name\": \"a\", \"deliverables\": [{\"name\": \"r\", \"path\": "
	  "\"x\"}, {\"name\": \"r\", \"path\": \"y\"}]}",
	  "1:69: .deliverables[1].name: duplicate deliverable 'r'" },
	{ "{\"name\": \"a\", \"steps\": [1]}",
	  "1:25: .steps[0]: expected a step object" },
	{ "{\"name\": \"a\", \"reasons\": []}", "1:26: .reasons: unknown field" },
};

START_TEST(bad_definition)
{
	struct wf_workflow *w = (struct wf_workflow *)1;
	const char *got;

	ck_assert_int_eq(parse(&w, bad[_i].text, WF_WORKFLOW_DEFINITION),
	    WF_EINPUT);
	ck_assert_ptr_null(w);
	got = wf_error_last();
	ck_assert_msg(strncmp(got, "<stdin>:", 8) == 0 &&
	    strncmp(got + 8, bad[_i].msg, strlen(bad[_i].msg)) == 0,
	    "case %d: got '%s', want '<stdin>:%s'", _i, got, bad[_i].msg);
}
END_TEST

START_TEST(candidate_allows_reasons)
{
	struct wf_workflow *w;

	ck_assert_int_eq(parse(&w, "{\"name\": \"a\", \"reasons\": "
	    "[\"label:x\"]}", WF_WORKFLOW_CANDIDATE), 0);
	ck_assert_uint_eq(w->nreasons, 1);
	wf_workflow_free(w);
	ck_assert_int_eq(parse(&w, "{\"name\": \"a\", \"match\": {}}",
	    WF_WORKFLOW_CANDIDATE), WF_EINPUT);
}
END_TEST

Suite *
workflow_suite(void)
{
	Suite *s = suite_create("workflow");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, full_definition);
	tcase_add_loop_test(tc, bad_definition, 0,
	    (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, candidate_allows_reasons);
	suite_add_tcase(s, tc);
	return s;
}
