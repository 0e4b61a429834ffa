#ifndef WF_PACK_H
#define WF_PACK_H

#include <git2.h>

/*
 * An in-memory object store in front of a repository's object database
 * (libgit2's mempack backend): blobs, trees and commits written through
 * the repository stay in memory and are readable at once, until
 * wf_pack_flush() writes them, and only them, as one pack.  A batch of a
 * thousand changes thus writes one pack, not thousands of loose objects.
 * A handle is for one thread, as its repository is.
 */
struct wf_pack;

/*
 * Attach a new in-memory store to `repo`, ahead of its other backends,
 * so that every later write goes to memory.  The store belongs to the
 * repository's object database from then on: attach at most once per
 * repository handle.  *out is the caller's to wf_pack_free(); NULL on
 * error (WF_EOS).
 */
int wf_pack_attach(struct wf_pack **out, git_repository *repo);

/*
 * Write every object held in memory into the repository as one pack
 * (objects/pack/pack-*.pack and its index), then empty the store.  Call
 * it before a reference names any of these objects.  Nothing is written
 * when the store is empty.  WF_EOS on failure: the objects are then
 * still in memory.
 */
int wf_pack_flush(struct wf_pack *p);

/*
 * Drop the objects held in memory without writing them (the store stays
 * attached, empty).
 */
void wf_pack_discard(struct wf_pack *p);

/*
 * Discard what is held in memory and free the handle; the emptied store
 * lives on in the repository until it is freed.  No-op on NULL.
 */
void wf_pack_free(struct wf_pack *p);

#endif
