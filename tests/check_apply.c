#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <git2/sys/commit.h>

#include "apply.h"
#include "change.h"
#include "check_suites.h"
#include "error.h"
#include "lane.h"

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
	    1), "error")), "file 'f': hunk #1 (@@ -3,7 +3,7 @@) does not "
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
	/*
	 * The push behind the work tree's back would leave it behind its
	 * branch, which wf then refuses to move: check out no branch.
	 */
	sh("cd '%s' && git checkout -q --detach", dir);
	ck_assert_int_eq(wf_apply_step(&res, repo, q, "main", &o), 0);
	sh("cd '%s' && git checkout -q -f main", dir);
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

/* Queue a files request `id` adding file `path` with `content`. */
static void
enqueue_file(const char *id, const char *path, const char *content)
{
	char req[1024], *b64 = wf_change_base64(content, strlen(content));

	snprintf(req, sizeof(req), "{\"id\": \"%s\", \"target\": \"main\", "
	    "\"kind\": \"files\", \"message\": \"Add %s\", \"files\": "
	    "[{\"path\": \"%s\", \"content\": \"%s\"}]}", id, path, path, b64);
	enqueue_json(req);
	free(b64);
}

static const char *
state_at(json_t *res, size_t i)
{
	return json_string_value(json_object_get(json_array_get(res, i),
	    "state"));
}

static const char *
error_at(json_t *res, size_t i)
{
	return json_string_value(json_object_get(json_array_get(res, i),
	    "error"));
}

static size_t
count_state(json_t *res, const char *state)
{
	size_t i, n = 0;

	for (i = 0; i < json_array_size(res); i++)
		n += strcmp(state_at(res, i), state) == 0;
	return n;
}

static int
ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), m = strlen(tail);

	return n >= m && strcmp(s + n - m, tail) == 0;
}

/* A check that fails when a file holds the marker; counts its runs. */
static char check_cmd[600];
static const char *checks[] = { check_cmd, NULL };

static void
marker_check(const char *marker, const char *extra)
{
	snprintf(check_cmd, sizeof(check_cmd), "echo run >>'%s/runs'; %s"
	    "if grep -rl %s .; then exit 1; fi", dir, extra ? extra : "",
	    marker);
}

static int
runs(void)
{
	char *s = git_out("cat runs 2>/dev/null | wc -l");
	int n = atoi(s);

	free(s);
	return n;
}

/* n changes c0.. adding new/cI; those in `bad` hold `marker`. */
static void
enqueue_files(int n, const int *bad, size_t nbad, const char *marker)
{
	char id[16], path[32], content[32];
	size_t j;
	int i, is_bad;

	for (i = 0; i < n; i++) {
		for (is_bad = 0, j = 0; j < nbad; j++)
			is_bad |= bad[j] == i;
		snprintf(id, sizeof(id), "c%d", i);
		snprintf(path, sizeof(path), "new/c%d", i);
		snprintf(content, sizeof(content), "%s %d\n", is_bad ? marker :
		    "good", i);
		enqueue_file(id, path, content);
	}
}

