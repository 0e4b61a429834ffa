#ifndef WF_LOOSE_REF_H
#define WF_LOOSE_REF_H

/*
 * A reference written as git's "files" backend writes one, without a
 * process and without libgit2: for the proc-receive hook, where
 * starting `git update-ref` was a sixth of what the hooks add to a
 * push, and where loading libgit2 costs more still.
 *
 * Only for a repository whose references are files (no
 * extensions.refStorage other than "files"), that keeps no reflog for
 * the ref (core.logAllRefUpdates not "always") and whose files need no
 * shared permissions (core.sharedRepository unset or false): the
 * pre-receive hook, which reads the configuration through libgit2,
 * says so in its handover; otherwise `git update-ref` is used.
 */

/*
 * Point `ref` (a full name, "refs/...") of the repository at `gitdir`
 * (its common directory) at the object `hex` (40 hex digits): the
 * directories made, "<ref>.lock" created exclusively, written with
 * "<hex>\n" and renamed over the ref, as git does.  A ref of that name
 * in packed-refs is shadowed, as git's update does.  WF_ECONFLICT when
 * the ref is locked, or a ref or packed ref is named like one of its
 * directories (git's "D/F conflict"); WF_EOS on other failures; nothing
 * is left behind on failure.
 */
int wf_loose_ref_write(const char *gitdir, const char *ref, const char *hex);

/*
 * Remove the loose ref `ref` that wf_loose_ref_write() made, when it
 * still holds `hex`: 0 (also when it is gone already), WF_ECONFLICT
 * when it points elsewhere now or is locked, WF_EOS.
 */
int wf_loose_ref_remove(const char *gitdir, const char *ref,
    const char *hex);

#endif
