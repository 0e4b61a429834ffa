#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <git2/sys/odb_backend.h>

#include "check_suites.h"
#include "error.h"
#include "pack.h"
#include "patch.h"

static char dir[256];
static git_repository *repo;

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/wf-check-patch.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(git_repository_init(&repo, dir, 1), 0);
}

static void
teardown(void)
{
	char cmd[300];

	git_repository_free(repo);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* A tree of one file `path` with `content` and `mode`. */
static git_tree *
tree1(const char *path, const char *content, git_filemode_t mode)
{
	git_treebuilder *tb;
	git_oid blob, id;
	git_tree *t;

	ck_assert_int_eq(git_blob_create_from_buffer(&blob, repo, content,
	    strlen(content)), 0);
	ck_assert_int_eq(git_treebuilder_new(&tb, repo, NULL), 0);
	ck_assert_int_eq(git_treebuilder_insert(NULL, tb, path, &blob, mode),
	    0);
	ck_assert_int_eq(git_treebuilder_write(&id, tb), 0);
	git_treebuilder_free(tb);
	ck_assert_int_eq(git_tree_lookup(&t, repo, &id), 0);
	return t;
}

/* Apply `text` to `t`; on success *content gets `path` (malloc'ed). */
static int
apply(char **content, git_filemode_t *mode, git_tree *t, const char *text,
    unsigned fuzz, const char *path)
{
	struct wf_patch_opts o = WF_PATCH_OPTS_INIT;
	struct wf_patch *p;
	git_tree *nt;
	git_tree_entry *e;
	git_blob *b;
	git_oid id;
	int error;

	o.fuzz = fuzz;
	ck_assert_int_eq(wf_patch_parse(&p, text, strlen(text)), 0);
	error = wf_patch_apply(&id, repo, t, p, &o);
	wf_patch_free(p);
	if (error < 0)
		return error;
	ck_assert_int_eq(git_tree_lookup(&nt, repo, &id), 0);
	ck_assert_int_eq(git_tree_entry_bypath(&e, nt, path), 0);
	ck_assert_int_eq(git_blob_lookup(&b, repo, git_tree_entry_id(e)), 0);
	*content = calloc(1, (size_t)git_blob_rawsize(b) + 1);
	memcpy(*content, git_blob_rawcontent(b), (size_t)git_blob_rawsize(b));
	if (mode)
		*mode = git_tree_entry_filemode(e);
	git_blob_free(b);
	git_tree_entry_free(e);
	git_tree_free(nt);
	return 0;
}

static const char ten[] = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";
static const char mod5[] =
    "--- a/f\n+++ b/f\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n";

START_TEST(test_parse_errors)
{
	struct wf_patch *p = (struct wf_patch *)1;

	/* No hunk after the names: not a patch, as in git. */
	ck_assert_int_eq(wf_patch_parse(&p, "--- /a\n+++ /b\n", 14), 0);
	ck_assert_uint_eq(p->nfiles, 0);
	wf_patch_free(p);
	ck_assert_int_eq(wf_patch_parse(&p, "diff --git a/x b/x\n@@ -1 +1 @@\n"
	    "garbage\n", 36), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(),
	    "fragment without header"));
}
END_TEST

START_TEST(test_exact_and_offset)
{
	git_tree *t = tree1("f", ten, GIT_FILEMODE_BLOB), *t2;
	char *c;

	ck_assert_int_eq(apply(&c, NULL, t, mod5, 0, "f"), 0);
	ck_assert_str_eq(c, "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n");
	free(c);
	t2 = tree1("f", "a\nb\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n",
	    GIT_FILEMODE_BLOB);
	ck_assert_int_eq(apply(&c, NULL, t2, mod5, 0, "f"), 0);
	ck_assert_str_eq(c, "a\nb\n1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n");
	free(c);
	git_tree_free(t);
	git_tree_free(t2);
}
END_TEST

START_TEST(test_conflict_names_the_hunk)
{
	git_tree *t = tree1("f", "1\n2\n3\n4\n5\n6\nseven\n8\n9\n10\n",
	    GIT_FILEMODE_BLOB);
	char *c = NULL;

	ck_assert_int_eq(apply(&c, NULL, t, mod5, 0, "f"), WF_ECONFLICT);
	ck_assert_str_eq(wf_error_last(), "file 'f': hunk #1 "
	    "(@@ -2,7 +2,7 @@) does not apply");
	/* Fuzz 1 drops "8" and "2", and "7" still does not match. */
	ck_assert_int_eq(apply(&c, NULL, t, mod5, 1, "f"), WF_ECONFLICT);
	ck_assert_int_eq(apply(&c, NULL, t, mod5, 2, "f"), 0);
	ck_assert_str_eq(c, "1\n2\n3\n4\nfive\n6\nseven\n8\n9\n10\n");
	free(c);
	git_tree_free(t);
}
END_TEST