START_TEST(test_bisect_one_in_eight)
{
	struct wf_apply_opts o = WF_APPLY_OPTS_INIT;
	const int bad[] = { 5 };
	json_t *res, *v, *log;
	char *s;

	enqueue_files(8, bad, 1, "BAD");
	marker_check("BAD", NULL);
	o.checks = checks;
	o.batch = 8;
	ck_assert_msg(wf_apply_step(&res, repo, q, "main", &o) == 0, "%s",
	    wf_error_last());
	ck_assert_int_eq(json_array_size(res), 8);
	ck_assert_int_eq(count_state(res, "landed"), 7);
	ck_assert_str_eq(state_at(res, 5), "failed");
	ck_assert_msg(ends_with(error_at(res, 5), "' failed (exit status 1):\n"
	    "./new/c5\n"), "%s", error_at(res, 5));
	json_decref(res);
	/* All of 8, the tip, then halves: a few runs, not one per change. */
	ck_assert_int_le(runs(), 8);
	s = git_out("git log --format=%s main | tr '\\n' ' '; git ls-tree "
	    "--name-only main:new | tr '\\n' ' '; git grep -c BAD main | wc -l");
	ck_assert_str_eq(s, "Add new/c7 Add new/c6 Add new/c4 Add new/c3 "
	    "Add new/c2 Add new/c1 Add new/c0 base c0 c1 c2 c3 c4 c6 c7 0\n");
	free(s);
	/* The audit log keeps what the checks said. */
	ck_assert_int_eq(wf_queue_show(&v, q, "c0"), 0);
	log = json_object_get(v, "audit");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(log,
	    2), "why")), "checks passed");
	ck_assert(json_is_true(json_object_get(json_array_get(log, 2), "ok")));
	ck_assert_int_eq(json_array_size(json_object_get(json_array_get(log,
	    2), "checks")), 1);
	json_decref(v);
	ck_assert_int_eq(wf_queue_show(&v, q, "c5"), 0);
	ck_assert_msg(ends_with(json_string_value(json_object_get(v,
	    "last_error")), "./new/c5\n"), "%s", json_string_value(
	    json_object_get(v, "last_error")));
	json_decref(v);
}
END_TEST

START_TEST(test_bisect_two_in_sixteen)
{
	struct wf_apply_opts o = WF_APPLY_OPTS_INIT;
	const int bad[] = { 3, 12 };
	json_t *res;
	char *s;

	enqueue_files(16, bad, 2, "BAD");
	marker_check("BAD", NULL);
	o.checks = checks;
	o.batch = 16;
	ck_assert_msg(wf_apply_step(&res, repo, q, "main", &o) == 0, "%s",
	    wf_error_last());
	ck_assert_int_eq(json_array_size(res), 16);
	ck_assert_int_eq(count_state(res, "landed"), 14);
	ck_assert_str_eq(state_at(res, 3), "failed");
	ck_assert_str_eq(state_at(res, 12), "failed");
	ck_assert(ends_with(error_at(res, 3), "./new/c3\n"));
	ck_assert(ends_with(error_at(res, 12), "./new/c12\n"));
	json_decref(res);
	ck_assert_int_le(runs(), 16);
	s = git_out("git ls-tree --name-only main:new | wc -l; "
	    "git log --format='%(trailers:key=Queue-Id,valueonly)' main | "
	    "grep -c .");
	ck_assert_str_eq(s, "14\n14\n");
	free(s);
}
END_TEST

START_TEST(test_check_hangs)
{
	struct wf_apply_opts o = WF_APPLY_OPTS_INIT;
	const int bad[] = { 2 };
	json_t *res;
	char *s;

	enqueue_files(4, bad, 1, "HANG");
	/* Sleeps when a file says HANG: only the timeout stops it. */
	marker_check("NEVER", "if grep -rq HANG .; then sleep 30; fi; ");
	o.checks = checks;
	/*
	 * Long enough for a check that does not hang to finish on a busy
	 * machine (under the sanitizers too), short enough for the suite.
	 */
	o.check_timeout_ms = 2000;
	o.check_grace_ms = 200;
	ck_assert_msg(wf_apply_step(&res, repo, q, "main", &o) == 0, "%s",
	    wf_error_last());
	ck_assert_int_eq(count_state(res, "landed"), 3);
	ck_assert_str_eq(state_at(res, 2), "failed");
	ck_assert_msg(strstr(error_at(res, 2), "' timed out after ") != NULL,
	    "%s", error_at(res, 2));
	json_decref(res);
	s = git_out("git ls-tree --name-only main:new | tr '\\n' ' '");
	ck_assert_str_eq(s, "c0 c1 c3 ");
	free(s);
}
END_TEST

