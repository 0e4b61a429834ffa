#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "check_fixture.h"

#include "check_suites.h"
#include "error.h"
#include "git.h"
#include "hooks.h"
#include "loose_ref.h"
#include "pktline.h"
#include "prepush.h"
#include "push.h"

static const char head_hex[] = "3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a";

static char *
id_of(const char *target, const char *topic)
{
	git_oid head;
	char *id = NULL;
	int rc;

	git_oid_fromstr(&head, head_hex);
	rc = wf_push_change_id(&id, target, topic, &head);
	ck_assert_msg(rc == 0, "%s", wf_error_last());
	return id;
}

START_TEST(change_ids)
{
	char *id;

	id = id_of("main", NULL);
	ck_assert_str_eq(id, "main@3f2a1b0c9d8e");
	free(id);
	id = id_of("main", "alice/lexer");
	ck_assert_str_eq(id, "main:alice/lexer@3f2a1b0c9d8e");
	free(id);
	id = id_of("release/1.x", "$(reboot) ;rm");
	ck_assert_str_eq(id, "release/1.x:=24=28reboot=29=20=3Brm@3f2a1b0c9d8e");
	free(id);
	/* ':' and '=' are escaped, so different refs give different ids. */
	id = id_of("main", "a:b=c");
	ck_assert_str_eq(id, "main:a=3Ab=3Dc@3f2a1b0c9d8e");
	free(id);
	id = id_of("-x", NULL);
	ck_assert_str_eq(id, "=2Dx@3f2a1b0c9d8e");
	free(id);
}
END_TEST

START_TEST(change_id_too_long)
{
	char topic[300];
	git_oid head;
	char *id = NULL;

	memset(topic, 'a', sizeof(topic) - 1);
	topic[sizeof(topic) - 1] = '\0';
	git_oid_fromstr(&head, head_hex);
	ck_assert_int_eq(wf_push_change_id(&id, "main", topic, &head),
	    WF_EINPUT);
	ck_assert_ptr_null(id);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "too long"));
	/* The longest that fits. */
	topic[256 - 5 - 13] = '\0';
	ck_assert_int_eq(wf_push_change_id(&id, "main", topic, &head), 0);
	ck_assert_uint_eq(strlen(id), 256);
	free(id);
}
END_TEST

START_TEST(options)
{
	struct wf_push_opts o = WF_PUSH_OPTS_INIT;
	const char *good[] = { "ci.skip", "wf.priority=-3",
	    "wf.message=a=b $(x)", "wf.wait" };
	const char *bad1[] = { "wf.priority=1x" };
	const char *bad2[] = { "wf.waiting" };
	const char *bad3[] = { "wf.wait=maybe" };
	const char *off[] = { "wf.wait=no" };

	ck_assert_int_eq(wf_push_opts_parse(&o, good, 4), 0);
	ck_assert_int_eq(o.has_priority, 1);
	ck_assert_int_eq(o.priority, -3);
	ck_assert_str_eq(o.message, "a=b $(x)");
	ck_assert_int_eq(o.wait, 1);
	ck_assert_int_eq(wf_push_opts_parse(&o, off, 1), 0);
	ck_assert_int_eq(o.wait, 0);
	ck_assert_int_eq(wf_push_opts_parse(&o, bad1, 1), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "'wf.priority=1x'"));
	ck_assert_int_eq(wf_push_opts_parse(&o, bad2, 1), WF_EINPUT);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "unknown push option"));
	ck_assert_int_eq(wf_push_opts_parse(&o, bad3, 1), WF_EINPUT);
}
END_TEST

