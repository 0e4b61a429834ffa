#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <check.h>

#include "change.h"
#include "check_suites.h"
#include "error.h"
#include "hash.h"
#include "path.h"

/*
 * A repository with one commit on main holding x ("a\nb\nc\n"), e (empty)
 * and dir/y; `second` is a child commit that adds z.
 */
static char repo_dir[256];
static git_repository *repo;
static git_oid first, second;

static void
write_commit(git_oid *out, const char *const *files, size_t n,
    const git_oid *parent)
{
	git_treebuilder *tb, *sub;
	git_oid blob, tree, subtree;
	git_signature *sig;
	git_tree *t;
	git_commit *p = NULL;
	size_t i;

	ck_assert_int_eq(git_treebuilder_new(&tb, repo, NULL), 0);
	ck_assert_int_eq(git_treebuilder_new(&sub, repo, NULL), 0);
	for (i = 0; i < n; i += 2) {
		ck_assert_int_eq(git_blob_create_from_buffer(&blob, repo,
		    files[i + 1], strlen(files[i + 1])), 0);
		if (strncmp(files[i], "dir/", 4) == 0)
			ck_assert_int_eq(git_treebuilder_insert(NULL, sub,
			    files[i] + 4, &blob, GIT_FILEMODE_BLOB), 0);
		else
			ck_assert_int_eq(git_treebuilder_insert(NULL, tb,
			    files[i], &blob, GIT_FILEMODE_BLOB), 0);
	}
	ck_assert_int_eq(git_treebuilder_write(&subtree, sub), 0);
	ck_assert_int_eq(git_treebuilder_insert(NULL, tb, "dir", &subtree,
	    GIT_FILEMODE_TREE), 0);
	ck_assert_int_eq(git_treebuilder_write(&tree, tb), 0);
	ck_assert_int_eq(git_tree_lookup(&t, repo, &tree), 0);
	ck_assert_int_eq(git_signature_new(&sig, "T", "t@example.com",
	    1700000000, 0), 0);
	if (parent)
		ck_assert_int_eq(git_commit_lookup(&p, repo, parent), 0);
	ck_assert_int_eq(git_commit_create_v(out, repo, parent ? NULL :
	    "refs/heads/main", sig, sig, NULL, "c", t, parent ? 1 : 0, p), 0);
	git_commit_free(p);
	git_signature_free(sig);
	git_tree_free(t);
	git_treebuilder_free(sub);
	git_treebuilder_free(tb);
}