START_TEST(test_tip_fails_its_checks)
{
	struct wf_apply_opts o = WF_APPLY_OPTS_INIT;
	json_t *res;
	char *s;

	sh("cd '%s' && echo BAD >bad && git add bad && git commit -qm bad",
	    dir);
	enqueue_files(2, NULL, 0, "BAD");
	marker_check("BAD", NULL);
	o.checks = checks;
	ck_assert_int_eq(wf_apply_step(&res, repo, q, "main", &o), 0);
	ck_assert_int_eq(count_state(res, "failed"), 2);
	ck_assert_msg(strncmp(error_at(res, 0), "the tip of 'main' fails its "
	    "checks too: check '", 46) == 0, "%s", error_at(res, 0));
	json_decref(res);
	s = git_out("git log --format=%s main");
	ck_assert_str_eq(s, "bad\nbase\n");
	free(s);
}
END_TEST

static int
refuse(git_repository *r, const git_oid *tip, const git_oid *head,
    void *payload)
{
	(void)r; (void)tip; (void)head; (void)payload;
	return wf_error_set(WF_EOS, "no room");
}

/* A step that fails gives its leases back, attempts not counted. */
START_TEST(test_failed_step_releases)
{
	struct wf_apply_opts o = WF_APPLY_OPTS_INIT;
	json_t *res, *v;

	enqueue_files(2, NULL, 0, "BAD");
	o.before_land = refuse;
	ck_assert_int_eq(wf_apply_step(&res, repo, q, "main", &o), WF_EOS);
	ck_assert_ptr_null(res);
	ck_assert_str_eq(wf_error_last(), "no room");
	ck_assert_int_eq(wf_queue_show(&v, q, "c1"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(v, "state")),
	    "queued");
	ck_assert_int_eq(json_integer_value(json_object_get(v, "attempts")), 0);
	json_decref(v);
	ck_assert_int_eq(wf_apply_step(&res, repo, q, "main", NULL), 0);
	ck_assert_int_eq(count_state(res, "landed"), 2);
	json_decref(res);
}
END_TEST

/* Another holds the branch's lane: nothing is leased, nothing moves. */
START_TEST(test_step_in_the_lane)
{
	struct wf_apply_opts o = WF_APPLY_OPTS_INIT;
	struct wf_lane *other;
	json_t *res, *v;
	char *before, *after;

	enqueue_files(2, NULL, 0, "BAD");
	before = git_out("git rev-parse main");
	ck_assert_int_eq(wf_lane_open(&other, repo, "main"), 0);
	ck_assert_int_eq(wf_lane_take(NULL, other, "other"), 0);
	ck_assert_int_eq(wf_apply_step(&res, repo, q, "main", NULL), WF_EBUSY);
	ck_assert_ptr_null(res);
	ck_assert_ptr_nonnull(strstr(wf_error_last(),
	    "branch 'main' is being landed by 'other@"));
	ck_assert_int_eq(wf_queue_show(&v, q, "c0"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(v, "state")),
	    "queued");
	ck_assert_int_eq(json_integer_value(json_object_get(v, "attempts")), 0);
	json_decref(v);
	after = git_out("git rev-parse main");
	ck_assert_str_eq(before, after);
	free(after);
	/* The holder steps in the lane it holds. */
	o.lane = other;
	ck_assert_int_eq(wf_apply_step(&res, repo, q, "main", &o), 0);
	ck_assert_int_eq(count_state(res, "landed"), 2);
	ck_assert(wf_lane_held(other));
	json_decref(res);
	wf_lane_free(other);
	free(before);
}
END_TEST

/*
 * A holder that died and was not reaped yet is gone: its leases are
 * settled, as its lane was let go.
 */