START_TEST(test_new_file_over_existing)
{
	git_tree *t = tree1("f", ten, GIT_FILEMODE_BLOB);
	char *c = NULL;

	ck_assert_int_eq(apply(&c, NULL, t, "diff --git a/f b/f\n"
	    "new file mode 100644\n--- /dev/null\n+++ b/f\n@@ -0,0 +1 @@\n"
	    "+x\n", 0, "f"), WF_ECONFLICT);
	ck_assert_str_eq(wf_error_last(), "file 'f': already exists");
	git_tree_free(t);
}
END_TEST

START_TEST(test_delete_checks_content)
{
	git_tree *t = tree1("f", "a\nb\n", GIT_FILEMODE_BLOB);
	char *c = NULL;

	ck_assert_int_eq(apply(&c, NULL, t, "diff --git a/f b/f\n"
	    "deleted file mode 100644\n--- a/f\n+++ /dev/null\n"
	    "@@ -1 +0,0 @@\n-a\n", 0, "f"), WF_ECONFLICT);
	git_tree_free(t);
}
END_TEST

START_TEST(test_crlf_and_no_newline)
{
	git_tree *t = tree1("f", "a\r\nb\r\nc", GIT_FILEMODE_BLOB);
	char *c;

	ck_assert_int_eq(apply(&c, NULL, t, "--- a/f\n+++ b/f\n"
	    "@@ -1,3 +1,3 @@\n a\r\n-b\r\n+B\r\n c\n"
	    "\\ No newline at end of file\n", 0, "f"), 0);
	ck_assert_str_eq(c, "a\r\nB\r\nc");
	free(c);
	ck_assert_int_eq(apply(&c, NULL, t, "--- a/f\n+++ b/f\n"
	    "@@ -2,2 +2,2 @@\n b\r\n-c\n\\ No newline at end of file\n+c\n",
	    0, "f"), 0);
	ck_assert_str_eq(c, "a\r\nb\r\nc\n");
	free(c);
	/* LF context does not match CRLF lines. */
	ck_assert_int_eq(apply(&c, NULL, t, "--- a/f\n+++ b/f\n"
	    "@@ -1,2 +1,2 @@\n a\n-b\n+B\n", 0, "f"), WF_ECONFLICT);
	git_tree_free(t);
}
END_TEST

START_TEST(test_mode_kept_without_index_line)
{
	git_tree *t = tree1("f", ten, GIT_FILEMODE_BLOB_EXECUTABLE);
	git_filemode_t mode;
	char *c;

	ck_assert_int_eq(apply(&c, &mode, t, mod5, 0, "f"), 0);
	ck_assert_int_eq(mode, GIT_FILEMODE_BLOB_EXECUTABLE);
	free(c);
	ck_assert_int_eq(apply(&c, &mode, t, "diff --git a/f b/f\n"
	    "old mode 100755\nnew mode 100644\n", 0, "f"), 0);
	ck_assert_int_eq(mode, GIT_FILEMODE_BLOB);
	ck_assert_str_eq(c, ten);
	free(c);
	git_tree_free(t);
}
END_TEST

START_TEST(test_pack_flush)
{
	struct wf_pack *pack;
	git_repository *again;
	git_blob *b;
	git_oid id;

	ck_assert_int_eq(wf_pack_attach(&pack, repo), 0);
	ck_assert_int_eq(wf_pack_flush(pack), 0);
	ck_assert_int_eq(git_blob_create_from_buffer(&id, repo, "in memory\n",
	    10), 0);
	ck_assert_int_eq(git_repository_open(&again, dir), 0);
	ck_assert_int_ne(git_blob_lookup(&b, again, &id), 0);
	ck_assert_int_eq(wf_pack_flush(pack), 0);
	ck_assert_int_eq(git_blob_lookup(&b, again, &id), 0);
	git_blob_free(b);
	git_repository_free(again);
	wf_pack_free(pack);
}
END_TEST