static void
setup_repo(void)
{
	static const char *const one[] = { "x", "a\nb\nc\n", "e", "",
	    "dir/y", "y\n" };
	static const char *const two[] = { "x", "a\nb\nc\n", "e", "",
	    "dir/y", "y\n", "z", "z\n" };

	snprintf(repo_dir, sizeof(repo_dir), "/tmp/wf-check-change.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(repo_dir));
	ck_assert_int_eq(git_repository_init(&repo, repo_dir, 1), 0);
	write_commit(&first, one, 6, NULL);
	write_commit(&second, two, 8, &first);
}

static void
teardown_repo(void)
{
	char cmd[512];

	git_repository_free(repo);
	repo = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", repo_dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Parse `text` (one JSON value) as a request. */
static int
parse_opts(struct wf_change **out, const char *text, git_repository *r,
    const struct wf_change_opts *opts)
{
	struct wf_json_reader *rd;
	struct wf_json_doc d;
	int error;

	test_doc(&d, &rd, text);
	error = wf_change_parse(out, &d, r, opts);
	json_decref(d.value);
	test_reader_free(rd);
	return error;
}

static int
parse(struct wf_change **out, const char *text)
{
	return parse_opts(out, text, repo, NULL);
}

/* A patch request around `patch`, as JSON text (caller frees). */
static char *
patch_req(const char *patch)
{
	json_t *v = json_pack("{s:s, s:s, s:s, s:s}", "id", "task-17/1",
	    "target", "main", "kind", "patch", "patch", patch);
	char *s = json_dumps(v, JSON_COMPACT);

	json_decref(v);
	return s;
}

/* Expect the patch to be refused with a message containing `want`. */
static void
refuse_patch(const char *patch, const char *want)
{
	struct wf_change *c = (void *)1;
	char *text = patch_req(patch);
	int rc = parse(&c, text);

	ck_assert_msg(rc == WF_EINPUT, "accepted (%d): %s", rc, patch);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(wf_error_last(), want), "message '%s' lacks '%s'",
	    wf_error_last(), want);
	ck_assert_msg(strstr(wf_error_last(), "request 'task-17/1'"),
	    "message '%s' does not name the request", wf_error_last());
	free(text);
}

static struct wf_change *
accept_patch(const char *patch)
{
	struct wf_change *c;
	char *text = patch_req(patch);
	int rc = parse(&c, text);

	ck_assert_msg(rc == 0, "refused: %s", wf_error_last());
	free(text);
	return c;
}

static const char modify_x[] =
    "diff --git a/x b/x\n"
    "index de98044..0f5f8d1 100644\n"
    "--- a/x\n"
    "+++ b/x\n"
    "@@ -1,3 +1,3 @@\n"
    " a\n"
    "-b\n"
    "+B\n"
    " c\n";

START_TEST(valid_patch)
{
	struct wf_change *c = accept_patch(modify_x);
	char hex[GIT_OID_HEXSZ + 1];
	git_oid again;
	json_t *canon;

	ck_assert_str_eq(c->id, "task-17/1");
	ck_assert_str_eq(c->target, "main");
	ck_assert_int_eq(c->kind, WF_CHANGE_PATCH);
	ck_assert_int_eq(c->priority, 0);
	ck_assert_uint_eq(c->ndepends, 0);
	ck_assert_uint_eq(json_array_size(c->paths), 1);
	ck_assert_str_eq(json_string_value(json_array_get(c->paths, 0)), "x");
	/* The hash is the blob id of the canonical form. */
	canon = wf_change_canonical(c);
	ck_assert_ptr_nonnull(canon);
	ck_assert_int_eq(wf_hash_json(&again, canon), 0);
	ck_assert(git_oid_equal(&again, &c->hash));
	ck_assert_int_eq(json_integer_value(json_object_get(canon,
	    "priority")), 0);
	ck_assert(json_is_array(json_object_get(canon, "depends_on")));
	json_decref(canon);
	wf_hash_hex(hex, &c->hash);
	ck_assert_uint_eq(strlen(hex), 40);
	wf_change_free(c);
	wf_change_free(NULL);
}
END_TEST

START_TEST(canonical_hash_ignores_order)
{
	struct wf_change *a, *b;

	ck_assert_int_eq(parse(&a, "{\"id\": \"t/1\", \"target\": \"main\","
	    " \"kind\": \"files\", \"depends_on\": [\"b\", \"a\"],"
	    " \"files\": [{\"path\": \"q\", \"content\": \"aGk=\"},"
	    " {\"path\": \"p\", \"delete\": true}]}"), WF_EINPUT);
	/* p does not exist on main: a delete needs something to delete. */
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "'p' does not exist"));
	ck_assert_int_eq(parse(&a, "{\"id\": \"t/1\", \"target\": \"main\","
	    " \"kind\": \"files\", \"depends_on\": [\"b\", \"a\"],"
	    " \"files\": [{\"path\": \"q\", \"content\": \"aGk=\"},"
	    " {\"path\": \"x\", \"delete\": true}]}"), 0);
	ck_assert_int_eq(parse(&b, "{\"files\": [{\"path\": \"x\","
	    " \"delete\": true}, {\"content\": \"aGk=\", \"path\": \"q\","
	    " \"mode\": \"100644\"}], \"kind\": \"files\", \"priority\": 0,"
	    " \"depends_on\": [\"a\", \"b\"], \"target\": \"main\","
	    " \"id\": \"t/1\"}"), 0);
	ck_assert(git_oid_equal(&a->hash, &b->hash));
	ck_assert_str_eq(a->depends_on[0], "a");
	ck_assert_str_eq(a->depends_on[1], "b");
	ck_assert_ptr_null(a->depends_on[2]);
	wf_change_free(b);
	ck_assert_int_eq(parse(&b, "{\"id\": \"t/1\", \"target\": \"main\","
	    " \"kind\": \"files\", \"priority\": 1,"
	    " \"files\": [{\"path\": \"q\", \"content\": \"aGk=\"}]}"), 0);
	ck_assert(!git_oid_equal(&a->hash, &b->hash));
	wf_change_free(a);
	wf_change_free(b);
}
END_TEST

START_TEST(adversarial_paths)
{
	refuse_patch("diff --git a/../x b/../x\nindex de98044..0f5f8d1 100644\n"
	    "--- a/../x\n+++ b/../x\n@@ -1 +1 @@\n-a\n+b\n", "'..'");
	refuse_patch("--- a//etc/passwd\n+++ b//etc/passwd\n@@ -1 +1 @@\n"
	    "-a\n+b\n", "absolute path");
	/* git strips "/" as the first component (-p1): a relative path. */
	refuse_patch("--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n"
	    "-a\n+b\n", "'etc/passwd' does not exist");
	refuse_patch("diff --git a/.GIT/config b/.GIT/config\n"
	    "index de98044..0f5f8d1 100644\n--- a/.GIT/config\n"
	    "+++ b/.GIT/config\n@@ -1 +1 @@\n-a\n+b\n", "'.git' component");
	refuse_patch("diff --git a/a/.git/hooks/x b/a/.git/hooks/x\n"
	    "new file mode 100755\nindex 0000000..0f5f8d1\n--- /dev/null\n"
	    "+++ b/a/.git/hooks/x\n@@ -0,0 +1 @@\n+rm -rf /\n",
	    "'.git' component");
	refuse_patch("diff --git \"a/n\\nl\" \"b/n\\nl\"\nnew file mode 100644\n"
	    "index 0000000..ea0c8a8\n--- /dev/null\n+++ \"b/n\\nl\"\n"
	    "@@ -0,0 +1 @@\n+q\n", "control character");
	refuse_patch("diff --git a/l b/l\nnew file mode 120000\n"
	    "index 0000000..1111111\n--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n"
	    "+../../etc\n\\ No newline at end of file\n", "leaves the repository");
	refuse_patch("diff --git a/.git./x b/.git./x\nnew file mode 100644\n"
	    "index 0000000..ea0c8a8\n--- /dev/null\n+++ b/.git./x\n"
	    "@@ -0,0 +1 @@\n+q\n", "'.git' component");
}
END_TEST

