#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "error.h"
#include "pack.h"
#include "path.h"
#include "patch.h"
#include "tree.h"

/*
 * Framing for libgit2's patch parser, which (in 1.5) needs a
 * "diff --git" header on every file and cannot end a header at an
 * "index" line (an empty file added or deleted).  This rewrites only
 * header lines: plain unified diffs get the git header git itself would
 * write, and a header ending at "index" gets the "-- " terminator
 * libgit2 accepts.  Hunks are skipped by their line counts, so a
 * removed "-- x" line is never taken for a header.  The result is
 * parsed by libgit2; nothing here interprets the changes.
 */
struct frame {
	char *buf;
	size_t len, cap;
};

static int
put(struct frame *f, const char *s, size_t n)
{
	if (f->len + n + 1 > f->cap) {
		size_t cap = f->cap ? f->cap : 4096;
		char *b;

		while (cap < f->len + n + 1)
			cap *= 2;
		if (!(b = realloc(f->buf, cap)))
			return wf_error_oom();
		f->buf = b;
		f->cap = cap;
	}
	memcpy(f->buf + f->len, s, n);
	f->len += n;
	f->buf[f->len] = '\0';
	return 0;
}

static int
puts_(struct frame *f, const char *s)
{
	return put(f, s, strlen(s));
}

static int
starts(const char *l, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);

	return n >= k && memcmp(l, prefix, k) == 0;
}

/* The name in a plain "--- NAME\tdate" line with one directory stripped. */
static int
plain_name(char *out, size_t size, const char *l, size_t n, int *devnull)
{
	size_t e = 4, s;

	while (e < n && l[e] != '\t' && l[e] != '\n' && l[e] != '\r')
		e++;
	*devnull = e - 4 == 9 && memcmp(l + 4, "/dev/null", 9) == 0;
	if (*devnull)
		return 0;
	if (l[4] == '"')
		return -1;
	if (l[4] == '/')
		return -2;
	for (s = 4; s < e && l[s] != '/'; s++)
		;
	if (s >= e || e - s - 1 >= size || e - s - 1 == 0)
		return -1;
	if (l[s + 1] == '/')
		return -2;
	memcpy(out, l + s + 1, e - s - 1);
	out[e - s - 1] = '\0';
	return 0;
}

static int
parse_count(const char **p, long *start, long *count)
{
	char *end;

	*start = strtol(*p, &end, 10);
	*count = 1;
	if (end == *p)
		return -1;
	if (*end == ',') {
		const char *q = end + 1;

		*count = strtol(q, &end, 10);
		if (end == q)
			return -1;
	}
	*p = end;
	return 0;
}