/* A raw tree of `n` entries "f<i>" whose ids are all `fill` but entry `at`'s. */
static size_t
raw_tree(unsigned char *buf, size_t n, size_t at, unsigned char fill,
    unsigned char other)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		o += (size_t)sprintf((char *)buf + o, "100644 f%04zu", i) + 1;
		memset(buf + o, i == at ? other : fill, GIT_OID_RAWSZ);
		o += GIT_OID_RAWSZ;
	}
	return o;
}

START_TEST(test_pack_write_ids)
{
	static unsigned char buf[200 * 40];
	struct wf_pack *pack;
	git_odb *odb;
	git_odb_object *obj;
	git_oid id, want, prev;
	size_t len, at, n;
	int have = 0;

	ck_assert_int_eq(wf_pack_attach(&pack, repo), 0);
	ck_assert_int_eq(git_repository_odb(&odb, repo), 0);
	/*
	 * Each tree an edit of the one before, at every place: the hash
	 * that resumes from the shared blocks must be the plain one.
	 */
	for (n = 1; n < 200; n += 37)
		for (at = 0; at <= n; at += 3) {
			len = raw_tree(buf, n, at, (unsigned char)n,
			    (unsigned char)(at + 1));
			ck_assert_int_eq(wf_pack_write(&id, odb, buf, len,
			    GIT_OBJECT_TREE, have ? &prev : NULL), 0);
			ck_assert_int_eq(git_odb_hash(&want, buf, len,
			    GIT_OBJECT_TREE), 0);
			ck_assert(git_oid_equal(&id, &want));
			ck_assert_int_eq(git_odb_read(&obj, odb, &id), 0);
			ck_assert_uint_eq(git_odb_object_size(obj), len);
			ck_assert_mem_eq(git_odb_object_data(obj), buf, len);
			git_odb_object_free(obj);
			prev = id;
			have = 1;
		}
	/* The same tree again is no error; blobs are hashed as git does. */
	ck_assert_int_eq(wf_pack_write(&id, odb, buf, len, GIT_OBJECT_TREE,
	    NULL), 0);
	ck_assert_int_eq(wf_pack_write(&id, odb, "blob\n", 5, GIT_OBJECT_BLOB,
	    NULL), 0);
	ck_assert_int_eq(git_odb_hash(&want, "blob\n", 5, GIT_OBJECT_BLOB), 0);
	ck_assert(git_oid_equal(&id, &want));
	ck_assert_int_eq(wf_pack_flush(pack), 0);
	ck_assert_int_eq(git_odb_exists(odb, &id), 1);
	git_odb_free(odb);
	wf_pack_free(pack);
}
END_TEST

static uint32_t rng_state = 12345;

static uint32_t
rng(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return rng_state >> 8;
}

/* Random text (lines of words) or, when `binary`, random bytes. */
static void
fill(unsigned char *p, size_t n, int binary)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = binary ? (unsigned char)rng() : (rng() % 13 == 0 ? '\n' :
		    (unsigned char)('a' + rng() % 26));
}

/*
 * One version of a file after another, each written as made from one
 * before it (as wf-apply writes a patched file): edits in one place and
 * in many, insertions, deletions, a whole new content, runs of one byte,
 * binary data, a base that is not in the pack, chains longer than git's
 * default depth.  Every version reads back the same, through libgit2 and
 * through git, and the pack is much smaller than the versions.
 */