START_TEST(adversarial_contents)
{
	/* Binary patches without data cannot be applied. */
	refuse_patch("diff --git a/x b/x\nindex 8352675..9388380 100644\n"
	    "Binary files a/x and b/x differ\n", "has no data");
	/* Truncated: the hunk promises more lines than it has. */
	refuse_patch("diff --git a/x b/x\nindex de98044..0f5f8d1 100644\n"
	    "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n", "corrupt patch");
	refuse_patch("diff --git a/x b/x\nindex de98044..0f5f8d1 100644\n"
	    "--- a/x\n", "lacks filename information");
	/* x exists on main. */
	refuse_patch("diff --git a/x b/x\nnew file mode 100644\n"
	    "index 0000000..ea0c8a8\n--- /dev/null\n+++ b/x\n@@ -0,0 +1 @@\n"
	    "+q\n", "'x' already exists in target 'main'");
	refuse_patch("diff --git a/nope b/nope\nindex de98044..0f5f8d1 100644\n"
	    "--- a/nope\n+++ b/nope\n@@ -1 +1 @@\n-a\n+b\n",
	    "'nope' does not exist");
	/* A modify after a delete of the same file. */
	refuse_patch("diff --git a/x b/x\ndeleted file mode 100644\n"
	    "index de98044..0000000\n--- a/x\n+++ /dev/null\n@@ -1,3 +0,0 @@\n"
	    "-a\n-b\n-c\ndiff --git a/x b/x\nindex de98044..6178079 100644\n"
	    "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n",
	    "after it is renamed or deleted");
	/* A delete has its content. */
	refuse_patch("diff --git a/x b/x\ndeleted file mode 100644\n"
	    "index de98044..0000000\n", "has no content");
	refuse_patch("", "changes no file");
	refuse_patch("just some words\n", "changes no file");
	refuse_patch("diff --git a/s b/s\nnew file mode 160000\n"
	    "index 0000000..ea0c8a8\n--- /dev/null\n+++ b/s\n@@ -0,0 +1 @@\n"
	    "+Subproject commit ea0c8a8\n", "corrupt patch for submodule");
}
END_TEST

START_TEST(patch_forms)
{
	struct wf_change *c;

	/* A plain unified diff, as diff -u writes it. */
	c = accept_patch("Index: x\n--- a/x\t2024-01-01 00:00:00\n"
	    "+++ b/x\t2024-01-01 00:00:00\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
	    "--- /dev/null\n+++ b/new\n@@ -0,0 +1,2 @@\n+-- x\n+--- y\n");
	ck_assert_uint_eq(json_array_size(c->paths), 2);
	ck_assert_str_eq(json_string_value(json_array_get(c->paths, 0)), "new");
	wf_change_free(c);
	/* Empty files added and deleted (headers that end at "index"). */
	c = accept_patch("diff --git a/new b/new\nnew file mode 100644\n"
	    "index 0000000..e69de29\ndiff --git a/e b/e\n"
	    "deleted file mode 100644\nindex e69de29..0000000\n");
	ck_assert_uint_eq(json_array_size(c->paths), 2);
	wf_change_free(c);
	/* A full delete and a rename. */
	c = accept_patch("diff --git a/x b/x\ndeleted file mode 100644\n"
	    "index de98044..0000000\n--- a/x\n+++ /dev/null\n@@ -1,3 +0,0 @@\n"
	    "-a\n-b\n-c\ndiff --git a/dir/y b/dir/w\nsimilarity index 100%\n"
	    "rename from dir/y\nrename to dir/w\n");
	ck_assert_uint_eq(json_array_size(c->paths), 3);
	wf_change_free(c);
	/* A new file that is then modified, as git applies it. */
	c = accept_patch("diff --git a/n b/n\nnew file mode 100644\n"
	    "index 0000000..7898192\n--- /dev/null\n+++ b/n\n@@ -0,0 +1 @@\n"
	    "+a\ndiff --git a/n b/n\nindex 7898192..6178079 100644\n--- a/n\n"
	    "+++ b/n\n@@ -1 +1 @@\n-a\n+b\n");
	ck_assert_uint_eq(json_array_size(c->paths), 1);
	wf_change_free(c);
	/* A binary patch with data. */
	c = accept_patch("diff --git a/b.bin b/b.bin\nnew file mode 100644\n"
	    "index 0000000000000000000000000000000000000000.."
	    "d1f0a9a143eb4536e4549e5f23d00be264b1e9b8\nGIT binary patch\n"
	    "literal 3\nKcmYdHVgLXE>Hx$5\n\nliteral 0\nHcmV?d00001\n\n");
	wf_change_free(c);
	/* Without a repository nothing is checked against a tree. */
	{
		char *t = patch_req("diff --git a/x b/x\nnew file mode 100644\n"
		    "index 0000000..ea0c8a8\n--- /dev/null\n+++ b/x\n"
		    "@@ -0,0 +1 @@\n+q\n");

		ck_assert_int_eq(parse_opts(&c, t, NULL, NULL), 0);
		wf_change_free(c);
		free(t);
	}
}
END_TEST