START_TEST(test_recover_unreaped)
{
	json_t *leased, *res;
	char owner[300], host[256];
	siginfo_t si;
	pid_t pid;

	enqueue_files(1, NULL, 0, "BAD");
	if ((pid = fork()) == 0)
		_exit(0);
	memset(&si, 0, sizeof(si));
	ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	ck_assert_int_eq(kill(pid, 0), 0);
	gethostname(host, sizeof(host));
	snprintf(owner, sizeof(owner), "wf-apply/0@%s:%ld", host, (long)pid);
	ck_assert_int_eq(wf_queue_lease(&leased, q, "main", 1, owner, 600000),
	    0);
	ck_assert_int_eq(json_array_size(leased), 1);
	json_decref(leased);
	ck_assert_int_eq(wf_apply_recover(&res, repo, q, "main", NULL), 0);
	waitpid(pid, NULL, 0);
	ck_assert_int_eq(json_array_size(res), 1);
	ck_assert_str_eq(state_at(res, 0), "queued");
	json_decref(res);
}
END_TEST

/* A lock a killed process left on the branch does not stop landing. */
START_TEST(test_stale_lock_removed)
{
	json_t *res;

	enqueue_files(1, NULL, 0, "BAD");
	sh("cd '%s' && : >.git/refs/heads/main.lock && "
	    "touch -d '10 seconds ago' .git/refs/heads/main.lock", dir);
	ck_assert_msg(wf_apply_step(&res, repo, q, "main", NULL) == 0, "%s",
	    wf_error_last());
	ck_assert_int_eq(count_state(res, "landed"), 1);
	json_decref(res);
	sh("cd '%s' && test ! -e .git/refs/heads/main.lock && "
	    "git ls-tree --name-only main:new | grep -qx c0", dir);
}
END_TEST

/* A commit carrying `id`'s trailer, made behind wf-apply's back. */
static void
land_by_hand(const char *id)
{
	sh("cd '%s' && echo %s >>f && git commit -qam 'by hand' -m "
	    "'Queue-Id: %s'", dir, id, id);
}

START_TEST(test_recover_after_crash)
{
	struct wf_apply_opts o = WF_APPLY_OPTS_INIT;
	json_t *leased, *res, *v;
	char owner[300], host[256];
	pid_t pid;
	char *s;

	enqueue_files(3, NULL, 0, "BAD");
	/* A wf-apply of this host that died holding a, b; c is live. */
	if ((pid = fork()) == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	gethostname(host, sizeof(host));
	snprintf(owner, sizeof(owner), "wf-apply@%s:%ld", host, (long)pid);
	ck_assert_int_eq(wf_queue_lease(&leased, q, "main", 2, owner, 600000),
	    0);
	json_decref(leased);
	snprintf(owner, sizeof(owner), "wf-apply@%s:%ld", host,
	    (long)getppid());
	ck_assert_int_eq(wf_queue_lease(&leased, q, "main", 1, owner, 600000),
	    0);
	json_decref(leased);
	land_by_hand("c1");
	ck_assert_int_eq(wf_apply_recover(&res, repo, q, "main", &o), 0);
	ck_assert_int_eq(json_array_size(res), 2);
	ck_assert_str_eq(state_at(res, 0), "queued");
	ck_assert_str_eq(state_at(res, 1), "landed");
	s = git_out("git rev-parse main | tr -d '\\n'");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(res,
	    1), "commit")), s);
	free(s);
	json_decref(res);
	ck_assert_int_eq(wf_queue_show(&v, q, "c0"), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(v, "attempts")), 0);
	json_decref(v);
	ck_assert_int_eq(wf_queue_show(&v, q, "c2"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(v, "state")),
	    "leased");
	json_decref(v);
	/* Nothing more to do. */
	ck_assert_int_eq(wf_apply_recover(&res, repo, q, "main", &o), 0);
	ck_assert_int_eq(json_array_size(res), 0);
	json_decref(res);
}
END_TEST

