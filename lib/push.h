#ifndef WF_PUSH_H
#define WF_PUSH_H

#include <stddef.h>
#include <stdint.h>

#include <git2.h>
#include <jansson.h>

#include "change.h"
#include "queue.h"

/*
 * A push received by a repository, as its pre-receive and post-receive
 * hooks see it: ref updates ("<old> <new> <ref>" lines) and push options
 * ("git push -o ...").  A push to refs/for/<branch>[/<topic>] asks for
 * the pushed commits to be queued as one change request of kind
 * "commits" for <branch>, based on their merge base with it; a direct
 * push to a branch whose `wf.<branch>.protect` is true is refused.
 * Everything taken from the push is data: nothing here runs a shell.
 */

/* What the push options (those starting with "wf.") ask for. */
struct wf_push_opts {
	int has_priority;
	int64_t priority;	/* wf.priority=N */
	const char *message;	/* wf.message=TEXT (borrowed), or NULL */
	int wait;		/* wf.wait: land before the push returns */
};

#define WF_PUSH_OPTS_INIT { 0, 0, NULL, 0 }

/*
 * Read the push options `options[0..n)` (borrowed; they must outlive
 * *out) into *out.  Options not starting with "wf." are someone else's
 * and skipped.  WF_EINPUT naming the option for an unknown "wf." option
 * (a typo must not be ignored), a priority that is not an integer, or
 * "wf.wait" with a value other than true, false, yes, no, 1 or 0; *out
 * is then as far as it got.
 */
int wf_push_opts_parse(struct wf_push_opts *out, const char *const *options,
    size_t n);

/* What one ref update is to wf. */
enum wf_push_kind {
	WF_PUSH_PASS,		/* none of wf's business: let it through */
	WF_PUSH_QUEUE,		/* refs/for/...: a change to queue */
	WF_PUSH_WITHDRAW	/* a refs/for/... ref deleted */
};

/* One ref update of a push, classified and, for a queue, validated. */
struct wf_push_update {
	git_oid old_id, new_id;	/* zero when created / deleted */
	char *ref;
	enum wf_push_kind kind;
	/* WF_PUSH_QUEUE and WF_PUSH_WITHDRAW: */
	char *target;		/* the branch, without refs/heads/ */
	char *topic;		/* what follows it, or NULL */
	char *id;		/* the change id (QUEUE only) */
	git_oid base;		/* the merge base (QUEUE only) */
	struct wf_change *change;	/* the validated request (QUEUE only) */
};

/*
 * Parse one line of a receive hook's input, "<old> <new> <ref>", into
 * *out (released with wf_push_update_release()).  Only the ids and ref
 * are set; kind is WF_PUSH_PASS.  WF_EINPUT for a malformed line.
 */
int wf_push_update_parse(struct wf_push_update *out, const char *line);

/* Free what *u holds; it can be parsed into again.  NULL is a no-op. */
void wf_push_update_release(struct wf_push_update *u);

/*
 * Classify and validate the update `u` (parsed) against `repo`, which
 * must see the pushed objects (in pre-receive: opened from git's
 * quarantine environment).  Refused, with WF_EINPUT and a message that
 * names the ref, the reason and what to do instead:
 *   - a create, update or delete of refs/heads/<b> when wf.<b>.protect
 *     is true;
 *   - a push to refs/for/<rest> where no prefix of <rest> is a branch
 *     (the longest one that is wins; the remainder is the topic);
 *   - commits with no history in common with the branch, or already in
 *     it, or holding a merge (changes are replayed commit by commit);
 *   - a request wf_change_parse() refuses, with its reason;
 *   - a ref so long that the change id would pass 256 bytes.
 * On success u->kind says what the update is; for WF_PUSH_QUEUE the
 * target, topic, id, base and validated change are filled in (the
 * options give its priority and message; its "meta" holds {"ref"}).
 * WF_EOS and WF_ENOMEM otherwise.
 */
int wf_push_check(struct wf_push_update *u, git_repository *repo,
    const struct wf_push_opts *opts);

/*
 * The change id of commit `head` pushed to refs/for/<target>[/<topic>]:
 * "<target>[:<topic>]@<first 12 hex digits of head>", where a byte
 * outside [A-Za-z0-9._/@+#-] (and a leading '-') is written "=XX" (hex),
 * so distinct refs give distinct ids.  *out is a new malloc'ed string.
 * WF_EINPUT when the id would be longer than WF_CHANGE_ID_MAX.
 */
int wf_push_change_id(char **out, const char *target, const char *topic,
    const git_oid *head);

/*
 * Where proc-receive keeps the commits of a queued change, so that they
 * stay reachable while it waits: WF_PUSH_KEPT_PREFIX<queue id>.
 */
#define WF_PUSH_KEPT_PREFIX "refs/wf/changes/"

/*
 * Remove every ref that keeps a change that has landed -- the
 * WF_PUSH_KEPT_PREFIX<queue id> refs, and the refs/for/ refs older wf
 * hooks left -- if it still points at the commit that was queued (a ref
 * moved since is kept); the refs of changes not landed, dead ones
 * included, stay, and so does a ref whose queue id is not (or not yet)
 * in the queue.  *out (may be NULL) is a new array of {"ref", "id"}
 * removed.
 */
int wf_push_sweep(json_t **out, git_repository *repo, struct wf_queue *q);

/*
 * What git-receive-pack sends its proc-receive hook (githooks(5)): the
 * updates of the refs it leaves to the hook (receive.procReceiveRefs:
 * for wf, refs/for/), which git never creates itself, and the push
 * options.  The hook answers each update with wf_push_proc_answer(),
 * in their order, then a flush (wf_pktline_flush()).
 */
struct wf_push_proc {
	char **commands;	/* "<old> <new> <ref>" lines, NULL-ended */
	size_t ncommands;
	char **options;		/* the push options, NULL-ended */
	size_t noptions;
	int atomic;		/* receive-pack asked for an atomic push */
	char *raw;		/* every byte read from receive-pack */
	size_t raw_len;
};

/*
 * Read the request of receive-pack from `in` into *p (released with
 * wf_push_proc_release()): its version line, answered on `out` with
 * "version=1\0push-options" -- unless `answered`, when a process before
 * this one answered it and `in` replays what that one read (p->raw is
 * what to replay) -- then the commands and the push options.  WF_EINPUT
 * when receive-pack does not speak version 1 or the input is not
 * pkt-lines, WF_EOS; *p is then empty.
 */
int wf_push_proc_read(struct wf_push_proc *p, int in, int out, int answered);

/* Free what *p holds.  NULL is a no-op. */
void wf_push_proc_release(struct wf_push_proc *p);

/*
 * Answer the update of `ref`: "ok <ref>", with "option refname <kept>"
 * when `kept` is not NULL (the ref the pushed commit is kept at, which
 * git shows the pusher, and gives post-receive, in place of `ref`); or,
 * when `why` is not NULL, "ng <ref> <why>" (refused; its newlines are
 * made spaces).  WF_EOS.
 */
int wf_push_proc_answer(int fd, const char *ref, const char *kept,
    const char *why);

#endif