START_TEST(json_shape)
{
	struct wf_change *c;

	ck_assert_int_eq(parse(&c, "[]"), WF_EINPUT);
	ck_assert_str_eq(wf_error_last(),
	    "<stdin>:1:1: expected an object, got an array");
	ck_assert_int_eq(parse(&c, "{\"id\": \"a\", \"target\": \"main\","
	    "\n \"kind\": \"patch\", \"patch\": \"\", \"colour\": 1}"),
	    WF_EINPUT);
	ck_assert_str_eq(wf_error_last(), "<stdin>:2:42: .colour: unknown field");
	ck_assert_int_eq(parse(&c, "{\"target\": \"main\"}"), WF_EINPUT);
	ck_assert_str_eq(wf_error_last(), "<stdin>:1:1: missing field 'id'");
	ck_assert_int_eq(parse(&c, "{\"id\": \"-x\"}"), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), ".id: '-x': id starts"));
	ck_assert_int_eq(parse(&c, "{\"id\": \"a b\"}"), WF_EINPUT);
	ck_assert_int_eq(parse(&c, "{\"id\": \"a\", \"target\": \"a..b\","
	    " \"kind\": \"patch\"}"), WF_EINPUT);
	ck_assert_str_eq(wf_error_last(), "<stdin>:1:23: .target: request 'a': "
	    "'a..b' is not a valid branch name");
	ck_assert_int_eq(parse(&c, "{\"id\": \"a\", \"target\": \"main\","
	    " \"kind\": \"zip\"}"), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "not one of patch"));
	ck_assert_int_eq(parse(&c, "{\"id\": \"a\", \"target\": \"main\","
	    " \"kind\": \"patch\", \"priority\": \"high\"}"), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), ".priority: expected an "
	    "integer"));
	ck_assert_int_eq(parse(&c, "{\"id\": \"a\", \"target\": \"main\","
	    " \"kind\": \"patch\", \"priority\": 10000000}"), WF_EINPUT);
	ck_assert_int_eq(parse(&c, "{\"id\": \"a\", \"target\": \"main\","
	    " \"kind\": \"patch\", \"depends_on\": [\"a\"]}"), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "depend on itself"));
	ck_assert_int_eq(parse(&c, "{\"id\": \"a\", \"target\": \"main\","
	    " \"kind\": \"patch\", \"depends_on\": [\"b\", \"b\"]}"),
	    WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(),
	    ".depends_on[1]: request 'a': 'b' is listed twice"));
	ck_assert_int_eq(parse(&c, "{\"id\": \"a\", \"target\": \"main\","
	    " \"kind\": \"patch\", \"author\": {\"name\": \"x\"}}"), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "missing field 'email'"));
	ck_assert_int_eq(parse(&c, "{\"id\": \"a\", \"target\": \"main\","
	    " \"kind\": \"patch\", \"author\": {\"name\": \"x\", \"email\":"
	    " \"<e>\"}}"), WF_EINPUT);
	ck_assert_int_eq(parse(&c, "{\"id\": \"a\", \"target\": \"main\","
	    " \"kind\": \"patch\", \"meta\": []}"), WF_EINPUT);
	ck_assert_int_eq(parse(&c, "{\"id\": \"a\", \"target\": \"main\","
	    " \"kind\": \"patch\", \"head\": \"" "0123456789012345678901234567890123456789"
	    "\", \"patch\": \"\"}"), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), ".head: request 'a': not "
	    "allowed for kind 'patch'"));
	ck_assert_int_eq(parse(&c, "{\"id\": \"a\", \"target\": \"main\","
	    " \"kind\": \"patch\", \"base\": \"HEAD\", \"patch\": \"\"}"),
	    WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "full lower-case object"));
	ck_assert_int_eq(parse(&c, "{\"id\": \"a\", \"target\": \"main\","
	    " \"kind\": \"patch\"}"), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "missing field 'patch'"));
}
END_TEST

START_TEST(commits)
{
	struct wf_change *c;
	char text[512], f[41], s[41];

	git_oid_tostr(f, sizeof(f), &first);
	git_oid_tostr(s, sizeof(s), &second);
	snprintf(text, sizeof(text), "{\"id\": \"c\", \"target\": \"main\","
	    " \"kind\": \"commits\", \"base\": \"%s\", \"head\": \"%s\"}", f, s);
	ck_assert_msg(parse(&c, text) == 0, "%s", wf_error_last());
	ck_assert_uint_eq(json_array_size(c->paths), 1);
	ck_assert_str_eq(json_string_value(json_array_get(c->paths, 0)), "z");
	wf_change_free(c);
	/* Reversed: head is not a descendant. */
	snprintf(text, sizeof(text), "{\"id\": \"c\", \"target\": \"main\","
	    " \"kind\": \"commits\", \"base\": \"%s\", \"head\": \"%s\"}", s, f);
	ck_assert_int_eq(parse(&c, text), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "not a descendant"));
	snprintf(text, sizeof(text), "{\"id\": \"c\", \"target\": \"main\","
	    " \"kind\": \"commits\", \"base\": \"%s\", \"head\": \"%s\"}", f,
	    "1111111111111111111111111111111111111111");
	ck_assert_int_eq(parse(&c, text), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "head commit "
	    "'1111111111111111111111111111111111111111' is not in the repository"));
	snprintf(text, sizeof(text), "{\"id\": \"c\", \"target\": \"main\","
	    " \"kind\": \"commits\", \"base\": \"%s\"}", f);
	ck_assert_int_eq(parse(&c, text), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "missing field 'head'"));
	/* Without a repository the range cannot be checked. */
	snprintf(text, sizeof(text), "{\"id\": \"c\", \"target\": \"main\","
	    " \"kind\": \"commits\", \"base\": \"%s\", \"head\": \"%s\"}", f, s);
	ck_assert_int_eq(parse_opts(&c, text, NULL, NULL), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "needs a repository"));
}
END_TEST

