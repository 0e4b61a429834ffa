#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2/sys/odb_backend.h>
#include <libdeflate.h>

#include "delta.h"
#include "error.h"
#include "pack.h"
#include "sha1.h"

/*
 * The objects a batch writes are kept here, in memory, and written as
 * one pack at the flush.  This is an object database backend of its own
 * rather than libgit2's mempack: the mempack cannot be read from one
 * thread while another writes it, and every read of it copies the
 * object, while most of a flush's work (compressing the large blobs) is
 * best done on another thread while the batch is still being built.
 * Here each object's bytes stay where they were put until the store is
 * emptied, so a second thread compresses them, and the flush writes
 * them, without a copy.
 */

#define OFS_DELTA 6
/* Trees a new tree may be a delta on, and how deep chains may grow. */
#define NRECENT 8
#define MAX_DEPTH 50
/* A delta this small (an entry or two changed) is taken at once. */
#define GOOD_DELTA 128
/* Objects smaller than this are stored, not compressed. */
#define SMALL 2048

/*
 * A tree written recently, kept so that the hash of the next version of
 * it (a batch edits one entry of a directory, again and again) resumes
 * after the blocks both share instead of starting over.
 */
struct mid {
	git_oid id;
	unsigned char *s;	/* what was hashed: "tree <len>\0" and the tree */
	size_t len;
	struct wf_sha1 *st;	/* st[k]: the hash after k 64-byte blocks of s */
};

#define NMID 8

/* An object in memory. */
struct obj {
	git_oid id;
	unsigned char *data;	/* len bytes, never moved until emptied */
	size_t len;
	git_object_t type;
	size_t base;		/* a blob here it may be a delta on: its index */
	size_t depth;		/* links to a whole object, were all deltas */
	/* Compressed ahead (z not NULL): the object, or a delta on base. */
	unsigned char *z;
	size_t zlen, dsize;
	int delta;
};

struct backend {
	git_odb_backend parent;
	struct obj *objs;	/* in the order written */
	size_t nr, alloc;
	uint32_t *slots;	/* by id: index + 1 into objs, 0 for none */
	size_t nslots;		/* a power of two, at least twice nr */
	struct mid mid[NMID];
	size_t mid_next;	/* the slot to reuse next */

	/*
	 * The compressing thread.  objs (the array) and the fields below
	 * are under lock; the bytes of an object are read-only once put.
	 */
	pthread_mutex_t lock;
	pthread_cond_t more;	/* an object to compress, or stop */
	pthread_cond_t idle;	/* busy went down to 0 */
	pthread_t thread;
	int started, stop;
	size_t next;		/* the first object not taken for compressing */
	size_t busy;		/* objects being compressed now */
	int error;		/* the first failure, with its message */
	char message[512];
};

struct wf_pack {
	git_repository *repo;
	struct backend *b;	/* owned by the repository's odb */
};

/* Does the flush compress `o` ahead, rather than store it? */
static int
pick(const struct obj *o)
{
	return o->type != GIT_OBJECT_TREE && o->len >= SMALL;
}

static size_t
slot_of(const struct backend *b, const git_oid *id)
{
	uint32_t h;

	memcpy(&h, id->id, sizeof(h));
	return h & (b->nslots - 1);
}

/* The object `id` in memory, or NULL. */
static struct obj *
find(const struct backend *b, const git_oid *id)
{
	size_t i, k;

	if (!b->nslots)
		return NULL;
	for (i = slot_of(b, id); (k = b->slots[i]) != 0;
	    i = (i + 1) & (b->nslots - 1))
		if (git_oid_equal(&b->objs[k - 1].id, id))
			return &b->objs[k - 1];
	return NULL;
}

static int
grow_slots(struct backend *b)
{
	size_t n = b->nslots ? 2 * b->nslots : 1024, i, k;
	uint32_t *old = b->slots;
	size_t oldn = b->nslots;

	if (n > UINT32_MAX || !(b->slots = calloc(n, sizeof(*b->slots)))) {
		b->slots = old;
		return wf_error_oom();
	}
	b->nslots = n;
	for (i = 0; i < oldn; i++) {
		if (!old[i])
			continue;
		for (k = slot_of(b, &b->objs[old[i] - 1].id); b->slots[k];
		    k = (k + 1) & (n - 1))
			;
		b->slots[k] = old[i];
	}
	free(old);
	return 0;
}

