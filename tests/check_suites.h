#ifndef WF_CHECK_SUITES_H
#define WF_CHECK_SUITES_H

#include <check.h>

#include "json.h"

/*
 * Every Check suite; add a line here for a new tests/check_<module>.c.
 * The X-macro lets check_main.c run them all without a second list.
 */
#define WF_SUITES \
	WF_SUITE(apply) \
	WF_SUITE(arena) \
	WF_SUITE(catalog) \
	WF_SUITE(change) \
	WF_SUITE(checks) \
	WF_SUITE(event) \
	WF_SUITE(handover) \
	WF_SUITE(json) \
	WF_SUITE(json_dump) \
	WF_SUITE(landing) \
	WF_SUITE(lane) \
	WF_SUITE(match) \
	WF_SUITE(patch) \
	WF_SUITE(plan) \
	WF_SUITE(push) \
	WF_SUITE(queue) \
	WF_SUITE(run) \
	WF_SUITE(sandbox) \
	WF_SUITE(sha1) \
	WF_SUITE(sink) \
	WF_SUITE(step) \
	WF_SUITE(tree) \
	WF_SUITE(workflow)

#define WF_SUITE(name) Suite *name##_suite(void);
WF_SUITES
#undef WF_SUITE

/* Helpers shared by the suites (check_util.c). */
struct wf_json_reader *test_reader(const char *text);
void test_reader_free(struct wf_json_reader *r);
void test_doc(struct wf_json_doc *doc, struct wf_json_reader **r,
    const char *text);

#endif