START_TEST(files_kind)
{
	struct wf_change *c;
	char text[512];
	git_oid xid;
	char hex[41];

	ck_assert_int_eq(parse(&c, "{\"id\": \"f\", \"target\": \"main\","
	    " \"kind\": \"files\", \"files\": [{\"path\": \"q\","
	    " \"content\": \"aGk\"}]}"), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(),
	    ".files[0].content: request 'f': not valid base64"));
	ck_assert_int_eq(parse(&c, "{\"id\": \"f\", \"target\": \"main\","
	    " \"kind\": \"files\", \"files\": [{\"path\": \"q\","
	    " \"content\": \"aGk=\"}, {\"path\": \"q\", \"delete\": true}]}"),
	    WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "changed more than once"));
	ck_assert_int_eq(parse(&c, "{\"id\": \"f\", \"target\": \"main\","
	    " \"kind\": \"files\", \"files\": [{\"path\": \"x\","
	    " \"content\": \"aGk=\", \"delete\": true}]}"), WF_EINPUT);
	ck_assert_int_eq(parse(&c, "{\"id\": \"f\", \"target\": \"main\","
	    " \"kind\": \"files\", \"files\": [{\"path\": \"q\"}]}"), WF_EINPUT);
	ck_assert_int_eq(parse(&c, "{\"id\": \"f\", \"target\": \"main\","
	    " \"kind\": \"files\", \"files\": [{\"path\": \"l\", \"mode\":"
	    " \"120000\", \"content\": \"Ly4uL2V0Yw==\"}]}"), WF_EINPUT);
	ck_assert_int_eq(parse(&c, "{\"id\": \"f\", \"target\": \"main\","
	    " \"kind\": \"files\", \"files\": [{\"path\": \"a/.git/hooks/x\","
	    " \"content\": \"\"}]}"), WF_EINPUT);
	ck_assert_int_eq(parse(&c, "{\"id\": \"f\", \"target\": \"main\","
	    " \"kind\": \"files\", \"files\": [{\"path\": \"q\", \"blob\":"
	    " \"1111111111111111111111111111111111111111\"}]}"), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "is not in the repository"));
	ck_assert_int_eq(parse(&c, "{\"id\": \"f\", \"target\": \"main\","
	    " \"kind\": \"files\", \"files\": [{\"path\": \"q\", \"content\":"
	    " \"aGk=\", \"blob\": \"1111111111111111111111111111111111111111\"}]}"),
	    WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "does not match blob"));
	/* An existing blob by id. */
	ck_assert_int_eq(git_blob_create_from_buffer(&xid, repo, "y\n", 2), 0);
	snprintf(text, sizeof(text), "{\"id\": \"f\", \"target\": \"main\","
	    " \"kind\": \"files\", \"files\": [{\"path\": \"q\", \"blob\": \"%s\","
	    " \"mode\": \"100755\"}]}", git_oid_tostr(hex, sizeof(hex), &xid));
	ck_assert_msg(parse(&c, text) == 0, "%s", wf_error_last());
	wf_change_free(c);
}
END_TEST

START_TEST(limits)
{
	struct wf_change_opts o = WF_CHANGE_OPTS_INIT;
	struct wf_change *c;
	char *t = patch_req(modify_x);

	o.max_patch = 10;
	ck_assert_int_eq(parse_opts(&c, t, repo, &o), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "exceeds the limit of 10"));
	o.max_patch = 0;
	o.max_request = 100;
	ck_assert_int_eq(parse_opts(&c, t, repo, &o), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "request of"));
	free(t);
	o.max_request = 0;
	o.max_file = 1;
	ck_assert_int_eq(parse_opts(&c, "{\"id\": \"f\", \"target\": \"main\","
	    " \"kind\": \"files\", \"files\": [{\"path\": \"q\","
	    " \"content\": \"aGk=\"}]}", repo, &o), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "2 bytes exceeds"));
}
END_TEST