static int
frame_patch(struct frame *f, const char *text, size_t len)
{
	const char *l = text, *end = text + len;
	long old_left = 0, new_left = 0;
	int in_header = 0, git_file = 0, after_index = 0, in_hunk = 0, error;

	while (l < end) {
		const char *nl = memchr(l, '\n', (size_t)(end - l));
		size_t n = nl ? (size_t)(nl - l) + 1 : (size_t)(end - l);

		if (in_hunk && *l == '\\') {
			/* "\ No newline at end of file" after a hunk's end. */
			if ((error = put(f, l, n)) < 0)
				return error;
			l += n;
			continue;
		}
		in_hunk = old_left > 0 || new_left > 0;
		if (old_left > 0 || new_left > 0) {
			if (*l == ' ' || *l == '\n' || *l == '\r') {
				old_left--;
				new_left--;
			} else if (*l == '-') {
				old_left--;
			} else if (*l == '+') {
				new_left--;
			} else if (*l != '\\') {
				/* A short hunk: let libgit2 say so. */
				old_left = new_left = 0;
				continue;
			}
			if ((error = put(f, l, n)) < 0)
				return error;
			l += n;
			continue;
		}
		if (starts(l, n, "diff --git ")) {
			if (after_index && (error = puts_(f, "-- \n")) < 0)
				return error;
			in_header = git_file = 1;
			after_index = 0;
		} else if (starts(l, n, "@@ -")) {
			const char *p = l + 4;
			long s1, s2;

			if (parse_count(&p, &s1, &old_left) == 0 &&
			    strncmp(p, " +", 2) == 0 && (p += 2) &&
			    parse_count(&p, &s2, &new_left) == 0 &&
			    old_left >= 0 && new_left >= 0) {
				if ((error = put(f, l, n)) < 0)
					return error;
				l += n;
				in_header = after_index = 0;
				continue;
			}
			old_left = new_left = 0;
		} else if (!git_file && starts(l, n, "--- ") &&
		    l + n < end && starts(l + n, (size_t)(end - l - n), "+++ ")) {
			/* A plain unified diff: write git's header for it. */
			const char *l2 = l + n, *nl2;
			size_t n2;
			char a[4096], b[4096];
			int anull, bnull;

			nl2 = memchr(l2, '\n', (size_t)(end - l2));
			n2 = nl2 ? (size_t)(nl2 - l2) + 1 : (size_t)(end - l2);
			if ((error = plain_name(a, sizeof(a), l, n,
			    &anull)) == 0)
				error = plain_name(b, sizeof(b), l2, n2, &bnull);
			if (error == -2)
				return wf_error_set(WF_EINPUT, "file '%.*s': "
				    "absolute path",
				    (int)(n - 5 < 200 ? n - 5 : 200), l + 4);
			if (error < 0)
				return wf_error_set(WF_EINPUT, "cannot take "
				    "a file name from '%.*s'",
				    (int)(n - 1 < 200 ? n - 1 : 200), l);
			if (anull && bnull)
				return wf_error_set(WF_EINPUT, "both sides "
				    "of a file are /dev/null");
			if (anull)
				strcpy(a, b);
			if (bnull)
				strcpy(b, a);
			if ((error = puts_(f, "diff --git a/")) < 0 ||
			    (error = puts_(f, a)) < 0 ||
			    (error = puts_(f, " b/")) < 0 ||
			    (error = puts_(f, b)) < 0 ||
			    (error = puts_(f, "\n")) < 0 ||
			    (anull && (error = puts_(f,
			    "new file mode 100644\n")) < 0) ||
			    (bnull && (error = puts_(f,
			    "deleted file mode 100644\n")) < 0) ||
			    (error = puts_(f, anull ? "--- /dev/null\n" :
			    "--- a/")) < 0 ||
			    (!anull && ((error = puts_(f, a)) < 0 ||
			    (error = puts_(f, "\n")) < 0)) ||
			    (error = puts_(f, bnull ? "+++ /dev/null\n" :
			    "+++ b/")) < 0 ||
			    (!bnull && ((error = puts_(f, b)) < 0 ||
			    (error = puts_(f, "\n")) < 0)))
				return error;
			l = l2 + n2;
			after_index = 0;
			continue;
		} else if (!git_file) {
			/* Commentary around plain diffs ("Index:", "diff -u"). */
			l += n;
			continue;
		} else if (in_header && starts(l, n, "index ")) {
			if ((error = put(f, l, n)) < 0)
				return error;
			if (!nl && (error = puts_(f, "\n")) < 0)
				return error;
			after_index = 1;
			l += n;
			continue;
		} else if (in_header && starts(l, n, "--- ") && (l + n >= end ||
		    !starts(l + n, (size_t)(end - l - n), "+++ "))) {
			return wf_error_set(WF_EINPUT, "truncated patch: "
			    "'---' line without '+++' line");
		} else if (starts(l, n, "--- ") || starts(l, n, "Binary files ") ||
		    starts(l, n, "GIT binary patch")) {
			in_header = 0;
		}
		after_index = 0;
		if ((error = put(f, l, n)) < 0)
			return error;
		l += n;
	}
	if (after_index && (error = puts_(f, "-- \n")) < 0)
		return error;
	if (!f->buf && (error = put(f, "", 0)) < 0)
		return error;
	return 0;
}

/* The binary data of one file, copied out of libgit2's callback. */
struct binary_side {
	git_diff_binary_t type;
	char *data;		/* deflated, as in the patch */
	size_t datalen, inflatedlen;
};