START_TEST(test_pack_blob_deltas)
{
	enum { NV = 130, MAXLEN = 60000 };
	static unsigned char v[NV][MAXLEN];
	size_t len[NV], total = 0, i, k, at, n, cut;
	git_oid id[NV], outside;
	struct wf_pack *pack;
	git_repository *again;
	git_odb *odb;
	git_blob *b;
	char cmd[600];
	FILE *f;

	ck_assert_int_eq(git_repository_odb(&odb, repo), 0);
	/* A blob on disk, before the pack: never a base in it. */
	ck_assert_int_eq(git_odb_write(&outside, odb, "outside\n", 8,
	    GIT_OBJECT_BLOB), 0);
	ck_assert_int_eq(wf_pack_attach(&pack, repo), 0);
	len[0] = 20000;
	fill(v[0], len[0], 0);
	for (i = 0; i < NV; i++) {
		size_t from = i == 0 ? 0 : i - 1 - (i % 7 == 3 && i > 2);

		if (i > 0) {
			memcpy(v[i], v[from], len[from]);
			len[i] = len[from];
			switch (i % 10) {
			case 0:		/* a whole new content */
				len[i] = 3000 + rng() % 20000;
				fill(v[i], len[i], i % 20 == 0);
				break;
			case 1:		/* a run of one byte in the middle */
				if (len[i] < 6000) {
					fill(v[i] + len[i], 6000 - len[i], 0);
					len[i] = 6000;
				}
				at = rng() % (len[i] - 5000);
				memset(v[i] + at, 'q', 5000);
				break;
			case 2:		/* a deletion */
				at = rng() % (len[i] / 2);
				cut = 1 + rng() % 900;
				memmove(v[i] + at, v[i] + at + cut, len[i] - at -
				    cut);
				len[i] -= cut;
				break;
			case 3:		/* an insertion at the head */
				n = 1 + rng() % 300;
				memmove(v[i] + n, v[i], len[i]);
				fill(v[i], n, 0);
				len[i] += n;
				break;
			default:	/* edits in one to twenty places */
				for (k = 1 + rng() % 20; k > 0; k--) {
					at = rng() % len[i];
					n = 1 + rng() % 40;
					if (at + n > len[i])
						n = len[i] - at;
					fill(v[i] + at, n, i % 10 == 9);
				}
				break;
			}
			if (len[i] + 400 >= MAXLEN)
				len[i] = MAXLEN / 2;
		}
		ck_assert_int_eq(wf_pack_write(&id[i], odb, v[i], len[i],
		    GIT_OBJECT_BLOB, i == 0 ? &outside : &id[from]), 0);
		total += len[i];
	}
	ck_assert_int_eq(wf_pack_flush(pack), 0);
	ck_assert_int_eq(git_repository_open(&again, dir), 0);
	for (i = 0; i < NV; i++) {
		ck_assert_int_eq(git_blob_lookup(&b, again, &id[i]), 0);
		ck_assert_uint_eq(git_blob_rawsize(b), len[i]);
		ck_assert_msg(memcmp(git_blob_rawcontent(b), v[i], len[i]) == 0,
		    "version %zu differs", i);
		git_blob_free(b);
	}
	git_repository_free(again);
	snprintf(cmd, sizeof(cmd), "cd '%s' && git verify-pack objects/pack/"
	    "pack-*.idx >/dev/null && git fsck --strict >/dev/null 2>&1 && du -b "
	    "objects/pack/pack-*.pack | cut -f1 >size", dir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/size", dir);
	ck_assert_ptr_nonnull(f = fopen(cmd, "r"));
	ck_assert_int_eq(fscanf(f, "%zu", &n), 1);
	fclose(f);
	ck_assert_msg(n < total / 4, "a pack of %zu bytes for %zu", n, total);
	git_odb_free(odb);
	wf_pack_free(pack);
}
END_TEST

/*
 * An object already stored under the id of the one written, with other
 * bytes (what a SHA-1 collision would give), in memory or on disk: the
 * write fails and the stored one stays.
 */
/*
 * The in-memory store holds thousands of objects (its table of ids
 * grows several times), each readable at once by its id and by a short
 * prefix of it; objects large enough to be compressed ahead while the
 * batch goes on are dropped by a discard, even mid-way, and what a
 * flush writes reads back the same from another handle.
 */
START_TEST(test_pack_memory_store)
{
	enum { N = 3000, BIG = 40 };
	static git_oid id[N], big[BIG];
	static unsigned char data[70000];
	char text[64], hex[GIT_OID_HEXSZ + 1];
	struct wf_pack *pack;
	git_repository *again;
	git_odb *odb;
	git_odb_object *obj;
	git_object *o;
	git_blob *b;
	size_t i, len;
	git_object_t type;
	int round;

	ck_assert_int_eq(wf_pack_attach(&pack, repo), 0);
	ck_assert_int_eq(git_repository_odb(&odb, repo), 0);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < BIG; i++) {
			fill(data, sizeof(data), i % 2);
			ck_assert_int_eq(wf_pack_write(&big[i], odb, data,
			    sizeof(data), GIT_OBJECT_BLOB, i ? &big[i - 1] :
			    NULL), 0);
		}
		for (i = 0; i < N; i++) {
			len = (size_t)snprintf(text, sizeof(text),
			    "object %zu of round %d\n", i, round);
			ck_assert_int_eq(wf_pack_write(&id[i], odb, text, len,
			    GIT_OBJECT_BLOB, NULL), 0);
		}
		for (i = 0; i < N; i++) {
			len = (size_t)snprintf(text, sizeof(text),
			    "object %zu of round %d\n", i, round);
			ck_assert_int_eq(git_odb_read(&obj, odb, &id[i]), 0);
			ck_assert_uint_eq(git_odb_object_size(obj), len);
			ck_assert_mem_eq(git_odb_object_data(obj), text, len);
			git_odb_object_free(obj);
			ck_assert_int_eq(git_odb_read_header(&len, &type, odb,
			    &id[i]), 0);
			ck_assert_int_eq(type, GIT_OBJECT_BLOB);
		}
		git_oid_tostr(hex, 13, &id[N / 2]);
		ck_assert_int_eq(git_revparse_single(&o, repo, hex), 0);
		ck_assert(git_oid_equal(git_object_id(o), &id[N / 2]));
		git_object_free(o);
		if (round == 0) {
			wf_pack_discard(pack);
			ck_assert_int_eq(git_odb_exists(odb, &id[0]), 0);
			ck_assert_int_eq(git_odb_exists(odb, &big[BIG - 1]),
			    0);
		}
	}
	/* Given, not copied: kept when new, dropped when there already. */
	for (i = 0; i < 2; i++) {
		char *own = strdup("given to the store\n");
		git_oid given;

		ck_assert_int_eq(wf_pack_write_owned(&given, odb, own,
		    strlen(own), GIT_OBJECT_BLOB, NULL), 0);
		ck_assert_int_eq(git_odb_read(&obj, odb, &given), 0);
		ck_assert_mem_eq(git_odb_object_data(obj),
		    "given to the store\n", 19);
		git_odb_object_free(obj);
	}
	ck_assert_int_eq(wf_pack_flush(pack), 0);
	ck_assert_int_eq(git_repository_open(&again, dir), 0);
	ck_assert_int_eq(git_blob_lookup(&b, again, &id[N - 1]), 0);
	ck_assert_mem_eq(git_blob_rawcontent(b), "object 2999 of round 1\n",
	    23);
	git_blob_free(b);
	fill(data, sizeof(data), 1);
	ck_assert_int_eq(git_blob_lookup(&b, again, &big[BIG - 1]), 0);
	ck_assert_uint_eq(git_blob_rawsize(b), sizeof(data));
	git_blob_free(b);
	git_repository_free(again);
	git_odb_free(odb);
	wf_pack_free(pack);
}
END_TEST