START_TEST(update_lines)
{
	struct wf_push_update u;
	char line[200];

	snprintf(line, sizeof(line), "%040d %s refs/for/main/$(x) y\n", 0,
	    head_hex);
	ck_assert_int_eq(wf_push_update_parse(&u, line), 0);
	ck_assert(git_oid_is_zero(&u.old_id));
	ck_assert_str_eq(u.ref, "refs/for/main/$(x) y");
	ck_assert_int_eq(u.kind, WF_PUSH_PASS);
	wf_push_update_release(&u);
	ck_assert_ptr_null(u.ref);
	ck_assert_int_eq(wf_push_update_parse(&u, "0 1 refs/heads/x"),
	    WF_EINPUT);
	wf_push_update_release(&u);
	snprintf(line, sizeof(line), "%040d %s\n", 0, head_hex);
	ck_assert_int_eq(wf_push_update_parse(&u, line), WF_EINPUT);
	wf_push_update_release(&u);
	wf_push_update_release(NULL);
}
END_TEST

START_TEST(prepush_ids)
{
	ck_assert(wf_prepush_is_check("pre-push"));
	ck_assert(wf_prepush_is_check("pre-push-lint"));
	ck_assert(!wf_prepush_is_check("pre-pushy"));
	ck_assert(!wf_prepush_is_check("lint"));
	ck_assert(!wf_prepush_is_check(NULL));
}
END_TEST

START_TEST(git_versions)
{
	unsigned v[3];

	ck_assert_int_eq(wf_git_version_parse(v, "git version 2.39.5\n"), 0);
	ck_assert_uint_eq(v[0], 2);
	ck_assert_uint_eq(v[1], 39);
	ck_assert_uint_eq(v[2], 5);
	ck_assert_int_eq(wf_hooks_git_check(v), 0);
	ck_assert_int_eq(wf_git_version_parse(v, "git version 2.29"), 0);
	ck_assert_uint_eq(v[1], 29);
	ck_assert_uint_eq(v[2], 0);
	ck_assert_int_eq(wf_hooks_git_check(v), 0);
	ck_assert_int_eq(wf_git_version_parse(v,
	    "git version 2.28.0.windows.1"), 0);
	ck_assert_uint_eq(v[1], 28);
	ck_assert_int_eq(wf_hooks_git_check(v), WF_EOS);
	ck_assert_ptr_nonnull(strstr(wf_error_last(), "2.28.0 is too old"));
	ck_assert_int_eq(wf_git_version_parse(v, "git version 3.0.1"), 0);
	ck_assert_int_eq(wf_hooks_git_check(v), 0);
	ck_assert_int_eq(wf_git_version_parse(v, "git version 1.9.5"), 0);
	ck_assert_int_eq(wf_hooks_git_check(v), WF_EOS);
	ck_assert_int_eq(wf_git_version_parse(v, "git version 2"), WF_EINPUT);
	ck_assert_int_eq(wf_git_version_parse(v, "hg version 2.39"),
	    WF_EINPUT);
	ck_assert_int_eq(wf_git_version_parse(v, "git version x.y"),
	    WF_EINPUT);
	ck_assert_int_eq(wf_git_version_parse(v, NULL), WF_EINPUT);
	wf_error_clear();
}
END_TEST

