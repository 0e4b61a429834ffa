#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "check_suites.h"
#include "error.h"
#include "tree.h"
#include "treediff.h"

static char dir[256];
static git_repository *repo;
static git_oid base, blob[4];

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

/* Names whose git order differs from byte order: a-b/, a.c, a/, a0. */
static const char *const names[] = {
	"a0", "a-b/r", "a.c", "b", "a/x", "a/y.txt", "a/z/deep", "a/z/er",
	"a-b/q", "c/d/e/f", "c/d/g", "zz", "a/z-", "new/dir/f", "a.c0"
};

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/wf-check-tree.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	sh("cd '%s' && git init -q . && mkdir -p a/z a-b c/d/e && "
	    "echo 1 >a.c && echo 2 >b && echo 3 >a/x && echo 4 >a/y.txt && "
	    "echo 5 >a/z/deep && echo 6 >a-b/q && echo 7 >c/d/e/f && "
	    "echo 8 >c/d/g && ln -s b zz && git add . && "
	    "git -c user.name=T -c user.email=t@e commit -q -m base", dir);
	ck_assert_int_eq(git_repository_open(&repo, dir), 0);
	{
		git_commit *c;
		git_object *o;

		ck_assert_int_eq(git_revparse_single(&o, repo, "HEAD"), 0);
		c = (git_commit *)o;
		base = *git_commit_tree_id(c);
		git_object_free(o);
	}
	ck_assert_int_eq(git_blob_create_from_buffer(&blob[0], repo, "x\n", 2),
	    0);
	ck_assert_int_eq(git_blob_create_from_buffer(&blob[1], repo, "y\n", 2),
	    0);
	ck_assert_int_eq(git_blob_create_from_buffer(&blob[2], repo, "z\n", 2),
	    0);
	ck_assert_int_eq(git_blob_create_from_buffer(&blob[3], repo, "w\n", 2),
	    0);
}

static void
teardown(void)
{
	git_repository_free(repo);
	sh("rm -rf '%s'", dir);
}

START_TEST(test_lookup)
{
	struct wf_tree_entry e;

	ck_assert_int_eq(wf_tree_lookup(&e, repo, &base, "a/z/deep"), 0);
	ck_assert_int_eq(e.mode, GIT_FILEMODE_BLOB);
	ck_assert_int_eq(wf_tree_lookup(&e, repo, &base, "zz"), 0);
	ck_assert_int_eq(e.mode, GIT_FILEMODE_LINK);
	ck_assert_int_eq(wf_tree_lookup(&e, repo, &base, "c/d"), 0);
	ck_assert_int_eq(e.mode, GIT_FILEMODE_TREE);
	ck_assert_int_eq(wf_tree_lookup(&e, repo, &base, "a/nope"),
	    WF_ENOTFOUND);
	ck_assert_int_eq(wf_tree_lookup(&e, repo, &base, "b/under"),
	    WF_ENOTFOUND);
	ck_assert_int_eq(wf_tree_lookup(&e, repo, &base, "a.c/x"),
	    WF_ENOTFOUND);
}
END_TEST

/* Whether `path` names a blob in `tree`. */
static int
has_file(const git_oid *tree, const char *path)
{
	struct wf_tree_entry e;

	return wf_tree_lookup(&e, repo, tree, path) == 0 &&
	    e.mode != GIT_FILEMODE_TREE;
}

/*
 * Random edits of the base tree, by wf_tree_update() and by libgit2's
 * git_tree_create_updated(): the same trees, every time.
 */
