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
 * After the update `u` (WF_PUSH_QUEUE, old id not zero) moved a
 * refs/for/ ref from one change to another, drop the change it carried
 * before, if that one is still waiting (queued or failed): the new push
 * replaces it.  *out is the dropped id (a new string), or NULL when
 * nothing was dropped (no such change, or it is leased, landed or dead).
 */
int wf_push_supersede(char **out, struct wf_queue *q,
    const struct wf_push_update *u);

/*
 * What wf_push_supersede() does once it knows the id: drop change `id`
 * if it is still waiting (queued or failed).  *out is a copy of `id`
 * when it was dropped, else NULL.
 */
int wf_push_drop_waiting(char **out, struct wf_queue *q, const char *id);

/*
 * Remove every refs/for/ ref whose change has landed, if it still points
 * at the commit that was queued (a ref pushed again since is kept); the
 * refs of changes not landed, dead ones included, stay.  *out (may be
 * NULL) is a new array of {"ref", "id"} removed.
 */
int wf_push_sweep(json_t **out, git_repository *repo, struct wf_queue *q);

#endif
