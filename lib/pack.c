#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>
#include <zlib.h>

#include "error.h"
#include "pack.h"
#include "sha1.h"

/*
 * libgit2 1.5's git_mempack_dump() packs only the commits it holds and
 * everything they reach (whole trees, old blobs too), and nothing that
 * no commit in memory reaches.  So the mempack is wrapped: the wrapper
 * records the id of every object written, and the flush packs exactly
 * those.
 */
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

struct backend {
	git_odb_backend parent;
	git_odb_backend *mem;
	git_oid *ids;		/* what is in memory, in the order written */
	git_oid *likes;		/* likes[i]: the blob ids[i] was made from */
	unsigned char *has_like;
	size_t nr, alloc;
	struct mid mid[NMID];
	size_t mid_next;	/* the slot to reuse next */
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

/*
 * Put an object that is not in memory yet there, and note its id and
 * what it was made from (`like`, NULL: nothing known).
 */
static int
put_mem(struct backend *b, const git_oid *id, const void *data, size_t len,
    git_object_t type, const git_oid *like)
{
	int error;

	if (b->nr == b->alloc) {
		size_t alloc = b->alloc ? b->alloc * 2 : 256;
		git_oid *ids = realloc(b->ids, alloc * sizeof(*ids));
		git_oid *likes;
		unsigned char *has;

		if (ids)
			b->ids = ids;
		likes = ids ? realloc(b->likes, alloc * sizeof(*likes)) : NULL;
		if (likes)
			b->likes = likes;
		has = likes ? realloc(b->has_like, alloc) : NULL;
		if (!has) {
			git_error_set_oom();
			return -1;
		}
		b->has_like = has;
		b->alloc = alloc;
	}
	if ((error = b->mem->write(b->mem, id, data, len, type)) < 0)
		return error;
	b->has_like[b->nr] = like != NULL;
	if (like)
		b->likes[b->nr] = *like;
	b->ids[b->nr++] = *id;
	return 0;
}

static int
b_write(git_odb_backend *be, const git_oid *id, const void *data, size_t len,
    git_object_t type)
{
	struct backend *b = (struct backend *)be;

	if (b->mem->exists(b->mem, id))
		return 0;
	return put_mem(b, id, data, len, type, NULL);
}

static void
b_free(git_odb_backend *be)
{
	struct backend *b = (struct backend *)be;
	size_t i;

	b->mem->free(b->mem);
	for (i = 0; i < NMID; i++) {
		free(b->mid[i].s);
		free(b->mid[i].st);
	}
	free(b->ids);
	free(b->likes);
	free(b->has_like);
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
	void *mdata = NULL;
	size_t mlen;
	git_object_t mtype;
	char hex[GIT_OID_HEXSZ + 1];
	int same;

	if (b->mem->read(&mdata, &mlen, &mtype, b->mem, id) == 0) {
		same = mtype == type && mlen == len && memcmp(mdata, data,
		    len) == 0;
		git_odb_backend_data_free(b->mem, mdata);
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

int
wf_pack_write(git_oid *out, git_odb *odb, const void *data, size_t len,
    git_object_t type, const git_oid *like)
{
	struct backend *b = find_backend(odb);
	int error;

	if (!b) {
		if (git_odb_write(out, odb, data, len, type) < 0)
			return wf_error_set_git(WF_EOS, "cannot write an object");
		return 0;
	}
	if (type == GIT_OBJECT_TREE) {
		if ((error = hash_tree(out, b, data, len, like)) < 0)
			return error;
	} else if (git_odb_hash(out, data, len, type) < 0) {
		return wf_error_set_git(WF_ECONFLICT, "cannot hash an object");
	}
	/*
	 * Already there: compared, and still written to memory when it is
	 * only on disk, so that the pack of this batch holds every object
	 * the batch names (a loose one could be pruned meanwhile).
	 */
	if (b->mem->exists(b->mem, out))
		return same_object(b, odb, out, data, len, type);
	if (git_odb_exists_ext(odb, out, GIT_ODB_LOOKUP_NO_REFRESH) &&
	    (error = same_object(b, odb, out, data, len, type)) < 0)
		return error;
	if (put_mem(b, out, data, len, type, type == GIT_OBJECT_BLOB ? like :
	    NULL) < 0)
		return wf_error_set_git(WF_EOS, "cannot write an object");
	return 0;
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

#define OFS_DELTA 6
/* Trees a new tree may be a delta on, and how deep chains may grow. */
#define NRECENT 8
#define MAX_DEPTH 50
/* A delta this small (an entry or two changed) is taken at once. */
#define GOOD_DELTA 128
/* Objects smaller than this are stored, not compressed. */
#define SMALL 2048

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

/* data[0..len) as a zlib stream of its own, in (*zbuf)[0..*zlen). */
static int
compress_into(z_stream *z, unsigned char **zbuf, size_t *zcap, size_t *zlen,
    const void *data, size_t len)
{
	size_t need = deflateBound(z, (uLong)len);
	int rc;

	if (need > *zcap) {
		unsigned char *nb = realloc(*zbuf, need);

		if (!nb)
			return wf_error_oom();
		*zbuf = nb;
		*zcap = need;
	}
	if (deflateReset(z) != Z_OK)
		return wf_error_set(WF_EOS, "cannot compress an object");
	z->next_in = (Bytef *)(uintptr_t)data;
	z->avail_in = (uInt)len;
	z->next_out = *zbuf;
	z->avail_out = (uInt)*zcap;
	if ((rc = deflate(z, Z_FINISH)) != Z_STREAM_END)
		return wf_error_set(WF_EOS, "cannot compress an object (%d)",
		    rc);
	*zlen = z->total_out;
	return 0;
}

/*
 * Write one pack entry: its header (type, size, and for an OFS_DELTA the
 * distance back to its base), then data[0..len) as a zlib stream of its
 * own, or the stream zdata[0..zlen) made of it already (zdata not NULL).
 * Records its offset and CRC-32 in *e.
 */
static int
put_entry(struct out *o, struct entry *e, z_stream *z, unsigned char **zbuf,
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
	e->crc = (uint32_t)crc32(crc32(0, hdr, (uInt)h), zdata, (uInt)zlen);
	if ((error = out_put(o, hdr, h)) < 0 ||
	    (error = out_put(o, zdata, zlen)) < 0)
		return error;
	return 0;
}

/*
 * Large blobs (and commits) are most of a flush's time, all of it
 * zlib: they are compressed before the pack is written, by this thread
 * and one more, each taking the next object to do.  Each object's
 * stream is the same whichever thread makes it, so the pack is too.
 */
/* Below this much data to compress, a second thread is not worth it. */
#define PRE_MIN (256 * 1024)

/*
 * An object compressed ahead: z[0..len), the object itself or, when
 * `delta`, a delta of `dsize` bytes on the object ids[base].
 */
struct pre {
	unsigned char *z;
	size_t len, dsize, base;
	int delta;
};

struct pre_job {
	git_odb_backend *mem;
	const git_oid *ids;
	const size_t *picks;	/* what to compress, as indices into ids */
	const size_t *bases;	/* bases[k]: a base for ids[k], or SIZE_MAX */
	size_t npicks;
	struct pre *pre;	/* by index into ids */
	pthread_mutex_t lock;
	size_t next;
	int error;		/* the first one, under lock */
	char message[512];
};

static int make_blob_delta(unsigned char **out, size_t *len,
    const unsigned char *b, size_t blen, const unsigned char *t,
    size_t tlen);

/*
 * The delta of `data` on its base (ids[base]) in j->pre[k], compressed,
 * when it is much smaller than `data`; else nothing.
 */
static int
pre_delta(struct pre_job *j, z_stream *z, size_t k, const void *data,
    size_t size)
{
	void *bdata;
	unsigned char *d = NULL, *buf = NULL;
	size_t bsize, dlen, cap = 0, len;
	git_object_t btype;
	int error;

	if (j->mem->read(&bdata, &bsize, &btype, j->mem,
	    &j->ids[j->bases[k]]) < 0)
		return wf_error_set_git(WF_EOS, "cannot read a new object");
	error = btype == GIT_OBJECT_BLOB ? make_blob_delta(&d, &dlen, bdata,
	    bsize, data, size) : 0;
	git_odb_backend_data_free(j->mem, bdata);
	if (error < 0 || !d)
		return error;
	if ((error = compress_into(z, &buf, &cap, &len, d, dlen)) == 0) {
		j->pre[k].z = buf;
		j->pre[k].len = len;
		j->pre[k].dsize = dlen;
		j->pre[k].base = j->bases[k];
		j->pre[k].delta = 1;
	}
	free(d);
	return error;
}

static void *
pre_work(void *arg)
{
	struct pre_job *j = arg;
	z_stream z;
	int error = 0;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 1, Z_DEFLATED, 15, 6, Z_FIXED) != Z_OK)
		error = wf_error_set(WF_EOS, "cannot set up compression");
	while (error == 0) {
		void *data = NULL;
		unsigned char *buf = NULL;
		size_t k, size, cap = 0, len = 0;
		git_object_t type;

		pthread_mutex_lock(&j->lock);
		k = j->error ? j->npicks : j->next++;
		pthread_mutex_unlock(&j->lock);
		if (k >= j->npicks)
			break;
		k = j->picks[k];
		if (j->mem->read(&data, &size, &type, j->mem, &j->ids[k]) < 0) {
			error = wf_error_set_git(WF_EOS, "cannot read a new "
			    "object");
			break;
		}
		if (j->bases[k] != SIZE_MAX &&
		    ((error = pre_delta(j, &z, k, data, size)) < 0 ||
		    j->pre[k].z)) {
			git_odb_backend_data_free(j->mem, data);
			continue;
		}
		error = compress_into(&z, &buf, &cap, &len, data, size);
		git_odb_backend_data_free(j->mem, data);
		if (error < 0) {
			free(buf);
			break;
		}
		j->pre[k].z = buf;
		j->pre[k].len = len;
	}
	deflateEnd(&z);
	if (error < 0) {
		pthread_mutex_lock(&j->lock);
		if (!j->error) {
			j->error = error;
			snprintf(j->message, sizeof(j->message), "%s",
			    wf_error_last());
		}
		pthread_mutex_unlock(&j->lock);
	}
	return NULL;
}

struct id_index {
	git_oid id;
	size_t i;
};

static int
id_index_cmp(const void *a, const void *b)
{
	return git_oid_cmp(&((const struct id_index *)a)->id,
	    &((const struct id_index *)b)->id);
}

/*
 * For each blob made from another one written before it here (likes[],
 * as wf_pack_write() was told), the index of that one in bases[], so it
 * can be stored as a delta on it; SIZE_MAX for the others.  Chains are
 * kept to MAX_DEPTH links, counting every link as a delta.
 */
static int
find_bases(size_t *bases, const struct backend *b, size_t n)
{
	struct id_index *byid;
	size_t *depth, i, lo, hi, mid;
	int c;

	for (i = 0; i < n; i++)
		bases[i] = SIZE_MAX;
	for (i = 0; i < n && !b->has_like[i]; i++)
		;
	if (i == n)
		return 0;
	if (!(byid = malloc(n * sizeof(*byid))) ||
	    !(depth = calloc(n, sizeof(*depth)))) {
		free(byid);
		return wf_error_oom();
	}
	for (i = 0; i < n; i++) {
		byid[i].id = b->ids[i];
		byid[i].i = i;
	}
	qsort(byid, n, sizeof(*byid), id_index_cmp);
	for (i = 0; i < n; i++) {
		if (!b->has_like[i])
			continue;
		for (lo = 0, hi = n; lo < hi;) {
			mid = lo + (hi - lo) / 2;
			c = git_oid_cmp(&byid[mid].id, &b->likes[i]);
			if (c == 0) {
				lo = mid;
				break;
			}
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < n && git_oid_equal(&byid[lo].id, &b->likes[i]) &&
		    byid[lo].i < i && depth[byid[lo].i] < MAX_DEPTH) {
			bases[i] = byid[lo].i;
			depth[i] = depth[byid[lo].i] + 1;
		}
	}
	free(byid);
	free(depth);
	return 0;
}

/*
 * Compress ahead the objects of `b` that are not trees and not small,
 * a blob made from one written before it as a delta on that one when
 * that is much smaller: *out is then an array by index (the caller
 * frees each .z and the array), else NULL.  A second thread helps when
 * there is enough to do.
 */
static int
precompress(struct pre **out, const struct backend *b, size_t n)
{
	git_odb_backend *mem = b->mem;
	const git_oid *ids = b->ids;
	struct pre_job j;
	pthread_t t;
	size_t i, total = 0, *picks = NULL, *bases = NULL;
	int started = 0, error;

	*out = NULL;
	memset(&j, 0, sizeof(j));
	if (!(picks = malloc(n * sizeof(*picks))) ||
	    !(bases = malloc(n * sizeof(*bases)))) {
		free(picks);
		return wf_error_oom();
	}
	for (i = 0; i < n; i++) {
		size_t size;
		git_object_t type;

		if (mem->read_header(&size, &type, mem, &ids[i]) < 0) {
			error = wf_error_set_git(WF_EOS, "cannot read a new "
			    "object");
			goto out;
		}
		if (type != GIT_OBJECT_TREE && size >= SMALL) {
			picks[j.npicks++] = i;
			total += size;
		}
	}
	if ((error = find_bases(bases, b, n)) < 0)
		goto out;
	if (j.npicks == 0)
		goto out;
	if (!(j.pre = calloc(n, sizeof(*j.pre)))) {
		error = wf_error_oom();
		goto out;
	}
	j.mem = mem;
	j.ids = ids;
	j.picks = picks;
	j.bases = bases;
	pthread_mutex_init(&j.lock, NULL);
	/* Without a second thread, this one does it all. */
	if (total >= PRE_MIN)
		started = pthread_create(&t, NULL, pre_work, &j) == 0;
	pre_work(&j);
	if (started)
		pthread_join(t, NULL);
	pthread_mutex_destroy(&j.lock);
	if (j.error) {
		for (i = 0; i < n; i++)
			free(j.pre[i].z);
		free(j.pre);
		error = wf_error_set(j.error, "%s", j.message);
		goto out;
	}
	*out = j.pre;
out:
	free(picks);
	free(bases);
	return error;
}

/* A size as git's delta header writes it. */
static size_t
put_varint(unsigned char *b, size_t v)
{
	size_t n = 0;

	do {
		b[n] = (unsigned char)(v & 0x7f);
		if (v >>= 7)
			b[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

/* Copy base[off..off+len) in the delta at b; returns the bytes used. */
static size_t
put_copy(unsigned char *b, size_t off, size_t len)
{
	size_t n = 1, i;
	unsigned char op = 0x80;

	for (i = 0; i < 4; i++)
		if ((off >> (8 * i)) & 0xff) {
			op |= (unsigned char)(1 << i);
			b[n++] = (unsigned char)(off >> (8 * i));
		}
	for (i = 0; i < 3; i++)
		if ((len >> (8 * i)) & 0xff) {
			op |= (unsigned char)(0x10 << i);
			b[n++] = (unsigned char)(len >> (8 * i));
		}
	b[0] = op;
	return n;
}

/*
 * The bytes `b` and `t` share at their heads, and then at their tails
 * (never overlapping the head), compared eight bytes at a time.
 */
static void
common_ends(size_t *headp, size_t *tailp, const unsigned char *b,
    size_t blen, const unsigned char *t, size_t tlen)
{
	size_t head = 0, tail = 0, max = blen < tlen ? blen : tlen;

	while (head + 8 <= max && memcmp(b + head, t + head, 8) == 0)
		head += 8;
	while (head < max && b[head] == t[head])
		head++;
	while (tail + 8 <= max - head &&
	    memcmp(b + blen - tail - 8, t + tlen - tail - 8, 8) == 0)
		tail += 8;
	while (tail < max - head && b[blen - 1 - tail] == t[tlen - 1 - tail])
		tail++;
	*headp = head;
	*tailp = tail;
}

/*
 * A delta that makes `t` from `b`: the common head and tail copied, the
 * middle inserted, which is all an edited tree needs.  *out is a new
 * buffer of *len bytes; NULL (and 0) when it would not be much smaller
 * than `t` itself.
 */
static int
make_delta(unsigned char **out, size_t *len, const unsigned char *b,
    size_t blen, const unsigned char *t, size_t tlen)
{
	size_t head, tail, mid, n = 0, off, chunk;
	unsigned char *d;

	*out = NULL;
	*len = 0;
	/* Eight bytes at a time, then the rest. */
	common_ends(&head, &tail, b, blen, t, tlen);
	mid = tlen - head - tail;
	if (head + tail < tlen / 2)
		return 0;
	/* Headers, copies of at most 64 KiB, inserts of at most 127. */
	if (!(d = malloc(32 + (head / 0x10000 + tail / 0x10000 + 2) * 8 +
	    mid + mid / 127 + 1)))
		return wf_error_oom();
	n += put_varint(d + n, blen);
	n += put_varint(d + n, tlen);
	for (off = 0; off < head; off += chunk) {
		chunk = head - off < 0x10000 ? head - off : 0x10000;
		n += put_copy(d + n, off, chunk == 0x10000 ? 0 : chunk);
	}
	for (off = 0; off < mid; off += chunk) {
		chunk = mid - off < 127 ? mid - off : 127;
		d[n++] = (unsigned char)chunk;
		memcpy(d + n, t + head + off, chunk);
		n += chunk;
	}
	for (off = 0; off < tail; off += chunk) {
		chunk = tail - off < 0x10000 ? tail - off : 0x10000;
		n += put_copy(d + n, blen - tail + off, chunk == 0x10000 ? 0 :
		    chunk);
	}
	*out = d;
	*len = n;
	return 0;
}

/*
 * A delta that makes the blob `t` from the blob `b`, for a file edited
 * in a few places: the common head and tail are copied, and in between
 * each 16-byte block of `t` whose rolling hash names a block of `b`
 * with the same bytes starts a copy, grown both ways as far as the
 * bytes agree; the rest is inserted.  *out is a new buffer of *len
 * bytes; NULL (and 0) when the delta would not be under half of `t`.
 */
#define BLOCK 16
#define HASH_MUL 0x01000193u

struct delta_out {
	unsigned char *d;
	size_t n, cap;
};

/* Room for `need` more bytes within the cap: 0, else -1. */
static int
delta_room(struct delta_out *o, size_t need)
{
	return o->cap - o->n >= need ? 0 : -1;
}

static int
delta_copy(struct delta_out *o, size_t off, size_t len)
{
	size_t chunk;

	for (; len > 0; off += chunk, len -= chunk) {
		chunk = len < 0x10000 ? len : 0x10000;
		if (delta_room(o, 8) < 0)
			return -1;
		o->n += put_copy(o->d + o->n, off, chunk == 0x10000 ? 0 :
		    chunk);
	}
	return 0;
}

static int
delta_insert(struct delta_out *o, const unsigned char *p, size_t len)
{
	size_t chunk;

	for (; len > 0; p += chunk, len -= chunk) {
		chunk = len < 127 ? len : 127;
		if (delta_room(o, chunk + 1) < 0)
			return -1;
		o->d[o->n++] = (unsigned char)chunk;
		memcpy(o->d + o->n, p, chunk);
		o->n += chunk;
	}
	return 0;
}

static uint32_t
block_hash(const unsigned char *p)
{
	uint32_t h = 0;
	size_t i;

	for (i = 0; i < BLOCK; i++)
		h = h * HASH_MUL + p[i];
	return h;
}

static int
make_blob_delta(unsigned char **out, size_t *len, const unsigned char *b,
    size_t blen, const unsigned char *t, size_t tlen)
{
	struct delta_out o;
	uint32_t *slot = NULL, h, top = 1, mask;
	size_t head, tail, tend, bend, nslot, pos, ins, k, i;

	*out = NULL;
	*len = 0;
	/* Offsets in the base are 32 bits, in the delta and in slot[]. */
	if (blen >= UINT32_MAX)
		return 0;
	common_ends(&head, &tail, b, blen, t, tlen);
	tend = tlen - tail;
	bend = blen - tail;
	o.n = 0;
	o.cap = tlen / 2;
	if (o.cap < 64 || !(o.d = malloc(o.cap)))
		return o.cap < 64 ? 0 : wf_error_oom();
	o.n += put_varint(o.d + o.n, blen);
	o.n += put_varint(o.d + o.n, tlen);
	if (delta_copy(&o, 0, head) < 0)
		goto none;
	/* The blocks of the base between head and tail, by hash. */
	for (nslot = 16; nslot < 2 * ((bend - head) / BLOCK + 1); nslot *= 2)
		;
	mask = (uint32_t)(nslot - 1);
	if (bend - head >= BLOCK && tend - head >= BLOCK) {
		if (!(slot = calloc(nslot, sizeof(*slot)))) {
			free(o.d);
			return wf_error_oom();
		}
		for (k = head; k + BLOCK <= bend; k += BLOCK)
			slot[block_hash(b + k) & mask] = (uint32_t)(k + 1);
		for (i = 1; i < BLOCK; i++)
			top *= HASH_MUL;
	}
	ins = pos = head;
	h = slot && pos + BLOCK <= tend ? block_hash(t + pos) : 0;
	while (slot && pos + BLOCK <= tend) {
		uint32_t at = slot[h & mask];
		size_t from, n;

		if (at && memcmp(b + at - 1, t + pos, BLOCK) == 0) {
			from = at - 1;
			n = BLOCK;
			while (pos + n < tend && from + n < blen &&
			    b[from + n] == t[pos + n])
				n++;
			while (pos > ins && from > 0 && b[from - 1] ==
			    t[pos - 1]) {
				pos--;
				from--;
				n++;
			}
			if (delta_insert(&o, t + ins, pos - ins) < 0 ||
			    delta_copy(&o, from, n) < 0)
				goto none;
			pos += n;
			ins = pos;
			if (pos + BLOCK <= tend)
				h = block_hash(t + pos);
			continue;
		}
		if (pos + BLOCK >= tend)
			break;
		h = (h - t[pos] * top) * HASH_MUL + t[pos + BLOCK];
		pos++;
	}
	if (delta_insert(&o, t + ins, tend - ins) < 0 ||
	    delta_copy(&o, bend, tail) < 0)
		goto none;
	free(slot);
	*out = o.d;
	*len = o.n;
	return 0;
none:
	free(slot);
	free(o.d);
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
	git_odb_backend *mem = p->b->mem;
	struct out *o = NULL;
	struct entry *e = NULL;
	z_stream z, zs;
	unsigned char hdr[12], sum[20], *zbuf = NULL;
	char *dir = NULL, *tmp_pack = NULL, *tmp_idx = NULL, *final = NULL;
	const char *common = git_repository_commondir(p->repo);
	size_t n = p->b->nr, i, zcap = 0, len;
	int error, zok = 0, zsok = 0, pfd = -1, ifd = -1;
	struct {
		void *data;
		size_t size, depth;
		uint64_t off;
	} recent[NRECENT];
	size_t next = 0;
	git_odb *odb = NULL;
	struct pre *pre = NULL;

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
	memset(&z, 0, sizeof(z));
	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&z, 1, Z_DEFLATED, 15, 6, Z_FIXED) !=
	    Z_OK) {
		error = wf_error_set(WF_EOS, "cannot set up compression");
		goto out;
	}
	zok = 1;
	if (deflateInit2(&zs, 0, Z_DEFLATED, 15, 1, Z_DEFAULT_STRATEGY) !=
	    Z_OK) {
		error = wf_error_set(WF_EOS, "cannot set up compression");
		goto out;
	}
	zsok = 1;
	if ((error = precompress(&pre, p->b, n)) < 0)
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
		void *data = NULL;
		unsigned char *delta = NULL;
		size_t size, dlen = 0, best = 0, j, k;
		git_object_t type;

		e[i].id = p->b->ids[i];
		/* Compressed ahead: only its header is needed. */
		if ((pre && pre[i].z ? mem->read_header(&size, &type, mem,
		    &e[i].id) : mem->read(&data, &size, &type, mem,
		    &e[i].id)) < 0) {
			error = wf_error_set_git(WF_EOS, "cannot read a new "
			    "object");
			goto out;
		}
		if (pre && pre[i].delta) {
			error = put_entry(o, &e[i], NULL, NULL, NULL, NULL,
			    pre[i].dsize, OFS_DELTA, e[pre[i].base].off,
			    pre[i].z, pre[i].len);
			if (error < 0)
				goto out;
			continue;
		}
		if (type != GIT_OBJECT_TREE) {
			error = put_entry(o, &e[i], size < SMALL ? &zs : &z,
			    &zbuf, &zcap, data, size, (int)type, 0,
			    pre ? pre[i].z : NULL, pre ? pre[i].len : 0);
			git_odb_backend_data_free(mem, data);
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
			if ((error = make_delta(&d, &l, recent[k].data,
			    recent[k].size, data, size)) < 0) {
				git_odb_backend_data_free(mem, data);
				goto out;
			}
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
			error = put_entry(o, &e[i], &zs, &zbuf, &zcap, delta,
			    dlen, OFS_DELTA, recent[best].off, NULL, 0);
		else
			error = put_entry(o, &e[i], &zs, &zbuf, &zcap, data, size,
			    (int)type, 0, NULL, 0);
		free(delta);
		if (error < 0) {
			git_odb_backend_data_free(mem, data);
			goto out;
		}
		/* Keep it among the recent trees, in place of the oldest. */
		git_odb_backend_data_free(mem, recent[next].data);
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
	if (pre) {
		for (i = 0; i < n; i++)
			free(pre[i].z);
		free(pre);
	}
	for (i = 0; i < NRECENT; i++)
		git_odb_backend_data_free(mem, recent[i].data);
	git_odb_free(odb);
	if (zok)
		deflateEnd(&z);
	if (zsok)
		deflateEnd(&zs);
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
