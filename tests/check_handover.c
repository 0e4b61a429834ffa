#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "change.h"
#include "check_suites.h"
#include "error.h"
#include "handover.h"
#include "push.h"

static const char old_hex[] = "1111111111111111111111111111111111111111";
static const char new_hex[] = "3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a";

static const char patch_request[] =
    "{\"id\": \"task-1/1\", \"target\": \"main\", \"kind\": \"patch\","
    " \"priority\": 3, \"depends_on\": [\"b\", \"a\"],"
    " \"message\": \"Fix it\", \"meta\": {\"ref\": \"refs/for/main/$(x)\"},"
    " \"patch\": \"diff --git a/x b/x\\nnew file mode 100644\\n"
    "--- /dev/null\\n+++ b/x\\n@@ -0,0 +1 @@\\n+x\\n\"}";

/* A change validated by wf_change_parse() (no repository). */
static struct wf_change *
validated(void)
{
	struct wf_json_reader *r = NULL;
	struct wf_json_doc d;
	struct wf_change *c = NULL;
	int error;

	test_doc(&d, &r, patch_request);
	error = wf_change_parse(&c, &d, NULL, NULL);
	ck_assert_msg(error == 0, "%s", wf_error_last());
	json_decref(d.value);
	test_reader_free(r);
	return c;
}

static void
same_change(const struct wf_change *a, const struct wf_change *b)
{
	size_t i;

	ck_assert_str_eq(a->id, b->id);
	ck_assert_str_eq(a->target, b->target);
	ck_assert_int_eq(a->kind, b->kind);
	ck_assert_int_eq(a->priority, b->priority);
	ck_assert_uint_eq(a->ndepends, b->ndepends);
	for (i = 0; i < a->ndepends; i++)
		ck_assert_str_eq(a->depends_on[i], b->depends_on[i]);
	ck_assert_ptr_null(b->depends_on[b->ndepends]);
	ck_assert_str_eq(a->text, b->text);
	ck_assert(json_equal(a->paths, b->paths));
	ck_assert(git_oid_equal(&a->hash, &b->hash));
}

START_TEST(from_canonical_is_the_validated_change)
{
	struct wf_change *c = validated(), *again = NULL;
	int error;

	error = wf_change_from_canonical(&again, c->text, c->paths, &c->hash);
	ck_assert_msg(error == 0, "%s", wf_error_last());
	same_change(c, again);
	wf_change_free(again);
	wf_change_free(c);
}
END_TEST

START_TEST(from_canonical_refuses_what_is_not_canonical)
{
	struct wf_change *c = validated(), *again = NULL;
	json_t *strs = json_pack("[s]", "x"), *ints = json_pack("[i]", 1);
	static const char *const bad[] = {
		"",
		"not json",
		"[]",
		/* not canonical: spaces, keys out of order */
		"{\"id\": \"a\", \"target\": \"main\", \"kind\": \"patch\", "
		"\"priority\": 0, \"depends_on\": []}",
		"{\"target\":\"main\",\"id\":\"a\",\"kind\":\"patch\","
		"\"priority\":0,\"depends_on\":[]}",
		/* canonical, but not a request the queue can take */
		"{\"depends_on\":[],\"id\":\"a\",\"kind\":\"other\","
		"\"priority\":0,\"target\":\"main\"}",
		"{\"depends_on\":[1],\"id\":\"a\",\"kind\":\"patch\","
		"\"priority\":0,\"target\":\"main\"}",
		"{\"depends_on\":[],\"id\":\"a\",\"kind\":\"patch\","
		"\"priority\":\"0\",\"target\":\"main\"}",
		"{\"depends_on\":[],\"kind\":\"patch\",\"priority\":0,"
		"\"target\":\"main\"}",
		NULL
	};
	size_t i;

	for (i = 0; bad[i]; i++) {
		ck_assert_int_eq(wf_change_from_canonical(&again, bad[i],
		    strs, &c->hash), WF_EINPUT);
		ck_assert_ptr_null(again);
	}
	ck_assert_int_eq(wf_change_from_canonical(&again, c->text, ints,
	    &c->hash), WF_EINPUT);
	ck_assert_int_eq(wf_change_from_canonical(&again, c->text, NULL,
	    &c->hash), WF_EINPUT);
	ck_assert_ptr_null(again);
	json_decref(strs);
	json_decref(ints);
	wf_change_free(c);
}
END_TEST

/* A push update to `ref` carrying the validated change. */
static void
update(struct wf_push_update *u, const char *ref)
{
	char line[512];

	snprintf(line, sizeof(line), "%s %s %s\n", old_hex, new_hex, ref);
	ck_assert_int_eq(wf_push_update_parse(u, line), 0);
	u->kind = WF_PUSH_QUEUE;
	u->change = validated();
}

static char *
temp_dir(void)
{
	char *d = strdup("/tmp/wf-handover-XXXXXX");

	ck_assert_ptr_nonnull(mkdtemp(d));
	return d;
}

