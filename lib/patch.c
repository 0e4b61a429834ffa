/*
 * Patches, applied as "git apply --index" applies them.
 *
 * wf parses patch text itself (lib/patch_parse.c, git's own rules)
 * instead of with libgit2's git_diff_from_buffer(), because libgit2
 * 1.5's parser refuses patches git applies: rename and copy headers
 * whose names hold a space, a mode-only diff of such a path, NUL bytes
 * in a "--text" diff, several C-quoted name forms (octal escapes of
 * bytes that are not UTF-8 among them), plain "diff -u" output without
 * a directory in its names, a "diff --git" header ending at an "index"
 * line (an empty file added or deleted), and it has no notion of
 * gitlinks.  It also hands over the mode of an "index" line as the new
 * mode, which resets an executable file a content-only patch touches.
 * Placement (below) and the order files are applied in follow git
 * apply's apply_one_fragment(), check_patch() and write_out_results().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "map.h"
#include "pack.h"
#include "path.h"
#include "patch.h"
#include "tree.h"

#define MODE_FMT 0170000
#define MODE_REG 0100000
#define MODE_LNK 0120000
#define MODE_DIR 0040000
#define MODE_GITLINK 0160000

/*
 * Placement.  An image is a file cut into lines, each with its end of
 * line (the last may have none); lines written by a hunk are marked so
 * a later hunk of the same file cannot match over them, as in git.
 */
struct line {
	const char *ptr;
	size_t len;
	int patched;
};

struct image {
	struct line *line;
	size_t nr, alloc;
};

static int
image_add(struct image *img, const char *ptr, size_t len, int patched)
{
	if (img->nr == img->alloc) {
		size_t alloc = img->alloc ? img->alloc * 2 : 64;
		struct line *l = realloc(img->line, alloc * sizeof(*l));

		if (!l)
			return wf_error_oom();
		img->line = l;
		img->alloc = alloc;
	}
	img->line[img->nr].ptr = ptr;
	img->line[img->nr].len = len;
	img->line[img->nr].patched = patched;
	img->nr++;
	return 0;
}

static int
image_split(struct image *img, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;
	int error;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);

		if ((error = image_add(img, p, n, 0)) < 0)
			return error;
		p += n;
	}
	return 0;
}

/* The pre- and postimage of a hunk. */
static int
hunk_images(struct image *pre, struct image *post,
    const struct wf_patch_hunk *h)
{
	size_t i;
	int error;

	for (i = 0; i < h->nlines; i++) {
		const struct wf_patch_line *l = &h->lines[i];

		if (l->origin != '+' &&
		    (error = image_add(pre, l->ptr, l->len, 0)) < 0)
			return error;
		if (l->origin != '-' &&
		    (error = image_add(post, l->ptr, l->len, 0)) < 0)
			return error;
	}
	return 0;
}

static int
match_at(const struct image *img, const struct image *pre, size_t at,
    int match_beginning, int match_end)
{
	size_t i;

	if (match_beginning && at != 0)
		return 0;
	if (at + pre->nr > img->nr)
		return 0;
	if (match_end && at + pre->nr != img->nr)
		return 0;
	for (i = 0; i < pre->nr; i++) {
		const struct line *a = &img->line[at + i], *b = &pre->line[i];

		if (a->patched || a->len != b->len ||
		    memcmp(a->ptr, b->ptr, a->len) != 0)
			return 0;
	}
	return 1;
}

/* git apply's find_pos(): the nearest match to `line`, after first. */
static long
find_pos(const struct image *img, const struct image *pre, long line,
    int match_beginning, int match_end)
{
	long back, fwd, cur, nr = (long)img->nr;
	size_t i;

	if (match_beginning)
		line = 0;
	else if (match_end)
		line = nr - (long)pre->nr;
	if (line < 0 || line > nr)
		line = nr;
	back = fwd = cur = line;
	for (i = 0;; i++) {
		if (match_at(img, pre, (size_t)cur, match_beginning, match_end))
			return cur;
again:
		if (back == 0 && fwd == nr)
			break;
		if (i & 1) {
			if (back == 0) {
				i++;
				goto again;
			}
			cur = --back;
		} else {
			if (fwd == nr) {
				i++;
				goto again;
			}
			cur = ++fwd;
		}
	}
	return -1;
}

