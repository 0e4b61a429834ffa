/*
 * The harnesses' shared parts: input as a descriptor, and the
 * repository the harnesses that need one work against.
 */
#define _GNU_SOURCE	/* memfd_create() */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "error.h"
#include "fuzz.h"
#include "git.h"
#include "json.h"

void
fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void
fuzz_note(const char *fmt, ...)
{
	static int verbose = -1;
	va_list ap;

	if (verbose < 0) {
		const char *v = getenv("WF_FUZZ_VERBOSE");

		verbose = v && *v;
	}
	if (!verbose)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The fast parser gives up or agrees with jansson. */
void
fuzz_check_fast(const char *s, size_t len)
{
	json_error_t err;
	json_t *fast, *slow;
	size_t used = 0;

	if (!(fast = wf_json_fast_parse(s, len, &used)))
		return;
	if (used == 0 || used > len)
		fuzz_fail("fast parse used %zu of %zu bytes", used, len);
	slow = json_loadb(s, len, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK,
	    &err);
	if (!slow)
		fuzz_fail("fast parse took what jansson refuses: %s", err.text);
	if (!json_equal(fast, slow) || (size_t)err.position != used)
		fuzz_fail("fast parse and jansson differ (%zu, %d bytes)", used,
		    err.position);
	json_decref(fast);
	json_decref(slow);
}

static int mem_fd = -1;
static char mem_path[64];

int
fuzz_fd(const uint8_t *data, size_t size)
{
	size_t off = 0;
	ssize_t n;

	if (mem_fd < 0) {
		if ((mem_fd = memfd_create("fuzz-input", 0)) < 0)
			fuzz_fail("memfd_create: %s", strerror(errno));
		snprintf(mem_path, sizeof(mem_path), "/proc/self/fd/%d",
		    mem_fd);
	}
	if (ftruncate(mem_fd, 0) < 0)
		fuzz_fail("ftruncate: %s", strerror(errno));
	while (off < size) {
		if ((n = pwrite(mem_fd, data + off, size - off,
		    (off_t)off)) < 0)
			fuzz_fail("pwrite: %s", strerror(errno));
		off += (size_t)n;
	}
	if (lseek(mem_fd, 0, SEEK_SET) < 0)
		fuzz_fail("lseek: %s", strerror(errno));
	return mem_fd;
}

const char *
fuzz_path(void)
{
	return mem_path;
}

struct feeder {
	const uint8_t *data;
	size_t size;
	uint32_t seed;
	int fd;
};

static struct feeder feed;
static pthread_t feed_thread;
static int feeding;

static void *
feed_main(void *arg)
{
	struct feeder *f = arg;
	uint32_t s = f->seed | 1;
	size_t off = 0, n;
	ssize_t w;

	while (off < f->size) {
		/* xorshift32: pieces of 1 to 64 bytes, now and then more. */
		s ^= s << 13;
		s ^= s >> 17;
		s ^= s << 5;
		n = (s & 0x100) ? 1 + (s & 63) : 1 + (s & 4095);
		if (n > f->size - off)
			n = f->size - off;
		if ((w = write(f->fd, f->data + off, n)) < 0) {
			if (errno == EINTR)
				continue;
			break;	/* the reader stopped early (EPIPE) */
		}
		off += (size_t)w;
	}
	close(f->fd);
	return NULL;
}

int
fuzz_pipe(const uint8_t *data, size_t size, uint32_t seed)
{
	int fds[2];

	if (feeding)
		fuzz_fail("fuzz_pipe: the last pipe was not joined");
	/* A reader may stop early: the writer then gets EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	if (pipe(fds) < 0)
		fuzz_fail("pipe: %s", strerror(errno));
	feed.data = data;
	feed.size = size;
	feed.seed = seed;
	feed.fd = fds[1];
	if (pthread_create(&feed_thread, NULL, feed_main, &feed) != 0)
		fuzz_fail("pthread_create failed");
	feeding = 1;
	return fds[0];
}

void
fuzz_pipe_join(void)
{
	if (feeding)
		pthread_join(feed_thread, NULL);
	feeding = 0;
}

/* The repository. */
git_oid fuzz_base, fuzz_tip;
static git_repository *repo;
static git_tree *base_tree;
static char repo_dir[4096];

struct file {
	const char *path;
	const char *content;
	size_t len;
	git_filemode_t mode;
};

#define FILE_TEXT(p, c) { p, c, sizeof(c) - 1, GIT_FILEMODE_BLOB }

static const struct file base_files[] = {
	FILE_TEXT("f", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"),
	FILE_TEXT("x", "a\nb\nc\n"),
	FILE_TEXT("e", ""),
	FILE_TEXT("dir/y", "y\n"),
	FILE_TEXT("dir/sub/w", "w\n"),
	{ "run", "#!/bin/sh\necho run\n", 19, GIT_FILEMODE_BLOB_EXECUTABLE },
	{ "l", "x", 1, GIT_FILEMODE_LINK },
	FILE_TEXT("crlf", "a\r\nb\r\nc\r\n"),
	FILE_TEXT("nonl", "one\ntwo"),
	{ "bin", "\0\1\2\3binary\0\n\377", 13, GIT_FILEMODE_BLOB },
	FILE_TEXT("rep", "x\nx\nx\nx\nx\nx\n"),
	/* A submodule: its commit need not be here. */
	{ "mod", "0123456789abcdef0123456789abcdef01234567", 0,
	    GIT_FILEMODE_COMMIT },
	{ NULL, NULL, 0, 0 }
};

static const struct file tip_files[] = {
	FILE_TEXT("x", "a\nB\nc\n"),
	FILE_TEXT("z", "z\n"),
	{ NULL, NULL, 0, 0 }
};

static void
check(int rc, const char *what)
{
	if (rc < 0) {
		const git_error *e = git_error_last();

		fuzz_fail("fixture: %s: %s", what, e ? e->message : "failed");
	}
}

static void
write_tree(git_oid *out, const git_tree *from, const struct file *files)
{
	git_tree_update up[16];
	git_oid ids[16];
	size_t i;

	for (i = 0; files[i].path; i++) {
		if (files[i].mode == GIT_FILEMODE_COMMIT)
			check(git_oid_fromstr(&ids[i], files[i].content),
			    "oid");
		else
			check(git_blob_create_from_buffer(&ids[i], repo,
			    files[i].content, files[i].len), "blob");
		up[i].action = GIT_TREE_UPDATE_UPSERT;
		up[i].id = ids[i];
		up[i].filemode = files[i].mode;
		up[i].path = files[i].path;
	}
	if (from) {
		check(git_tree_create_updated(out, repo, (git_tree *)from, i,
		    up), "tree");
	} else {
		git_treebuilder *tb;
		git_tree *empty;
		git_oid eid;

		check(git_treebuilder_new(&tb, repo, NULL), "treebuilder");
		check(git_treebuilder_write(&eid, tb), "empty tree");
		git_treebuilder_free(tb);
		check(git_tree_lookup(&empty, repo, &eid), "empty tree");
		check(git_tree_create_updated(out, repo, empty, i, up), "tree");
		git_tree_free(empty);
	}
}

static void
write_commit(git_oid *out, const git_oid *tree, const git_oid *parent,
    const char *msg)
{
	git_signature *sig;
	git_commit *p = NULL;
	git_tree *t;

	check(git_tree_lookup(&t, repo, tree), "tree");
	check(git_signature_new(&sig, "A U Thor", "author@example.com",
	    1700000000, 0), "signature");
	if (parent)
		check(git_commit_lookup(&p, repo, parent), "parent");
	check(git_commit_create_v(out, repo, NULL, sig, sig, NULL, msg, t,
	    parent ? 1 : 0, p), "commit");
	git_commit_free(p);
	git_signature_free(sig);
	git_tree_free(t);
}

static void
remove_repo(void)
{
	char cmd[4200];

	git_tree_free(base_tree);
	git_repository_free(repo);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", repo_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz: cannot remove '%s'\n", repo_dir);
}

git_repository *
fuzz_repo(void)
{
	const char *tmp = getenv("TMPDIR");
	git_reference *ref;
	git_oid tree;

	if (repo)
		return repo;
	if (wf_git_init() < 0)
		fuzz_fail("%s", wf_error_last());
	snprintf(repo_dir, sizeof(repo_dir), "%s/wf-fuzz.XXXXXX",
	    tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(repo_dir))
		fuzz_fail("mkdtemp: %s", strerror(errno));
	check(git_repository_init(&repo, repo_dir, 1), "init");
	atexit(remove_repo);
	write_tree(&tree, NULL, base_files);
	write_commit(&fuzz_base, &tree, NULL, "base\n");
	check(git_tree_lookup(&base_tree, repo, &tree), "tree");
	write_tree(&tree, base_tree, tip_files);
	write_commit(&fuzz_tip, &tree, &fuzz_base, "tip\n");
	check(git_reference_create(&ref, repo, "refs/heads/main", &fuzz_tip,
	    1, NULL), "main");
	git_reference_free(ref);
	check(git_reference_create(&ref, repo, "refs/heads/next", &fuzz_base,
	    1, NULL), "next");
	git_reference_free(ref);
	return repo;
}

git_tree *
fuzz_base_tree(void)
{
	fuzz_repo();
	return base_tree;
}