static int
b_read(void **data, size_t *len, git_object_t *type, git_odb_backend *be,
    const git_oid *id)
{
	struct obj *o = find((struct backend *)be, id);

	if (!o)
		return GIT_ENOTFOUND;
	if (!(*data = git_odb_backend_data_alloc(be, o->len ? o->len : 1)))
		return -1;
	memcpy(*data, o->data, o->len);
	*len = o->len;
	*type = o->type;
	return 0;
}

static int
b_read_prefix(git_oid *out, void **data, size_t *len, git_object_t *type,
    git_odb_backend *be, const git_oid *prefix, size_t n)
{
	struct backend *b = (struct backend *)be;
	const struct obj *hit = NULL;
	size_t i;

	for (i = 0; i < b->nr; i++) {
		if (git_oid_ncmp(&b->objs[i].id, prefix, n) != 0)
			continue;
		if (hit) {
			git_error_set_str(GIT_ERROR_ODB, "ambiguous object "
			    "prefix in memory");
			return GIT_EAMBIGUOUS;
		}
		hit = &b->objs[i];
	}
	if (!hit)
		return GIT_ENOTFOUND;
	*out = hit->id;
	return b_read(data, len, type, be, &hit->id);
}

static int
b_read_header(size_t *len, git_object_t *type, git_odb_backend *be,
    const git_oid *id)
{
	struct obj *o = find((struct backend *)be, id);

	if (!o)
		return GIT_ENOTFOUND;
	*len = o->len;
	*type = o->type;
	return 0;
}

static int
b_exists(git_odb_backend *be, const git_oid *id)
{
	return find((struct backend *)be, id) != NULL;
}

static void *compress_work(void *arg);

/*
 * Put an object that is not in memory yet there: `owned` (malloc'ed,
 * freed on failure), else a copy of data[0..len).  A blob made from one
 * here (`like`, NULL: nothing known) gets that one as its delta base,
 * chains kept to MAX_DEPTH links.  A large one is handed to the
 * compressing thread at once, which is started at the first.
 */
static int
put_mem(struct backend *b, const git_oid *id, const void *data, size_t len,
    git_object_t type, const git_oid *like, unsigned char *owned)
{
	struct obj *o, *base;
	unsigned char *copy = owned;
	size_t k;
	int error = 0;

	if (2 * (b->nr + 1) > b->nslots && (error = grow_slots(b)) < 0) {
		free(owned);
		return error;
	}
	if (!copy) {
		if (!(copy = malloc(len ? len : 1)))
			return wf_error_oom();
		memcpy(copy, data, len);
	}
	pthread_mutex_lock(&b->lock);
	if (b->nr == b->alloc) {
		size_t alloc = b->alloc ? b->alloc * 2 : 256;
		struct obj *objs = realloc(b->objs, alloc * sizeof(*objs));

		if (!objs) {
			pthread_mutex_unlock(&b->lock);
			free(copy);
			return wf_error_oom();
		}
		b->objs = objs;
		b->alloc = alloc;
	}
	o = &b->objs[b->nr];
	memset(o, 0, sizeof(*o));
	o->id = *id;
	o->data = copy;
	o->len = len;
	o->type = type;
	o->base = SIZE_MAX;
	if (type == GIT_OBJECT_BLOB && like && (base = find(b, like)) &&
	    base->type == GIT_OBJECT_BLOB && base->depth < MAX_DEPTH) {
		o->base = (size_t)(base - b->objs);
		o->depth = base->depth + 1;
	}
	b->nr++;
	for (k = slot_of(b, id); b->slots[k]; k = (k + 1) & (b->nslots - 1))
		;
	b->slots[k] = (uint32_t)b->nr;
	if (pick(o)) {
		if (!b->started && pthread_create(&b->thread, NULL,
		    compress_work, b) == 0)
			b->started = 1;
		pthread_cond_signal(&b->more);
	}
	pthread_mutex_unlock(&b->lock);
	return error;
}

