#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "apply.h"
#include "change.h"
#include "check_suites.h"
#include "error.h"

static char dir[256], db[300];
static git_repository *repo;
static struct wf_queue *q;

static void
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_int_eq(system(cmd), 0);
}

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/wf-check-apply.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	sh("cd '%s' && git init -q -b main . && git config user.name C && "
	    "git config user.email c@example.com && seq 1 20 >f && "
	    "seq 1 20 >g && git add . && git commit -q -m base && "
	    "git repack -adq", dir);
	ck_assert_int_eq(git_repository_open(&repo, dir), 0);
	snprintf(db, sizeof(db), "%s/q.db", dir);
	ck_assert_int_eq(wf_queue_open(&q, db, NULL), 0);
}

static void
teardown(void)
{
	wf_queue_free(q);
	git_repository_free(repo);
	sh("rm -rf '%s'", dir);
}

/* Queue a patch request `id` replacing line `n` of file `f` by `to`. */
static void
enqueue_patch(const char *id, const char *f, int n, const char *to)
{
	struct wf_json_reader *r;
	struct wf_json_doc doc;
	struct wf_change *c;
	json_t *res, *req;
	char patch[1024], *text;
	int i, len;

	len = snprintf(patch, sizeof(patch), "--- a/%s\n+++ b/%s\n"
	    "@@ -%d,7 +%d,7 @@\n", f, f, n - 3, n - 3);
	for (i = n - 3; i < n + 4; i++)
		len += i == n ?
		    snprintf(patch + len, sizeof(patch) - (size_t)len,
		    "-%d\n+%s\n", i, to) :
		    snprintf(patch + len, sizeof(patch) - (size_t)len, " %d\n",
		    i);
	req = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "id", id,
	    "target", "main", "kind", "patch", "patch", patch, "message",
	    "Change it\n\nSigned-off-by: X <x@example.com>", "author", "name",
	    "A U Thor", "email", "author@example.com");
	text = json_dumps(req, JSON_COMPACT);
	test_doc(&doc, &r, text);
	ck_assert_int_eq(wf_change_parse(&c, &doc, repo, NULL), 0);
	ck_assert_int_eq(wf_queue_enqueue(&res, NULL, q, &c, 1, 0), 0);
	json_decref(res);
	wf_change_free(c);
	json_decref(doc.value);
	test_reader_free(r);
	free(text);
	json_decref(req);
}

static char *
git_out(const char *cmd)
{
	char full[1024], *buf = calloc(1, 65536);
	FILE *p;

	snprintf(full, sizeof(full), "cd '%s' && %s", dir, cmd);
	ck_assert_ptr_nonnull(p = popen(full, "r"));
	fread(buf, 1, 65535, p);
	pclose(p);
	return buf;
}

START_TEST(test_batch_lands_and_takes_out_conflicts)
{
	json_t *res;
	char *s;

	enqueue_patch("a", "f", 5, "five");
	enqueue_patch("b", "f", 6, "six");	/* overlaps a: its context */
	enqueue_patch("c", "g", 15, "fifteen");
	ck_assert_int_eq(wf_apply_step(&res, repo, q, "main", NULL), 0);
	ck_assert_int_eq(json_array_size(res), 3);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(res,
	    0), "state")), "landed");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(res,
	    1), "state")), "failed");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(res,
	    1), "reason")), "file 'f': hunk #1 (@@ -3,7 +3,7 @@) does not "
	    "apply");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(res,
	    2), "state")), "landed");
	json_decref(res);
	s = git_out("git log --format='%an|%cn|%s|%(trailers:key=Queue-Id,"
	    "valueonly,separator=)' main");
	ck_assert_str_eq(s, "A U Thor|C|Change it|c\n"
	    "A U Thor|C|Change it|a\nC|C|base|\n");
	free(s);
	s = git_out("git show main:f | sed -n 5p; git show main:g | sed -n 15p;"
	    " git log -1 --format=%B main | grep . | tail -2;"
	    " git reflog -1 --format=%gs main; git count-objects");
	ck_assert_str_eq(s, "five\nfifteen\nSigned-off-by: X <x@example.com>\n"
	    "Queue-Id: c\nwf-apply: land a c\n0 objects, 0 kilobytes\n");
	free(s);
	/* Nothing left to lease: an empty step. */
	ck_assert_int_eq(wf_apply_step(&res, repo, q, "main", NULL), 0);
	ck_assert_int_eq(json_array_size(res), 0);
	json_decref(res);
}
END_TEST