static void
remove_dir(const char *d)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(save_take_find)
{
	struct wf_push_update u;
	struct wf_change *c = NULL;
	const char *replaces;
	json_t *doc = NULL, *got = NULL;
	char *dir = temp_dir(), *key = NULL, line[512];
	int error;

	update(&u, "refs/for/main/$(x)");
	ck_assert_int_eq(wf_handover_key(&key, getpid()), 0);
	ck_assert_int_eq(wf_handover_add(&doc, &u, "main@0123456789ab"), 0);
	ck_assert_int_eq(wf_handover_save(dir, key, doc), 0);
	ck_assert_int_eq(wf_handover_take(&got, dir, key), 0);
	ck_assert_ptr_nonnull(got);
	/* Read once: it is gone. */
	json_decref(doc);
	doc = NULL;
	ck_assert_int_eq(wf_handover_take(&doc, dir, key), 0);
	ck_assert_ptr_null(doc);

	snprintf(line, sizeof(line), "%s %s refs/for/main/$(x)", old_hex,
	    new_hex);
	error = wf_handover_find(&c, &replaces, got, line);
	ck_assert_msg(error == 0, "%s", wf_error_last());
	same_change(u.change, c);
	ck_assert_str_eq(replaces, "main@0123456789ab");
	wf_change_free(c);
	/* Another update -- ref, old or new id -- has no entry. */
	snprintf(line, sizeof(line), "%s %s refs/for/main/x", old_hex,
	    new_hex);
	ck_assert_int_eq(wf_handover_find(&c, &replaces, got, line),
	    WF_ENOTFOUND);
	snprintf(line, sizeof(line), "%s %s refs/for/main/$(x)", new_hex,
	    new_hex);
	ck_assert_int_eq(wf_handover_find(&c, &replaces, got, line),
	    WF_ENOTFOUND);
	ck_assert_ptr_null(c);
	json_decref(got);
	wf_push_update_release(&u);
	free(key);
	remove_dir(dir);
	free(dir);
}
END_TEST

START_TEST(keys_name_one_process)
{
	char *a = NULL, *b = NULL, *c = NULL;

	ck_assert_int_eq(wf_handover_key(&a, getpid()), 0);
	ck_assert_int_eq(wf_handover_key(&b, getpid()), 0);
	ck_assert_int_eq(wf_handover_key(&c, getppid()), 0);
	ck_assert_str_eq(a, b);
	ck_assert_str_ne(a, c);
	free(a);
	free(b);
	free(c);
	ck_assert_int_eq(wf_handover_key(&a, 0), WF_EOS);
	ck_assert_ptr_null(a);
}
END_TEST

START_TEST(damaged_is_refused_and_removed)
{
	char *dir = temp_dir(), *key = NULL, path[512];
	json_t *doc = NULL;
	FILE *f;

	ck_assert_int_eq(wf_handover_key(&key, getpid()), 0);
	snprintf(path, sizeof(path), "%s/wf", dir);
	ck_assert_int_eq(mkdir(path, 0777), 0);
	snprintf(path, sizeof(path), "%s/wf/handover", dir);
	ck_assert_int_eq(mkdir(path, 0777), 0);
	snprintf(path, sizeof(path), "%s/wf/handover/%s", dir, key);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs("{\"updates\": [", f);
	fclose(f);
	ck_assert_int_eq(wf_handover_take(&doc, dir, key), WF_EINPUT);
	ck_assert_ptr_null(doc);
	ck_assert_int_eq(access(path, F_OK), -1);
	free(key);
	remove_dir(dir);
	free(dir);
}
END_TEST

START_TEST(save_removes_the_handovers_of_gone_processes)
{
	struct wf_push_update u;
	char *dir = temp_dir(), *key = NULL, *live = NULL, path[512];
	char dead[128], gone[128];
	json_t *doc = NULL;
	FILE *f;
	size_t i;
	const char *names[3];

	ck_assert_int_eq(wf_handover_key(&key, getpid()), 0);
	ck_assert_int_eq(wf_handover_key(&live, getppid()), 0);
	/* Same boot, a pid that is not running / ran at another time. */
	snprintf(dead, sizeof(dead), "%.32s-%d-1", key, 0x7ffffff0);
	snprintf(gone, sizeof(gone), "%.*s1", (int)strlen(live), live);
	update(&u, "refs/for/main");
	ck_assert_int_eq(wf_handover_add(&doc, &u, NULL), 0);
	ck_assert_int_eq(wf_handover_save(dir, live, doc), 0);
	names[0] = dead;
	names[1] = gone;
	names[2] = "0123-1-1.tmp";
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/wf/handover/%s", dir,
		    names[i]);
		ck_assert_ptr_nonnull(f = fopen(path, "w"));
		fclose(f);
	}
	ck_assert_int_eq(wf_handover_save(dir, key, doc), 0);
	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/wf/handover/%s", dir,
		    names[i]);
		ck_assert_msg(access(path, F_OK) < 0, "%s is still there",
		    names[i]);
	}
	/* The handover of a push still in progress stays. */
	snprintf(path, sizeof(path), "%s/wf/handover/%s", dir, live);
	ck_assert_int_eq(access(path, F_OK), 0);
	json_decref(doc);
	wf_push_update_release(&u);
	free(key);
	free(live);
	remove_dir(dir);
	free(dir);
}
END_TEST

Suite *
handover_suite(void)
{
	Suite *s = suite_create("handover");
	TCase *tc = tcase_create("change");

	tcase_add_test(tc, from_canonical_is_the_validated_change);
	tcase_add_test(tc, from_canonical_refuses_what_is_not_canonical);
	suite_add_tcase(s, tc);
	tc = tcase_create("file");
	tcase_add_test(tc, save_take_find);
	tcase_add_test(tc, keys_name_one_process);
	tcase_add_test(tc, damaged_is_refused_and_removed);
	tcase_add_test(tc, save_removes_the_handovers_of_gone_processes);
	suite_add_tcase(s, tc);
	return s;
}