static int
b_write(git_odb_backend *be, const git_oid *id, const void *data, size_t len,
    git_object_t type)
{
	struct backend *b = (struct backend *)be;

	if (find(b, id))
		return 0;
	if (put_mem(b, id, data, len, type, NULL, NULL) < 0) {
		git_error_set_str(GIT_ERROR_ODB, wf_error_last());
		return -1;
	}
	return 0;
}

/* data[0..len) as a zlib stream of its own, in (*zbuf)[0..*zlen). */
static int
compress_into(struct libdeflate_compressor *z, unsigned char **zbuf,
    size_t *zcap, size_t *zlen, const void *data, size_t len)
{
	size_t need = libdeflate_zlib_compress_bound(z, len);

	if (need > *zcap) {
		unsigned char *nb = realloc(*zbuf, need);

		if (!nb)
			return wf_error_oom();
		*zbuf = nb;
		*zcap = need;
	}
	if (!(*zlen = libdeflate_zlib_compress(z, data, len, *zbuf, *zcap)))
		return wf_error_set(WF_EOS, "cannot compress an object");
	return 0;
}

/*
 * Take the next object to compress and compress it, outside the lock:
 * as a delta on its base when that is much smaller, else whole.  Called
 * with the lock held, which it holds again on return; 0 when there was
 * nothing to take, 1 when it did one, < 0 on failure (recorded).
 */
static int
compress_next(struct backend *b, struct libdeflate_compressor *z)
{
	const unsigned char *data, *bdata = NULL;
	unsigned char *d = NULL, *buf = NULL;
	size_t k, len, blen = 0, dlen = 0, cap = 0, zlen = 0;
	int error;

	while (b->next < b->nr && !pick(&b->objs[b->next]))
		b->next++;
	if (b->next >= b->nr || b->error)
		return 0;
	k = b->next++;
	data = b->objs[k].data;
	len = b->objs[k].len;
	if (b->objs[k].base != SIZE_MAX) {
		bdata = b->objs[b->objs[k].base].data;
		blen = b->objs[b->objs[k].base].len;
	}
	b->busy++;
	pthread_mutex_unlock(&b->lock);
	error = bdata ? wf_delta_blob(&d, &dlen, bdata, blen, data, len) : 0;
	if (error == 0)
		error = d ? compress_into(z, &buf, &cap, &zlen, d, dlen) :
		    compress_into(z, &buf, &cap, &zlen, data, len);
	free(d);
	pthread_mutex_lock(&b->lock);
	if (error == 0) {
		b->objs[k].z = buf;
		b->objs[k].zlen = zlen;
		b->objs[k].dsize = dlen;
		b->objs[k].delta = d != NULL;
	} else {
		free(buf);
		if (!b->error) {
			b->error = error;
			snprintf(b->message, sizeof(b->message), "%s",
			    wf_error_last());
		}
	}
	if (--b->busy == 0)
		pthread_cond_broadcast(&b->idle);
	return error < 0 ? error : 1;
}

static void *
compress_work(void *arg)
{
	struct backend *b = arg;
	struct libdeflate_compressor *z = libdeflate_alloc_compressor(1);

	pthread_mutex_lock(&b->lock);
	if (!z && !b->error) {
		b->error = WF_ENOMEM;
		snprintf(b->message, sizeof(b->message), "out of memory");
	}
	while (!b->stop) {
		if (!z || compress_next(b, z) <= 0)
			pthread_cond_wait(&b->more, &b->lock);
	}
	pthread_mutex_unlock(&b->lock);
	if (z)
		libdeflate_free_compressor(z);
	return NULL;
}

/*
 * Compress, on this thread too, what the other has not taken yet, and
 * wait for what it is doing: every large object is then compressed.
 * WF_EOS or WF_ENOMEM when one could not be.
 */
static int
compress_rest(struct backend *b, struct libdeflate_compressor *z)
{
	int error;

	pthread_mutex_lock(&b->lock);
	while (compress_next(b, z) > 0)
		;
	while (b->busy)
		pthread_cond_wait(&b->idle, &b->lock);
	error = b->error ? wf_error_set(b->error, "%s", b->message) : 0;
	pthread_mutex_unlock(&b->lock);
	return error;
}

