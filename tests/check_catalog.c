#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "catalog.h"
#include "check_suites.h"
#include "error.h"

/*
 * A catalog in a fresh temporary directory: `files` holds pairs of a
 * name and its content, NULL-terminated; a name ending in '/' is made a
 * directory, a content starting with "->" a symbolic link.  Removed by
 * rm_catalog().
 */
static char *
mk_catalog(const char *const *files)
{
	char tmpl[] = "/tmp/wf-check-catalog.XXXXXX", path[512];
	char *dir;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	ck_assert_ptr_nonnull(dir = strdup(tmpl));
	for (; files && files[0]; files += 2) {
		size_t n = strlen(files[0]);

		snprintf(path, sizeof(path), "%s/%s", dir, files[0]);
		if (files[0][n - 1] == '/') {
			ck_assert_int_eq(mkdir(path, 0755), 0);
			continue;
		}
		if (strncmp(files[1], "->", 2) == 0) {
			ck_assert_int_eq(symlink(files[1] + 2, path), 0);
			continue;
		}
		ck_assert_ptr_nonnull(f = fopen(path, "w"));
		fputs(files[1], f);
		ck_assert_int_eq(fclose(f), 0);
	}
	return dir;
}

static void
rm_catalog(char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
	free(dir);
}

START_TEST(load_sorted_and_resolved)
{
	static const char *const files[] = {
		"z.json", "{\"name\": \"alpha\", \"depends_on\": [\"gamma\", "
		    "\"beta\"], \"match\": {\"paths\": [\"src\", \"*.c\"]}}",
		"a.json", "{\"name\": \"gamma\"}",
		"m.json", "{\"name\": \"beta\", \"depends_on\": [\"gamma\"]}",
		"notes.txt", "not json",
		"sub.json/", NULL,
		".hidden.json", "{",
		"x.json.bak", "{",
		NULL
	};
	char *dir = mk_catalog(files);
	struct wf_catalog *c = NULL;
	size_t i;
	int rc;

	rc = wf_catalog_load(&c, dir);
	ck_assert_msg(rc == 0, "%s", wf_error_last());
	ck_assert_uint_eq(c->n, 3);
	ck_assert_str_eq(c->entries[0].workflow->name, "alpha");
	ck_assert_str_eq(c->entries[1].workflow->name, "beta");
	ck_assert_str_eq(c->entries[2].workflow->name, "gamma");
	ck_assert_str_eq(c->entries[0].file + strlen(dir), "/z.json");
	ck_assert_uint_eq(c->entries[0].deps[0], 2);
	ck_assert_uint_eq(c->entries[0].deps[1], 1);
	ck_assert_uint_eq(c->entries[1].deps[0], 2);
	ck_assert_ptr_null(c->entries[2].deps);
	ck_assert_ptr_nonnull(c->entries[0].specs[0]);
	ck_assert_ptr_nonnull(c->entries[0].specs[1]);
	ck_assert_int_eq(wf_catalog_find(&i, c, "beta"), 0);
	ck_assert_uint_eq(i, 1);
	ck_assert_int_eq(wf_catalog_find(&i, c, "delta"), WF_ENOTFOUND);
	ck_assert_int_eq(wf_catalog_find(&i, c, ""), WF_ENOTFOUND);
	wf_catalog_free(c);
	wf_catalog_free(NULL);
	rm_catalog(dir);
}
END_TEST

START_TEST(load_trailing_slash)
{
	static const char *const files[] = {
		"a.json", "{\"name\": \"a\"}", NULL
	};
	char *dir = mk_catalog(files), slashed[600];
	struct wf_catalog *c = NULL;

	snprintf(slashed, sizeof(slashed), "%s/", dir);
	ck_assert_int_eq(wf_catalog_load(&c, slashed), 0);
	ck_assert_str_eq(c->entries[0].file + strlen(dir), "/a.json");
	wf_catalog_free(c);
	rm_catalog(dir);
}
END_TEST

START_TEST(load_empty_catalog)
{
	static const char *const files[] = { "README", "x", NULL };
	char *dir = mk_catalog(files);
	struct wf_catalog *c = NULL;

	ck_assert_int_eq(wf_catalog_load(&c, dir), 0);
	ck_assert_uint_eq(c->n, 0);
	ck_assert_int_eq(wf_catalog_find(&(size_t){ 0 }, c, "a"),
	    WF_ENOTFOUND);
	wf_catalog_free(c);
	rm_catalog(dir);
}
END_TEST

START_TEST(load_missing_directory)
{
	char *dir = mk_catalog(NULL), path[600], want[700];
	struct wf_catalog *c = (struct wf_catalog *)1;

	snprintf(path, sizeof(path), "%s/nope", dir);
	ck_assert_int_eq(wf_catalog_load(&c, path), WF_EOS);
	ck_assert_ptr_null(c);
	snprintf(want, sizeof(want), "cannot open catalog '%s': No such "
	    "file or directory", path);
	ck_assert_str_eq(wf_error_last(), want);

	/* A file is not a catalog. */
	snprintf(path, sizeof(path), "%s/f", dir);
	fclose(fopen(path, "w"));
	ck_assert_int_eq(wf_catalog_load(&c, path), WF_EOS);
	snprintf(want, sizeof(want), "cannot open catalog '%s': Not a "
	    "directory", path);
	ck_assert_str_eq(wf_error_last(), want);
	rm_catalog(dir);
}
END_TEST

/*
 * Each broken catalog and its message; "@" in the message stands for
 * the catalog directory.
 */