START_TEST(test_same_as_libgit2)
{
	static const git_filemode_t modes[] = { GIT_FILEMODE_BLOB,
	    GIT_FILEMODE_BLOB_EXECUTABLE, GIT_FILEMODE_LINK };
	const size_t nnames = sizeof(names) / sizeof(*names);
	unsigned seed = 12345;
	int round, compared = 0, changed = 0;

	for (round = 0; round < 300; round++) {
		struct wf_tree_edit ed[6];
		git_tree_update up[6];
		git_tree *t;
		git_oid mine, theirs;
		size_t n = 1 + (seed = seed * 1103515245 + 12345) % 5, i, k;
		char seen[32] = { 0 };

		for (i = 0, k = 0; i < n; i++) {
			size_t w = (seed = seed * 1103515245 + 12345) % nnames;

			struct wf_tree_entry e;

			/* Files only: git keeps a directory until emptied. */
			if (seen[w] || (wf_tree_lookup(&e, repo, &base,
			    names[w]) == 0 && e.mode == GIT_FILEMODE_TREE))
				continue;
			seen[w] = 1;
			memset(&ed[k], 0, sizeof(ed[k]));
			memset(&up[k], 0, sizeof(up[k]));
			ed[k].path = up[k].path = names[w];
			/* libgit2 refuses to remove what is not there. */
			if (has_file(&base, names[w]) && seed % 3 == 0) {
				ed[k].remove = 1;
				up[k].action = GIT_TREE_UPDATE_REMOVE;
			} else {
				ed[k].mode = up[k].filemode =
				    modes[(seed >> 8) % 3];
				ed[k].id = up[k].id = blob[(seed >> 4) % 4];
				up[k].action = GIT_TREE_UPDATE_UPSERT;
			}
			k++;
		}
		/* A file under a name that is a file: both refuse it. */
		ck_assert_int_eq(git_tree_lookup(&t, repo, &base), 0);
		i = git_tree_create_updated(&theirs, repo, t, k, up) == 0;
		git_tree_free(t);
		if (!i) {
			ck_assert_int_lt(wf_tree_update(&mine, repo, &base, ed,
			    k), 0);
			continue;
		}
		ck_assert_msg(wf_tree_update(&mine, repo, &base, ed, k) == 0,
		    "round %d: %s", round, wf_error_last());
		ck_assert_msg(git_oid_equal(&mine, &theirs), "round %d", round);
		compared++;
		changed += !git_oid_equal(&mine, &base);
	}
	ck_assert_int_gt(compared, 250);
	ck_assert_int_gt(changed, 200);
}
END_TEST

/* One difference as text, for comparing lists. */
static char *
diff_line(const char *path, unsigned om, unsigned nm, const git_oid *oi,
    const git_oid *ni)
{
	char a[GIT_OID_HEXSZ + 1] = "-", b[GIT_OID_HEXSZ + 1] = "-", *s;

	if (om)
		git_oid_tostr(a, sizeof(a), oi);
	if (nm)
		git_oid_tostr(b, sizeof(b), ni);
	s = malloc(strlen(path) + 128);
	ck_assert_ptr_nonnull(s);
	sprintf(s, "%s %o %o %s %s", path, om, nm, a, b);
	return s;
}

struct lines {
	char *v[256];
	size_t n;
};

static int
collect_mine(const struct wf_treediff_entry *e, void *payload)
{
	struct lines *l = payload;

	ck_assert_uint_lt(l->n, 256);
	l->v[l->n++] = diff_line(e->path, e->old_mode, e->new_mode, e->old_id,
	    e->new_id);
	return 0;
}

static int
cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * wf_treediff() against git_diff_tree_to_tree() over pairs of trees made
 * by random edits (files, links, executables, files that become
 * directories and back): the same differences, every time.
 */