/* A proc-receive conversation, receive-pack's side written to a pipe. */
START_TEST(proc_receive_request)
{
	static const char cmd1[] = "0000000000000000000000000000000000000000 "
	    "3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a refs/for/main";
	static const char ver[] = "version=1\0push-options atomic";
	struct wf_push_proc p;
	char buf[WF_PKTLINE_MAX + 1], answer[256];
	int in[2], out[2];
	long len;
	ssize_t got;

	ck_assert_int_eq(pipe(in), 0);
	ck_assert_int_eq(pipe(out), 0);
	ck_assert_int_eq(wf_pktline_write(in[1], ver, sizeof(ver) - 1), 0);
	ck_assert_int_eq(wf_pktline_flush(in[1]), 0);
	ck_assert_int_eq(wf_pktline_write(in[1], cmd1, strlen(cmd1)), 0);
	ck_assert_int_eq(wf_pktline_flush(in[1]), 0);
	ck_assert_int_eq(wf_pktline_write(in[1], "wf.wait\n", 8), 0);
	ck_assert_int_eq(wf_pktline_flush(in[1]), 0);
	close(in[1]);
	ck_assert_int_eq(wf_push_proc_read(&p, in[0], out[1], 0), 0);
	ck_assert_uint_eq(p.ncommands, 1);
	ck_assert_str_eq(p.commands[0], cmd1);
	ck_assert_uint_eq(p.noptions, 1);
	ck_assert_str_eq(p.options[0], "wf.wait");
	ck_assert(p.atomic);
	ck_assert_uint_eq(p.raw_len, 4 + sizeof(ver) - 1 + 4 + 4 +
	    strlen(cmd1) + 4 + 4 + 8 + 4);
	ck_assert_int_eq(wf_push_proc_answer(out[1], "refs/for/main",
	    "refs/wf/changes/7", NULL), 0);
	ck_assert_int_eq(wf_push_proc_answer(out[1], "refs/for/x", NULL,
	    "no\nbranch"), 0);
	ck_assert_int_eq(wf_pktline_flush(out[1]), 0);
	close(out[1]);
	got = read(out[0], answer, sizeof(answer) - 1);
	ck_assert_int_gt(got, 0);
	answer[got] = '\0';
	ck_assert_int_eq(got, 26 + 4 + 20 + 36 + 27 + 4);
	ck_assert_int_eq(memcmp(answer, "001aversion=1\0push-options0000"
	    "0014ok refs/for/main" "0024option refname refs/wf/changes/7"
	    "001bng refs/for/x no branch" "0000", (size_t)got), 0);
	close(out[0]);
	wf_push_proc_release(&p);
	close(in[0]);

	/* A request that is not version 1, or not pkt-lines, is refused. */
	ck_assert_int_eq(pipe(in), 0);
	ck_assert_int_eq(wf_pktline_write(in[1], "version=2", 9), 0);
	ck_assert_int_eq(wf_pktline_flush(in[1]), 0);
	close(in[1]);
	ck_assert_int_eq(wf_push_proc_read(&p, in[0], -1, 1), WF_EINPUT);
	close(in[0]);
	ck_assert_int_eq(pipe(in), 0);
	ck_assert_int_eq(write(in[1], "zzzz", 4), 4);
	close(in[1]);
	ck_assert_int_eq(wf_pktline_read(buf, &len, in[0], NULL, NULL),
	    WF_EINPUT);
	close(in[0]);
	wf_error_clear();
}
END_TEST

/* The output of a shell command, its trailing newline removed. */
static char *
sh_out(const char *cmd)
{
	char buf[4096];
	size_t n;
	FILE *f = popen(cmd, "r");

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	ck_assert_int_eq(pclose(f), 0);
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	return strdup(buf);
}

/*
 * A loose ref written here is the ref git reads, sees in for-each-ref
 * and fsck, shadowing a packed one as git update-ref does; a lock, a
 * ref or packed ref named like one of its directories, or refs below
 * it, are refused with nothing left behind; removal only of what it
 * wrote.
 */