/* Empty the store, once the compressing thread has let go of it. */
static void
empty(struct backend *b)
{
	size_t i;

	pthread_mutex_lock(&b->lock);
	b->next = b->nr;
	while (b->busy)
		pthread_cond_wait(&b->idle, &b->lock);
	for (i = 0; i < b->nr; i++) {
		free(b->objs[i].data);
		free(b->objs[i].z);
	}
	b->nr = 0;
	b->next = 0;
	b->error = 0;
	if (b->slots)
		memset(b->slots, 0, b->nslots * sizeof(*b->slots));
	pthread_mutex_unlock(&b->lock);
}

static void
b_free(git_odb_backend *be)
{
	struct backend *b = (struct backend *)be;
	size_t i;

	empty(b);
	if (b->started) {
		pthread_mutex_lock(&b->lock);
		b->stop = 1;
		pthread_cond_signal(&b->more);
		pthread_mutex_unlock(&b->lock);
		pthread_join(b->thread, NULL);
	}
	pthread_cond_destroy(&b->more);
	pthread_cond_destroy(&b->idle);
	pthread_mutex_destroy(&b->lock);
	for (i = 0; i < NMID; i++) {
		free(b->mid[i].s);
		free(b->mid[i].st);
	}
	free(b->objs);
	free(b->slots);
	free(b);
}

/* The store wf_pack_attach() put in front of `odb`, or NULL. */
static struct backend *
find_backend(git_odb *odb)
{
	git_odb_backend *be;
	size_t i, n = git_odb_num_backends(odb);

	/* Attached with the highest priority: it comes first. */
	for (i = 0; i < n; i++)
		if (git_odb_get_backend(&be, odb, i) == 0 && be->free == b_free)
			return (struct backend *)be;
	return NULL;
}

/*
 * The id of the tree data[0..len), resuming from the blocks it shares
 * with `like` when that is a recent tree; the tree becomes a recent one.
 */
static int
hash_tree(git_oid *out, struct backend *b, const void *data, size_t len,
    const git_oid *like)
{
	struct mid *m = NULL, *slot;
	struct wf_sha1 *st = NULL, c;
	unsigned char *s = NULL;
	char hdr[32];
	size_t h, n, nb, k = 0, i;

	h = (size_t)snprintf(hdr, sizeof(hdr), "tree %zu", len) + 1;
	n = h + len;
	nb = n / 64;
	if (!(s = malloc(n)) || !(st = malloc((nb + 1) * sizeof(*st)))) {
		free(s);
		return wf_error_oom();
	}
	memcpy(s, hdr, h);
	memcpy(s + h, data, len);
	for (i = 0; like && i < NMID; i++)
		if (b->mid[i].s && git_oid_equal(&b->mid[i].id, like)) {
			m = &b->mid[i];
			break;
		}
	if (m) {
		size_t max = (m->len < n ? m->len : n) / 64;

		while (k < max && memcmp(m->s + 64 * k, s + 64 * k, 64) == 0)
			k++;
		memcpy(st, m->st, (k + 1) * sizeof(*st));
	} else {
		wf_sha1_init(&st[0]);
	}
	c = st[k];
	for (i = k; i < nb; i++) {
		wf_sha1_update(&c, s + 64 * i, 64);
		st[i + 1] = c;
	}
	wf_sha1_update(&c, s + 64 * nb, n - 64 * nb);
	wf_sha1_final(out->id, &c);
	slot = &b->mid[b->mid_next];
	b->mid_next = (b->mid_next + 1) % NMID;
	free(slot->s);
	free(slot->st);
	slot->id = *out;
	slot->s = s;
	slot->len = n;
	slot->st = st;
	return 0;
}

/*
 * `id` is in the database already: it must be the same object.  A
 * different one is a SHA-1 collision, never to be taken for ours.
 */