START_TEST(test_treediff_same_as_libgit2)
{
	static const char *const more[] = { "x", "x/y", "x/z/w", "a", "a.c/q" };
	static const git_filemode_t modes[] = { GIT_FILEMODE_BLOB,
	    GIT_FILEMODE_BLOB_EXECUTABLE, GIT_FILEMODE_LINK };
	const size_t nnames = sizeof(names) / sizeof(*names);
	const size_t nmore = sizeof(more) / sizeof(*more);
	git_oid trees[64];
	size_t ntrees = 1, pair, i;
	unsigned seed = 777;
	int typechanges = 0;

	trees[0] = base;
	while (ntrees < 64) {
		struct wf_tree_edit ed[4];
		size_t n = 1 + (seed = seed * 1103515245 + 12345) % 4;

		for (i = 0; i < n; i++) {
			size_t w = (seed = seed * 1103515245 + 12345) %
			    (nnames + nmore);

			memset(&ed[i], 0, sizeof(ed[i]));
			ed[i].path = w < nnames ? names[w] : more[w - nnames];
			if (seed % 4 == 0) {
				ed[i].remove = 1;
			} else {
				ed[i].mode = modes[(seed >> 8) % 3];
				ed[i].id = blob[(seed >> 4) % 4];
			}
		}
		if (wf_tree_update(&trees[ntrees], repo, &trees[ntrees - 1],
		    ed, n) == 0)
			ntrees++;
	}
	for (pair = 0; pair < 300; pair++) {
		size_t x = (seed = seed * 1103515245 + 12345) % ntrees;
		size_t y = pair < ntrees - 1 ? pair + 1 :
		    (seed = seed * 1103515245 + 12345) % ntrees;
		struct lines mine = { { NULL }, 0 }, theirs = { { NULL }, 0 };
		git_diff_options o;
		git_tree *a, *b;
		git_diff *d;

		if (pair < ntrees - 1)
			x = pair;
		ck_assert_int_eq(wf_treediff(repo, &trees[x], &trees[y], 0,
		    collect_mine, &mine), 0);
		git_diff_options_init(&o, GIT_DIFF_OPTIONS_VERSION);
		o.flags = GIT_DIFF_INCLUDE_TYPECHANGE;
		ck_assert_int_eq(git_tree_lookup(&a, repo, &trees[x]), 0);
		ck_assert_int_eq(git_tree_lookup(&b, repo, &trees[y]), 0);
		ck_assert_int_eq(git_diff_tree_to_tree(&d, repo, a, b, &o), 0);
		for (i = 0; i < git_diff_num_deltas(d); i++) {
			const git_diff_delta *dd = git_diff_get_delta(d, i);
			unsigned om = dd->status == GIT_DELTA_ADDED ? 0 :
			    dd->old_file.mode;
			unsigned nm = dd->status == GIT_DELTA_DELETED ? 0 :
			    dd->new_file.mode;

			typechanges += dd->status == GIT_DELTA_TYPECHANGE;
			ck_assert_uint_lt(theirs.n, 256);
			theirs.v[theirs.n++] = diff_line(dd->status ==
			    GIT_DELTA_DELETED ? dd->old_file.path :
			    dd->new_file.path, om, nm, &dd->old_file.id,
			    &dd->new_file.id);
		}
		git_diff_free(d);
		git_tree_free(a);
		git_tree_free(b);
		qsort(mine.v, mine.n, sizeof(*mine.v), cmp_line);
		qsort(theirs.v, theirs.n, sizeof(*theirs.v), cmp_line);
		ck_assert_uint_eq(mine.n, theirs.n);
		for (i = 0; i < mine.n; i++) {
			ck_assert_str_eq(mine.v[i], theirs.v[i]);
			free(mine.v[i]);
			free(theirs.v[i]);
		}
	}
	ck_assert_int_gt(typechanges, 0);
}
END_TEST

/* A directory that comes in is given, with dirs set, before its files. */
START_TEST(test_treediff_dirs)
{
	struct wf_tree_edit ed[1];
	struct lines l = { { NULL }, 0 };
	git_oid t;
	size_t i;

	memset(ed, 0, sizeof(ed));
	ed[0].path = "new/dir/f";
	ed[0].mode = GIT_FILEMODE_BLOB;
	ed[0].id = blob[0];
	ck_assert_int_eq(wf_tree_update(&t, repo, &base, ed, 1), 0);
	ck_assert_int_eq(wf_treediff(repo, &base, &t, 1, collect_mine, &l), 0);
	ck_assert_uint_eq(l.n, 3);
	ck_assert_ptr_nonnull(strstr(l.v[0], "new 0 40000 "));
	ck_assert_ptr_nonnull(strstr(l.v[1], "new/dir 0 40000 "));
	ck_assert_ptr_nonnull(strstr(l.v[2], "new/dir/f 0 100644 "));
	for (i = 0; i < l.n; i++)
		free(l.v[i]);
	/* Nothing differs: nothing is given, and NULL is the empty tree. */
	ck_assert_int_eq(wf_treediff(repo, &t, &t, 1, collect_mine, &l), 0);
	ck_assert_int_eq(wf_treediff(repo, NULL, NULL, 1, collect_mine, &l),
	    0);
	ck_assert_uint_eq(l.n, 3);
}
END_TEST