START_TEST(test_pack_write_collision)
{
	struct wf_pack *pack;
	git_odb *odb;
	git_odb_backend *be;
	git_odb_object *obj;
	unsigned char buf[200];
	git_oid id;
	size_t i, len;

	/* As wf-apply reads: objects are not hashed again when read. */
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
	ck_assert_int_eq(git_repository_odb(&odb, repo), 0);
	/* On disk: a loose object planted under a blob's id. */
	ck_assert_int_eq(git_odb_hash(&id, "good\n", 5, GIT_OBJECT_BLOB), 0);
	for (i = 0; i < git_odb_num_backends(odb); i++) {
		ck_assert_int_eq(git_odb_get_backend(&be, odb, i), 0);
		if (be->write && be->writestream) /* the loose backend */
			break;
	}
	ck_assert_uint_lt(i, git_odb_num_backends(odb));
	ck_assert_int_eq(be->write(be, &id, "evil\n", 5, GIT_OBJECT_BLOB), 0);
	ck_assert_int_eq(wf_pack_attach(&pack, repo), 0);
	ck_assert_int_eq(wf_pack_write(&id, odb, "good\n", 5, GIT_OBJECT_BLOB,
	    NULL), WF_ECONFLICT);
	/* In memory: planted through the store, under a tree's id. */
	len = raw_tree(buf, 3, 1, 'a', 'b');
	ck_assert_int_eq(git_odb_hash(&id, buf, len, GIT_OBJECT_TREE), 0);
	ck_assert_int_eq(git_odb_get_backend(&be, odb, 0), 0);
	ck_assert_int_eq(be->write(be, &id, "x", 1, GIT_OBJECT_TREE), 0);
	ck_assert_int_eq(wf_pack_write(&id, odb, buf, len, GIT_OBJECT_TREE,
	    NULL), WF_ECONFLICT);
	ck_assert_int_eq(git_odb_read(&obj, odb, &id), 0);
	ck_assert_uint_eq(git_odb_object_size(obj), 1);
	git_odb_object_free(obj);
	wf_pack_free(pack);
	git_odb_free(odb);
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 1);
}
END_TEST