static int
same_object(struct backend *b, git_odb *odb, const git_oid *id,
    const void *data, size_t len, git_object_t type)
{
	git_odb_object *obj = NULL;
	const struct obj *o = find(b, id);
	char hex[GIT_OID_HEXSZ + 1];
	int same;

	if (o) {
		same = o->type == type && o->len == len && memcmp(o->data,
		    data, len) == 0;
	} else if (git_odb_read(&obj, odb, id) == 0) {
		same = git_odb_object_type(obj) == type &&
		    git_odb_object_size(obj) == len &&
		    memcmp(git_odb_object_data(obj), data, len) == 0;
		git_odb_object_free(obj);
	} else {
		return wf_error_set_git(WF_EOS, "cannot read object %s",
		    git_oid_tostr(hex, sizeof(hex), id));
	}
	if (!same)
		return wf_error_set(WF_ECONFLICT, "object %s: the repository "
		    "has a different object with this id (a SHA-1 collision)",
		    git_oid_tostr(hex, sizeof(hex), id));
	return 0;
}

/* wf_pack_write(), and wf_pack_write_owned() when `owned`. */
static int
write_object(git_oid *out, git_odb *odb, const void *data, size_t len,
    git_object_t type, const git_oid *like, unsigned char *owned)
{
	struct backend *b = find_backend(odb);
	int error;

	if (!b) {
		error = git_odb_write(out, odb, data, len, type) < 0 ?
		    wf_error_set_git(WF_EOS, "cannot write an object") : 0;
		goto out;
	}
	if (type == GIT_OBJECT_TREE) {
		if ((error = hash_tree(out, b, data, len, like)) < 0)
			goto out;
	} else if (git_odb_hash(out, data, len, type) < 0) {
		error = wf_error_set_git(WF_ECONFLICT, "cannot hash an object");
		goto out;
	}
	/*
	 * Already there: compared, and still written to memory when it is
	 * only on disk, so that the pack of this batch holds every object
	 * the batch names (a loose one could be pruned meanwhile).
	 */
	if (find(b, out)) {
		error = same_object(b, odb, out, data, len, type);
		goto out;
	}
	if (git_odb_exists_ext(odb, out, GIT_ODB_LOOKUP_NO_REFRESH) &&
	    (error = same_object(b, odb, out, data, len, type)) < 0)
		goto out;
	return put_mem(b, out, data, len, type, type == GIT_OBJECT_BLOB ?
	    like : NULL, owned);
out:
	free(owned);
	return error;
}

int
wf_pack_write(git_oid *out, git_odb *odb, const void *data, size_t len,
    git_object_t type, const git_oid *like)
{
	return write_object(out, odb, data, len, type, like, NULL);
}

