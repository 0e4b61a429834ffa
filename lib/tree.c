#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "pack.h"
#include "tree.h"

/* An entry of a raw tree, pointing into the object's data or an edit. */
struct ent {
	const char *name;
	size_t len;
	unsigned mode;
	const unsigned char *id;
};

/* An edit, sorted, with its place in the caller's array. */
struct ref {
	const struct wf_tree_edit *e;
	size_t index;
};

#define IS_TREE(mode) (((mode) & 0170000) == 0040000)

/*
 * The entries of the raw tree data[0..size) into *out (*n of them), a
 * new array pointing into `data`.
 */
static int
parse(struct ent **out, size_t *n, const unsigned char *data, size_t size)
{
	const unsigned char *p = data, *end = data + size, *nul;
	struct ent *e = NULL, *ne;
	size_t nr = 0, alloc = 0;
	unsigned mode;

	*out = NULL;
	*n = 0;
	while (p < end) {
		for (mode = 0; p < end && *p >= '0' && *p <= '7'; p++)
			mode = (mode << 3) | (unsigned)(*p - '0');
		if (p >= end || *p++ != ' ' ||
		    !(nul = memchr(p, '\0', (size_t)(end - p))) ||
		    (size_t)(end - nul) < 1 + GIT_OID_RAWSZ) {
			free(e);
			return wf_error_set(WF_EOS, "a tree is damaged");
		}
		if (nr == alloc) {
			alloc = alloc ? alloc * 2 : 64;
			if (!(ne = realloc(e, alloc * sizeof(*e)))) {
				free(e);
				return wf_error_oom();
			}
			e = ne;
		}
		e[nr].name = (const char *)p;
		e[nr].len = (size_t)(nul - p);
		e[nr].mode = mode;
		e[nr].id = nul + 1;
		nr++;
		p = nul + 1 + GIT_OID_RAWSZ;
	}
	*out = e;
	*n = nr;
	return 0;
}

static int
read_tree(git_odb_object **out, git_odb *odb, const git_oid *id)
{
	if (git_odb_read(out, odb, id) < 0)
		return wf_error_set_git(WF_EOS, "cannot read a tree");
	if (git_odb_object_type(*out) != GIT_OBJECT_TREE) {
		git_odb_object_free(*out);
		*out = NULL;
		return wf_error_set(WF_EOS, "an object named as a tree is not "
		    "one");
	}
	return 0;
}

int
wf_tree_lookup(struct wf_tree_entry *out, git_repository *repo,
    const git_oid *tree, const char *path)
{
	git_odb *odb = NULL;
	git_odb_object *obj = NULL;
	git_oid cur = *tree;
	const char *p = path, *slash;
	size_t len;
	int error;

	if (git_repository_odb(&odb, repo) < 0)
		return wf_error_set_git(WF_EOS, "cannot open the object "
		    "database");
	for (;;) {
		const unsigned char *d, *end;
		int found = 0;

		slash = strchr(p, '/');
		len = slash ? (size_t)(slash - p) : strlen(p);
		if ((error = read_tree(&obj, odb, &cur)) < 0)
			goto out;
		d = git_odb_object_data(obj);
		end = d + git_odb_object_size(obj);
		/* Scan the raw entries: no allocation, no parse. */
		while (d < end) {
			const unsigned char *name, *nul;
			unsigned mode = 0;

			while (d < end && *d >= '0' && *d <= '7')
				mode = (mode << 3) | (unsigned)(*d++ - '0');
			if (d >= end || *d++ != ' ' ||
			    !(nul = memchr(d, '\0', (size_t)(end - d))) ||
			    (size_t)(end - nul) < 1 + GIT_OID_RAWSZ) {
				error = wf_error_set(WF_EOS, "a tree is damaged");
				goto out;
			}
			name = d;
			d = nul + 1 + GIT_OID_RAWSZ;
			if ((size_t)(nul - name) != len ||
			    memcmp(name, p, len) != 0)
				continue;
			if (slash && !IS_TREE(mode))
				break;
			if (!slash)
				out->mode = (git_filemode_t)mode;
			git_oid_fromraw(slash ? &cur : &out->id, nul + 1);
			found = 1;
			break;
		}
		git_odb_object_free(obj);
		obj = NULL;
		if (!found) {
			error = wf_error_set(WF_ENOTFOUND, "no '%s' in the tree",
			    path);
			goto out;
		}
		if (!slash)
			break;
		p = slash + 1;
	}
	error = 0;
out:
	git_odb_object_free(obj);
	git_odb_free(odb);
	return error;
}

/*
 * Paths compared component by component: '/' sorts before any byte, so
 * the edits under one directory are next to each other.  The caller's
 * order breaks ties, so the later of two edits of a path comes last.
 */
static int
ref_cmp(const void *pa, const void *pb)
{
	const struct ref *a = pa, *b = pb;
	const unsigned char *x = (const unsigned char *)a->e->path;
	const unsigned char *y = (const unsigned char *)b->e->path;

	for (; *x && *x == *y; x++, y++)
		;
	if (*x != *y) {
		int cx = *x == '/' ? 1 : *x ? *x + 1 : 0;
		int cy = *y == '/' ? 1 : *y ? *y + 1 : 0;

		return cx - cy;
	}
	return a->index < b->index ? -1 : a->index > b->index;
}