/* Replace img[at, at + pre->nr) by the postimage, marked as written. */
static int
image_update(struct image *img, size_t at, const struct image *pre,
    const struct image *post)
{
	size_t nr = img->nr - pre->nr + post->nr, i;

	if (nr > img->alloc) {
		struct line *l = realloc(img->line, nr * sizeof(*l));

		if (!l)
			return wf_error_oom();
		img->line = l;
		img->alloc = nr;
	}
	memmove(img->line + at + post->nr, img->line + at + pre->nr,
	    (img->nr - at - pre->nr) * sizeof(*img->line));
	for (i = 0; i < post->nr; i++) {
		img->line[at + i] = post->line[i];
		img->line[at + i].patched = 1;
	}
	img->nr = nr;
	return 0;
}

static void
drop_first(struct image *img)
{
	memmove(img->line, img->line + 1, (img->nr - 1) * sizeof(*img->line));
	img->nr--;
}

/* Apply one hunk, git apply's apply_one_fragment() without whitespace. */
static int
apply_hunk(struct image *img, const struct wf_patch_hunk *hunk, size_t h,
    const char *path, unsigned fuzz)
{
	struct image pre = { NULL, 0, 0 }, post = { NULL, 0, 0 };
	size_t leading = hunk->leading, trailing = hunk->trailing;
	size_t min_lead, min_trail;
	int error, match_beginning, match_end;
	long pos, at;

	if ((error = hunk_images(&pre, &post, hunk)) < 0)
		goto out;
	/* Context counted by the parser that is not in the image
	 * (an empty line before "\ No newline") cannot be dropped. */
	if (leading > pre.nr)
		leading = pre.nr;
	if (trailing > pre.nr - leading)
		trailing = pre.nr - leading;
	min_lead = leading > fuzz ? leading - fuzz : 0;
	min_trail = trailing > fuzz ? trailing - fuzz : 0;
	/* A hunk at the start or without trailing context is anchored. */
	match_beginning = hunk->old_start == 0 || hunk->old_start == 1;
	match_end = trailing == 0;
	pos = hunk->new_start ? (long)hunk->new_start - 1 : 0;
	for (;;) {
		int dropped = 0;

		at = find_pos(img, &pre, pos, match_beginning, match_end);
		if (at >= 0)
			break;
		if (leading <= min_lead && trailing <= min_trail)
			break;
		if (match_beginning || match_end) {
			match_beginning = match_end = 0;
			continue;
		}
		if (leading >= trailing && leading > min_lead) {
			drop_first(&pre);
			drop_first(&post);
			pos--;
			leading--;
			dropped = 1;
		}
		if (trailing > leading && trailing > min_trail) {
			pre.nr--;
			post.nr--;
			trailing--;
			dropped = 1;
		}
		if (dropped)
			continue;
		/* The larger side is at its limit: shrink the other. */
		if (leading > min_lead) {
			drop_first(&pre);
			drop_first(&post);
			pos--;
			leading--;
		} else {
			pre.nr--;
			post.nr--;
			trailing--;
		}
	}
	if (at < 0) {
		error = wf_error_set(WF_ECONFLICT, "file '%s': hunk #%zu "
		    "(@@ -%lu,%lu +%lu,%lu @@) does not apply", path, h + 1,
		    hunk->old_start, hunk->old_lines, hunk->new_start,
		    hunk->new_lines);
		goto out;
	}
	error = image_update(img, (size_t)at, &pre, &post);
out:
	free(pre.line);
	free(post.line);
	return error;
}

/* Apply every hunk of `f` to buf[0..len); *out is a new buffer. */
static int
apply_text(char **out, size_t *outlen, const char *buf, size_t len,
    const struct wf_patch_file *f, const char *path, unsigned fuzz)
{
	struct image img = { NULL, 0, 0 };
	size_t h, i, n = 0;
	char *res = NULL;
	int error;

	*out = NULL;
	*outlen = 0;
	if ((error = image_split(&img, buf, len)) < 0)
		goto out;
	for (h = 0; h < f->nhunks; h++)
		if ((error = apply_hunk(&img, &f->hunks[h], h, path,
		    fuzz)) < 0)
			goto out;
	for (i = 0; i < img.nr; i++)
		n += img.line[i].len;
	if (!(res = malloc(n ? n : 1))) {
		error = wf_error_oom();
		goto out;
	}
	for (n = 0, i = 0; i < img.nr; i++) {
		memcpy(res + n, img.line[i].ptr, img.line[i].len);
		n += img.line[i].len;
	}
	*out = res;
	*outlen = n;
	res = NULL;
out:
	free(res);
	free(img.line);
	return error;
}