/* Write a tar with the given (name, type, content) triples to a file. */
static int
make_tar(const char *path, const char *const *ents, size_t n)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e;
	size_t i;
	int fd;

	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_gzip(a);
	ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (i = 0; i < n; i += 3) {
		e = archive_entry_new();
		archive_entry_set_pathname(e, ents[i]);
		switch (ents[i + 1][0]) {
		case 'f':
		case 'x':
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, ents[i + 1][0] == 'x' ?
			    0755 : 0644);
			archive_entry_set_size(e, (la_int64_t)strlen(ents[i + 2]));
			break;
		case 'l':
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_symlink(e, ents[i + 2]);
			archive_entry_set_perm(e, 0777);
			break;
		case 'd':
			archive_entry_set_filetype(e, AE_IFDIR);
			archive_entry_set_perm(e, 0755);
			break;
		case 'c':
			archive_entry_set_filetype(e, AE_IFCHR);
			archive_entry_set_perm(e, 0644);
			break;
		}
		ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
		if (ents[i + 1][0] == 'f' || ents[i + 1][0] == 'x')
			archive_write_data(a, ents[i + 2], strlen(ents[i + 2]));
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	return fd;
}

START_TEST(tar)
{
	static const char *const good[] = {
		"./", "d", "",
		"./src/", "d", "",
		"./src/a.c", "f", "int a;\n",
		"./src/run", "x", "#!/bin/sh\n",
		"./src/l", "l", "a.c",
		"./src/.wh.old.c", "f", "",
	};
	static const char *const bad[][3] = {
		{ "../x", "f", "" },
		{ "a/.git/hooks/x", "f", "" },
		{ "l", "l", "../../etc" },
		{ "dev", "c", "" },
		{ "n\nl", "f", "" },
	};
	char path[300];
	json_t *files;
	size_t i;
	int fd;

	snprintf(path, sizeof(path), "%s/t.tar.gz", repo_dir);
	fd = make_tar(path, good, sizeof(good) / sizeof(*good));
	ck_assert_msg(wf_change_files_from_tar(&files, fd, "t.tar.gz", "pre",
	    NULL) == 0, "%s", wf_error_last());
	close(fd);
	ck_assert_uint_eq(json_array_size(files), 4);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(files,
	    0), "path")), "pre/src/a.c");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(files,
	    0), "content")), "aW50IGE7Cg==");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(files,
	    1), "mode")), "100755");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(files,
	    2), "mode")), "120000");
	ck_assert(json_is_true(json_object_get(json_array_get(files, 3),
	    "delete")));
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(files,
	    3), "path")), "pre/src/old.c");
	json_decref(files);
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		fd = make_tar(path, bad[i], 3);
		ck_assert_int_eq(wf_change_files_from_tar(&files, fd, "t.tar.gz",
		    NULL, NULL), WF_EINPUT);
		ck_assert_ptr_null(files);
		ck_assert_ptr_nonnull(strstr(wf_error_last(), "t.tar.gz: entry"));
		close(fd);
	}
	fd = open("/dev/null", O_RDONLY);
	ck_assert_int_eq(wf_change_files_from_tar(&files, fd, "<stdin>", NULL,
	    NULL), WF_EINPUT);
	close(fd);
	fd = make_tar(path, good, 3);
	ck_assert_int_eq(wf_change_files_from_tar(&files, fd, "t", "../up",
	    NULL), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "prefix '../up'"));
	close(fd);
}
END_TEST

START_TEST(path_rules)
{
	ck_assert_ptr_null(wf_path_problem("a/b.c"));
	ck_assert_ptr_null(wf_path_problem(".github/x"));
	ck_assert_ptr_null(wf_path_problem("a/.gitignore"));
	ck_assert_ptr_nonnull(wf_path_problem("GIT~1/config"));
	ck_assert_ptr_nonnull(wf_path_problem(".git /config"));
	ck_assert_ptr_null(wf_path_problem("a\\..\\b"));
	ck_assert_ptr_null(wf_path_problem("tab\there"));
	ck_assert_ptr_nonnull(wf_path_problem("a/.git\\config"));
	ck_assert_ptr_nonnull(wf_path_problem("a\\.git"));
	ck_assert_ptr_nonnull(wf_path_problem("x\\GIT~1\\y"));
	ck_assert_ptr_null(wf_path_problem("x\\.gitx\\y"));
	ck_assert_ptr_nonnull(wf_path_problem("new\nline"));
	ck_assert_ptr_null(wf_path_link_problem("a/b/l", "../c"));
	ck_assert_ptr_null(wf_path_link_problem("a/l", "../c"));
	ck_assert_ptr_nonnull(wf_path_link_problem("l", "../c"));
	ck_assert_ptr_nonnull(wf_path_link_problem("a/l", "b/../../../c"));
	ck_assert_ptr_nonnull(wf_path_link_problem("l", "/etc"));
	ck_assert_ptr_nonnull(wf_path_link_problem("l", ".git/config"));
	ck_assert_ptr_nonnull(wf_path_link_problem("l", ""));
}
END_TEST