struct binary {
	int present, contains_data;
	struct binary_side old_side, new_side;
};

struct wf_patch {
	char *text;		/* the framed text git_diff points into */
	git_diff *diff;
	git_patch **files;	/* one per delta */
	struct binary *bin;	/* one per delta */
	size_t n;
};

struct collect {
	struct wf_patch *p;
	int error;
};

static int
copy_side(struct binary_side *out, const git_diff_binary_file *in)
{
	out->type = in->type;
	out->datalen = in->datalen;
	out->inflatedlen = in->inflatedlen;
	if (!(out->data = malloc(in->datalen ? in->datalen : 1)))
		return wf_error_oom();
	memcpy(out->data, in->data, in->datalen);
	return 0;
}

static int
binary_cb(const git_diff_delta *d, const git_diff_binary *b, void *payload)
{
	struct collect *c = payload;
	size_t i;

	for (i = 0; i < c->p->n; i++)
		if (git_diff_get_delta(c->p->diff, i) == d)
			break;
	if (i == c->p->n)
		return 0;
	c->p->bin[i].present = 1;
	c->p->bin[i].contains_data = b->contains_data;
	if (b->contains_data &&
	    ((c->error = copy_side(&c->p->bin[i].old_side, &b->old_file)) < 0 ||
	    (c->error = copy_side(&c->p->bin[i].new_side, &b->new_file)) < 0))
		return -1;
	return 0;
}

int
wf_patch_parse(struct wf_patch **out, const char *text, size_t len)
{
	struct frame f = { NULL, 0, 0 };
	struct wf_patch *p = NULL;
	struct collect c;
	size_t i;
	int error;

	*out = NULL;
	if (!(p = calloc(1, sizeof(*p))))
		return wf_error_oom();
	if ((error = frame_patch(&f, text, len)) < 0)
		goto out;
	p->text = f.buf;
	f.buf = NULL;
	if (git_diff_from_buffer(&p->diff, p->text, f.len) < 0) {
		const git_error *e = git_error_last();

		error = wf_error_set(WF_EINPUT, "patch does not parse: %s",
		    e && e->message ? e->message : "unknown error");
		goto out;
	}
	p->n = git_diff_num_deltas(p->diff);
	if (!(p->files = calloc(p->n + 1, sizeof(*p->files))) ||
	    !(p->bin = calloc(p->n + 1, sizeof(*p->bin)))) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < p->n; i++)
		if (git_patch_from_diff(&p->files[i], p->diff, i) < 0) {
			error = wf_error_set_git(WF_EINPUT, "cannot read the "
			    "patch of file %zu", i + 1);
			goto out;
		}
	c.p = p;
	c.error = 0;
	if (git_diff_foreach(p->diff, NULL, binary_cb, NULL, NULL, &c) != 0) {
		error = c.error < 0 ? c.error : wf_error_set_git(WF_EINPUT,
		    "cannot read the binary data of the patch");
		goto out;
	}
	*out = p;
	p = NULL;
	error = 0;
out:
	free(f.buf);
	wf_patch_free(p);
	return error;
}

void
wf_patch_free(struct wf_patch *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->n; i++) {
		if (p->files)
			git_patch_free(p->files[i]);
		if (p->bin) {
			free(p->bin[i].old_side.data);
			free(p->bin[i].new_side.data);
		}
	}
	free(p->files);
	free(p->bin);
	git_diff_free(p->diff);
	free(p->text);
	free(p);
}

git_diff *
wf_patch_diff(const struct wf_patch *p)
{
	return p->diff;
}

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

/*
 * The pre- and postimage of a hunk.  libgit2 leaves the newline on a
 * line followed by "\ No newline at end of file" and reports the marker
 * as a line of its own: drop the newline from the side it belongs to.
 */