int
wf_pack_write_owned(git_oid *out, git_odb *odb, void *data, size_t len,
    git_object_t type, const git_oid *like)
{
	return write_object(out, odb, data, len, type, like, data);
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
	if (git_odb_init_backend(&b->parent, GIT_ODB_BACKEND_VERSION) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot set up an in-memory "
		    "object store");
		free(b);
		goto out;
	}
	if (pthread_mutex_init(&b->lock, NULL) != 0) {
		free(b);
		error = wf_error_oom();
		goto out;
	}
	if (pthread_cond_init(&b->more, NULL) != 0) {
		pthread_mutex_destroy(&b->lock);
		free(b);
		error = wf_error_oom();
		goto out;
	}
	if (pthread_cond_init(&b->idle, NULL) != 0) {
		pthread_cond_destroy(&b->more);
		pthread_mutex_destroy(&b->lock);
		free(b);
		error = wf_error_oom();
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

/* A file written through a buffer, hashed as it goes. */
struct out {
	int fd;
	const char *path;
	struct wf_sha1 sha;
	unsigned char buf[65536];
	size_t n;
	uint64_t off;		/* bytes written so far */
};

static int
out_flush(struct out *o)
{
	size_t done = 0;
	ssize_t w;

	while (done < o->n) {
		if ((w = write(o->fd, o->buf + done, o->n - done)) < 0) {
			if (errno == EINTR)
				continue;
			return wf_error_set_errno(WF_EOS, "cannot write '%s'",
			    o->path);
		}
		done += (size_t)w;
	}
	o->n = 0;
	return 0;
}

static int
out_put(struct out *o, const void *data, size_t len)
{
	const unsigned char *d = data;
	size_t take;
	int error;

	wf_sha1_update(&o->sha, d, len);
	o->off += len;
	while (len > 0) {
		if (o->n == sizeof(o->buf) && (error = out_flush(o)) < 0)
			return error;
		take = sizeof(o->buf) - o->n < len ? sizeof(o->buf) - o->n : len;
		memcpy(o->buf + o->n, d, take);
		o->n += take;
		d += take;
		len -= take;
	}
	return 0;
}

static void
put32(unsigned char *b, uint32_t v)
{
	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
}

/* What the index needs of each object written. */
struct entry {
	git_oid id;
	uint64_t off;
	uint32_t crc;
};

static int
entry_cmp(const void *a, const void *b)
{
	return git_oid_cmp(&((const struct entry *)a)->id,
	    &((const struct entry *)b)->id);
}

/*
 * Write one pack entry: its header (type, size, and for an OFS_DELTA the
 * distance back to its base), then data[0..len) as a zlib stream of its
 * own, or the stream zdata[0..zlen) made of it already (zdata not NULL).
 * Records its offset and CRC-32 in *e.
 */
static int
put_entry(struct out *o, struct entry *e, struct libdeflate_compressor *z,
    unsigned char **zbuf,
    size_t *zcap, const void *data, size_t len, int type, uint64_t base,
    const unsigned char *zdata, size_t zlen)
{
	unsigned char hdr[32];
	size_t h = 0, v = len;
	int error;

	e->off = o->off;
	hdr[h] = (unsigned char)((type << 4) | (v & 0x0f));
	for (v >>= 4; v; v >>= 7) {
		hdr[h++] |= 0x80;
		hdr[h] = (unsigned char)(v & 0x7f);
	}
	h++;
	if (type == OFS_DELTA) {
		unsigned char ofs[16];
		size_t pos = sizeof(ofs) - 1;
		uint64_t d = e->off - base;

		ofs[pos] = (unsigned char)(d & 0x7f);
		while (d >>= 7)
			ofs[--pos] = (unsigned char)(0x80 | (--d & 0x7f));
		memcpy(hdr + h, ofs + pos, sizeof(ofs) - pos);
		h += sizeof(ofs) - pos;
	}
	if (!zdata) {
		if ((error = compress_into(z, zbuf, zcap, &zlen, data,
		    len)) < 0)
			return error;
		zdata = *zbuf;
	}
	e->crc = libdeflate_crc32(libdeflate_crc32(0, hdr, h), zdata, zlen);
	if ((error = out_put(o, hdr, h)) < 0 ||
	    (error = out_put(o, zdata, zlen)) < 0)
		return error;
	return 0;
}

/* The index (version 2) of the pack whose checksum is `sum`. */
static int
put_index(struct out *o, struct entry *e, size_t n, const unsigned char *sum)
{
	unsigned char b[8], digest[20];
	uint32_t fan[256], nlarge = 0;
	size_t i;
	int error;

	qsort(e, n, sizeof(*e), entry_cmp);
	memset(fan, 0, sizeof(fan));
	for (i = 0; i < n; i++)
		fan[e[i].id.id[0]]++;
	for (i = 1; i < 256; i++)
		fan[i] += fan[i - 1];
	if ((error = out_put(o, "\377tOc\0\0\0\2", 8)) < 0)
		return error;
	for (i = 0; i < 256; i++) {
		put32(b, fan[i]);
		if ((error = out_put(o, b, 4)) < 0)
			return error;
	}
	for (i = 0; i < n; i++)
		if ((error = out_put(o, e[i].id.id, GIT_OID_RAWSZ)) < 0)
			return error;
	for (i = 0; i < n; i++) {
		put32(b, e[i].crc);
		if ((error = out_put(o, b, 4)) < 0)
			return error;
	}
	for (i = 0; i < n; i++) {
		put32(b, e[i].off < 0x80000000u ? (uint32_t)e[i].off :
		    0x80000000u | nlarge++);
		if ((error = out_put(o, b, 4)) < 0)
			return error;
	}
	for (i = 0; i < n; i++) {
		if (e[i].off < 0x80000000u)
			continue;
		put32(b, (uint32_t)(e[i].off >> 32));
		put32(b + 4, (uint32_t)e[i].off);
		if ((error = out_put(o, b, 8)) < 0)
			return error;
	}
	if ((error = out_put(o, sum, 20)) < 0)
		return error;
	wf_sha1_final(digest, &o->sha);
	if ((error = out_put(o, digest, 20)) < 0)
		return error;
	return out_flush(o);
}

/* A new file for writing in `dir`; *path is its malloc'ed name. */
static int
temp_file(int *fd, char **path, const char *dir, const char *what)
{
	size_t n = strlen(dir) + 32;

	if (!(*path = malloc(n)))
		return wf_error_oom();
	snprintf(*path, n, "%stmp_%s_XXXXXX", dir, what);
	if ((*fd = mkstemp(*path)) < 0) {
		int error = wf_error_set_errno(WF_EOS, "cannot create a file in "
		    "'%s'", dir);

		free(*path);
		*path = NULL;
		return error;
	}
	return 0;
}

/* Make a written file durable and read-only, and give it its name. */
static int
seal(int fd, const char *from, const char *to)
{
	if (fchmod(fd, 0444) < 0 || fdatasync(fd) < 0)
		return wf_error_set_errno(WF_EOS, "cannot write '%s'", from);
	if (rename(from, to) < 0)
		return wf_error_set_errno(WF_EOS, "cannot rename '%s' to '%s'",
		    from, to);
	return 0;
}

/*
 * The pack is written here, not by git_packbuilder_write(): that one
 * searches for deltas among all the objects and then indexes the pack
 * again through git_indexer, hashing every object a second time, which
 * for a batch of a thousand changes costs five times the build.  The
 * objects' ids are known, so the index is written directly.
 */
int
wf_pack_flush(struct wf_pack *p)
{
	struct backend *b = p->b;
	struct out *o = NULL;
	struct entry *e = NULL;
	struct libdeflate_compressor *z = NULL, *zs = NULL;
	unsigned char hdr[12], sum[20], *zbuf = NULL;
	char *dir = NULL, *tmp_pack = NULL, *tmp_idx = NULL, *final = NULL;
	const char *common = git_repository_commondir(p->repo);
	size_t n = p->b->nr, i, zcap = 0, len;
	int error, pfd = -1, ifd = -1;
	struct {
		const unsigned char *data;
		size_t size, depth;
		uint64_t off;
	} recent[NRECENT];
	size_t next = 0;
	git_odb *odb = NULL;

	if (n == 0)
		return 0;
	memset(recent, 0, sizeof(recent));
	len = strlen(common) + 32;
	if (!(o = calloc(1, sizeof(*o))) || !(e = calloc(n, sizeof(*e))) ||
	    !(dir = malloc(len)) || !(final = malloc(len + 64))) {
		error = wf_error_oom();
		goto out;
	}
	snprintf(dir, len, "%s%sobjects/pack/", common,
	    common[0] && common[strlen(common) - 1] == '/' ? "" : "/");
	/*
	 * Most of a batch is trees, and the half of a tree that is ids
	 * does not compress; the rest is small, deltas and blobs and
	 * commits of a few hundred bytes, for which setting up a zlib
	 * stream costs more than compressing saves: those are stored,
	 * larger blobs compressed fast.
	 */
	if (!(z = libdeflate_alloc_compressor(1)) ||
	    !(zs = libdeflate_alloc_compressor(0))) {
		error = wf_error_oom();
		goto out;
	}
	if ((error = compress_rest(b, z)) < 0)
		goto out;
	if ((error = temp_file(&pfd, &tmp_pack, dir, "pack")) < 0)
		goto out;
	o->fd = pfd;
	o->path = tmp_pack;
	wf_sha1_init(&o->sha);
	memcpy(hdr, "PACK", 4);
	put32(hdr + 4, 2);
	put32(hdr + 8, (uint32_t)n);
	if ((error = out_put(o, hdr, 12)) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		const struct obj *ob = &b->objs[i];
		const unsigned char *data = ob->data;
		unsigned char *delta = NULL;
		size_t size = ob->len, dlen = 0, best = 0, j, k;

		e[i].id = ob->id;
		if (ob->z && ob->delta) {
			error = put_entry(o, &e[i], NULL, NULL, NULL, NULL,
			    ob->dsize, OFS_DELTA, e[ob->base].off, ob->z,
			    ob->zlen);
			if (error < 0)
				goto out;
			continue;
		}
		if (ob->type != GIT_OBJECT_TREE) {
			error = put_entry(o, &e[i], size < SMALL ? zs : z,
			    &zbuf, &zcap, data, size, (int)ob->type, 0, ob->z,
			    ob->zlen);
			if (error < 0)
				goto out;
			continue;
		}
		/*
		 * A batch writes each directory again and again, one entry
		 * changed each time: a tree is a delta on the most like of
		 * the last trees written, chains kept short for readers.
		 */
		for (j = 0; j < NRECENT; j++) {
			unsigned char *d;
			size_t l;

			/*
			 * Newest first, and a delta of a few entries' size
			 * ends the search: the older trees cannot beat it
			 * by much, and comparing with each cost a third of
			 * the flush.
			 */
			if (delta && dlen <= GOOD_DELTA)
				break;
			k = (next + NRECENT - 1 - j) % NRECENT;
			if (!recent[k].data || recent[k].depth >= MAX_DEPTH ||
			    recent[k].size > 2 * size || size > 2 *
			    recent[k].size)
				continue;
			if ((error = wf_delta_tree(&d, &l, recent[k].data,
			    recent[k].size, data, size)) < 0)
				goto out;
			if (d && (!delta || l < dlen)) {
				free(delta);
				delta = d;
				dlen = l;
				best = k;
			} else {
				free(d);
			}
		}
		if (delta)
			error = put_entry(o, &e[i], zs, &zbuf, &zcap, delta,
			    dlen, OFS_DELTA, recent[best].off, NULL, 0);
		else
			error = put_entry(o, &e[i], zs, &zbuf, &zcap, data, size,
			    (int)ob->type, 0, NULL, 0);
		free(delta);
		if (error < 0)
			goto out;
		/* Keep it among the recent trees, in place of the oldest. */
		recent[next].data = data;
		recent[next].size = size;
		recent[next].off = e[i].off;
		recent[next].depth = delta ? recent[best].depth + 1 : 0;
		next = (next + 1) % NRECENT;
	}
	wf_sha1_final(sum, &o->sha);
	if ((error = out_put(o, sum, 20)) < 0 || (error = out_flush(o)) < 0)
		goto out;
	if ((error = temp_file(&ifd, &tmp_idx, dir, "idx")) < 0)
		goto out;
	o->fd = ifd;
	o->path = tmp_idx;
	o->off = 0;
	wf_sha1_init(&o->sha);
	if ((error = put_index(o, e, n, sum)) < 0)
		goto out;
	/* The pack first: an index names only a pack that is there. */
	snprintf(final, len + 64, "%spack-", dir);
	for (i = 0; i < 20; i++)
		snprintf(final + strlen(final), 3, "%02x", sum[i]);
	strcat(final, ".pack");
	if ((error = seal(pfd, tmp_pack, final)) < 0)
		goto out;
	free(tmp_pack);
	tmp_pack = NULL;
	strcpy(final + strlen(final) - 5, ".idx");
	if ((error = seal(ifd, tmp_idx, final)) < 0)
		goto out;
	free(tmp_idx);
	tmp_idx = NULL;
	/* Let the repository see the new pack before the objects leave. */
	if (git_repository_odb(&odb, p->repo) < 0 || git_odb_refresh(odb) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot read the new pack");
		goto out;
	}
	wf_pack_discard(p);
	error = 0;
out:
	git_odb_free(odb);
	if (z)
		libdeflate_free_compressor(z);
	if (zs)
		libdeflate_free_compressor(zs);
	if (pfd >= 0)
		close(pfd);
	if (ifd >= 0)
		close(ifd);
	if (tmp_pack)
		unlink(tmp_pack);
	if (tmp_idx)
		unlink(tmp_idx);
	free(tmp_pack);
	free(tmp_idx);
	free(final);
	free(dir);
	free(zbuf);
	free(e);
	free(o);
	return error;
}

void
wf_pack_discard(struct wf_pack *p)
{
	empty(p->b);
}

void
wf_pack_free(struct wf_pack *p)
{
	if (!p)
		return;
	wf_pack_discard(p);
	free(p);
}