/* git's own refusals, each spelling NTFS and HFS+ take for ".git". */
START_TEST(path_rules_of_git)
{
	static const char *const refused[] = {
		".git::$INDEX_ALLOCATION/config", ".git:stream", "git~1 /x",
		".g\xe2\x80\x8cit/config", "\xef\xbb\xbf.git/config",
		".GIT\xe2\x80\x8d/hooks/x", ".git. . ./x", "x/.Git",
	};
	char *longname, *deep;
	size_t i;

	for (i = 0; i < sizeof(refused) / sizeof(*refused); i++)
		ck_assert_msg(wf_path_problem(refused[i]) != NULL,
		    "'%s' taken", refused[i]);
	ck_assert_ptr_null(wf_path_problem(".gitx/y"));
	ck_assert_ptr_null(wf_path_problem("git~x"));
	ck_assert_ptr_null(wf_path_problem("a/.gitmodules"));
	/* Names git reads as its own are no links. */
	ck_assert_ptr_null(wf_path_problem_mode(".gitmodules", 0100644));
	ck_assert_ptr_nonnull(wf_path_problem_mode(".gitmodules", 0120000));
	ck_assert_ptr_nonnull(wf_path_problem_mode("a/.GITMODULES", 0120000));
	ck_assert_ptr_nonnull(wf_path_problem_mode("gitmod~1", 0120000));
	ck_assert_ptr_nonnull(wf_path_problem_mode(".gitattributes",
	    0120000));
	ck_assert_ptr_nonnull(wf_path_problem_mode(".gitignore", 0120000));
	ck_assert_ptr_nonnull(wf_path_problem_mode(".mailmap", 0120000));
	ck_assert_ptr_null(wf_path_problem_mode("link", 0120000));
	ck_assert_ptr_null(wf_path_problem_mode("sub", 0160000));
	/* What a checkout can hold. */
	longname = malloc(5001);
	ck_assert_ptr_nonnull(longname);
	memset(longname, 'n', 5000);
	longname[5000] = '\0';
	ck_assert_ptr_nonnull(wf_path_problem(longname));
	longname[WF_PATH_MAX_NAME] = '\0';
	ck_assert_ptr_null(wf_path_problem(longname));
	longname[WF_PATH_MAX_NAME] = 'n';
	longname[WF_PATH_MAX_NAME + 1] = '\0';
	ck_assert_ptr_nonnull(wf_path_problem(longname));
	free(longname);
	deep = malloc(2 * 3000);
	ck_assert_ptr_nonnull(deep);
	for (i = 0; i < 3000; i++) {
		deep[2 * i] = 'a';
		deep[2 * i + 1] = '/';
	}
	deep[2 * 3000 - 1] = '\0';
	ck_assert_ptr_nonnull(wf_path_problem(deep));
	deep[WF_PATH_MAX - 1] = '\0';
	ck_assert_ptr_null(wf_path_problem(deep));
	free(deep);
	/* A link target through a name for ".git". */
	ck_assert_ptr_nonnull(wf_path_link_problem("l", "GIT~1/config"));
	ck_assert_ptr_nonnull(wf_path_link_problem("l",
	    ".g\xe2\x80\x8cit/config"));
}
END_TEST

/*
 * The canonical text is written directly, not through jansson: it must
 * be exactly what wf_json_canonical() makes of the same request, for
 * every field and every kind of value in it.
 */
START_TEST(canonical_text_is_canonical)
{
	static const char *const reqs[] = {
	    "{\"target\": \"main\", \"id\": \"t/1\", \"kind\": \"files\","
	    " \"meta\": {\"z\": [3, {\"b\": null, \"a\": 1.5}], \"a\": \"\\u00e9\","
	    " \"m\": {\"y\": true, \"x\": false}},"
	    " \"author\": {\"email\": \"a@b.c\", \"name\": \"A \\\"q\\\" \\u20ac\"},"
	    " \"message\": \"line\\none\\ttab \\\\ \\u0001\","
	    " \"depends_on\": [\"c/3\", \"a/1\", \"b/2\"], \"priority\": -7,"
	    " \"files\": [{\"path\": \"z/\\u00e9.txt\", \"content\": \"aGk=\","
	    " \"mode\": \"100755\"}, {\"path\": \"a b\", \"content\": \"\"},"
	    " {\"path\": \"l\", \"content\": \"dGFyZ2V0\", \"mode\": \"120000\"}]}",
	    "{\"id\": \"p/1\", \"target\": \"main\", \"kind\": \"patch\","
	    " \"priority\": 12, \"patch\": \"diff --git a/n b/n\\nnew file mode"
	    " 100644\\n--- /dev/null\\n+++ b/n\\n@@ -0,0 +1 @@\\n+\\\"x\\\"\\n\"}",
	};
	size_t i;

	for (i = 0; i < sizeof(reqs) / sizeof(*reqs); i++) {
		struct wf_change *c;
		json_t *canon;
		char *again;
		git_oid id;

		ck_assert_msg(parse(&c, reqs[i]) == 0, "refused: %s",
		    wf_error_last());
		canon = wf_change_canonical(c);
		ck_assert_ptr_nonnull(canon);
		again = wf_json_canonical(canon);
		ck_assert_str_eq(c->text, again);
		ck_assert_int_eq(wf_hash_buf(&id, again, strlen(again)), 0);
		ck_assert(git_oid_equal(&id, &c->hash));
		free(again);
		json_decref(canon);
		wf_change_free(c);
	}
}
END_TEST

/*
 * Found by fuzzing: a patch with a NUL byte (a --text diff) is kept as
 * base64, never as a JSON string jansson will not read back, so the
 * queue can read the request it stored.
 */