static int
delta_size(size_t *out, const unsigned char **p, const unsigned char *end)
{
	size_t v = 0;
	int shift = 0;
	unsigned char c;

	do {
		if (*p >= end || shift > 56)
			return -1;
		c = *(*p)++;
		v |= (size_t)(c & 0x7f) << shift;
		shift += 7;
	} while (c & 0x80);
	*out = v;
	return 0;
}

/*
 * git's delta format (pack-format.txt, "Deltified representation"),
 * applied by hand: libgit2 1.5 has no public API for it.
 */
static int
delta_apply(unsigned char **out, size_t *outlen, const unsigned char *src,
    size_t srclen, const unsigned char *delta, size_t dlen, const char *path)
{
	const unsigned char *p = delta, *end = delta + dlen;
	unsigned char *res = NULL;
	size_t ssize, tsize, n = 0;

	*out = NULL;
	if (delta_size(&ssize, &p, end) < 0 || delta_size(&tsize, &p, end) < 0)
		goto bad;
	if (ssize != srclen)
		return wf_error_set(WF_ECONFLICT, "file '%s': binary patch "
		    "does not apply (the preimage has another size)", path);
	/* Each byte of delta makes at most 0xffffff of the result. */
	if (tsize / 0xffffff > dlen)
		goto bad;
	if (!(res = malloc(tsize ? tsize : 1)))
		return wf_error_oom();
	while (p < end) {
		unsigned char op = *p++;

		if (op & 0x80) {
			size_t off = 0, sz = 0;
			int b;

			for (b = 0; b < 4; b++)
				if (op & (1u << b)) {
					if (p >= end)
						goto bad;
					off |= (size_t)*p++ << (8 * b);
				}
			for (b = 0; b < 3; b++)
				if (op & (0x10u << b)) {
					if (p >= end)
						goto bad;
					sz |= (size_t)*p++ << (8 * b);
				}
			if (sz == 0)
				sz = 0x10000;
			if (off > srclen || sz > srclen - off ||
			    sz > tsize - n)
				goto bad;
			memcpy(res + n, src + off, sz);
			n += sz;
		} else if (op) {
			if (op > (size_t)(end - p) || op > tsize - n)
				goto bad;
			memcpy(res + n, p, op);
			p += op;
			n += op;
		} else {
			goto bad;
		}
	}
	if (n != tsize)
		goto bad;
	*out = res;
	*outlen = n;
	return 0;
bad:
	free(res);
	return wf_error_set(WF_EINPUT, "file '%s': corrupt binary delta",
	    path);
}

/*
 * Write a result blob: straight into the batch's in-memory store when
 * there is one (lib/pack.h), hashed with collision detection.
 */
/*
 * The blob (*data)[0..len) for `path`, made from `from` (NULL: new);
 * *data, malloc'ed, is taken (NULL after), or is NULL for an empty one.
 */
static int
write_blob(git_oid *out, git_repository *repo, char **data, size_t len,
    const char *path, const git_oid *from)
{
	git_odb *odb = NULL;
	int error;

	if (git_repository_odb(&odb, repo) < 0)
		return wf_error_set_git(WF_EOS, "cannot write '%s'", path);
	if (*data)
		error = wf_pack_write_owned(out, odb, *data, len,
		    GIT_OBJECT_BLOB, from);
	else
		error = wf_pack_write(out, odb, "", 0, GIT_OBJECT_BLOB, from);
	*data = NULL;
	git_odb_free(odb);
	if (error < 0)
		return wf_error_prefix(error, "cannot write '%s'", path);
	return 0;
}

/*
 * The files of a patch, applied in order as git apply's check_patch()
 * does: fn[] is its fn_table (what earlier files left at a path), and
 * the results are written out once every file has applied.
 */
enum fn_kind { FN_RESULT, FN_WAS_DELETED, FN_TO_BE_DELETED };

struct fn {
	enum fn_kind kind;
	size_t file;		/* FN_RESULT: whose result */
};