START_TEST(loose_refs)
{
	char tmpl[] = "/tmp/wf-loose-XXXXXX", cmd[1024], *dir, *out, *blob;
	char *lock;

	ck_assert_ptr_nonnull(dir = mkdtemp(tmpl));
	snprintf(cmd, sizeof(cmd), "git init -q --bare '%s' && cd '%s' && "
	    "echo a | git hash-object -w --stdin", dir, dir);
	blob = sh_out(cmd);
	ck_assert_uint_eq(strlen(blob), 40);
	ck_assert_int_eq(wf_loose_ref_write(dir, "refs/wf/changes/7", blob),
	    0);
	snprintf(cmd, sizeof(cmd), "cd '%s' && git rev-parse refs/wf/changes/7"
	    " && git for-each-ref --format='%%(refname)' && git fsck --no-dangling >/dev/null 2>&1 && "
	    "ls refs/wf/changes", dir);
	out = sh_out(cmd);
	ck_assert_str_eq(out + 41, "refs/wf/changes/7\n7");
	ck_assert_mem_eq(out, blob, 40);
	free(out);

	/* Over a packed ref of the same name: it wins, as git's would. */
	snprintf(cmd, sizeof(cmd), "cd '%s' && echo b | git hash-object -w "
	    "--stdin | xargs git update-ref refs/wf/changes/8 && git pack-refs "
	    "--all && git rev-parse refs/wf/changes/8", dir);
	free(sh_out(cmd));
	ck_assert_int_eq(wf_loose_ref_write(dir, "refs/wf/changes/8", blob),
	    0);
	snprintf(cmd, sizeof(cmd), "cd '%s' && git rev-parse "
	    "refs/wf/changes/8", dir);
	out = sh_out(cmd);
	ck_assert_str_eq(out, blob);
	free(out);

	/* A packed ref where a directory would be; a loose one; a lock. */
	ck_assert_int_eq(wf_loose_ref_write(dir, "refs/wf/changes/7/x", blob),
	    WF_ECONFLICT);
	ck_assert_int_eq(wf_loose_ref_write(dir, "refs/wf/changes", blob),
	    WF_ECONFLICT);
	snprintf(cmd, sizeof(cmd), "cd '%s' && git update-ref refs/p/q %s && "
	    "git pack-refs --all && ls refs/p 2>/dev/null | wc -l", dir, blob);
	out = sh_out(cmd);
	ck_assert_str_eq(out, "0");
	free(out);
	ck_assert_int_eq(wf_loose_ref_write(dir, "refs/p/q/r", blob),
	    WF_ECONFLICT);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/refs/wf/changes'", dir);
	ck_assert_int_eq(system(cmd), 0);
	lock = fixture_join(dir, "refs/wf/changes/9.lock");
	fixture_write(lock, "");
	ck_assert_int_eq(wf_loose_ref_write(dir, "refs/wf/changes/9", blob),
	    WF_ECONFLICT);
	ck_assert_int_eq(unlink(lock), 0);
	free(lock);
	snprintf(cmd, sizeof(cmd), "cd '%s' && find refs -name '*.lock' | "
	    "wc -l && git for-each-ref | wc -l && git fsck --no-dangling >/dev/null 2>&1 && echo ok", dir);
	out = sh_out(cmd);
	ck_assert_str_eq(out, "0\n3\nok");
	free(out);

	/* Removed only while it holds what was written. */
	ck_assert_int_eq(wf_loose_ref_write(dir, "refs/wf/changes/10", blob),
	    0);
	ck_assert_int_eq(wf_loose_ref_remove(dir, "refs/wf/changes/10",
	    head_hex), WF_ECONFLICT);
	ck_assert_int_eq(wf_loose_ref_remove(dir, "refs/wf/changes/10", blob),
	    0);
	ck_assert_int_eq(wf_loose_ref_remove(dir, "refs/wf/changes/10", blob),
	    0);
	snprintf(cmd, sizeof(cmd), "cd '%s' && git for-each-ref "
	    "--format='%%(refname)' && find refs -name '*.lock' | wc -l", dir);
	out = sh_out(cmd);
	ck_assert_str_eq(out, "refs/p/q\nrefs/wf/changes/7\n"
	    "refs/wf/changes/8\n0");
	free(out);
	wf_error_clear();
	free(blob);
	fixture_rm(dir);
}
END_TEST

Suite *
push_suite(void)
{
	Suite *s = suite_create("push");
	TCase *tc = tcase_create("ids");

	tcase_add_test(tc, change_ids);
	tcase_add_test(tc, change_id_too_long);
	suite_add_tcase(s, tc);
	tc = tcase_create("input");
	tcase_add_test(tc, options);
	tcase_add_test(tc, update_lines);
	tcase_add_test(tc, prepush_ids);
	tcase_add_test(tc, proc_receive_request);
	suite_add_tcase(s, tc);
	tc = tcase_create("git");
	tcase_add_test(tc, git_versions);
	tcase_add_test(tc, loose_refs);
	suite_add_tcase(s, tc);
	return s;
}