static int
hunk_images(struct image *pre, struct image *post, size_t *leading,
    size_t *trailing, git_patch *gp, size_t h, size_t nlines)
{
	size_t i;
	int error, seen_change = 0, last = 0;

	*leading = *trailing = 0;
	for (i = 0; i < nlines; i++) {
		const git_diff_line *l;

		if (git_patch_get_line_in_hunk(&l, gp, h, i) < 0)
			return wf_error_set_git(WF_EINPUT, "cannot read a hunk");
		switch (l->origin) {
		case GIT_DIFF_LINE_CONTEXT:
			if ((error = image_add(pre, l->content, l->content_len,
			    0)) < 0 || (error = image_add(post, l->content,
			    l->content_len, 0)) < 0)
				return error;
			if (seen_change)
				(*trailing)++;
			else
				(*leading)++;
			last = l->origin;
			break;
		case GIT_DIFF_LINE_DELETION:
			if ((error = image_add(pre, l->content, l->content_len,
			    0)) < 0)
				return error;
			seen_change = 1;
			*trailing = 0;
			last = l->origin;
			break;
		case GIT_DIFF_LINE_ADDITION:
			if ((error = image_add(post, l->content,
			    l->content_len, 0)) < 0)
				return error;
			seen_change = 1;
			*trailing = 0;
			last = l->origin;
			break;
		case GIT_DIFF_LINE_CONTEXT_EOFNL:
		case GIT_DIFF_LINE_ADD_EOFNL:
		case GIT_DIFF_LINE_DEL_EOFNL:
			if (last != GIT_DIFF_LINE_ADDITION && pre->nr > 0 &&
			    pre->line[pre->nr - 1].len > 0 &&
			    pre->line[pre->nr - 1].ptr[pre->line[pre->nr - 1].len
			    - 1] == '\n')
				pre->line[pre->nr - 1].len--;
			if (last != GIT_DIFF_LINE_DELETION && post->nr > 0 &&
			    post->line[post->nr - 1].len > 0 &&
			    post->line[post->nr - 1].ptr[post->line[post->nr -
			    1].len - 1] == '\n')
				post->line[post->nr - 1].len--;
			last = 0;
			break;
		default:
			break;
		}
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
apply_hunk(struct image *img, git_patch *gp, size_t h, const char *path,
    unsigned fuzz)
{
	struct image pre = { NULL, 0, 0 }, post = { NULL, 0, 0 };
	const git_diff_hunk *hunk;
	size_t nlines, leading, trailing, min_lead, min_trail;
	int error, match_beginning, match_end;
	long pos, at;

	if (git_patch_get_hunk(&hunk, &nlines, gp, h) < 0) {
		error = wf_error_set_git(WF_EINPUT, "cannot read a hunk");
		goto out;
	}
	if ((error = hunk_images(&pre, &post, &leading, &trailing, gp, h,
	    nlines)) < 0)
		goto out;
	min_lead = leading > fuzz ? leading - fuzz : 0;
	min_trail = trailing > fuzz ? trailing - fuzz : 0;
	/* A hunk at the start or without trailing context is anchored. */
	match_beginning = hunk->old_start == 0 || hunk->old_start == 1;
	match_end = trailing == 0;
	pos = hunk->new_start ? hunk->new_start - 1 : 0;
	for (;;) {
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
		}
		if (trailing > leading && trailing > min_trail) {
			pre.nr--;
			post.nr--;
			trailing--;
		}
	}
	if (at < 0) {
		error = wf_error_set(WF_ECONFLICT, "file '%s': hunk #%zu "
		    "(@@ -%d,%d +%d,%d @@) does not apply", path, h + 1,
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

/* Apply every hunk of `gp` to buf[0..len); *out is a new buffer. */
static int
apply_text(char **out, size_t *outlen, const char *buf, size_t len,
    git_patch *gp, const char *path, unsigned fuzz)
{
	struct image img = { NULL, 0, 0 };
	size_t h, i, n = 0;
	char *res = NULL;
	int error;

	*out = NULL;
	*outlen = 0;
	if ((error = image_split(&img, buf, len)) < 0)
		goto out;
	for (h = 0; h < git_patch_num_hunks(gp); h++)
		if ((error = apply_hunk(&img, gp, h, path, fuzz)) < 0)
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

/* Inflate one side of a binary patch. */
static int
inflate_side(unsigned char **out, const struct binary_side *s,
    const char *path)
{
	unsigned char *buf;
	uLongf n = (uLongf)s->inflatedlen;

	*out = NULL;
	if (!(buf = malloc(s->inflatedlen ? s->inflatedlen : 1)))
		return wf_error_oom();
	if (uncompress(buf, &n, (const Bytef *)s->data,
	    (uLong)s->datalen) != Z_OK || n != s->inflatedlen) {
		free(buf);
		return wf_error_set(WF_EINPUT, "file '%s': corrupt binary "
		    "patch", path);
	}
	*out = buf;
	return 0;
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

static int
binary_side_apply(unsigned char **out, size_t *outlen, const char *src,
    size_t srclen, const struct binary_side *s, const char *path)
{
	unsigned char *raw = NULL;
	int error;

	*out = NULL;
	*outlen = 0;
	if (s->type == GIT_DIFF_BINARY_NONE)
		return wf_error_set(WF_EINPUT, "file '%s': binary patch has "
		    "no data", path);
	if ((error = inflate_side(&raw, s, path)) < 0)
		return error;
	if (s->type == GIT_DIFF_BINARY_LITERAL) {
		*out = raw;
		*outlen = s->inflatedlen;
		return 0;
	}
	error = delta_apply(out, outlen, (const unsigned char *)src, srclen,
	    raw, s->inflatedlen, path);
	free(raw);
	return error;
}

/* An abbreviated id from the "index" line equals the full one. */
static int
id_matches(const git_diff_file *f, const git_oid *id)
{
	return git_oid_ncmp(&f->id, id, f->id_abbrev) == 0;
}

static int
is_zero(const git_diff_file *f)
{
	git_oid zero;

	memset(&zero, 0, sizeof(zero));
	return f->id_abbrev == 0 || git_oid_ncmp(&f->id, &zero,
	    f->id_abbrev) == 0;
}

/* The files of the tree being built: path -> mode and blob, or gone. */
struct file {
	char *path;
	int present;
	uint16_t mode;
	git_oid id;
};

struct state {
	git_repository *repo;
	const git_oid *base;	/* the tree patched */
	struct file *file;
	size_t nr, alloc;
};

/*
 * Write a result blob: straight into the batch's in-memory store when
 * there is one (lib/pack.h), hashed with collision detection.
 */
static int
write_blob(git_oid *out, git_repository *repo, const void *data, size_t len,
    const char *path)
{
	git_odb *odb = NULL;
	int error;

	if (git_repository_odb(&odb, repo) < 0)
		return wf_error_set_git(WF_EOS, "cannot write '%s'", path);
	error = wf_pack_write(out, odb, data, len, GIT_OBJECT_BLOB, NULL);
	git_odb_free(odb);
	if (error < 0)
		return wf_error_prefix(error, "cannot write '%s'", path);
	return 0;
}

static struct file *
state_find(struct state *st, const char *path)
{
	size_t i;

	for (i = st->nr; i-- > 0;)
		if (strcmp(st->file[i].path, path) == 0)
			return &st->file[i];
	return NULL;
}

/* The current mode and blob of `path`; 0 when present, 1 when absent. */
static int
state_get(uint16_t *mode, git_oid *id, struct state *st, const char *path)
{
	struct file *f = state_find(st, path);
	struct wf_tree_entry e;
	int error;

	if (f) {
		*mode = f->mode;
		*id = f->id;
		return f->present ? 0 : 1;
	}
	error = wf_tree_lookup(&e, st->repo, st->base, path);
	if (error == WF_ENOTFOUND)
		return 1;
	if (error < 0)
		return wf_error_prefix(error, "cannot read '%s'", path);
	*mode = (uint16_t)e.mode;
	*id = e.id;
	if (*mode == GIT_FILEMODE_TREE || *mode == GIT_FILEMODE_COMMIT)
		return wf_error_set(WF_ECONFLICT, "file '%s': is a %s in the "
		    "tree", path, *mode == GIT_FILEMODE_TREE ? "directory" :
		    "submodule");
	return 0;
}

static int
state_set(struct state *st, const char *path, int present, uint16_t mode,
    const git_oid *id)
{
	struct file *f = state_find(st, path);

	if (!f) {
		if (st->nr == st->alloc) {
			size_t alloc = st->alloc ? st->alloc * 2 : 16;
			struct file *fs = realloc(st->file,
			    alloc * sizeof(*fs));

			if (!fs)
				return wf_error_oom();
			st->file = fs;
			st->alloc = alloc;
		}
		f = &st->file[st->nr];
		if (!(f->path = strdup(path)))
			return wf_error_oom();
		st->nr++;
	}
	f->present = present;
	f->mode = mode;
	if (id)
		f->id = *id;
	else
		memset(&f->id, 0, sizeof(f->id));
	return 0;
}

static int
same_type(uint16_t a, uint16_t b)
{
	return (a == GIT_FILEMODE_LINK) == (b == GIT_FILEMODE_LINK);
}

/* Apply delta `i` of `p` to the state. */
static int
apply_delta(struct state *st, const struct wf_patch *p, size_t i,
    unsigned fuzz)
{
	const git_diff_delta *d = git_diff_get_delta(p->diff, i);
	const struct binary *bin = &p->bin[i];
	const char *op = d->old_file.path, *np = d->new_file.path, *problem;
	git_blob *blob = NULL;
	const char *src = "";
	char *res = NULL;
	unsigned char *bres = NULL;
	size_t srclen = 0, reslen = 0;
	uint16_t mode = 0, new_mode;
	git_oid id, new_id;
	int error, absent, binary = bin->present ||
	    (d->flags & GIT_DIFF_FLAG_BINARY);

	if (d->status == GIT_DELTA_ADDED)
		op = np;
	if (d->status == GIT_DELTA_DELETED)
		np = op;
	if ((problem = wf_path_problem(op)) || (problem = wf_path_problem(np)))
		return wf_error_set(WF_EINPUT, "file '%s': %s",
		    wf_path_problem(op) ? op : np, problem);
	switch (d->status) {
	case GIT_DELTA_ADDED:
	case GIT_DELTA_DELETED:
	case GIT_DELTA_MODIFIED:
	case GIT_DELTA_RENAMED:
	case GIT_DELTA_COPIED:
		break;
	default:
		return wf_error_set(WF_EINPUT, "file '%s': unsupported kind "
		    "of change", np);
	}

	/* The preimage. */
	if ((absent = state_get(&mode, &id, st, op)) < 0)
		return absent;
	if (d->status == GIT_DELTA_ADDED) {
		if (!absent)
			return wf_error_set(WF_ECONFLICT, "file '%s': already "
			    "exists", np);
	} else {
		if (absent)
			return wf_error_set(WF_ECONFLICT, "file '%s': does not "
			    "exist", op);
		if (d->old_file.mode && !same_type(d->old_file.mode, mode))
			return wf_error_set(WF_ECONFLICT, "file '%s': wrong "
			    "type (%o in the tree, %o in the patch)", op, mode,
			    d->old_file.mode);
		if (git_blob_lookup(&blob, st->repo, &id) < 0)
			return wf_error_set_git(WF_EOS, "cannot read '%s'", op);
		src = git_blob_rawcontent(blob);
		srclen = (size_t)git_blob_rawsize(blob);
	}
	if ((d->status == GIT_DELTA_RENAMED || d->status == GIT_DELTA_COPIED) &&
	    strcmp(op, np) != 0) {
		uint16_t m;
		git_oid x;

		if ((error = state_get(&m, &x, st, np)) < 0)
			goto out;
		if (error == 0) {
			error = wf_error_set(WF_ECONFLICT, "file '%s': already "
			    "exists", np);
			goto out;
		}
	}

	/* The postimage. */
	if (binary) {
		if (!bin->contains_data) {
			error = wf_error_set(WF_EINPUT, "file '%s': binary "
			    "patch has no data", np);
			goto out;
		}
		if (d->status != GIT_DELTA_ADDED && (is_zero(&d->old_file) ||
		    d->old_file.id_abbrev < GIT_OID_HEXSZ)) {
			error = wf_error_set(WF_EINPUT, "file '%s': binary "
			    "patch without full index line", op);
			goto out;
		}
		if (d->status != GIT_DELTA_ADDED &&
		    !id_matches(&d->old_file, &id)) {
			error = wf_error_set(WF_ECONFLICT, "file '%s': binary "
			    "patch does not apply (the preimage differs)", op);
			goto out;
		}
		if ((error = binary_side_apply(&bres, &reslen, src, srclen,
		    &bin->new_side, np)) < 0)
			goto out;
		if ((error = write_blob(&new_id, st->repo, bres, reslen,
		    np)) < 0)
			goto out;
		if (d->status != GIT_DELTA_DELETED &&
		    !is_zero(&d->new_file) && !id_matches(&d->new_file,
		    &new_id)) {
			error = wf_error_set(WF_ECONFLICT, "file '%s': binary "
			    "patch creates an incorrect result", np);
			goto out;
		}
	} else {
		if ((error = apply_text(&res, &reslen, src, srclen,
		    p->files[i], np, fuzz)) < 0)
			goto out;
		if (d->status != GIT_DELTA_DELETED && (error = write_blob(
		    &new_id, st->repo, res, reslen, np)) < 0)
			goto out;
	}

	/* Into the state. */
	if (d->status == GIT_DELTA_DELETED) {
		if (reslen != 0) {
			error = wf_error_set(WF_ECONFLICT, "file '%s': removal "
			    "patch leaves file contents", op);
			goto out;
		}
		error = state_set(st, op, 0, 0, NULL);
		goto out;
	}
	new_mode = d->new_file.mode ? d->new_file.mode :
	    d->status == GIT_DELTA_ADDED ? GIT_FILEMODE_BLOB : mode;
	if (d->status != GIT_DELTA_ADDED && d->new_file.mode &&
	    !d->old_file.mode && !same_type(new_mode, mode)) {
		error = wf_error_set(WF_ECONFLICT, "file '%s': wrong type",
		    op);
		goto out;
	}
	if (new_mode != GIT_FILEMODE_BLOB &&
	    new_mode != GIT_FILEMODE_BLOB_EXECUTABLE &&
	    new_mode != GIT_FILEMODE_LINK) {
		error = wf_error_set(WF_EINPUT, "file '%s': unsupported mode "
		    "%o", np, new_mode);
		goto out;
	}
	if (d->status == GIT_DELTA_RENAMED && strcmp(op, np) != 0 &&
	    (error = state_set(st, op, 0, 0, NULL)) < 0)
		goto out;
	error = state_set(st, np, 1, new_mode, &new_id);
out:
	free(res);
	free(bres);
	git_blob_free(blob);
	return error;
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
	size_t i, nup;
	int error;

	if (opts)
		o = *opts;
	memset(&st, 0, sizeof(st));
	st.repo = repo;
	st.base = base;
	for (i = 0; i < p->n; i++)
		if ((error = apply_delta(&st, p, i, o.fuzz)) < 0)
			goto out;
	if (!(up = calloc(st.nr + 1, sizeof(*up)))) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0, nup = 0; i < st.nr; i++) {
		if (st.file[i].present) {
			up[nup].id = st.file[i].id;
			up[nup].mode = (git_filemode_t)st.file[i].mode;
		} else {
			/* Removing what is not there (added and deleted
			 * again) is nothing. */
			up[nup].remove = 1;
		}
		up[nup++].path = st.file[i].path;
	}
	if ((error = wf_tree_update(out, repo, base, up, nup)) < 0) {
		if (error != WF_ENOMEM && error != WF_EOS)
			error = wf_error_prefix(WF_ECONFLICT, "cannot build the "
			    "tree");
		goto out;
	}
	error = 0;
out:
	for (i = 0; i < st.nr; i++)
		free(st.file[i].path);
	free(st.file);
	free(up);
	return error;
}