struct result {
	int done;
	unsigned new_mode;
	char *buf;		/* the new content */
	size_t len;
	git_oid from;		/* the blob it was made from, if has_from */
	int has_from;
};

struct state {
	git_repository *repo;
	const git_oid *base;
	const struct wf_patch *p;
	unsigned fuzz;
	struct wf_map fn_index;	/* path -> index into fn[] */
	struct fn *fn;
	size_t nfn, afn;
	struct wf_map kept_links, removed_links;
	struct result *res;
};

static struct fn *
fn_get(struct state *st, const char *path)
{
	size_t i;

	if (!path || wf_map_get(&i, &st->fn_index, path) < 0)
		return NULL;
	return &st->fn[i];
}

static int
fn_set(struct state *st, const char *path, enum fn_kind kind, size_t file)
{
	struct fn *f = fn_get(st, path);
	int error;

	if (!f) {
		if (st->nfn == st->afn) {
			size_t n = st->afn ? st->afn * 2 : 16;
			struct fn *nf = realloc(st->fn, n * sizeof(*nf));

			if (!nf)
				return wf_error_oom();
			st->fn = nf;
			st->afn = n;
		}
		if ((error = wf_map_put(NULL, &st->fn_index, path,
		    st->nfn)) < 0)
			return error;
		f = &st->fn[st->nfn++];
	}
	f->kind = kind;
	f->file = file;
	return 0;
}

/* The entry at `path` in the base tree; 1 when there is none. */
static int
base_entry(struct wf_tree_entry *e, struct state *st, const char *path)
{
	int error = wf_tree_lookup(e, st->repo, st->base, path);

	if (error == WF_ENOTFOUND || (error == 0 && e->mode == GIT_FILEMODE_TREE))
		return 1;
	if (error < 0)
		return wf_error_prefix(error, "cannot read '%s'", path);
	return 0;
}

/* git's create_ce_mode(): the mode an index entry gets. */
static unsigned
entry_mode(unsigned mode)
{
	if ((mode & MODE_FMT) == MODE_LNK)
		return MODE_LNK;
	if ((mode & MODE_FMT) == MODE_GITLINK)
		return MODE_GITLINK;
	return MODE_REG | ((mode & 0100) ? 0755 : 0644);
}

/*
 * path_is_beyond_symlink(): would `path` be written through a symbolic
 * link the patch keeps or creates, or one of the base tree?
 */
static int
beyond_symlink(struct state *st, const char *path)
{
	char *name = strdup(path), *slash;
	size_t v;
	int error = 0;

	if (!name)
		return wf_error_oom();
	while ((slash = strrchr(name, '/'))) {
		struct wf_tree_entry e;

		*slash = '\0';
		if (!*name)
			break;
		if (wf_map_get(&v, &st->kept_links, name) == 0) {
			error = 1;
			break;
		}
		if (wf_map_get(&v, &st->removed_links, name) == 0)
			continue;
		if ((error = base_entry(&e, st, name)) < 0)
			break;
		if (error == 0 && e.mode == GIT_FILEMODE_LINK) {
			error = 1;
			break;
		}
		error = 0;
	}
	free(name);
	return error;
}