/* A lease that expired after its change landed: not landed twice. */
START_TEST(test_landed_before_is_not_rebuilt)
{
	json_t *leased, *res;
	char *s;

	enqueue_files(2, NULL, 0, "BAD");
	ck_assert_int_eq(wf_queue_lease(&leased, q, "main", 2, "gone", 1), 0);
	json_decref(leased);
	land_by_hand("c0");
	usleep(5000);
	ck_assert_int_eq(wf_apply_step(&res, repo, q, "main", NULL), 0);
	ck_assert_int_eq(count_state(res, "landed"), 2);
	json_decref(res);
	s = git_out("git log --format=%s main | tr '\\n' ' '");
	ck_assert_str_eq(s, "Add new/c1 by hand base ");
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

/*
 * wf-apply formats its commits itself: each is what libgit2 writes for
 * the same author, committer (in a time zone west of UTC, with
 * minutes), encoding and message; only the times are read back.
 */
START_TEST(test_commits_as_libgit2_writes_them)
{
	char *tz = getenv("TZ") ? strdup(getenv("TZ")) : NULL, msg[128];
	git_signature *author, *committer;
	git_revwalk *walk;
	git_commit *c;
	git_oid id, want;
	const git_oid *parents[1];
	json_t *res;
	int n = 0;

	setenv("TZ", "<-0330>3:30", 1);
	tzset();
	enqueue_patch("a", "f", 5, "five");
	enqueue_patch("b", "g", 15, "fifteen");
	ck_assert_int_eq(wf_apply_step(&res, repo, q, "main", NULL), 0);
	json_decref(res);
	if (tz)
		setenv("TZ", tz, 1);
	else
		unsetenv("TZ");
	free(tz);
	tzset();
	ck_assert_int_eq(git_revwalk_new(&walk, repo), 0);
	ck_assert_int_eq(git_revwalk_push_ref(walk, "refs/heads/main"), 0);
	while (git_revwalk_next(&id, walk) == 0) {
		ck_assert_int_eq(git_commit_lookup(&c, repo, &id), 0);
		if (git_commit_parentcount(c) == 1) {
			ck_assert_int_eq(git_signature_new(&author, "A U Thor",
			    "author@example.com",
			    git_commit_author(c)->when.time, -210), 0);
			ck_assert_int_eq(git_signature_new(&committer, "C",
			    "c@example.com",
			    git_commit_committer(c)->when.time, -210), 0);
			snprintf(msg, sizeof(msg), "Change it\n\nSigned-off-by: "
			    "X <x@example.com>\nQueue-Id: %s\n", n ? "a" : "b");
			parents[0] = git_commit_parent_id(c, 0);
			ck_assert_int_eq(git_commit_create_from_ids(&want, repo,
			    NULL, author, committer, "UTF-8", msg,
			    git_commit_tree_id(c), 1, parents), 0);
			ck_assert(git_oid_equal(&id, &want));
			git_signature_free(author);
			git_signature_free(committer);
			n++;
		}
		git_commit_free(c);
	}
	git_revwalk_free(walk);
	ck_assert_int_eq(n, 2);
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
	tcase_add_test(tc, test_failed_step_releases);
	tcase_add_test(tc, test_landed_before_is_not_rebuilt);
	tcase_add_test(tc, test_commits_as_libgit2_writes_them);
	tcase_add_test(tc, test_step_in_the_lane);
	suite_add_tcase(s, tc);
	tc = tcase_create("checks");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_bisect_one_in_eight);
	tcase_add_test(tc, test_bisect_two_in_sixteen);
	tcase_add_test(tc, test_check_hangs);
	tcase_add_test(tc, test_tip_fails_its_checks);
	suite_add_tcase(s, tc);
	tc = tcase_create("recover");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_recover_after_crash);
	tcase_add_test(tc, test_stale_lock_removed);
	tcase_add_test(tc, test_recover_unreaped);
	suite_add_tcase(s, tc);
	tc = tcase_create("trailer");
	tcase_add_test(tc, test_queue_id_trailer);
	suite_add_tcase(s, tc);
	return s;
}