START_TEST(test_dirs_come_and_go)
{
	struct wf_tree_edit ed[3];
	struct wf_tree_entry e;
	git_oid t, t2;

	memset(ed, 0, sizeof(ed));
	/* Emptied directories go, all the way up. */
	ed[0].path = "c/d/e/f";
	ed[0].remove = 1;
	ed[1].path = "c/d/g";
	ed[1].remove = 1;
	ck_assert_int_eq(wf_tree_update(&t, repo, &base, ed, 2), 0);
	ck_assert_int_eq(wf_tree_lookup(&e, repo, &t, "c"), WF_ENOTFOUND);
	ck_assert_int_eq(wf_tree_lookup(&e, repo, &t, "b"), 0);
	/* A file becomes a directory when it is removed in the same edit. */
	memset(ed, 0, sizeof(ed));
	ed[0].path = "b/new";
	ed[0].mode = GIT_FILEMODE_BLOB;
	ed[0].id = blob[0];
	ck_assert_int_eq(wf_tree_update(&t2, repo, &base, ed, 1),
	    WF_ECONFLICT);
	ed[1].path = "b";
	ed[1].remove = 1;
	ck_assert_int_eq(wf_tree_update(&t2, repo, &base, ed, 2), 0);
	ck_assert_int_eq(wf_tree_lookup(&e, repo, &t2, "b/new"), 0);
	ck_assert(git_oid_equal(&e.id, &blob[0]));
	/* The later of two edits of a path wins; nothing changed: base. */
	memset(ed, 0, sizeof(ed));
	ed[0].path = "b";
	ed[0].mode = GIT_FILEMODE_BLOB;
	ed[0].id = blob[1];
	ed[1].path = "b";
	ed[1].remove = 1;
	ck_assert_int_eq(wf_tree_update(&t2, repo, &base, ed, 2), 0);
	ck_assert_int_eq(wf_tree_lookup(&e, repo, &t2, "b"), WF_ENOTFOUND);
	ed[0].path = "nothing/here";
	ed[0].remove = 1;
	ck_assert_int_eq(wf_tree_update(&t2, repo, &base, ed, 1), 0);
	ck_assert(git_oid_equal(&t2, &base));
	/* From nothing; bad paths. */
	ed[0].path = "x/y";
	ed[0].remove = 0;
	ck_assert_int_eq(wf_tree_update(&t2, repo, NULL, ed, 1), 0);
	ck_assert_int_eq(wf_tree_lookup(&e, repo, &t2, "x/y"), 0);
	ed[0].path = "x//y";
	ck_assert_int_eq(wf_tree_update(&t2, repo, NULL, ed, 1), WF_EINPUT);
	ed[0].path = "../y";
	ck_assert_int_eq(wf_tree_update(&t2, repo, NULL, ed, 1), WF_EINPUT);
}
END_TEST

Suite *
tree_suite(void)
{
	Suite *s = suite_create("tree");
	TCase *tc = tcase_create("edit");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_lookup);
	tcase_add_test(tc, test_same_as_libgit2);
	tcase_add_test(tc, test_dirs_come_and_go);
	tcase_add_test(tc, test_treediff_same_as_libgit2);
	tcase_add_test(tc, test_treediff_dirs);
	suite_add_tcase(s, tc);
	return s;
}