/* git's apply_binary(). */
static int
apply_binary(char **out, size_t *outlen, struct state *st,
    const struct wf_patch_file *f, const char *src, size_t srclen,
    int has_old, const git_oid *src_id, const char *path)
{
	const struct wf_patch_binary *b = &f->forward;
	git_oid old_id, new_id, id;
	git_odb *odb = NULL;
	unsigned char *res = NULL;
	size_t reslen = 0;
	int error;

	*out = NULL;
	*outlen = 0;
	if (strlen(f->old_id) != GIT_OID_HEXSZ ||
	    strlen(f->new_id) != GIT_OID_HEXSZ ||
	    git_oid_fromstr(&old_id, f->old_id) < 0 ||
	    git_oid_fromstr(&new_id, f->new_id) < 0)
		return wf_error_set(WF_EINPUT, "file '%s': cannot apply binary "
		    "patch without full index line", path);
	if (has_old) {
		if (!src_id) {
			if (git_odb_hash(&id, src, srclen, GIT_OBJECT_BLOB) < 0)
				return wf_error_set_git(WF_EOS, "cannot hash "
				    "'%s'", path);
			src_id = &id;
		}
		if (!git_oid_equal(src_id, &old_id))
			return wf_error_set(WF_ECONFLICT, "file '%s': binary "
			    "patch does not apply (the preimage differs)",
			    path);
	} else if (srclen) {
		return wf_error_set(WF_ECONFLICT, "file '%s': binary patch "
		    "applies to an empty file, which this is not", path);
	}
	if (git_oid_is_zero(&new_id))
		return 0;
	if (git_repository_odb(&odb, st->repo) < 0)
		return wf_error_set_git(WF_EOS, "cannot read '%s'", path);
	if (git_odb_exists(odb, &new_id)) {
		/* git takes the postimage it already has. */
		git_blob *blob = NULL;

		git_odb_free(odb);
		if (git_blob_lookup(&blob, st->repo, &new_id) < 0)
			return wf_error_set_git(WF_EOS, "cannot read '%s'",
			    path);
		reslen = (size_t)git_blob_rawsize(blob);
		if (!(*out = malloc(reslen ? reslen : 1))) {
			git_blob_free(blob);
			return wf_error_oom();
		}
		memcpy(*out, git_blob_rawcontent(blob), reslen);
		*outlen = reslen;
		git_blob_free(blob);
		return 0;
	}
	git_odb_free(odb);
	switch (b->kind) {
	case WF_PATCH_BINARY_LITERAL:
		if (!(res = malloc(b->len ? b->len : 1)))
			return wf_error_oom();
		memcpy(res, b->data, b->len);
		reslen = b->len;
		break;
	case WF_PATCH_BINARY_DELTA:
		if ((error = delta_apply(&res, &reslen,
		    (const unsigned char *)src, srclen, b->data, b->len,
		    path)) < 0)
			return error;
		break;
	default:
		return wf_error_set(WF_EINPUT, "file '%s': binary patch has "
		    "no data", path);
	}
	if (git_odb_hash(&id, res, reslen, GIT_OBJECT_BLOB) < 0) {
		free(res);
		return wf_error_set_git(WF_EOS, "cannot hash '%s'", path);
	}
	if (!git_oid_equal(&id, &new_id)) {
		free(res);
		return wf_error_set(WF_ECONFLICT, "file '%s': binary patch "
		    "creates an incorrect result", path);
	}
	*out = (char *)res;
	*outlen = reslen;
	return 0;
}

/* The text git applies a gitlink's hunks to. */
static void
gitlink_text(char out[64], const git_oid *id)
{
	char hex[GIT_OID_HEXSZ + 1];

	snprintf(out, 64, "Subproject commit %s\n",
	    git_oid_tostr(hex, sizeof(hex), id));
}