static void
enqueue_json(const char *text)
{
	struct wf_json_reader *r;
	struct wf_json_doc doc;
	struct wf_change *c;
	json_t *res;

	test_doc(&doc, &r, text);
	ck_assert_int_eq(wf_change_parse(&c, &doc, repo, NULL), 0);
	ck_assert_int_eq(wf_queue_enqueue(&res, NULL, q, &c, 1, 0), 0);
	json_decref(res);
	wf_change_free(c);
	json_decref(doc.value);
	test_reader_free(r);
}

START_TEST(test_commits_and_files)
{
	json_t *res;
	char req[1024], *base, *head, *s;

	sh("cd '%s' && git checkout -q -b side && sed -i 2s/2/two/ f && "
	    "git commit -q -am 'side one' --author='S <s@example.com>' && "
	    "sed -i 18s/18/eighteen/ f && git commit -q -am 'side two' && "
	    "git checkout -q main && sed -i 3s/3/three/ g && "
	    "git commit -q -am 'main moves'", dir);
	base = git_out("git rev-parse main~1 | tr -d '\\n'");
	head = git_out("git rev-parse side | tr -d '\\n'");
	snprintf(req, sizeof(req), "{\"id\": \"range\", \"target\": "
	    "\"main\", \"kind\": \"commits\", \"base\": \"%s\", "
	    "\"head\": \"%s\"}", base, head);
	enqueue_json(req);
	enqueue_json("{\"id\": \"files\", \"target\": \"main\", "
	    "\"kind\": \"files\", \"files\": [{\"path\": \"new/x\", "
	    "\"content\": \"aGkK\", \"mode\": \"100755\"}, "
	    "{\"path\": \"g\", \"delete\": true}]}");
	ck_assert_int_eq(wf_apply_step(&res, repo, q, "main", NULL), 0);
	ck_assert_int_eq(json_array_size(res), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(res,
	    0), "state")), "landed");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(res,
	    1), "state")), "landed");
	json_decref(res);
	s = git_out("git log --format='%an|%s|%(trailers:key=Queue-Id,"
	    "valueonly,separator=)' main~3..main; git ls-tree -r main | "
	    "cut -c1-6,53-; git show main:f | sed -n '2p;18p'");
	ck_assert_str_eq(s, "C|Apply files|files\n"
	    "C|side two|range\nS|side one|range\n"
	    "100644\tf\n100755\tnew/x\ntwo\neighteen\n");
	free(s);
	free(base);
	free(head);
}
END_TEST

static int moves;

/* Someone else pushes to the branch while the first build is checked. */
static int
push_meanwhile(git_repository *r, const git_oid *tip, const git_oid *head,
    void *payload)
{
	(void)r; (void)tip; (void)head; (void)payload;
	if (moves++ == 0)
		sh("cd '%s' && export GIT_INDEX_FILE=\"$PWD/.git/other\" && "
		    "b=$(seq 1 20 | sed 1s/1/one/ | git hash-object -w --stdin)"
		    " && git read-tree main && git update-index --cacheinfo "
		    "100644,$b,f && t=$(git write-tree) && "
		    "c=$(git commit-tree -p main -m other $t) && "
		    "git update-ref refs/heads/main $c", dir);
	return 0;
}

START_TEST(test_branch_moved_rebuilds)
{
	struct wf_apply_opts o = WF_APPLY_OPTS_INIT;
	json_t *res;
	char *s;

	enqueue_patch("a", "f", 10, "ten");
	o.before_land = push_meanwhile;
	moves = 0;
	ck_assert_int_eq(wf_apply_step(&res, repo, q, "main", &o), 0);
	ck_assert_int_eq(moves, 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(res,
	    0), "state")), "landed");
	json_decref(res);
	s = git_out("git log --format=%s main; git show main:f | sed -n "
	    "'1p;10p'");
	ck_assert_str_eq(s, "Change it\nother\nbase\none\nten\n");
	free(s);
}
END_TEST

START_TEST(test_queue_id_trailer)
{
	size_t len;
	const char *v = wf_apply_queue_id(&len, "x\n\nQueue-Id: t/1\nB: c\n");

	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(len, 3);
	ck_assert_int_eq(strncmp(v, "t/1", 3), 0);
	ck_assert_ptr_null(wf_apply_queue_id(&len, "no Queue-Id: here\n"));
}
END_TEST

Suite *
apply_suite(void)
{
	Suite *s = suite_create("apply");
	TCase *tc = tcase_create("step");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_batch_lands_and_takes_out_conflicts);
	tcase_add_test(tc, test_branch_moved_rebuilds);
	tcase_add_test(tc, test_commits_and_files);
	suite_add_tcase(s, tc);
	tc = tcase_create("trailer");
	tcase_add_test(tc, test_queue_id_trailer);
	suite_add_tcase(s, tc);
	return s;
}