static const struct {
	const char *files[16];
	int code;
	const char *msg;
} bad[] = {
	{ { "a.json", "{\"name\": \"a\",}\n", NULL }, WF_EINPUT,
	  "@/a.json:1:14: string or '}' expected near '}'" },
	{ { "a.json", "{\"name\":\n \"a\"", NULL }, WF_EINPUT,
	  "@/a.json:2:5: '}' expected near end of file" },
	{ { "a.json", "", NULL }, WF_EINPUT,
	  "@/a.json:1:1: empty file, expected a JSON value" },
	{ { "a.json", "{\"name\": \"a\"} {}", NULL }, WF_EINPUT,
	  "@/a.json:1:15: more than one JSON value in the file" },
	{ { "a.json", "{\"name\": \"a\"}",
	    "b.json", "{\"name\": \"b\",\n \"colour\": 1}", NULL }, WF_EINPUT,
	  "@/b.json:2:12: .colour: unknown field" },
	{ { "a.json", "{\"name\": \"a\", \"match\": {\"title\": \"(x\"}}",
	    NULL }, WF_EINPUT,
	  "@/a.json:1:34: .match.title: invalid regular expression '(x': " },
	{ { "a.json", "{\"name\": \"a\", \"match\": {\"paths\": [\"src\", "
	    "\"!src/x\"]}}", NULL }, WF_EINPUT,
	  "@/a.json:1:42: .match.paths[1]: unsupported pathspec '!src/x': "
	  "no '!' negation or ':' magic" },
	{ { "a.json", "{\"name\": \"a\", \"match\": {\"paths\": "
	    "[\":(glob)*.c\"]}}", NULL }, WF_EINPUT,
	  "@/a.json:1:35: .match.paths[0]: unsupported pathspec" },
	{ { "1.json", "{\"name\": \"x\"}",
	    "2.json", "{\"name\": \"y\"}",
	    "3.json", "{\"name\": \"y\"}",
	    "4.json", "{\"name\": \"x\"}", NULL }, WF_EINPUT,
	  "@/3.json:1:10: .name: duplicate workflow 'y', also defined in "
	  "'@/2.json'" },
	{ { "a.json", "{\"name\": \"a\", \"depends_on\": [\"b\", \"c\"]}",
	    "b.json", "{\"name\": \"b\", \"depends_on\": [\"d\"]}", NULL },
	  WF_EINPUT,
	  "@/a.json:1:35: .depends_on[1]: unknown workflow 'c'" },
	{ { "a.json", "{\"name\": \"a\", \"depends_on\": [\"b\"]}",
	    "b.json", "{\"name\": \"b\", \"depends_on\": [\"a\"]}", NULL },
	  WF_EINPUT,
	  "@/a.json:1:30: .depends_on[0]: dependency cycle: a -> b -> a" },
	/* Walked from "a" (outside the cycle) via its smallest unreached
	 * dependency, spelled from the cycle's smallest name. */
	{ { "1.json", "{\"name\": \"a\", \"depends_on\": [\"ok\", \"e\", "
	    "\"d\"]}",
	    "2.json", "{\"name\": \"d\", \"depends_on\": [\"f\"]}",
	    "3.json", "{\"name\": \"f\", \"depends_on\": [\"ok\", \"c\"]}",
	    "4.json", "{\"name\": \"c\", \"depends_on\": [\"d\"]}",
	    "5.json", "{\"name\": \"e\", \"depends_on\": [\"e2\"]}",
	    "6.json", "{\"name\": \"e2\", \"depends_on\": [\"e\"]}",
	    "7.json", "{\"name\": \"ok\"}", NULL }, WF_EINPUT,
	  "@/4.json:1:30: .depends_on[0]: dependency cycle: c -> d -> f -> c" },
	/* Every file is read before any check across files. */
	{ { "a.json", "{\"name\": \"a\", \"depends_on\": [\"zz\"]}",
	    "b.json", "{\"name\": 7}", NULL }, WF_EINPUT,
	  "@/b.json:1:10: .name: expected a string, got an integer" },
	{ { "a.json", "->nowhere.json", NULL }, WF_EOS,
	  "cannot open '@/a.json': No such file or directory" },
};

/* bad[_i].msg with "@" replaced by dir. */
static void
expand(char *buf, size_t size, const char *msg, const char *dir)
{
	size_t n = 0;

	for (; *msg && n + strlen(dir) + 1 < size; msg++) {
		if (*msg == '@') {
			memcpy(buf + n, dir, strlen(dir));
			n += strlen(dir);
		} else {
			buf[n++] = *msg;
		}
	}
	buf[n] = '\0';
}

START_TEST(load_broken_catalog)
{
	char *dir = mk_catalog(bad[_i].files), want[1024];
	struct wf_catalog *c = (struct wf_catalog *)1;
	int rc;

	rc = wf_catalog_load(&c, dir);
	ck_assert_ptr_null(c);
	expand(want, sizeof(want), bad[_i].msg, dir);
	ck_assert_msg(rc == bad[_i].code &&
	    strncmp(wf_error_last(), want, strlen(want)) == 0,
	    "case %d: got %d '%s', want %d '%s'", _i, rc, wf_error_last(),
	    bad[_i].code, want);
	rm_catalog(dir);
}
END_TEST

Suite *
catalog_suite(void)
{
	Suite *s = suite_create("catalog");
	TCase *tc = tcase_create("load");

	tcase_add_test(tc, load_sorted_and_resolved);
	tcase_add_test(tc, load_trailing_slash);
	tcase_add_test(tc, load_empty_catalog);
	tcase_add_test(tc, load_missing_directory);
	tcase_add_loop_test(tc, load_broken_catalog, 0,
	    (int)(sizeof(bad) / sizeof(bad[0])));
	suite_add_tcase(s, tc);
	return s;
}