/* check_patch() and apply_data() for file `i`. */
static int
apply_file(struct state *st, size_t i)
{
	const struct wf_patch_file *f = &st->p->files[i];
	const char *old = f->old_path, *new = f->new_path, *problem, *name;
	int is_new = f->status == WF_PATCH_ADDED;
	int is_delete = f->status == WF_PATCH_DELETED;
	int moved = f->status == WF_PATCH_RENAMED ||
	    f->status == WF_PATCH_COPIED;
	unsigned old_mode = f->old_mode, new_mode = f->new_mode, st_mode = 0;
	const char *src = "";
	size_t srclen = 0;
	const git_oid *src_id = NULL;
	git_blob *blob = NULL;
	char link_text[64];
	struct wf_tree_entry e;
	struct fn *prev;
	int error, ok_if_exists;

	/* check_preimage() */
	if (old) {
		prev = moved ? NULL : fn_get(st, old);
		if (prev && prev->kind == FN_TO_BE_DELETED)
			prev = NULL;
		if (prev && prev->kind == FN_WAS_DELETED)
			return wf_error_set(WF_ECONFLICT, "file '%s': renamed "
			    "or deleted by an earlier part of the patch", old);
		if (prev) {
			const struct result *r = &st->res[prev->file];

			st_mode = r->new_mode;
			src = r->buf ? r->buf : "";
			srclen = r->len;
		} else if ((error = base_entry(&e, st, old)) < 0) {
			return error;
		} else if (error == 1) {
			if (!f->maybe_new)
				return wf_error_set(WF_ECONFLICT, "file '%s': "
				    "does not exist", old);
			is_new = 1;
			old = NULL;
		} else {
			st_mode = (unsigned)e.mode;
			if (st_mode == MODE_GITLINK) {
				gitlink_text(link_text, &e.id);
				src = link_text;
				srclen = strlen(link_text);
			} else {
				if (git_blob_lookup(&blob, st->repo, &e.id) < 0)
					return wf_error_set_git(WF_EOS, "cannot "
					    "read '%s'", old);
				src = git_blob_rawcontent(blob);
				srclen = (size_t)git_blob_rawsize(blob);
				src_id = &e.id;
			}
		}
		if (old) {
			if (!old_mode)
				old_mode = st_mode;
			if ((st_mode ^ old_mode) & MODE_FMT) {
				error = wf_error_set(WF_ECONFLICT, "file '%s': "
				    "wrong type (%o in the tree, %o in the "
				    "patch)", old, st_mode, old_mode);
				goto out;
			}
			if (!new_mode && !is_delete)
				new_mode = st_mode;
		}
	}

	/* check_to_create() */
	prev = fn_get(st, new);
	ok_if_exists = prev && (prev->kind == FN_WAS_DELETED ||
	    prev->kind == FN_TO_BE_DELETED);
	if (new && (is_new || moved)) {
		if (!ok_if_exists) {
			if ((error = base_entry(&e, st, new)) < 0)
				goto out;
			if (error == 0) {
				error = wf_error_set(WF_ECONFLICT, "file '%s': "
				    "already exists", new);
				goto out;
			}
		}
		if (!new_mode)
			new_mode = is_new ? MODE_REG | 0644 : old_mode;
	}
	if (new && old) {
		if (!new_mode)
			new_mode = old_mode;
		if ((old_mode ^ new_mode) & MODE_FMT) {
			error = wf_error_set(WF_ECONFLICT, "file '%s': new mode "
			    "%o does not match old mode %o", new, new_mode,
			    old_mode);
			goto out;
		}
	}
	if ((new_mode & MODE_FMT) == MODE_DIR) {
		error = wf_error_set(WF_EINPUT, "file '%s': unsupported mode "
		    "%o", new, new_mode);
		goto out;
	}

	/* check_unsafe_path(): wf refuses every unsafe path it names. */
	if ((old && (problem = wf_path_problem(name = old))) ||
	    (new && (problem = wf_path_problem(name = new)))) {
		error = wf_error_set(WF_EINPUT, "file '%s': %s", name,
		    problem);
		goto out;
	}
	if (!is_delete && (error = beyond_symlink(st, new)) != 0) {
		if (error > 0)
			error = wf_error_set(WF_ECONFLICT, "file '%s': beyond "
			    "a symbolic link", new);
		goto out;
	}

	/* apply_data() */
	name = old ? old : new;
	if (f->is_binary)
		error = apply_binary(&st->res[i].buf, &st->res[i].len, st, f,
		    src, srclen, old != NULL, src_id, name);
	else
		error = apply_text(&st->res[i].buf, &st->res[i].len, src,
		    srclen, f, name, st->fuzz);
	if (error < 0)
		goto out;
	st->res[i].new_mode = new_mode;
	st->res[i].done = 1;
	if (src_id && (new_mode & MODE_FMT) == MODE_REG) {
		st->res[i].from = *src_id;
		st->res[i].has_from = 1;
	}
	if (new && (error = fn_set(st, new, FN_RESULT, i)) < 0)
		goto out;
	if ((!new || f->status == WF_PATCH_RENAMED) &&
	    (error = fn_set(st, old, FN_WAS_DELETED, i)) < 0)
		goto out;
	if (is_delete && st->res[i].len) {
		error = wf_error_set(WF_ECONFLICT, "file '%s': removal patch "
		    "leaves file contents", old);
		goto out;
	}
	error = 0;
out:
	git_blob_free(blob);
	return error;
}

/*
 * add_index_file(): the object a result puts in the tree.  A blob's
 * content goes to the store: r->buf is NULL after.
 */