START_TEST(nul_bytes_stay_base64)
{
	static const char req[] = "{\"id\": \"n/1\", \"target\": \"main\","
	    " \"kind\": \"patch\", \"patch_base64\": \"ZGlmZiAtLWdpdCBhL24gYi9u"
	    "Cm5ldyBmaWxlIG1vZGUgMTAwNjQ0Ci0tLSAvZGV2L251bGwKKysrIGIvbgpAQCAtMC"
	    "wwICsxIEBACithAGIK\"}";
	struct wf_change *c, *again;
	json_t *canon;

	ck_assert_msg(parse(&c, req) == 0, "refused: %s", wf_error_last());
	ck_assert_ptr_nonnull(strstr(c->text, "\"patch_base64\":"));
	ck_assert_ptr_null(strstr(c->text, "\\u0000"));
	ck_assert_ptr_nonnull(canon = wf_change_canonical(c));
	ck_assert_int_eq(wf_change_from_canonical(&again, c->text, c->paths,
	    &c->hash), 0);
	wf_change_free(again);
	json_decref(canon);
	wf_change_free(c);
}
END_TEST

/*
 * With a memo of trees, a stream is checked against one snapshot of its
 * branch: moving the branch meanwhile changes nothing for it, while a
 * request parsed without the memo sees the new tip.
 */
START_TEST(stream_sees_one_snapshot)
{
	static const char del_z[] = "{\"id\": \"t/1\", \"target\": \"main\","
	    " \"kind\": \"files\", \"files\": [{\"path\": \"z\","
	    " \"delete\": true}]}";
	struct wf_change_opts o = WF_CHANGE_OPTS_INIT;
	struct wf_change *c;
	git_reference *ref;

	/* main at the commit with z, which may then be deleted. */
	ck_assert_int_eq(git_reference_create(&ref, repo, "refs/heads/main",
	    &second, 1, "test"), 0);
	git_reference_free(ref);
	ck_assert_int_eq(wf_change_trees_new(&o.trees, repo), 0);
	ck_assert_int_eq(parse_opts(&c, del_z, repo, &o), 0);
	wf_change_free(c);
	/* main goes back to the commit without z. */
	ck_assert_int_eq(git_reference_create(&ref, repo, "refs/heads/main",
	    &first, 1, "test"), 0);
	git_reference_free(ref);
	ck_assert_int_eq(parse_opts(&c, del_z, repo, &o), 0);
	wf_change_free(c);
	ck_assert_int_eq(parse(&c, del_z), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "'z' does not exist"));
	wf_change_trees_free(o.trees);
}
END_TEST

/* Strict base64, in every position of a long input. */
START_TEST(base64_strict)
{
	static const struct {
		const char *in, *out;	/* out NULL: refused */
	} v[] = {
		{ "", "" },
		{ "aGk=", "hi" },
		{ "aGVsbG8gd29ybGQ=", "hello world" },
		{ "aGVsbG8gd29ybGQh", "hello world!" },
		{ "aGVsbG8gd29ybA==", "hello worl" },
		{ "a*VsbG8gd29ybGQ=", NULL },	/* bad digit, first group */
		{ "aGVsbG8gd2-ybGQ=", NULL },	/* bad digit, a middle one */
		{ "aGk=aGk=", NULL },		/* padding before the end */
		{ "aGl=", NULL },		/* padding bits not zero */
		{ "aGVsbG8gd29ybB==", NULL },
		{ "aGVsbG8", NULL },		/* not a multiple of 4 */
		{ "aGVs\nbG8=", NULL },
		{ "====", NULL },
		{ "a===", NULL },
	};
	size_t i, len;

	for (i = 0; i < sizeof(v) / sizeof(*v); i++) {
		unsigned char *out = NULL;
		int rc = wf_change_unbase64(&out, &len, v[i].in);

		if (!v[i].out) {
			ck_assert_msg(rc == WF_EINPUT, "'%s' accepted", v[i].in);
			continue;
		}
		ck_assert_msg(rc == 0, "'%s' refused", v[i].in);
		ck_assert_uint_eq(len, strlen(v[i].out));
		ck_assert(memcmp(out, v[i].out, len) == 0);
		free(out);
	}
}
END_TEST

Suite *
change_suite(void)
{
	Suite *s = suite_create("change");
	TCase *tc = tcase_create("validate");

	tcase_add_checked_fixture(tc, setup_repo, teardown_repo);
	tcase_add_test(tc, valid_patch);
	tcase_add_test(tc, canonical_hash_ignores_order);
	tcase_add_test(tc, canonical_text_is_canonical);
	tcase_add_test(tc, nul_bytes_stay_base64);
	tcase_add_test(tc, stream_sees_one_snapshot);
	tcase_add_test(tc, base64_strict);
	tcase_add_test(tc, adversarial_paths);
	tcase_add_test(tc, adversarial_contents);
	tcase_add_test(tc, patch_forms);
	tcase_add_test(tc, json_shape);
	tcase_add_test(tc, commits);
	tcase_add_test(tc, files_kind);
	tcase_add_test(tc, limits);
	tcase_add_test(tc, tar);
	tcase_add_test(tc, path_rules);
	tcase_add_test(tc, path_rules_of_git);
	suite_add_tcase(s, tc);
	return s;
}
