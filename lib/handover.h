#ifndef WF_HANDOVER_H
#define WF_HANDOVER_H

#include <sys/types.h>

#include <jansson.h>

#include "change.h"
#include "push.h"

/*
 * What the pre-receive hook of a push hands to its proc-receive hook:
 * the change requests it validated in git's quarantine, so that
 * proc-receive can queue them without validating them again -- and
 * without loading libgit2 at all, which is most of its cost.
 *
 * One file per push, <gitdir>/wf/handover/<key>, named by the key of
 * the git-receive-pack process that runs the hooks of the push (its
 * boot id, pid and start time: no other push, before or after a reboot,
 * has the same one).  It is written whole under a temporary name and
 * renamed, read once and removed.  Each entry names the exact ref
 * update it was validated for ("<old> <new> <ref>"), so proc-receive
 * takes an entry only for the very update git reports to it; an update
 * with no entry, a missing or damaged file, is proc-receive's cue to
 * validate as before.  "loose_refs": true says the repository's refs
 * may be written as plain files (lib/loose_ref.h).  Files of pushes that never reached proc-receive
 * (refused later, or killed) are removed by the next save once their
 * receive-pack is gone.
 */

/*
 * The key of process `pid` (a git-receive-pack): "<boot id>-<pid>-<start
 * time>", from /proc.  *out is a new malloc'ed string.  WF_EOS when /proc
 * does not tell (the caller then does without a handover).
 */
int wf_handover_key(char **out, pid_t pid);

/*
 * Add the validated update `u` (kind WF_PUSH_QUEUE, with its change) to
 * the handover `doc` (a new one when *doc is NULL): its update line,
 * its change's canonical text, paths and hash, and `replaces`, the id
 * of the change it supersedes (or NULL).  WF_ENOMEM.
 */
int wf_handover_add(json_t **doc, const struct wf_push_update *u,
    const char *replaces);

/*
 * Write `doc` as the handover of key `key` in `gitdir` (the common git
 * directory), atomically (a reader sees all of it or nothing), and
 * remove the handovers of receive-packs no longer running.  WF_EOS.
 */
int wf_handover_save(const char *gitdir, const char *key, const json_t *doc);

/* Remove the handover of `key`, if there is one.  WF_EOS. */
int wf_handover_discard(const char *gitdir, const char *key);

/*
 * Read and remove the handover of `key`: *out is a new reference, or
 * NULL (and 0) when there is none.  WF_EINPUT when the file is not a
 * handover (it is removed all the same), WF_EOS.
 */
int wf_handover_take(json_t **out, const char *gitdir, const char *key);

/*
 * The change the handover `doc` holds for the update `line` ("<old>
 * <new> <ref>", as the hook read it, without its newline): *out is the
 * caller's to wf_change_free(), *replaces (borrowed from doc) the id it
 * supersedes or NULL.  WF_ENOTFOUND when doc holds none for that
 * update; WF_EINPUT when the entry is damaged; WF_ENOMEM.
 */
int wf_handover_find(struct wf_change **out, const char **replaces,
    const json_t *doc, const char *line);

#endif