/* Found by fuzzing: 3 leading and 1 trailing context lines, no place. */
START_TEST(test_fuzz_terminates)
{
	git_tree *t = tree1("f", ten, GIT_FILEMODE_BLOB);
	static const char hunk[] = "--- a/f\n+++ b/f\n@@ -2,5 +2,5 @@\n"
	    " x\n y\n z\n-5\n+five\n w\n";
	char *c;
	unsigned fuzz;

	for (fuzz = 0; fuzz <= 2; fuzz++)
		ck_assert_int_eq(apply(&c, NULL, t, hunk, fuzz, "f"),
		    WF_ECONFLICT);
	git_tree_free(t);
}
END_TEST

/* Found by fuzzing: NUL bytes in added lines are content. */
START_TEST(test_nul_in_added_line)
{
	static const char text[] = "diff --git a/f b/f\nnew file mode 100644\n"
	    "--- /dev/null\n+++ b/f\n@@ -0,0 +1,2 @@\n+a\0b\n+c\n";
	struct wf_patch *p;
	git_tree *t = tree1("g", "x\n", GIT_FILEMODE_BLOB), *nt;
	git_tree_entry *e;
	git_blob *b;
	git_oid id;

	ck_assert_int_eq(wf_patch_parse(&p, text, sizeof(text) - 1), 0);
	ck_assert_uint_eq(p->files[0].hunks[0].lines[0].len, 4);
	ck_assert_int_eq(wf_patch_apply(&id, repo, t, p, NULL), 0);
	ck_assert_int_eq(git_tree_lookup(&nt, repo, &id), 0);
	ck_assert_int_eq(git_tree_entry_bypath(&e, nt, "f"), 0);
	ck_assert_int_eq(git_blob_lookup(&b, repo, git_tree_entry_id(e)), 0);
	ck_assert_uint_eq(git_blob_rawsize(b), 6);
	ck_assert_int_eq(memcmp(git_blob_rawcontent(b), "a\0b\nc\n", 6), 0);
	git_blob_free(b);
	git_tree_entry_free(e);
	git_tree_free(nt);
	git_tree_free(t);
	wf_patch_free(p);
}
END_TEST

/* Found by fuzzing: a text cut inside a hunk header is read no further. */
START_TEST(test_unterminated_text)
{
	static const char *const cuts[] = { "--- a/f\n+++ b/f\n@@ -1",
	    "--- a/f\n+++ b/f\n@@ -1,", "--- a/f\n+++ b/f\n@@ -1,2 +1",
	    "diff --git a/f b/f\n@@ -12", "@@ -1,1 +1,1 @@", "\"a" };
	size_t i;

	for (i = 0; i < sizeof(cuts) / sizeof(*cuts); i++) {
		size_t n = strlen(cuts[i]);
		char *buf = malloc(n);	/* no terminator for ASan to miss */
		struct wf_patch *p = NULL;

		memcpy(buf, cuts[i], n);
		if (wf_patch_parse(&p, buf, n) == 0)
			ck_assert_uint_eq(p->nfiles, 0);
		wf_patch_free(p);
		free(buf);
	}
}
END_TEST

/* The mode of an "index" line is the old mode: it changes nothing. */
START_TEST(test_index_mode_keeps_exec)
{
	git_tree *t = tree1("run", "a\n", GIT_FILEMODE_BLOB_EXECUTABLE);
	git_filemode_t mode;
	char *c;

	ck_assert_int_eq(apply(&c, &mode, t, "diff --git a/run b/run\n"
	    "index 7898192..6178079 100644\n--- a/run\n+++ b/run\n"
	    "@@ -1 +1 @@\n-a\n+b\n", 0, "run"), 0);
	ck_assert_str_eq(c, "b\n");
	ck_assert_int_eq(mode, GIT_FILEMODE_BLOB_EXECUTABLE);
	free(c);
	git_tree_free(t);
}
END_TEST