static int
result_object(git_oid *out, struct state *st, struct result *r,
    const char *path)
{
	if (r->new_mode == MODE_GITLINK) {
		char hex[GIT_OID_HEXSZ + 1];

		if (r->len < 18 + GIT_OID_HEXSZ ||
		    memcmp(r->buf, "Subproject commit ", 18) != 0)
			goto bad;
		memcpy(hex, r->buf + 18, GIT_OID_HEXSZ);
		hex[GIT_OID_HEXSZ] = '\0';
		if (strspn(hex, "0123456789abcdefABCDEF") != GIT_OID_HEXSZ ||
		    git_oid_fromstr(out, hex) < 0)
			goto bad;
		return 0;
	}
	return write_blob(out, st->repo, &r->buf, r->len, path,
	    r->has_from ? &r->from : NULL);
bad:
	return wf_error_set(WF_EINPUT, "file '%s': corrupt patch for "
	    "submodule", path);
}

int
wf_patch_apply(git_oid *out, git_repository *repo, git_tree *base,
    const struct wf_patch *p, const struct wf_patch_opts *opts)
{
	return wf_patch_apply_id(out, repo, git_tree_id(base), p, opts);
}

int
wf_patch_apply_id(git_oid *out, git_repository *repo, const git_oid *base,
    const struct wf_patch *p, const struct wf_patch_opts *opts)
{
	struct wf_patch_opts o = WF_PATCH_OPTS_INIT;
	struct state st;
	struct wf_tree_edit *up = NULL;
	size_t i, nup = 0;
	int error, phase;

	if (opts)
		o = *opts;
	memset(&st, 0, sizeof(st));
	st.repo = repo;
	st.base = base;
	st.p = p;
	st.fuzz = o.fuzz;
	if (p->nfiles == 0)
		return wf_error_set(WF_EINPUT, "the patch changes no file");
	if (!(st.res = calloc(p->nfiles, sizeof(*st.res))) ||
	    !(up = calloc(2 * p->nfiles, sizeof(*up)))) {
		error = wf_error_oom();
		goto out;
	}
	/* prepare_fn_table() and prepare_symlink_changes() */
	for (i = 0; i < p->nfiles; i++) {
		const struct wf_patch_file *f = &p->files[i];

		if ((!f->new_path || f->status == WF_PATCH_RENAMED) &&
		    (error = fn_set(&st, f->old_path, FN_TO_BE_DELETED,
		    i)) < 0)
			goto out;
		if (f->old_path && (f->old_mode & MODE_FMT) == MODE_LNK &&
		    (f->status == WF_PATCH_RENAMED ||
		    f->status == WF_PATCH_DELETED) &&
		    (error = wf_map_put(NULL, &st.removed_links, f->old_path,
		    i)) < 0 && error != WF_ECONFLICT)
			goto out;
		if (f->new_path && (f->new_mode & MODE_FMT) == MODE_LNK &&
		    (error = wf_map_put(NULL, &st.kept_links, f->new_path,
		    i)) < 0 && error != WF_ECONFLICT)
			goto out;
	}
	for (i = 0; i < p->nfiles; i++)
		if ((error = apply_file(&st, i)) < 0)
			goto out;
	/* write_out_results(): removals first, then creations. */
	for (phase = 0; phase < 2; phase++)
		for (i = 0; i < p->nfiles; i++) {
			const struct wf_patch_file *f = &p->files[i];
			struct result *r = &st.res[i];

			if (phase == 0) {
				if (f->status == WF_PATCH_ADDED ||
				    f->status == WF_PATCH_COPIED)
					continue;
				up[nup].path = f->old_path;
				up[nup++].remove = 1;
				continue;
			}
			if (f->status == WF_PATCH_DELETED)
				continue;
			if ((error = result_object(&up[nup].id, &st, r,
			    f->new_path)) < 0)
				goto out;
			up[nup].mode = (git_filemode_t)entry_mode(r->new_mode);
			up[nup++].path = f->new_path;
		}
	if ((error = wf_tree_update(out, repo, base, up, nup)) < 0) {
		if (error != WF_ENOMEM && error != WF_EOS)
			error = wf_error_prefix(WF_ECONFLICT, "cannot build the "
			    "tree");
		goto out;
	}
	error = 0;
out:
	if (st.res)
		for (i = 0; i < p->nfiles; i++)
			free(st.res[i].buf);
	free(st.res);
	free(st.fn);
	wf_map_release(&st.fn_index);
	wf_map_release(&st.kept_links);
	wf_map_release(&st.removed_links);
	free(up);
	return error;
}