/* git's order of tree entries: a directory's name ends with '/'. */
static int
ent_cmp(const void *pa, const void *pb)
{
	const struct ent *a = pa, *b = pb;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->name, b->name, n);
	unsigned ca, cb;

	if (c)
		return c;
	ca = a->len > n ? (unsigned char)a->name[n] : IS_TREE(a->mode) ? '/' :
	    0;
	cb = b->len > n ? (unsigned char)b->name[n] : IS_TREE(b->mode) ? '/' :
	    0;
	return (int)ca - (int)cb;
}

/* The octal mode as git writes it: no leading zero. */
static size_t
put_mode(char *buf, unsigned mode)
{
	char tmp[12];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + (mode & 7));
		mode >>= 3;
	} while (mode);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

/*
 * Apply edits r[0..n), all below the directory whose path is the first
 * `off` bytes of their paths, to the tree `base` (NULL: none).  *out is
 * the new tree, *empty set when it has no entries (and nothing is
 * written then), *changed when it differs from `base`.
 */
static int
edit_dir(git_oid *out, int *empty, int *changed, git_odb *odb,
    const git_oid *base, const struct ref *r, size_t n, size_t off)
{
	git_odb_object *obj = NULL;
	struct ent *e = NULL, *ne;
	char *gone = NULL, *buf = NULL;
	git_oid *sub = NULL;
	size_t nr = 0, alloc, i, j, k, nsub = 0, size, o;
	int error, resort = 0, dirty = 0;

	*empty = 0;
	*changed = 0;
	if (base) {
		if ((error = read_tree(&obj, odb, base)) < 0 ||
		    (error = parse(&e, &nr, git_odb_object_data(obj),
		    git_odb_object_size(obj))) < 0)
			goto out;
	}
	/* Room for an entry per edit more, and a new subtree id each. */
	alloc = nr + n;
	if (!(ne = realloc(e, (alloc ? alloc : 1) * sizeof(*e))) ||
	    !(gone = calloc(alloc ? alloc : 1, 1)) ||
	    !(sub = calloc(n ? n : 1, sizeof(*sub)))) {
		if (ne)
			e = ne;
		error = wf_error_oom();
		goto out;
	}
	e = ne;
	for (i = 0; i < n; i = j) {
		const char *name = r[i].e->path + off;
		size_t len = strcspn(name, "/");
		const struct ref *leaf = NULL;
		size_t nleaf = 0, at = nr;

		if (len == 0 || (len == 1 && name[0] == '.') ||
		    (len == 2 && name[0] == '.' && name[1] == '.')) {
			error = wf_error_set(WF_EINPUT, "path '%s': bad "
			    "component", r[i].e->path);
			goto out;
		}
		/*
		 * The edits of this name: those of the file itself first
		 * (the last one wins), then those below it.
		 */
		for (j = i; j < n; j++) {
			const char *x = r[j].e->path + off;

			if (strncmp(x, name, len) != 0 ||
			    (x[len] != '\0' && x[len] != '/'))
				break;
			if (x[len] == '\0') {
				leaf = &r[j];
				nleaf++;
			}
		}
		for (k = 0; k < nr; k++)
			if (!gone[k] && e[k].len == len &&
			    memcmp(e[k].name, name, len) == 0) {
				at = k;
				break;
			}
		if (j - i > nleaf) {
			const git_oid *below = NULL;
			git_oid old;
			int sub_empty, sub_changed;

			if (leaf && !leaf->e->remove) {
				size_t m;

				/*
				 * A file where a directory was: only when
				 * the same edits empty the directory.
				 */
				for (m = i; m < j && (&r[m] == leaf ||
				    r[m].e->path[off + len] == '\0' ||
				    r[m].e->remove); m++)
					;
				if (m == j && at < nr && IS_TREE(e[at].mode)) {
					git_oid_fromraw(&old, e[at].id);
					if ((error = edit_dir(&sub[nsub],
					    &sub_empty, &sub_changed, odb, &old,
					    r + i + nleaf, j - i - nleaf,
					    off + len + 1)) < 0)
						goto out;
					if (sub_empty) {
						gone[at] = 1;
						at = nr;
						goto file;
					}
				} else if (m == j && (at == nr ||
				    !IS_TREE(e[at].mode))) {
					goto file;
				}
				error = wf_error_set(WF_ECONFLICT, "path '%.*s': "
				    "both a file and a directory",
				    (int)(off + len), r[i].e->path);
				goto out;
			}
			if (!leaf && (at == nr || !IS_TREE(e[at].mode))) {
				size_t m;

				/* Removing below what is not a directory. */
				for (m = i; m < j && r[m].e->remove; m++)
					;
				if (m == j)
					continue;
			}
			if (at < nr && !leaf) {
				if (!IS_TREE(e[at].mode)) {
					error = wf_error_set(WF_ECONFLICT,
					    "path '%.*s': a file, not a "
					    "directory", (int)(off + len),
					    r[i].e->path);
					goto out;
				}
				git_oid_fromraw(&old, e[at].id);
				below = &old;
			}
			if ((error = edit_dir(&sub[nsub], &sub_empty,
			    &sub_changed, odb, below, r + i + nleaf,
			    j - i - nleaf, off + len + 1)) < 0)
				goto out;
			if (!sub_changed && !leaf)
				continue;
			dirty = 1;
			if (sub_empty) {
				if (at < nr)
					gone[at] = 1;
				continue;
			}
			/* A directory that stays one keeps its place. */
			if (at < nr && !leaf) {
				e[at].id = sub[nsub++].id;
				continue;
			}
			if (at < nr)
				gone[at] = 1;
			e[nr].name = name;
			e[nr].len = len;
			e[nr].mode = 0040000;
			e[nr].id = sub[nsub].id;
			gone[nr] = 0;
			nr++;
			nsub++;
			resort = 1;
			continue;
		}
file:
		if (leaf->e->remove) {
			if (at < nr) {
				gone[at] = 1;
				dirty = 1;
			}
			continue;
		}
		if (IS_TREE(leaf->e->mode) || (leaf->e->mode !=
		    GIT_FILEMODE_BLOB && leaf->e->mode !=
		    GIT_FILEMODE_BLOB_EXECUTABLE && leaf->e->mode !=
		    GIT_FILEMODE_LINK && leaf->e->mode != GIT_FILEMODE_COMMIT)) {
			error = wf_error_set(WF_EINPUT, "path '%s': bad mode %o",
			    leaf->e->path, (unsigned)leaf->e->mode);
			goto out;
		}
		if (at < nr) {
			if (e[at].mode == (unsigned)leaf->e->mode &&
			    memcmp(e[at].id, leaf->e->id.id, GIT_OID_RAWSZ) == 0)
				continue;
			if (IS_TREE(e[at].mode)) {
				error = wf_error_set(WF_ECONFLICT, "path '%s': a "
				    "directory, not a file", leaf->e->path);
				goto out;
			}
			e[at].mode = (unsigned)leaf->e->mode;
			e[at].id = leaf->e->id.id;
		} else {
			e[nr].name = name;
			e[nr].len = len;
			e[nr].mode = (unsigned)leaf->e->mode;
			e[nr].id = leaf->e->id.id;
			gone[nr] = 0;
			nr++;
			resort = 1;
		}
		dirty = 1;
	}
	if (!dirty) {
		if (base)
			*out = *base;
		*empty = !base || nr == 0;
		goto done;
	}
	*changed = 1;
	/* Drop what is gone, then put the new entries in place. */
	for (i = 0, k = 0; i < nr; i++)
		if (!gone[i])
			e[k++] = e[i];
	nr = k;
	if (nr == 0) {
		*empty = 1;
		goto done;
	}
	if (resort)
		qsort(e, nr, sizeof(*e), ent_cmp);
	for (size = 0, i = 0; i < nr; i++)
		size += 8 + e[i].len + GIT_OID_RAWSZ;
	if (!(buf = malloc(size))) {
		error = wf_error_oom();
		goto out;
	}
	for (o = 0, i = 0; i < nr; i++) {
		o += put_mode(buf + o, e[i].mode);
		buf[o++] = ' ';
		memcpy(buf + o, e[i].name, e[i].len);
		o += e[i].len;
		buf[o++] = '\0';
		memcpy(buf + o, e[i].id, GIT_OID_RAWSZ);
		o += GIT_OID_RAWSZ;
	}
	/* The old version first shares most blocks: its hash resumes. */
	if ((error = wf_pack_write(out, odb, buf, o, GIT_OBJECT_TREE,
	    base)) < 0)
		goto out;
done:
	error = 0;
out:
	free(buf);
	free(sub);
	free(gone);
	free(e);
	git_odb_object_free(obj);
	return error;
}

int
wf_tree_update(git_oid *out, git_repository *repo, const git_oid *base,
    const struct wf_tree_edit *edits, size_t n)
{
	git_odb *odb = NULL;
	struct ref *r = NULL;
	size_t i;
	int error, empty, changed;

	if (!(r = calloc(n ? n : 1, sizeof(*r))))
		return wf_error_oom();
	for (i = 0; i < n; i++) {
		r[i].e = &edits[i];
		r[i].index = i;
		if (!edits[i].path[0] || edits[i].path[0] == '/') {
			error = wf_error_set(WF_EINPUT, "path '%s': not a "
			    "relative path", edits[i].path);
			goto out;
		}
	}
	qsort(r, n, sizeof(*r), ref_cmp);
	if (git_repository_odb(&odb, repo) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot open the object "
		    "database");
		goto out;
	}
	if ((error = edit_dir(out, &empty, &changed, odb, base, r, n, 0)) < 0)
		goto out;
	/* The root is written even when empty. */
	if (empty && (changed || !base) && (error = wf_pack_write(out, odb,
	    "", 0, GIT_OBJECT_TREE, NULL)) < 0)
		goto out;
	error = 0;
out:
	git_odb_free(odb);
	free(r);
	return error;
}
