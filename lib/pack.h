#ifndef WF_PACK_H
#define WF_PACK_H

#include <git2.h>

/*
 * An in-memory object store in front of a repository's object database:
 * blobs, trees and commits written through the repository stay in
 * memory and are readable at once, until wf_pack_flush() writes them,
 * and only them, as one pack.  A batch of a thousand changes thus
 * writes one pack, not thousands of loose objects.  Large objects are
 * compressed for the pack on a thread of the store's own as soon as
 * they are written.  A handle is for one thread, as its repository is.
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
 * Write the object data[0..len) of `type` to `odb`; *out is its id.
 * When a store of wf_pack_attach() is in front of `odb`, the object goes
 * straight into it, past libgit2's git_odb_write() (which looks for the
 * object in every backend and rescans the pack directory when it is not
 * there, for each object).  `like` (NULL: none) is what the object was
 * made from: for a tree, the tree it was edited from; for a blob, the
 * blob of the file before the edit.  A tree's id is computed with plain
 * SHA-1, resumed where the tree differs from `like` when `like` was
 * written here recently; a blob's or a commit's with libgit2's
 * collision-detecting SHA-1 (git_odb_hash()).  A blob whose `like` is
 * in the same pack may be stored there as a delta on it.  An
 * object whose id is already in the database, in memory or on disk, is
 * read back and compared byte for byte: WF_ECONFLICT when it differs (a
 * SHA-1 collision; nothing is written).  Without such a store this is
 * git_odb_write().  WF_EOS or WF_ENOMEM on failure.
 */
int wf_pack_write(git_oid *out, git_odb *odb, const void *data, size_t len,
    git_object_t type, const git_oid *like);

/*
 * wf_pack_write() of a malloc'ed `data`, which it takes, whatever the
 * outcome: the store keeps it rather than a copy.
 */
int wf_pack_write_owned(git_oid *out, git_odb *odb, void *data, size_t len,
    git_object_t type, const git_oid *like);

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
