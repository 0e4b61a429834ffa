#include <stdlib.h>
#include <string.h>

#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>

#include "error.h"
#include "pack.h"

/*
 * libgit2 1.5's git_mempack_dump() packs only the commits it holds and
 * everything they reach (whole trees, old blobs too), and nothing that
 * no commit in memory reaches.  So the mempack is wrapped: the wrapper
 * records the id of every object written, and the flush packs exactly
 * those with a packbuilder.
 */
struct backend {
	git_odb_backend parent;
	git_odb_backend *mem;
	git_oid *ids;
	size_t nr, alloc;
};

struct wf_pack {
	git_repository *repo;
	struct backend *b;	/* owned by the repository's odb */
};

static int
b_read(void **data, size_t *len, git_object_t *type, git_odb_backend *be,
    const git_oid *id)
{
	git_odb_backend *mem = ((struct backend *)be)->mem;

	return mem->read(data, len, type, mem, id);
}

static int
b_read_prefix(git_oid *out, void **data, size_t *len, git_object_t *type,
    git_odb_backend *be, const git_oid *prefix, size_t n)
{
	git_odb_backend *mem = ((struct backend *)be)->mem;

	if (!mem->read_prefix)
		return GIT_ENOTFOUND;
	return mem->read_prefix(out, data, len, type, mem, prefix, n);
}

static int
b_read_header(size_t *len, git_object_t *type, git_odb_backend *be,
    const git_oid *id)
{
	git_odb_backend *mem = ((struct backend *)be)->mem;

	return mem->read_header(len, type, mem, id);
}

static int
b_exists(git_odb_backend *be, const git_oid *id)
{
	git_odb_backend *mem = ((struct backend *)be)->mem;

	return mem->exists(mem, id);
}

static int
b_write(git_odb_backend *be, const git_oid *id, const void *data, size_t len,
    git_object_t type)
{
	struct backend *b = (struct backend *)be;
	int error;

	if (b->mem->exists(b->mem, id))
		return 0;
	if (b->nr == b->alloc) {
		size_t alloc = b->alloc ? b->alloc * 2 : 256;
		git_oid *ids = realloc(b->ids, alloc * sizeof(*ids));

		if (!ids) {
			git_error_set_oom();
			return -1;
		}
		b->ids = ids;
		b->alloc = alloc;
	}
	if ((error = b->mem->write(b->mem, id, data, len, type)) < 0)
		return error;
	b->ids[b->nr++] = *id;
	return 0;
}

static void
b_free(git_odb_backend *be)
{
	struct backend *b = (struct backend *)be;

	b->mem->free(b->mem);
	free(b->ids);
	free(b);
}

int
wf_pack_attach(struct wf_pack **out, git_repository *repo)
{
	struct wf_pack *p;
	struct backend *b = NULL;
	git_odb *odb = NULL;
	int error;

	*out = NULL;
	if (!(p = calloc(1, sizeof(*p))) || !(b = calloc(1, sizeof(*b)))) {
		free(p);
		return wf_error_oom();
	}
	if (git_odb_init_backend(&b->parent, GIT_ODB_BACKEND_VERSION) < 0 ||
	    git_mempack_new(&b->mem) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot set up an in-memory "
		    "object store");
		free(b);
		goto out;
	}
	b->parent.read = b_read;
	b->parent.read_prefix = b_read_prefix;
	b->parent.read_header = b_read_header;
	b->parent.write = b_write;
	b->parent.exists = b_exists;
	b->parent.free = b_free;
	/* Above the loose (1) and pack (2) backends: writes land here. */
	if (git_repository_odb(&odb, repo) < 0 ||
	    git_odb_add_backend(odb, &b->parent, 999) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot set up an in-memory "
		    "object store");
		b_free(&b->parent);
		goto out;
	}
	p->repo = repo;
	p->b = b;
	*out = p;
	p = NULL;
	error = 0;
out:
	git_odb_free(odb);
	free(p);
	return error;
}

int
wf_pack_flush(struct wf_pack *p)
{
	git_packbuilder *pb = NULL;
	size_t i;
	int error;

	if (p->b->nr == 0)
		return 0;
	if (git_packbuilder_new(&pb, p->repo) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot pack the new objects");
		goto out;
	}
	for (i = 0; i < p->b->nr; i++)
		if (git_packbuilder_insert(pb, &p->b->ids[i], NULL) < 0) {
			error = wf_error_set_git(WF_EOS, "cannot pack the new "
			    "objects");
			goto out;
		}
	if (git_packbuilder_write(pb, NULL, 0, NULL, NULL) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot write the pack of "
		    "new objects");
		goto out;
	}
	wf_pack_discard(p);
	error = 0;
out:
	git_packbuilder_free(pb);
	return error;
}

void
wf_pack_discard(struct wf_pack *p)
{
	git_mempack_reset(p->b->mem);
	p->b->nr = 0;
}

void
wf_pack_free(struct wf_pack *p)
{
	if (!p)
		return;
	wf_pack_discard(p);
	free(p);
}