/* A copy reads the original tree, not what an earlier diff made. */
START_TEST(test_copy_reads_preimage)
{
	git_tree *t = tree1("a", "1\n", GIT_FILEMODE_BLOB);
	char *c;

	ck_assert_int_eq(apply(&c, NULL, t, "diff --git a/a b/a\n"
	    "--- a/a\n+++ b/a\n@@ -1 +1 @@\n-1\n+2\n"
	    "diff --git a/a b/my copy\nsimilarity index 100%\n"
	    "copy from a\ncopy to my copy\n", 0, "my copy"), 0);
	ck_assert_str_eq(c, "1\n");
	free(c);
	git_tree_free(t);
}
END_TEST

/* Names: quoted with octal escapes (not UTF-8 too), spaces, -p0. */
START_TEST(test_names)
{
	struct wf_patch *p;
	static const char q[] = "diff --git \"a/caf\\303\\251\" "
	    "\"b/x\\351 y\"\nsimilarity index 100%\n"
	    "rename from \"caf\\303\\251\"\nrename to \"x\\351 y\"\n"
	    "diff --git a/s p b/s p\nold mode 100644\nnew mode 100755\n"
	    "Index: f\n--- f.orig\t2024-01-01 10:00:00.000000000 +0100\n"
	    "+++ f\t2024-01-01 10:00:01.000000000 +0100\n@@ -1 +1 @@\n-a\n+b\n";

	ck_assert_int_eq(wf_patch_parse(&p, q, sizeof(q) - 1), 0);
	ck_assert_uint_eq(p->nfiles, 3);
	ck_assert_str_eq(p->files[0].old_path, "caf\303\251");
	ck_assert_str_eq(p->files[0].new_path, "x\351 y");
	ck_assert_int_eq(p->files[0].status, WF_PATCH_RENAMED);
	ck_assert_str_eq(p->files[1].old_path, "s p");
	ck_assert_uint_eq(p->files[1].new_mode, 0100755);
	ck_assert_str_eq(p->files[2].old_path, "f");
	ck_assert_str_eq(p->files[2].new_path, "f");
	wf_patch_free(p);
}
END_TEST

/* git patch-id --stable of a two-file patch with a rename. */
START_TEST(test_patch_id)
{
	static const char text[] = "diff --git a/sp ace b/sp ace\n"
	    "index 1191247..0fd8e75 100644\n--- a/sp ace\n+++ b/sp ace\n"
	    "@@ -1,2 +1,3 @@\n 1\n 2\n+3\ndiff --git a/t1 b/t2\n"
	    "similarity index 75%\nrename from t1\nrename to t2\n"
	    "index de98044..1c59427 100644\n--- a/t1\n+++ b/t2\n"
	    "@@ -1,3 +1,4 @@\n a\n b\n c\n+d\n";
	struct wf_patch *p;
	git_oid id;
	char hex[GIT_OID_HEXSZ + 1];

	ck_assert_int_eq(wf_patch_parse(&p, text, sizeof(text) - 1), 0);
	ck_assert_int_eq(wf_patch_id(&id, p), 0);
	/* git patch-id --stable < that text */
	ck_assert_str_eq(git_oid_tostr(hex, sizeof(hex), &id),
	    "3589168f40e80bdb7b6b5ad22a07ecfce8a496b1");
	wf_patch_free(p);
}
END_TEST

Suite *
patch_suite(void)
{
	Suite *s = suite_create("patch");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_unterminated_text);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_patch_id);
	suite_add_tcase(s, tc);
	tc = tcase_create("apply");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_exact_and_offset);
	tcase_add_test(tc, test_conflict_names_the_hunk);
	tcase_add_test(tc, test_new_file_over_existing);
	tcase_add_test(tc, test_delete_checks_content);
	tcase_add_test(tc, test_crlf_and_no_newline);
	tcase_add_test(tc, test_mode_kept_without_index_line);
	tcase_add_test(tc, test_fuzz_terminates);
	tcase_add_test(tc, test_nul_in_added_line);
	tcase_add_test(tc, test_index_mode_keeps_exec);
	tcase_add_test(tc, test_copy_reads_preimage);
	suite_add_tcase(s, tc);
	tc = tcase_create("pack");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_pack_flush);
	tcase_add_test(tc, test_pack_write_ids);
	tcase_add_test(tc, test_pack_write_collision);
	tcase_add_test(tc, test_pack_blob_deltas);
	tcase_add_test(tc, test_pack_memory_store);
	suite_add_tcase(s, tc);
	return s;
}
