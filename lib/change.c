#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

#include "change.h"
#include "cherry.h"
#include "error.h"
#include "guard.h"
#include "hash.h"
#include "map.h"
#include "path.h"
#include "patch.h"
#include "str.h"

#define DEF_MAX_REQUEST (64u << 20)
#define DEF_MAX_PATCH (16u << 20)
#define DEF_MAX_FILE (16u << 20)
#define DEF_MAX_FILES 10000u
#define DEF_MAX_MESSAGE (64u << 10)
#define DEF_MAX_DEPENDS 1000u
#define DEF_MAX_COMMITS 10000u
#define PRIORITY_LIMIT 1000000

static const char empty_blob[] = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";

/* The state of one validation: where we are, for messages. */
struct ctx {
	const struct wf_json_doc *doc;
	struct wf_jpath path;
	const char *id;		/* NULL until known */
	git_repository *repo;
	struct wf_change_opts o;
	git_tree *tree;		/* base or target tip; NULL when unknown */
	int tree_borrowed;	/* from o.trees, not ours to free */
	char tree_name[128];
	git_oid tip;		/* the target's tip, with has_tip */
	int has_tip;
	int absent;		/* a check failed on what the tree holds */
	struct wf_cherry *cherry;	/* without o.trees */
	json_t *paths;		/* object used as a set of touched paths */
	/*
	 * A stream is a series: with a memo (o.trees) and no base, what
	 * the stream's earlier requests for this target did to the tree.
	 */
	struct series *series;
	struct effect *effect;	/* what this request does, in order */
	size_t neffect, aeffect;
	const char **after;	/* earlier requests it builds on */
	size_t nafter, aafter;
};

static int
fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(struct ctx *c, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->id)
		return wf_json_error(c->doc, &c->path, "request '%s': %s",
		    c->id, msg);
	return wf_json_error(c->doc, &c->path, "%s", msg);
}

const char *
wf_change_kind_name(enum wf_change_kind kind)
{
	switch (kind) {
	case WF_CHANGE_PATCH: return "patch";
	case WF_CHANGE_COMMITS: return "commits";
	case WF_CHANGE_FILES: return "files";
	}
	return "?";
}

/* Base64, RFC 4648 with padding. */
static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
wf_change_base64(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	char *out, *o;
	size_t i;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 3 ||
	    !(out = malloc((len + 2) / 3 * 4 + 1)))
		return NULL;
	o = out;
	for (i = 0; i + 2 < len; i += 3) {
		*o++ = b64[p[i] >> 2];
		*o++ = b64[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = b64[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
		*o++ = b64[p[i + 2] & 63];
	}
	if (i < len) {
		*o++ = b64[p[i] >> 2];
		if (i + 1 < len) {
			*o++ = b64[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
			*o++ = b64[(p[i + 1] & 15) << 2];
		} else {
			*o++ = b64[(p[i] & 3) << 4];
			*o++ = '=';
		}
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

/* Each byte's base64 value, -1 when it is not a base64 digit. */
static const signed char b64val_table[256] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
	-1,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
	-1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

static int
b64val(char ch)
{
	return b64val_table[(unsigned char)ch];
}

/* Decode strict base64; returns 0, -1 when malformed, -2 out of memory. */
static int
base64_decode(unsigned char **out, size_t *outlen, const char *s, size_t len)
{
	unsigned char *buf;
	size_t i, n = 0;

	*out = NULL;
	*outlen = 0;
	if (len % 4)
		return -1;
	if (!(buf = malloc(len / 4 * 3 + 1)))
		return -2;
	/* Every group but the last has no padding: one test for four. */
	for (i = 0; i + 4 < len; i += 4) {
		unsigned int a = (unsigned int)(signed char)b64val(s[i]);
		unsigned int b = (unsigned int)(signed char)b64val(s[i + 1]);
		unsigned int cc = (unsigned int)(signed char)b64val(s[i + 2]);
		unsigned int d = (unsigned int)(signed char)b64val(s[i + 3]);
		uint32_t v = a << 18 | b << 12 | cc << 6 | d;

		if ((a | b | cc | d) & 0x80)
			goto bad;
		buf[n] = (unsigned char)(v >> 16);
		buf[n + 1] = (unsigned char)(v >> 8);
		buf[n + 2] = (unsigned char)v;
		n += 3;
	}
	for (; i < len; i += 4) {
		int a = b64val(s[i]), b = b64val(s[i + 1]);
		int last = i + 4 == len;
		int cc = s[i + 2] == '=' && last ? -2 : b64val(s[i + 2]);
		int d = s[i + 3] == '=' && last ? -2 : b64val(s[i + 3]);

		if (a < 0 || b < 0 || cc == -1 || d == -1 ||
		    (cc == -2 && d != -2))
			goto bad;
		buf[n++] = (unsigned char)((a << 2) | (b >> 4));
		if (cc >= 0) {
			buf[n++] = (unsigned char)(((b & 15) << 4) | (cc >> 2));
			if (d >= 0)
				buf[n++] = (unsigned char)(((cc & 3) << 6) | d);
			else if (cc & 3)
				goto bad;
		} else if (b & 15) {
			goto bad;
		}
	}
	*out = buf;
	*outlen = n;
	return 0;
bad:
	free(buf);
	return -1;
}

int
wf_change_unbase64(unsigned char **out, size_t *len, const char *s)
{
	int error = base64_decode(out, len, s, strlen(s));

	if (error == -2)
		return wf_error_oom();
	if (error < 0)
		return wf_error_set(WF_EINPUT, "not valid base64");
	return 0;
}

/* Ids: printable, no spaces, not starting with '-'. */
static const char *
id_problem(const char *s)
{
	const char *p;

	if (!*s)
		return "empty id";
	if (strlen(s) > WF_CHANGE_ID_MAX)
		return "id longer than 256 bytes";
	if (*s == '-')
		return "id starts with '-'";
	for (p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("._/:@+-=#", *p)))
			return "id holds a character outside "
			    "[A-Za-z0-9._/:@+=#-]";
	return NULL;
}

static int
parse_oid(git_oid *out, const char *s)
{
	size_t i;

	if (strlen(s) != GIT_OID_HEXSZ)
		return -1;
	for (i = 0; i < GIT_OID_HEXSZ; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return -1;
	return git_oid_fromstr(out, s) < 0 ? -1 : 0;
}

/*
 * The series a stream's requests for one target make: each path an
 * earlier request changed, whether it is there afterwards, and which
 * request changed it last.  A later request is checked against the tip
 * with these applied, and is ordered after the requests it builds on.
 */
struct series_path {
	char *path;
	int present;
	char *by;		/* the id of the request that changed it */
};

struct series {
	char *target;
	struct wf_map index;	/* path -> index in p */
	struct series_path *p;
	size_t n, alloc;
};

/* What one request does to a path, kept until it is valid. */
struct effect {
	char *path;
	int present;
};

static void
series_free(struct series *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		free(s->p[i].path);
		free(s->p[i].by);
	}
	free(s->p);
	wf_map_release(&s->index);
	free(s->target);
}

/*
 * 1 when an earlier request left `path` there, 0 gone, -1 untouched (or
 * last changed by `id` itself).
 */
static int
series_has(const struct series *s, const char *path, const char *id)
{
	size_t i;

	if (wf_map_get(&i, &s->index, path) < 0 ||
	    (id && strcmp(s->p[i].by, id) == 0))
		return -1;
	return s->p[i].present;
}

/* Note that the request builds on the one that changed `path` last. */
static int
series_after(struct ctx *c, const char *path)
{
	size_t i, k;
	const char *by;

	if (!c->series || wf_map_get(&i, &c->series->index, path) < 0)
		return 0;
	by = c->series->p[i].by;
	if (c->id && strcmp(by, c->id) == 0)
		return 0;
	for (k = 0; k < c->nafter; k++)
		if (strcmp(c->after[k], by) == 0)
			return 0;
	if (c->nafter == c->aafter) {
		size_t a = c->aafter ? c->aafter * 2 : 4;
		const char **x = realloc(c->after, a * sizeof(*x));

		if (!x)
			return wf_error_oom();
		c->after = x;
		c->aafter = a;
	}
	c->after[c->nafter++] = by;
	return 0;
}

/* The request leaves `path` there (present) or removes it. */
static int
effect(struct ctx *c, const char *path, int present)
{
	if (!c->series)
		return 0;
	if (c->neffect == c->aeffect) {
		size_t a = c->aeffect ? c->aeffect * 2 : 8;
		struct effect *x = realloc(c->effect, a * sizeof(*x));

		if (!x)
			return wf_error_oom();
		c->effect = x;
		c->aeffect = a;
	}
	if (!(c->effect[c->neffect].path = strdup(path)))
		return wf_error_oom();
	c->effect[c->neffect++].present = present;
	return 0;
}

/* The request `id` was valid: what it does is now part of the series. */
static int
series_record(struct series *s, struct effect *e, size_t n,
    const char *id)
{
	size_t i, k;

	for (k = 0; k < n; k++) {
		char *by = strdup(id);

		if (!by)
			return wf_error_oom();
		if (wf_map_get(&i, &s->index, e[k].path) == 0) {
			free(s->p[i].by);
			s->p[i].by = by;
			s->p[i].present = e[k].present;
			continue;
		}
		if (s->n == s->alloc) {
			size_t a = s->alloc ? s->alloc * 2 : 64;
			struct series_path *x = realloc(s->p, a * sizeof(*x));

			if (!x) {
				free(by);
				return wf_error_oom();
			}
			s->p = x;
			s->alloc = a;
		}
		s->p[s->n].path = e[k].path;
		e[k].path = NULL;
		s->p[s->n].by = by;
		s->p[s->n].present = e[k].present;
		if (wf_map_put(NULL, &s->index, s->p[s->n].path, s->n) < 0) {
			e[k].path = s->p[s->n].path;
			free(by);
			return wf_error_oom();
		}
		s->n++;
	}
	return 0;
}

/* Record a touched path; a path touched twice is refused. */
static int
touch(struct ctx *c, const char *p, const char *what)
{
	const char *problem;

	char *key;
	int error;

	/* Names that are not UTF-8 are kept in git's quoted form. */
	if (!(key = wf_str_path_text(p)))
		return wf_error_oom();
	/* A path too long to show whole is shown in part. */
	if ((problem = wf_path_problem(p)))
		error = fail(c, "%s '%.256s%s': %s", what, key,
		    strlen(key) > 256 ? "..." : "", problem);
	else if (json_object_get(c->paths, key))
		error = fail(c, "%s '%s' is changed more than once", what, key);
	else if (json_object_set_new(c->paths, key, json_true()) < 0)
		error = wf_error_oom();
	else
		error = series_after(c, p);
	free(key);
	return error;
}

/* Is `p` a blob or link in the tree?  1 yes, 0 no, <0 on error. */
static int
in_tree(struct ctx *c, const char *p)
{
	git_tree_entry *e = NULL;
	int error;

	/* A request seen before in the stream is checked as it was then. */
	if (c->series && (error = series_has(c->series, p, c->id)) >= 0)
		return error;
	if (!c->tree)
		return -100;
	error = git_tree_entry_bypath(&e, c->tree, p);
	if (error == GIT_ENOTFOUND)
		return 0;
	if (error < 0)
		return wf_error_set_git(WF_EOS, "cannot look up '%s'", p);
	error = git_tree_entry_type(e) == GIT_OBJECT_BLOB;
	git_tree_entry_free(e);
	return error;
}

/*
 * `p` is (has) or is not in the known tree, and must (want=1) or must
 * not (want=0) be: a refusal that an existence check alone makes is
 * marked, for landed_already().
 */
static int
exists_as_wanted(struct ctx *c, const char *p, int has, int want)
{
	c->absent = (has && !want) || (!has && want);
	if (has && !want)
		return fail(c, "file '%s' already exists in %s", p,
		    c->tree_name);
	if (!has && want)
		return fail(c, "file '%s' does not exist in %s", p,
		    c->tree_name);
	return 0;
}

/* With a known tree, `p` must (want=1) or must not (want=0) exist. */
static int
expect_in_tree(struct ctx *c, const char *p, int want)
{
	int has = in_tree(c, p);

	if (has == -100)
		return 0;
	if (has < 0)
		return has;
	return exists_as_wanted(c, p, has, want);
}

/*
 * A binary file without data: git takes it when the index line names
 * both sides in full and the postimage is one it has (or nothing: a
 * deletion).
 */
static int
binary_cb(struct ctx *c, const struct wf_patch_file *f)
{
	git_oid id;
	git_odb *odb = NULL;
	int has;

	if (!f->is_binary || f->forward.kind != WF_PATCH_BINARY_NONE)
		return 0;
	if (strlen(f->old_id) == GIT_OID_HEXSZ &&
	    strlen(f->new_id) == GIT_OID_HEXSZ &&
	    git_oid_fromstr(&id, f->new_id) == 0) {
		if (git_oid_is_zero(&id))
			return 0;
		if (git_repository_odb(&odb, c->repo) == 0) {
			has = git_odb_exists(odb, &id);
			git_odb_free(odb);
			if (has)
				return 0;
		}
	}
	return fail(c, "binary patch for '%s' has no data (use "
	    "git diff --binary)", f->new_path ? f->new_path : f->old_path);
}

/* The modes git applies: files, symbolic links, submodules. */
static int
mode_ok(unsigned mode)
{
	unsigned type = mode & 0170000;

	return mode == 0 || type == 0100000 || type == 0120000 ||
	    type == 0160000;
}

static int
is_empty_blob(const char *hex)
{
	size_t n = strlen(hex);

	return n >= 7 && strncmp(hex, empty_blob, n) == 0;
}

/* The added text of a patch for a new symbolic link. */
static int
link_target(char *out, size_t size, const struct wf_patch_file *f)
{
	size_t h, i, n = 0;

	for (h = 0; h < f->nhunks; h++)
		for (i = 0; i < f->hunks[h].nlines; i++) {
			const struct wf_patch_line *l = &f->hunks[h].lines[i];

			if (l->origin != '+')
				continue;
			if (n + l->len >= size || memchr(l->ptr, '\0', l->len))
				return -1;
			memcpy(out + n, l->ptr, l->len);
			n += l->len;
		}
	while (n > 0 && out[n - 1] == '\n')
		n--;
	out[n] = '\0';
	return 0;
}

/*
 * The blob at `from` in the known tree becomes the link `link`: check
 * its text as the link's target.
 */
static int
link_from_tree(struct ctx *c, const char *from, const char *link)
{
	git_tree_entry *e = NULL;
	git_blob *b = NULL;
	char target[4096];
	const char *problem = NULL;
	size_t len;
	int error = 0;

	if (!c->tree || git_tree_entry_bypath(&e, c->tree, from) < 0 ||
	    git_tree_entry_type(e) != GIT_OBJECT_BLOB)
		goto out;	/* what is not there is refused elsewhere */
	if (git_blob_lookup(&b, c->repo, git_tree_entry_id(e)) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot read '%s'", from);
		goto out;
	}
	len = (size_t)git_blob_rawsize(b);
	if (len >= sizeof(target) || memchr(git_blob_rawcontent(b), '\0',
	    len)) {
		error = fail(c, "symbolic link '%s': bad target", link);
		goto out;
	}
	memcpy(target, git_blob_rawcontent(b), len);
	target[len] = '\0';
	if ((problem = wf_path_link_problem(link, target)))
		error = fail(c, "symbolic link '%s' -> '%s': %s", link, target,
		    problem);
out:
	git_blob_free(b);
	git_tree_entry_free(e);
	git_error_clear();
	return error;
}

/*
 * What the files before this one left at a path, as git apply keeps
 * it: a result, a deletion done, or a deletion to come.
 */
enum { SEEN_RESULT = 1, SEEN_DELETED, SEEN_TO_DELETE };

struct patch_check {
	struct wf_map touched;	/* paths given to touch() */
	struct wf_map state;	/* path -> index into kind[] */
	int *kind;
	size_t n;
};

static int
seen_get(struct patch_check *pc, const char *path)
{
	size_t i;

	if (!path || wf_map_get(&i, &pc->state, path) < 0)
		return 0;
	return pc->kind[i];
}

static int
seen_set(struct patch_check *pc, const char *path, int kind)
{
	size_t i;
	int error;

	if (wf_map_get(&i, &pc->state, path) == 0) {
		pc->kind[i] = kind;
		return 0;
	}
	if ((error = wf_map_put(NULL, &pc->state, path, pc->n)) < 0)
		return error;
	pc->kind[pc->n++] = kind;
	return 0;
}

/* touch() once per path: a patch may name a path in several files. */
static int
touch_once(struct ctx *c, struct patch_check *pc, const char *p,
    const char *what)
{
	size_t v;
	int error;

	if (wf_map_get(&v, &pc->touched, p) == 0)
		return 0;
	if ((error = touch(c, p, what)) < 0)
		return error;
	return wf_map_put(NULL, &pc->touched, p, 0) == WF_ENOMEM ?
	    WF_ENOMEM : 0;
}

/*
 * A submodule (which in_tree() does not count), or any entry that is
 * not a directory, must or must not exist.
 */
static int
expect_gitlink(struct ctx *c, const char *p, int want)
{
	git_tree_entry *e = NULL;
	int error, has;

	if (c->series && (has = series_has(c->series, p, c->id)) >= 0)
		goto known;
	if (!c->tree)
		return 0;
	error = git_tree_entry_bypath(&e, c->tree, p);
	if (error < 0 && error != GIT_ENOTFOUND)
		return wf_error_set_git(WF_EOS, "cannot look up '%s'", p);
	has = error == 0 && git_tree_entry_type(e) != GIT_OBJECT_TREE;
	git_tree_entry_free(e);
known:
	return exists_as_wanted(c, p, has, want);
}

/*
 * A path the patch names with `mode`: a submodule, or (0: the patch
 * does not say, as in a rename without mode lines) whatever the tree
 * has there, as git reads the mode from its index; else a blob.
 */
static int
expect(struct ctx *c, const char *p, int want, unsigned mode)
{
	if ((mode & 0170000) == 0160000 || mode == 0)
		return expect_gitlink(c, p, want);
	return expect_in_tree(c, p, want);
}

static int
check_delta(struct ctx *c, struct patch_check *pc,
    const struct wf_patch_file *f)
{
	const char *op = f->old_path, *np = f->new_path;
	int moved = f->status == WF_PATCH_RENAMED ||
	    f->status == WF_PATCH_COPIED;
	int binary = f->is_binary, prev, error = 0;
	size_t h;

	if (!mode_ok(f->old_mode) || !mode_ok(f->new_mode))
		return fail(c, "file '%s': unsupported mode %o (only files, "
		    "symbolic links and submodules)", np ? np : op,
		    mode_ok(f->old_mode) ? f->new_mode : f->old_mode);
	if ((error = binary_cb(c, f)) < 0)
		return error;
	/* The preimage: read from the tree unless an earlier file wrote
	 * it (renames and copies always read the tree, as in git). */
	if (op) {
		prev = moved ? 0 : seen_get(pc, op);
		if ((error = touch_once(c, pc, op, f->status ==
		    WF_PATCH_RENAMED ? "renamed file" : "file")) < 0)
			return error;
		if (prev == SEEN_DELETED)
			return fail(c, "file '%s' is changed after it is "
			    "renamed or deleted", op);
		if (prev != SEEN_RESULT && !f->maybe_new &&
		    (error = expect(c, op, 1, f->old_mode)) < 0)
			return error;
	}
	if (np) {
		prev = seen_get(pc, np);
		if ((error = touch_once(c, pc, np, "file")) < 0)
			return error;
		if ((f->status == WF_PATCH_ADDED || moved) &&
		    prev != SEEN_DELETED && prev != SEEN_TO_DELETE &&
		    (error = expect(c, np, 0, f->new_mode)) < 0)
			return error;
	}
	switch (f->status) {
	case WF_PATCH_ADDED:
		if (!binary && f->nhunks == 0 && !is_empty_blob(f->new_id))
			return fail(c, "new file '%s' has no content", np);
		break;
	case WF_PATCH_DELETED:
		if (!binary && f->nhunks == 0 && !is_empty_blob(f->old_id))
			return fail(c, "deleted file '%s' has no content "
			    "(the patch must show the removed lines)", op);
		for (h = 0; h < f->nhunks; h++)
			if (f->hunks[h].new_lines != 0 ||
			    f->hunks[h].old_start > 1)
				return fail(c, "deleted file '%s' keeps "
				    "lines or misses some", op);
		break;
	default:
		break;
	}
	if (np && (error = seen_set(pc, np, SEEN_RESULT)) < 0)
		return error;
	if ((!np || f->status == WF_PATCH_RENAMED) &&
	    (error = seen_set(pc, op, SEEN_DELETED)) < 0)
		return error;
	if ((f->new_mode & 0170000) == 0160000 && !binary && f->nhunks > 0) {
		char text[128];
		size_t k;

		if (link_target(text, sizeof(text), f) < 0 ||
		    strncmp(text, "Subproject commit ", 18) != 0 ||
		    (k = strspn(text + 18, "0123456789abcdef")) < GIT_OID_HEXSZ)
			return fail(c, "file '%s': corrupt patch for submodule",
			    np);
	}
	if (np && (f->new_mode & 0170000) == 0120000) {
		const char *problem = wf_path_problem_mode(np, f->new_mode);

		if (problem)
			return fail(c, "file '%s': %s", np, problem);
	}
	/* A file that becomes a link as it is: its text is the target. */
	if (np && (f->new_mode & 0170000) == 0120000 &&
	    (f->old_mode & 0170000) != 0120000 && !binary && f->nhunks == 0 &&
	    f->status != WF_PATCH_ADDED && (error = link_from_tree(c,
	    f->old_path ? f->old_path : np, np)) < 0)
		return error;
	if ((f->new_mode & 0170000) == 0120000 && !binary && f->nhunks > 0) {
		char target[4096];
		const char *problem;

		if (link_target(target, sizeof(target), f) < 0)
			return fail(c, "symbolic link '%s': target too long",
			    np);
		if ((problem = wf_path_link_problem(np, target)))
			return fail(c, "symbolic link '%s' -> '%s': %s", np,
			    target, problem);
	}
	return 0;
}

static struct wf_cherry **cherry_of(struct ctx *c);

/*
 * A patch that does not fit the target's tip may be on it already (a
 * change queued again): then it is taken, for wf-apply to report as
 * already applied.  1 then, 0 when not, < 0 on errors.
 */
static int
landed_already(struct ctx *c, const struct wf_patch *patch)
{
	struct wf_cherry **ch = cherry_of(c);
	git_oid pid, commit;
	int error;

	if (!c->has_tip)
		return 0;
	if ((error = wf_cherry_patch_id(&pid, patch)) != 0)
		return error < 0 ? error : 0;
	if (!*ch && (error = wf_cherry_new(ch, c->repo, WF_CHERRY_DEPTH)) < 0)
		return error;
	return wf_cherry_find(&commit, *ch, &c->tip, &pid);
}

static int
check_patch(struct ctx *c, const char *text, size_t len)
{
	struct wf_patch *patch = NULL;
	struct patch_check pc;
	size_t i, n;
	int error, landed;

	memset(&pc, 0, sizeof(pc));
	if (len > c->o.max_patch) {
		error = fail(c, "patch of %zu bytes exceeds the limit of %zu",
		    len, c->o.max_patch);
		goto out;
	}
	if ((error = wf_patch_parse(&patch, text, len)) < 0) {
		char msg[2048];

		if (error != WF_EINPUT)
			goto out;
		snprintf(msg, sizeof(msg), "%s", wf_error_last());
		error = fail(c, "%s", msg);
		goto out;
	}
	n = patch->nfiles;
	if (n == 0) {
		error = fail(c, "the patch changes no file");
		goto out;
	}
	if (n > c->o.max_files) {
		error = fail(c, "patch changes %zu files, more than the limit "
		    "of %zu", n, c->o.max_files);
		goto out;
	}
	if (!(pc.kind = calloc(2 * n, sizeof(*pc.kind)))) {
		error = wf_error_oom();
		goto out;
	}
	for (i = 0; i < n; i++) {
		const struct wf_patch_file *f = &patch->files[i];

		if ((!f->new_path || f->status == WF_PATCH_RENAMED) &&
		    (error = seen_set(&pc, f->old_path, SEEN_TO_DELETE)) < 0)
			goto out;
	}
	for (i = 0; i < n; i++)
		if ((error = check_delta(c, &pc, &patch->files[i])) < 0) {
			if (error == WF_EINPUT && c->absent &&
			    (landed = landed_already(c, patch)) != 0)
				error = landed < 0 ? landed : 0;
			goto out;
		}
	/* What the stream sees after it: deletions first, as git applies. */
	for (i = 0; i < n; i++) {
		const struct wf_patch_file *f = &patch->files[i];

		if ((!f->new_path || f->status == WF_PATCH_RENAMED) &&
		    (error = effect(c, f->old_path, 0)) < 0)
			goto out;
	}
	for (i = 0; i < n; i++) {
		const struct wf_patch_file *f = &patch->files[i];

		if (f->new_path && (error = effect(c, f->new_path, 1)) < 0)
			goto out;
	}
	error = 0;
out:
	wf_map_release(&pc.touched);
	wf_map_release(&pc.state);
	free(pc.kind);
	wf_patch_free(patch);
	return error;
}

static int
lookup_commit(struct ctx *c, git_commit **out, const git_oid *id,
    const char *field)
{
	char hex[GIT_OID_HEXSZ + 1];

	if (git_commit_lookup(out, c->repo, id) < 0)
		return fail(c, "%s commit '%s' is not in the repository", field,
		    git_oid_tostr(hex, sizeof(hex), id));
	return 0;
}

/* Each commit of a range lands as it is: it must be safe on its own. */
static int
guard_commit(struct ctx *c, const git_oid *id)
{
	git_commit *cm = NULL, *parent = NULL;
	char hex[GIT_OID_HEXSZ + 1], *why = NULL;
	int error;

	git_oid_tostr(hex, sizeof(hex), id);
	if (git_commit_lookup(&cm, c->repo, id) < 0 ||
	    (git_commit_parentcount(cm) > 0 &&
	    git_commit_parent(&parent, cm, 0) < 0)) {
		error = wf_error_set_git(WF_EOS, "cannot read commit %s", hex);
		goto out;
	}
	error = wf_guard_tree(&why, c->repo, parent ?
	    git_commit_tree_id(parent) : NULL, git_commit_tree_id(cm));
	if (error > 0)
		error = fail(c, "commit %.12s: %s", hex, why);
out:
	free(why);
	git_commit_free(parent);
	git_commit_free(cm);
	return error;
}

static int
check_commits(struct ctx *c, const git_oid *base, const git_oid *head)
{
	git_commit *bc = NULL, *hc = NULL;
	git_tree *bt = NULL, *ht = NULL;
	git_revwalk *walk = NULL;
	git_diff *diff = NULL;
	git_oid id;
	size_t i, n = 0;
	int error;

	if (!c->repo) {
		error = fail(c, "kind 'commits' needs a repository");
		goto out;
	}
	if ((error = lookup_commit(c, &bc, base, "base")) < 0 ||
	    (error = lookup_commit(c, &hc, head, "head")) < 0)
		goto out;
	if (git_oid_equal(base, head)) {
		error = fail(c, "the range base..head is empty");
		goto out;
	}
	if (git_graph_descendant_of(c->repo, head, base) != 1) {
		error = fail(c, "head is not a descendant of base");
		goto out;
	}
	if (git_revwalk_new(&walk, c->repo) < 0 ||
	    git_revwalk_push(walk, head) < 0 || git_revwalk_hide(walk, base) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot walk the range");
		goto out;
	}
	while ((error = git_revwalk_next(&id, walk)) == 0) {
		if (++n > c->o.max_commits) {
			error = fail(c, "the range holds more than %zu commits",
			    c->o.max_commits);
			goto out;
		}
		if ((error = guard_commit(c, &id)) < 0)
			goto out;
	}
	if (error != GIT_ITEROVER) {
		error = wf_error_set_git(WF_EOS, "cannot walk the range");
		goto out;
	}
	if (git_commit_tree(&bt, bc) < 0 || git_commit_tree(&ht, hc) < 0 ||
	    git_diff_tree_to_tree(&diff, c->repo, bt, ht, NULL) < 0) {
		error = wf_error_set_git(WF_EOS, "cannot diff the range");
		goto out;
	}
	if (git_diff_num_deltas(diff) > c->o.max_files) {
		error = fail(c, "the range changes more than %zu files",
		    c->o.max_files);
		goto out;
	}
	for (i = 0; i < git_diff_num_deltas(diff); i++) {
		const git_diff_delta *d = git_diff_get_delta(diff, i);

		if (d->status != GIT_DELTA_ADDED &&
		    ((error = touch(c, d->old_file.path, "file")) < 0 ||
		    (error = effect(c, d->old_file.path,
		    d->status != GIT_DELTA_DELETED &&
		    d->status != GIT_DELTA_RENAMED)) < 0))
			goto out;
		if (d->status != GIT_DELTA_DELETED &&
		    strcmp(d->old_file.path, d->new_file.path) != 0 &&
		    ((error = touch(c, d->new_file.path, "file")) < 0 ||
		    (error = effect(c, d->new_file.path, 1)) < 0))
			goto out;
		if (d->status == GIT_DELTA_ADDED &&
		    ((error = touch(c, d->new_file.path, "file")) < 0 ||
		    (error = effect(c, d->new_file.path, 1)) < 0))
			goto out;
	}
	error = 0;
out:
	git_diff_free(diff);
	git_revwalk_free(walk);
	git_tree_free(bt);
	git_tree_free(ht);
	git_commit_free(bc);
	git_commit_free(hc);
	return error;
}

/* One entry of "files", as its canonical form is written. */
struct canon_file {
	const char *path, *mode;
	json_t *content;	/* borrowed from the request, or NULL */
	char blob[GIT_OID_HEXSZ + 1];
	int del;
};

static int
cmp_file(const void *a, const void *b)
{
	const struct canon_file *x = a, *y = b;

	return strcmp(x->path, y->path);
}

/* One entry of "files", checked, into *out. */
static int
check_file(struct ctx *c, struct canon_file *out, json_t *v)
{
	static const char *const keys[] = { "path", "mode", "content", "blob",
	    "delete", NULL };
	const char *path, *mode = "100644", *content = NULL, *blob = NULL;
	unsigned char *data = NULL;
	size_t len = 0;
	git_oid id, given;
	json_t *x;
	int del = 0, error, nset;

	memset(out, 0, sizeof(*out));
	if ((error = wf_json_check_object(c->doc, &c->path, v, keys)) < 0)
		return error;
	wf_jpath_push_key(&c->path, "path");
	if (!(x = json_object_get(v, "path")))
		error = fail(c, "missing");
	else
		error = wf_json_check_string(&path, c->doc, &c->path, x);
	if (error == 0)
		error = touch(c, path, "file");
	wf_jpath_pop(&c->path);
	if (error < 0)
		return error;
	if ((x = json_object_get(v, "delete"))) {
		wf_jpath_push_key(&c->path, "delete");
		if ((error = wf_json_check_bool(&del, c->doc, &c->path, x)) == 0 &&
		    !del)
			error = fail(c, "only true is allowed (leave it out)");
		wf_jpath_pop(&c->path);
		if (error < 0)
			return error;
	}
	if ((x = json_object_get(v, "content"))) {
		wf_jpath_push_key(&c->path, "content");
		error = wf_json_check_string(&content, c->doc, &c->path, x);
		wf_jpath_pop(&c->path);
		if (error < 0)
			return error;
	}
	if ((x = json_object_get(v, "blob"))) {
		wf_jpath_push_key(&c->path, "blob");
		if ((error = wf_json_check_string(&blob, c->doc, &c->path, x)) == 0 &&
		    parse_oid(&given, blob) < 0)
			error = fail(c, "expected a full lower-case object id");
		wf_jpath_pop(&c->path);
		if (error < 0)
			return error;
	}
	nset = (content != NULL) + (blob != NULL) + del;
	if (nset == 0)
		return fail(c, "file '%s' needs one of content, blob or delete",
		    path);
	if (del && nset > 1)
		return fail(c, "file '%s' is deleted: it takes no content or "
		    "blob", path);
	if (del) {
		if (json_object_get(v, "mode"))
			return fail(c, "file '%s' is deleted: it takes no mode",
			    path);
		if ((error = expect_in_tree(c, path, 1)) < 0 ||
		    (error = effect(c, path, 0)) < 0)
			return error;
		out->path = path;
		out->del = 1;
		return 0;
	}
	if ((x = json_object_get(v, "mode"))) {
		wf_jpath_push_key(&c->path, "mode");
		if ((error = wf_json_check_string(&mode, c->doc, &c->path, x)) == 0 &&
		    strcmp(mode, "100644") && strcmp(mode, "100755") &&
		    strcmp(mode, "120000"))
			error = fail(c, "mode must be \"100644\", \"100755\" or "
			    "\"120000\"");
		wf_jpath_pop(&c->path);
		if (error < 0)
			return error;
	}
	if (content) {
		wf_jpath_push_key(&c->path, "content");
		error = base64_decode(&data, &len, content, strlen(content));
		if (error == -2)
			error = wf_error_oom();
		else if (error < 0)
			error = fail(c, "not valid base64");
		else if (len > c->o.max_file)
			error = fail(c, "file '%s' of %zu bytes exceeds the "
			    "limit of %zu", path, len, c->o.max_file);
		else if ((error = wf_hash_buf(&id, data, len)) == 0 && blob &&
		    !git_oid_equal(&id, &given))
			error = fail(c, "content does not match blob '%s'",
			    blob);
		wf_jpath_pop(&c->path);
		if (error < 0)
			goto out;
	} else {
		git_odb *odb = NULL;
		git_object_t type;

		id = given;
		if (c->repo) {
			if (git_repository_odb(&odb, c->repo) < 0) {
				error = wf_error_set_git(WF_EOS,
				    "cannot open the object database");
				goto out;
			}
			error = git_odb_read_header(&len, &type, odb, &id);
			git_odb_free(odb);
			wf_jpath_push_key(&c->path, "blob");
			if (error < 0 || type != GIT_OBJECT_BLOB)
				error = fail(c, "blob '%s' is not in the "
				    "repository", blob);
			else if (len > c->o.max_file)
				error = fail(c, "file '%s' of %zu bytes exceeds "
				    "the limit of %zu", path, len, c->o.max_file);
			wf_jpath_pop(&c->path);
			if (error < 0)
				goto out;
		}
	}
	if (strcmp(mode, "120000") == 0) {
		const char *problem = wf_path_problem_mode(path, 0120000);

		if (problem) {
			error = fail(c, "file '%s': %s", path, problem);
			goto out;
		}
	}
	/* A link named by its blob is read to check its target. */
	if (strcmp(mode, "120000") == 0 && !data && c->repo) {
		git_blob *b = NULL;

		if (git_blob_lookup(&b, c->repo, &id) < 0) {
			error = wf_error_set_git(WF_EOS, "cannot read blob "
			    "'%s'", blob);
			goto out;
		}
		len = (size_t)git_blob_rawsize(b);
		if ((data = malloc(len + 1)))
			memcpy(data, git_blob_rawcontent(b), len);
		git_blob_free(b);
		if (!data) {
			error = wf_error_oom();
			goto out;
		}
	}
	if (strcmp(mode, "120000") == 0 && data) {
		char target[4096];
		const char *problem;

		if (len >= sizeof(target) || memchr(data, '\0', len)) {
			error = fail(c, "symbolic link '%s': bad target", path);
			goto out;
		}
		memcpy(target, data, len);
		target[len] = '\0';
		if ((problem = wf_path_link_problem(path, target))) {
			error = fail(c, "symbolic link '%s' -> '%s': %s", path,
			    target, problem);
			goto out;
		}
	}
	/*
	 * Strict base64 has one spelling for given bytes (the padding
	 * bits are zero), so the content is already canonical: shared,
	 * not encoded again.
	 */
	if ((error = effect(c, path, 1)) < 0)
		goto out;
	out->path = path;
	out->mode = mode;
	out->content = content ? json_object_get(v, "content") : NULL;
	git_oid_tostr(out->blob, sizeof(out->blob), &id);
	error = 0;
out:
	free(data);
	return error;
}

/* "files", checked, written in canonical form (sorted by path) to b. */
static int
check_files(struct ctx *c, struct wf_json_buf *b, json_t *v)
{
	struct canon_file *items = NULL;
	size_t i, n;
	int error = 0;

	if (!json_is_array(v))
		return fail(c, "expected an array of files");
	n = json_array_size(v);
	if (n == 0)
		return fail(c, "no files");
	if (n > c->o.max_files)
		return fail(c, "%zu files exceed the limit of %zu", n,
		    c->o.max_files);
	if (!(items = calloc(n, sizeof(*items))))
		return wf_error_oom();
	for (i = 0; i < n; i++) {
		wf_jpath_push_index(&c->path, i);
		error = check_file(c, &items[i], json_array_get(v, i));
		wf_jpath_pop(&c->path);
		if (error < 0)
			goto out;
	}
	qsort(items, n, sizeof(*items), cmp_file);
	wf_json_buf_raw(b, "[", 1);
	for (i = 0; i < n; i++) {
		const struct canon_file *f = &items[i];

		wf_json_buf_raw(b, i ? ",{" : "{", i ? 2 : 1);
		if (f->del) {
			wf_json_buf_raw(b, "\"delete\":true,", 14);
		} else {
			wf_json_buf_raw(b, "\"blob\":\"", 8);
			wf_json_buf_raw(b, f->blob, GIT_OID_HEXSZ);
			wf_json_buf_raw(b, "\",", 2);
			if (f->content) {
				wf_json_buf_raw(b, "\"content\":", 10);
				wf_json_buf_value(b, f->content, 0);
				wf_json_buf_raw(b, ",", 1);
			}
			wf_json_buf_raw(b, "\"mode\":", 7);
			wf_json_buf_string(b, f->mode, strlen(f->mode));
			wf_json_buf_raw(b, ",", 1);
		}
		wf_json_buf_raw(b, "\"path\":", 7);
		wf_json_buf_string(b, f->path, strlen(f->path));
		wf_json_buf_raw(b, "}", 1);
	}
	wf_json_buf_raw(b, "]", 1);
out:
	free(items);
	return error;
}

/* Fetch an optional string field; *out NULL when absent. */
static int
opt_string(struct ctx *c, const char **out, json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	int error;

	*out = NULL;
	if (!v)
		return 0;
	wf_jpath_push_key(&c->path, key);
	error = wf_json_check_string(out, c->doc, &c->path, v);
	wf_jpath_pop(&c->path);
	return error;
}

static int
req_string(struct ctx *c, const char **out, json_t *obj, const char *key)
{
	int error;

	if ((error = opt_string(c, out, obj, key)) < 0)
		return error;
	if (!*out)
		return fail(c, "missing field '%s'", key);
	return 0;
}

static int
check_target(struct ctx *c, const char *target)
{
	int valid = 0;

	wf_jpath_push_key(&c->path, "target");
	/*
	 * A branch's name, as git check-ref-format --branch takes it: not
	 * HEAD, not an option, and not a ref's full name, which would name
	 * a branch refs/heads/refs/... nobody means.
	 */
	if (strncmp(target, "refs/", 5) == 0) {
		int error = strncmp(target, "refs/heads/", 11) == 0 ?
		    fail(c, "target '%s': name the branch ('%s'), not its "
		    "ref", target, target + 11) :
		    fail(c, "target '%s': a target is a branch, named as "
		    "'main' is", target);

		wf_jpath_pop(&c->path);
		return error;
	}
	/* libgit2's rules, as git's: HEAD and "-x" are none. */
	if (strlen(target) > 512 ||
	    git_branch_name_is_valid(&valid, target) < 0 || !valid) {
		int error = fail(c, "'%s' is not a valid branch name", target);

		wf_jpath_pop(&c->path);
		return error;
	}
	wf_jpath_pop(&c->path);
	return 0;
}

/* "SECONDS +HHMM" (or -HHMM), as git writes an author's date. */
static int
git_date(const char *s)
{
	size_t n = strspn(s, "0123456789");

	return n > 0 && n <= 12 && s[n] == ' ' && (s[n + 1] == '+' ||
	    s[n + 1] == '-') && strspn(s + n + 2, "0123456789") == 4 &&
	    s[n + 6] == '\0';
}

static int
check_author(struct ctx *c, json_t *v)
{
	static const char *const keys[] = { "name", "email", "date", NULL };
	const char *s;
	int error, i;

	wf_jpath_push_key(&c->path, "author");
	if ((error = wf_json_check_object(c->doc, &c->path, v, keys)) < 0)
		goto out;
	if ((error = opt_string(c, &s, v, "date")) < 0)
		goto out;
	if (s && !git_date(s)) {
		wf_jpath_push_key(&c->path, "date");
		error = fail(c, "expected git's \"SECONDS +HHMM\", got '%.64s'",
		    s);
		wf_jpath_pop(&c->path);
		goto out;
	}
	for (i = 0; i < 2; i++) {
		const char *key = keys[i];

		if ((error = req_string(c, &s, v, key)) < 0)
			goto out;
		wf_jpath_push_key(&c->path, key);
		if (!*s || strpbrk(s, "<>\n") || strlen(s) > 1024)
			error = fail(c, "%s must be non-empty, at most 1024 "
			    "bytes, without '<', '>' or newline", key);
		wf_jpath_pop(&c->path);
		if (error < 0)
			goto out;
	}
out:
	wf_jpath_pop(&c->path);
	return error;
}

static int
check_depends(struct ctx *c, const char ***deps, size_t *n, json_t *v)
{
	size_t i;
	int error;

	wf_jpath_push_key(&c->path, "depends_on");
	if ((error = wf_json_check_strings(deps, n, c->doc, &c->path, v)) < 0)
		goto out;
	if (*n > c->o.max_depends) {
		error = fail(c, "%zu dependencies exceed the limit of %zu", *n,
		    c->o.max_depends);
		goto out;
	}
	for (i = 0; i < *n; i++) {
		const char *problem = id_problem((*deps)[i]);
		size_t j;

		wf_jpath_push_index(&c->path, i);
		if (problem)
			error = fail(c, "'%s': %s", (*deps)[i], problem);
		else if (strcmp((*deps)[i], c->id) == 0)
			error = fail(c, "a request cannot depend on itself");
		for (j = 0; error == 0 && j < i; j++)
			if (strcmp((*deps)[i], (*deps)[j]) == 0)
				error = fail(c, "'%s' is listed twice",
				    (*deps)[i]);
		wf_jpath_pop(&c->path);
		if (error < 0)
			goto out;
	}
out:
	wf_jpath_pop(&c->path);
	return error;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* depends_on with the earlier requests of the series it builds on. */
static int
add_after(struct ctx *c, const char ***deps, size_t *ndeps)
{
	const char **d;
	size_t i, k, n = *ndeps;

	if (!(d = calloc(n + c->nafter + 1, sizeof(*d))))
		return wf_error_oom();
	for (i = 0; i < n; i++)
		d[i] = (*deps)[i];
	for (k = 0; k < c->nafter; k++) {
		for (i = 0; i < *ndeps; i++)
			if (strcmp(d[i], c->after[k]) == 0)
				break;
		if (i == *ndeps)
			d[n++] = c->after[k];
	}
	if (n > c->o.max_depends) {
		free(d);
		return fail(c, "%zu dependencies (with the earlier requests "
		    "of the stream it builds on) exceed the limit of %zu", n,
		    c->o.max_depends);
	}
	free(*deps);
	*deps = d;
	*ndeps = n;
	return 0;
}

/*
 * The trees a stream's requests were checked against, by base commit
 * or target branch: each branch tip is read once per stream, not
 * once per request (four system calls each), and the whole stream is
 * checked against one snapshot.
 */
struct tree_memo {
	int is_base;
	git_oid base;		/* with is_base */
	char *target;		/* without */
	git_tree *tree;		/* NULL: a new branch */
	git_oid commit;		/* the tree's */
	char name[128];
};

struct wf_change_trees {
	git_repository *repo;
	struct tree_memo *m;
	size_t n;
	struct series *series;	/* one per target */
	size_t nseries;
	struct wf_cherry *cherry;	/* patch ids on the targets */
};

/* Where the patch ids of the targets are kept. */
static struct wf_cherry **
cherry_of(struct ctx *c)
{
	struct wf_change_trees *t = c->o.trees;

	return t && t->repo == c->repo ? &t->cherry : &c->cherry;
}

int
wf_change_trees_new(struct wf_change_trees **out, git_repository *repo)
{
	if (!(*out = calloc(1, sizeof(**out))))
		return wf_error_oom();
	(*out)->repo = repo;
	return 0;
}

void
wf_change_trees_free(struct wf_change_trees *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n; i++) {
		free(t->m[i].target);
		git_tree_free(t->m[i].tree);
	}
	free(t->m);
	for (i = 0; i < t->nseries; i++)
		series_free(&t->series[i]);
	free(t->series);
	wf_cherry_free(t->cherry);
	free(t);
}

/* The tree a patch or file set is checked against, read afresh. */
static int
read_tree(struct ctx *c, const git_oid *base, const char *target)
{
	git_commit *commit = NULL;
	git_reference *ref = NULL;
	char name[1024];
	int error;

	if (base) {
		wf_jpath_push_key(&c->path, "base");
		error = lookup_commit(c, &commit, base, "base");
		wf_jpath_pop(&c->path);
		if (error < 0)
			return error;
		snprintf(c->tree_name, sizeof(c->tree_name), "base %.12s",
		    git_oid_tostr_s(base));
	} else {
		snprintf(name, sizeof(name), "refs/heads/%s", target);
		if (git_reference_lookup(&ref, c->repo, name) < 0 ||
		    git_reference_peel((git_object **)&commit, ref,
		    GIT_OBJECT_COMMIT) < 0) {
			git_reference_free(ref);
			git_error_clear();
			wf_jpath_push_key(&c->path, "target");
			error = fail(c, "target branch '%s' does not exist",
			    target);
			wf_jpath_pop(&c->path);
			return error;
		}
		git_reference_free(ref);
		snprintf(c->tree_name, sizeof(c->tree_name), "target '%s'",
		    target);
	}
	error = git_commit_tree(&c->tree, commit) < 0 ?
	    wf_error_set_git(WF_EOS, "cannot read a tree") : 0;
	c->tip = *git_commit_id(commit);
	git_commit_free(commit);
	return error;
}

/* The tree a patch or file set is checked against. */
static int
pick_tree(struct ctx *c, const git_oid *base, const char *target)
{
	struct wf_change_trees *t = c->o.trees;
	struct tree_memo *m;
	size_t i;
	int error;

	if (!c->repo)
		return 0;
	if (!t || t->repo != c->repo)
		return read_tree(c, base, target);
	for (i = t->n; i-- > 0;) {
		m = &t->m[i];
		if (base ? m->is_base && git_oid_equal(&m->base, base) :
		    !m->is_base && strcmp(m->target, target) == 0) {
			c->tree = m->tree;
			c->tree_borrowed = 1;
			c->tip = m->commit;
			memcpy(c->tree_name, m->name, sizeof(c->tree_name));
			return 0;
		}
	}
	if ((error = read_tree(c, base, target)) < 0)
		return error;
	if (!(m = realloc(t->m, (t->n + 1) * sizeof(*m)))) {
		git_tree_free(c->tree);
		c->tree = NULL;
		return wf_error_oom();
	}
	t->m = m;
	m = &t->m[t->n];
	memset(m, 0, sizeof(*m));
	if (base) {
		m->is_base = 1;
		m->base = *base;
	} else if (!(m->target = strdup(target))) {
		git_tree_free(c->tree);
		c->tree = NULL;
		return wf_error_oom();
	}
	m->tree = c->tree;
	m->commit = c->tip;
	memcpy(m->name, c->tree_name, sizeof(m->name));
	t->n++;
	c->tree_borrowed = 1;
	return 0;
}

/* The series of the stream's requests for `target`, made when new. */
static int
pick_series(struct ctx *c, const char *target)
{
	struct wf_change_trees *t = c->o.trees;
	struct series *s;
	size_t i;

	if (!c->repo || !t || t->repo != c->repo)
		return 0;
	for (i = 0; i < t->nseries; i++)
		if (strcmp(t->series[i].target, target) == 0) {
			c->series = &t->series[i];
			return 0;
		}
	if (!(s = realloc(t->series, (t->nseries + 1) * sizeof(*s))))
		return wf_error_oom();
	t->series = s;
	s = &t->series[t->nseries];
	memset(s, 0, sizeof(*s));
	if (!(s->target = strdup(target)))
		return wf_error_oom();
	t->nseries++;
	c->series = s;
	return 0;
}

/*
 * The target must exist; the tree to check against is `base`'s or,
 * without one, the target's tip with the stream's earlier requests
 * for it applied.
 */
static int
pick_target(struct ctx *c, const git_oid *base, const char *target)
{
	git_oid tip;
	int error;

	if (!c->repo)
		return 0;
	if ((error = pick_tree(c, NULL, target)) < 0)
		return error;
	c->has_tip = 1;
	if (!base)
		return pick_series(c, target);
	tip = c->tip;
	if (!c->tree_borrowed)
		git_tree_free(c->tree);
	c->tree = NULL;
	c->tree_borrowed = 0;
	error = pick_tree(c, base, target);
	c->tip = tip;
	return error;
}

static void
fill_opts(struct wf_change_opts *o, const struct wf_change_opts *in)
{
	static const struct wf_change_opts zero = WF_CHANGE_OPTS_INIT;

	*o = in ? *in : zero;
	if (!o->max_request)
		o->max_request = DEF_MAX_REQUEST;
	if (!o->max_patch)
		o->max_patch = DEF_MAX_PATCH;
	if (!o->max_file)
		o->max_file = DEF_MAX_FILE;
	if (!o->max_files)
		o->max_files = DEF_MAX_FILES;
	if (!o->max_message)
		o->max_message = DEF_MAX_MESSAGE;
	if (!o->max_depends)
		o->max_depends = DEF_MAX_DEPENDS;
	if (!o->max_commits)
		o->max_commits = DEF_MAX_COMMITS;
}

static int
check_oid_field(struct ctx *c, git_oid *out, const char *s, const char *key)
{
	int error = 0;

	wf_jpath_push_key(&c->path, key);
	if (parse_oid(out, s) < 0)
		error = fail(c, "expected a full lower-case object id, got "
		    "'%.64s'", s);
	wf_jpath_pop(&c->path);
	return error;
}

/* id, target and depends_on of ch, copied into one block it owns. */
static int
set_strings(struct wf_change *ch, const char *id, const char *target,
    const char *const *deps, size_t ndeps)
{
	size_t size = strlen(id) + strlen(target) + 2, i;
	char *p;

	for (i = 0; i < ndeps; i++)
		size += strlen(deps[i]) + 1;
	if (!(ch->strings = malloc(size)) ||
	    !(ch->depends_on = calloc(ndeps + 1, sizeof(*ch->depends_on))))
		return -1;
	p = ch->strings;
	ch->id = p;
	p = stpcpy(p, id) + 1;
	ch->target = p;
	p = stpcpy(p, target) + 1;
	for (i = 0; i < ndeps; i++) {
		ch->depends_on[i] = p;
		p = stpcpy(p, deps[i]) + 1;
	}
	ch->ndepends = ndeps;
	return 0;
}

/* The next key of a canonical object, after '{' or ','. */
static void
canon_key(struct wf_json_buf *b, const char *key)
{
	wf_json_buf_raw(b, b->len ? ",\"" : "{\"", 2);
	wf_json_buf_raw(b, key, strlen(key));
	wf_json_buf_raw(b, "\":", 2);
}

/*
 * Bytes a request carries as text ("patch") or, when they are not
 * UTF-8, as base64 ("patch_base64").
 */
struct bytes {
	const char *data;	/* NULL when absent */
	size_t len;
	char *owned;		/* decoded from base64, else NULL */
};

/* Field `key` or `key`_base64 (not both) into *out. */
static int
opt_bytes(struct ctx *c, struct bytes *out, json_t *obj, const char *key)
{
	char b64key[64];
	json_t *t = json_object_get(obj, key), *x;
	const char *s;
	unsigned char *buf;
	size_t n;
	int error;

	snprintf(b64key, sizeof(b64key), "%s_base64", key);
	x = json_object_get(obj, b64key);
	if (t && x) {
		wf_jpath_push_key(&c->path, b64key);
		error = fail(c, "not allowed with '%s'", key);
		wf_jpath_pop(&c->path);
		return error;
	}
	if (t) {
		if ((error = opt_string(c, &s, obj, key)) < 0)
			return error;
		out->data = s;
		out->len = json_string_length(t);
		return 0;
	}
	if (!x)
		return 0;
	if ((error = opt_string(c, &s, obj, b64key)) < 0)
		return error;
	wf_jpath_push_key(&c->path, b64key);
	error = base64_decode(&buf, &n, s, strlen(s));
	if (error == -2)
		error = wf_error_oom();
	else if (error < 0)
		error = fail(c, "not valid base64");
	wf_jpath_pop(&c->path);
	if (error < 0)
		return error;
	out->owned = (char *)buf;
	out->data = out->owned;
	out->len = n;
	return 0;
}

/*
 * Write bytes in their canonical form: as text when they are UTF-8
 * without a NUL (which a JSON string read back by jansson cannot hold),
 * however they came, else as base64.
 */
static int
canon_bytes(struct wf_json_buf *b, const char *key, const struct bytes *v)
{
	char b64key[64], *enc;

	if (wf_str_utf8_valid(v->data, v->len) &&
	    !memchr(v->data, '\0', v->len)) {
		canon_key(b, key);
		wf_json_buf_string(b, v->data, v->len);
		return 0;
	}
	snprintf(b64key, sizeof(b64key), "%s_base64", key);
	if (!(enc = wf_change_base64(v->data, v->len)))
		return -1;
	canon_key(b, b64key);
	wf_json_buf_string(b, enc, strlen(enc));
	free(enc);
	return 0;
}

int
wf_change_parse(struct wf_change **out, const struct wf_json_doc *doc,
    git_repository *repo, const struct wf_change_opts *opts)
{
	static const char *const keys[] = { "id", "target", "kind", "patch",
	    "patch_base64", "base", "head", "files", "author", "message",
	    "message_base64", "priority", "depends_on", "meta", NULL };
	struct ctx c;
	struct wf_change *ch = NULL;
	const char *id, *target, *kind, *base = NULL, *head = NULL, **deps = NULL;
	struct bytes patch = { NULL, 0, NULL }, message = { NULL, 0, NULL };
	json_t *v = doc->value, *x;
	struct wf_json_buf b = WF_JSON_BUF_INIT, files = WF_JSON_BUF_INIT;
	git_oid base_id, head_id;
	size_t ndeps = 0, i, dump_len;
	int64_t priority = 0;
	char *dump = NULL;
	const char *key;
	json_t *val;
	int error;

	*out = NULL;
	memset(&c, 0, sizeof(c));
	c.doc = doc;
	c.repo = repo;
	fill_opts(&c.o, opts);
	if (!(c.paths = json_object())) {
		error = wf_error_oom();
		goto out;
	}
	if ((error = wf_json_check_object(doc, &c.path, v, keys)) < 0)
		goto out;
	if ((error = req_string(&c, &id, v, "id")) < 0)
		goto out;
	{
		const char *problem = id_problem(id);

		if (problem) {
			wf_jpath_push_key(&c.path, "id");
			error = fail(&c, "'%.300s': %s", id, problem);
			goto out;
		}
	}
	c.id = id;
	if ((error = req_string(&c, &target, v, "target")) < 0 ||
	    (error = check_target(&c, target)) < 0 ||
	    (error = req_string(&c, &kind, v, "kind")) < 0)
		goto out;
	if ((x = json_object_get(v, "priority"))) {
		wf_jpath_push_key(&c.path, "priority");
		if ((error = wf_json_check_int(&priority, doc, &c.path, x)) == 0 &&
		    (priority < -PRIORITY_LIMIT || priority > PRIORITY_LIMIT))
			error = fail(&c, "priority must be between -%d and %d",
			    PRIORITY_LIMIT, PRIORITY_LIMIT);
		wf_jpath_pop(&c.path);
		if (error < 0)
			goto out;
	}
	if ((x = json_object_get(v, "depends_on")) &&
	    (error = check_depends(&c, &deps, &ndeps, x)) < 0)
		goto out;
	if ((x = json_object_get(v, "author")) &&
	    (error = check_author(&c, x)) < 0)
		goto out;
	if ((error = opt_bytes(&c, &message, v, "message")) < 0)
		goto out;
	if (message.data && (message.len > c.o.max_message ||
	    memchr(message.data, '\0', message.len))) {
		wf_jpath_push_key(&c.path, message.owned ? "message_base64" :
		    "message");
		error = fail(&c, message.len > c.o.max_message ? "message "
		    "exceeds the limit of %zu bytes" : "a message cannot hold "
		    "a NUL byte", c.o.max_message);
		goto out;
	}
	if ((x = json_object_get(v, "meta")) && !json_is_object(x)) {
		wf_jpath_push_key(&c.path, "meta");
		error = fail(&c, "expected an object");
		goto out;
	}
	if ((error = opt_string(&c, &base, v, "base")) < 0 ||
	    (error = opt_string(&c, &head, v, "head")) < 0 ||
	    (error = opt_bytes(&c, &patch, v, "patch")) < 0)
		goto out;
	if (base && (error = check_oid_field(&c, &base_id, base, "base")) < 0)
		goto out;
	if (head && (error = check_oid_field(&c, &head_id, head, "head")) < 0)
		goto out;
	if (!(ch = calloc(1, sizeof(*ch)))) {
		error = wf_error_oom();
		goto out;
	}
	wf_jpath_push_key(&c.path, "kind");
	if (strcmp(kind, "patch") == 0)
		ch->kind = WF_CHANGE_PATCH;
	else if (strcmp(kind, "commits") == 0)
		ch->kind = WF_CHANGE_COMMITS;
	else if (strcmp(kind, "files") == 0)
		ch->kind = WF_CHANGE_FILES;
	else {
		error = fail(&c, "'%.64s' is not one of patch, commits, files",
		    kind);
		goto out;
	}
	wf_jpath_pop(&c.path);
	/* Fields that belong to other kinds are refused, not ignored. */
	if ((ch->kind != WF_CHANGE_PATCH && patch.data && (key = patch.owned ?
	    "patch_base64" : "patch")) ||
	    (ch->kind != WF_CHANGE_COMMITS && head && (key = "head")) ||
	    (ch->kind != WF_CHANGE_FILES && json_object_get(v, "files") &&
	    (key = "files"))) {
		wf_jpath_push_key(&c.path, key);
		error = fail(&c, "not allowed for kind '%s'", kind);
		goto out;
	}
	switch (ch->kind) {
	case WF_CHANGE_PATCH:
		if (!patch.data) {
			error = fail(&c, "missing field 'patch' (or "
			    "'patch_base64')");
			goto out;
		}
		if ((error = pick_target(&c, base ? &base_id : NULL,
		    target)) < 0)
			goto out;
		wf_jpath_push_key(&c.path, patch.owned ? "patch_base64" :
		    "patch");
		if ((error = check_patch(&c, patch.data, patch.len)) < 0)
			goto out;
		wf_jpath_pop(&c.path);
		break;
	case WF_CHANGE_COMMITS:
		if (!base || !head) {
			error = fail(&c, "missing field '%s'", base ? "head" :
			    "base");
			goto out;
		}
		if ((error = pick_target(&c, NULL, target)) < 0 ||
		    (error = check_commits(&c, &base_id, &head_id)) < 0)
			goto out;
		break;
	case WF_CHANGE_FILES:
		if (!(x = json_object_get(v, "files"))) {
			error = fail(&c, "missing field 'files'");
			goto out;
		}
		if ((error = pick_target(&c, base ? &base_id : NULL,
		    target)) < 0)
			goto out;
		wf_jpath_push_key(&c.path, "files");
		if ((error = check_files(&c, &files, x)) < 0)
			goto out;
		if (files.failed)
			goto oom;
		wf_jpath_pop(&c.path);
		break;
	}
	/*
	 * The canonical form, written as wf_json_canonical() would write
	 * it (compact, keys sorted) without building it: known fields in
	 * key order, defaults filled in, sets sorted.
	 */
	if (c.nafter > 0 && (error = add_after(&c, &deps, &ndeps)) < 0)
		goto out;
	if (deps)
		qsort(deps, ndeps, sizeof(*deps), cmp_str);
	if ((x = json_object_get(v, "author"))) {
		canon_key(&b, "author");
		wf_json_buf_value(&b, x, WF_JSON_DUMP_SORT_KEYS);
	}
	if (base) {
		canon_key(&b, "base");
		wf_json_buf_string(&b, base, strlen(base));
	}
	canon_key(&b, "depends_on");
	wf_json_buf_raw(&b, "[", 1);
	for (i = 0; i < ndeps; i++) {
		if (i)
			wf_json_buf_raw(&b, ",", 1);
		wf_json_buf_string(&b, deps[i], strlen(deps[i]));
	}
	wf_json_buf_raw(&b, "]", 1);
	if (ch->kind == WF_CHANGE_FILES) {
		canon_key(&b, "files");
		wf_json_buf_raw(&b, files.s, files.len);
	}
	if (head) {
		canon_key(&b, "head");
		wf_json_buf_string(&b, head, strlen(head));
	}
	canon_key(&b, "id");
	wf_json_buf_string(&b, id, strlen(id));
	canon_key(&b, "kind");
	wf_json_buf_string(&b, kind, strlen(kind));
	if (message.data && canon_bytes(&b, "message", &message) < 0)
		goto oom;
	if ((x = json_object_get(v, "meta"))) {
		canon_key(&b, "meta");
		wf_json_buf_value(&b, x, WF_JSON_DUMP_SORT_KEYS);
	}
	if (patch.data && canon_bytes(&b, "patch", &patch) < 0)
		goto oom;
	canon_key(&b, "priority");
	wf_json_buf_int(&b, (json_int_t)priority);
	canon_key(&b, "target");
	wf_json_buf_string(&b, target, strlen(target));
	wf_json_buf_raw(&b, "}", 1);
	if ((error = wf_json_buf_finish(&dump, &dump_len, &b)) < 0)
		goto out;
	if (dump_len > c.o.max_request) {
		error = fail(&c, "request of %zu bytes exceeds the limit of %zu",
		    dump_len, c.o.max_request);
		goto out;
	}
	if ((error = wf_hash_buf(&ch->hash, dump, dump_len)) < 0)
		goto out;
	/* Kept for the queue; the dump's buffer is larger than its text. */
	if (!(ch->text = realloc(dump, dump_len + 1)))
		goto oom;
	ch->text_len = dump_len;
	dump = NULL;
	if (set_strings(ch, id, target, deps, ndeps) < 0)
		goto oom;
	ch->priority = priority;
	if (!(ch->paths = json_array()))
		goto oom;
	{
		const char **ps = calloc(json_object_size(c.paths) + 1,
		    sizeof(*ps));
		size_t np = 0;

		if (!ps)
			goto oom;
		json_object_foreach(c.paths, key, val)
			ps[np++] = key;
		qsort(ps, np, sizeof(*ps), cmp_str);
		for (i = 0; i < np; i++)
			if (json_array_append_new(ch->paths,
			    json_string(ps[i])) < 0) {
				free(ps);
				goto oom;
			}
		free(ps);
	}
	if ((error = wf_json_dump(&ch->paths_text, NULL, ch->paths, 0)) < 0)
		goto out;
	if (c.series && (error = series_record(c.series, c.effect, c.neffect,
	    ch->id)) < 0)
		goto out;
	*out = ch;
	ch = NULL;
	error = 0;
	goto out;
oom:
	error = wf_error_oom();
out:
	free(dump);
	free(deps);
	free(patch.owned);
	free(message.owned);
	free(b.s);
	free(files.s);
	json_decref(c.paths);
	for (i = 0; i < c.neffect; i++)
		free(c.effect[i].path);
	free(c.effect);
	free(c.after);
	if (!c.tree_borrowed)
		git_tree_free(c.tree);
	wf_cherry_free(c.cherry);
	wf_change_free(ch);
	return error;
}

/* Copy the `keys` of `from` that it has into `to`, in that order. */
static int
copy_keys(json_t *to, json_t *from, const char *const *keys)
{
	json_t *x;

	for (; *keys; keys++)
		if ((x = json_object_get(from, *keys)) &&
		    json_object_set(to, *keys, x) < 0)
			return -1;
	return 0;
}

json_t *
wf_change_canonical(const struct wf_change *c)
{
	static const char *const top[] = { "id", "target", "kind",
	    "priority", "depends_on", "base", "head", "patch", "patch_base64",
	    NULL };
	static const char *const rest[] = { "message", "message_base64",
	    "author", "meta", NULL };
	static const char *const file[] = { "path", "mode", "blob",
	    "content", "delete", NULL };
	size_t len = strlen(c->text), used, i;
	json_t *v = wf_json_fast_parse(c->text, len, &used), *out, *files, *f;

	if (!v || used != len) {
		json_decref(v);
		if (!(v = json_loadb(c->text, len, 0, NULL)))
			return NULL;
	}
	/* The text has its keys sorted; people read "id" first. */
	if (!(out = json_object()) || copy_keys(out, v, top) < 0)
		goto fail;
	if ((files = json_object_get(v, "files"))) {
		json_t *arr = json_array();

		if (!arr || json_object_set_new(out, "files", arr) < 0)
			goto fail;
		json_array_foreach(files, i, f) {
			json_t *o = json_object();

			if (!o || json_array_append_new(arr, o) < 0 ||
			    copy_keys(o, f, file) < 0)
				goto fail;
		}
	}
	if (copy_keys(out, v, rest) < 0)
		goto fail;
	json_decref(v);
	return out;
fail:
	json_decref(out);
	json_decref(v);
	return NULL;
}

void
wf_change_free(struct wf_change *c)
{
	if (!c)
		return;
	json_decref(c->paths);
	free(c->paths_text);
	free(c->strings);
	free(c->text);
	free(c->depends_on);
	free(c);
}

/* Read one entry's data, at most `limit` bytes. */
static int
read_entry(unsigned char **out, size_t *len, struct archive *a, int64_t size,
    size_t limit, const char *name, const char *entry)
{
	unsigned char *buf;
	la_ssize_t n;
	size_t got = 0;

	*out = NULL;
	*len = 0;
	if (size < 0 || (uint64_t)size > limit)
		return wf_error_set(WF_EINPUT, "%s: entry '%s': %lld bytes "
		    "exceed the limit of %zu", name, entry, (long long)size,
		    limit);
	if (!(buf = malloc((size_t)size + 1)))
		return wf_error_oom();
	while (got < (size_t)size &&
	    (n = archive_read_data(a, buf + got, (size_t)size - got)) > 0)
		got += (size_t)n;
	if (got != (size_t)size) {
		free(buf);
		return wf_error_set(WF_EINPUT, "%s: entry '%s': truncated: %s",
		    name, entry, archive_error_string(a) ?
		    archive_error_string(a) : "short read");
	}
	*out = buf;
	*len = got;
	return 0;
}

int
wf_change_files_from_tar(json_t **out, int fd, const char *name,
    const char *prefix, const struct wf_change_opts *opts)
{
	struct wf_change_opts o;
	struct archive *a = NULL;
	struct archive_entry *e;
	json_t *arr = NULL, *item = NULL;
	unsigned char *data = NULL;
	char *enc = NULL, path[8192];
	const char *problem;
	size_t len;
	int r, error;

	*out = NULL;
	fill_opts(&o, opts);
	if (prefix && *prefix && (problem = wf_path_problem(prefix)))
		return wf_error_set(WF_EINPUT, "prefix '%s': %s", prefix,
		    problem);
	if (!(arr = json_array()) || !(a = archive_read_new())) {
		error = wf_error_oom();
		goto out;
	}
	/*
	 * The compressions libarchive reads itself: its other filters
	 * (lrzip, lzop, grzip, ...) run an external program on the input,
	 * which is untrusted.
	 */
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	if (archive_read_open_fd(a, fd, 65536) != ARCHIVE_OK) {
		error = wf_error_set(WF_EINPUT, "%s: not a tar archive: %s",
		    name, archive_error_string(a));
		goto out;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK ||
	    r == ARCHIVE_WARN) {
		const char *en = archive_entry_pathname(e), *rel, *base;
		mode_t type = archive_entry_filetype(e);
		size_t plen;
		int del = 0;

		if (!en)
			en = "";
		rel = en;
		while (rel[0] == '.' && rel[1] == '/')
			rel += 2;
		if (type == AE_IFDIR || strcmp(rel, ".") == 0 || !*rel)
			continue;
		if (archive_entry_hardlink(e)) {
			error = wf_error_set(WF_EINPUT, "%s: entry '%s': hard "
			    "links are not supported", name, en);
			goto out;
		}
		if (type != AE_IFREG && type != AE_IFLNK) {
			error = wf_error_set(WF_EINPUT, "%s: entry '%s': only "
			    "files and symbolic links are supported", name, en);
			goto out;
		}
		base = strrchr(rel, '/');
		base = base ? base + 1 : rel;
		if (strncmp(base, ".wh.", 4) == 0) {
			if (strncmp(base, ".wh..wh.", 8) == 0) {
				error = wf_error_set(WF_EINPUT, "%s: entry '%s': "
				    "opaque whiteouts are not supported", name,
				    en);
				goto out;
			}
			del = 1;
		}
		if (prefix && *prefix)
			plen = (size_t)snprintf(path, sizeof(path), "%s/%.*s%s",
			    prefix, (int)(base - rel), rel, del ? base + 4 : base);
		else
			plen = (size_t)snprintf(path, sizeof(path), "%.*s%s",
			    (int)(base - rel), rel, del ? base + 4 : base);
		if (plen >= sizeof(path)) {
			error = wf_error_set(WF_EINPUT, "%s: entry '%.200s': name "
			    "too long", name, en);
			goto out;
		}
		if ((problem = wf_path_problem(path))) {
			error = wf_error_set(WF_EINPUT, "%s: entry '%s': %s",
			    name, en, problem);
			goto out;
		}
		if (json_array_size(arr) >= o.max_files) {
			error = wf_error_set(WF_EINPUT, "%s: more than %zu files",
			    name, o.max_files);
			goto out;
		}
		if (del) {
			item = json_pack("{s:s, s:b}", "path", path, "delete", 1);
		} else if (type == AE_IFLNK) {
			const char *t = archive_entry_symlink(e);

			if (!t)
				t = "";
			if ((problem = wf_path_link_problem(path, t))) {
				error = wf_error_set(WF_EINPUT, "%s: entry '%s' "
				    "-> '%s': %s", name, en, t, problem);
				goto out;
			}
			enc = wf_change_base64(t, strlen(t));
			item = enc ? json_pack("{s:s, s:s, s:s}", "path", path,
			    "mode", "120000", "content", enc) : NULL;
		} else {
			if ((error = read_entry(&data, &len, a,
			    archive_entry_size(e), o.max_file, name, en)) < 0)
				goto out;
			enc = wf_change_base64(data, len);
			item = enc ? json_pack("{s:s, s:s, s:s}", "path", path,
			    "mode", (archive_entry_perm(e) & 0111) ? "100755" :
			    "100644", "content", enc) : NULL;
		}
		free(enc);
		enc = NULL;
		free(data);
		data = NULL;
		if (!item || json_array_append_new(arr, item) < 0) {
			item = NULL;
			error = wf_error_oom();
			goto out;
		}
		item = NULL;
	}
	if (r != ARCHIVE_EOF) {
		error = wf_error_set(WF_EINPUT, "%s: bad tar archive: %s", name,
		    archive_error_string(a) ? archive_error_string(a) :
		    "unknown error");
		goto out;
	}
	if (json_array_size(arr) == 0) {
		error = wf_error_set(WF_EINPUT, "%s: the archive holds no files",
		    name);
		goto out;
	}
	*out = arr;
	arr = NULL;
	error = 0;
out:
	free(enc);
	free(data);
	json_decref(arr);
	if (a)
		archive_read_free(a);
	return error;
}

int
wf_change_from_canonical(struct wf_change **out, const char *text,
    const json_t *paths, const git_oid *hash)
{
	struct wf_change *ch = NULL;
	json_t *canon = NULL, *v;
	const char *kind;
	char *again = NULL;
	size_t i;
	int error;

	*out = NULL;
	if (!(canon = json_loads(text, JSON_REJECT_DUPLICATES, NULL)))
		return wf_error_set(WF_EINPUT, "not a change request's "
		    "canonical form: not JSON");
	/* Only what the queue relies on is looked at, and the form. */
	kind = json_string_value(json_object_get(canon, "kind"));
	if (!json_is_object(canon) ||
	    !json_is_string(json_object_get(canon, "id")) ||
	    !json_is_string(json_object_get(canon, "target")) ||
	    !json_is_integer(json_object_get(canon, "priority")) ||
	    !json_is_array(json_object_get(canon, "depends_on")) ||
	    !kind || (strcmp(kind, "patch") != 0 &&
	    strcmp(kind, "commits") != 0 && strcmp(kind, "files") != 0) ||
	    !json_is_array(paths)) {
		error = wf_error_set(WF_EINPUT, "not a change request's "
		    "canonical form");
		goto out;
	}
	if (!(again = wf_json_canonical(canon))) {
		error = wf_error_oom();
		goto out;
	}
	if (strcmp(again, text) != 0) {
		error = wf_error_set(WF_EINPUT, "not a change request's "
		    "canonical form");
		goto out;
	}
	json_array_foreach(paths, i, v)
		if (!json_is_string(v)) {
			error = wf_error_set(WF_EINPUT, "paths: expected "
			    "strings");
			goto out;
		}
	json_array_foreach(json_object_get(canon, "depends_on"), i, v)
		if (!json_is_string(v)) {
			error = wf_error_set(WF_EINPUT, "depends_on: expected "
			    "strings");
			goto out;
		}
	if (!(ch = calloc(1, sizeof(*ch))) ||
	    !(ch->paths = json_deep_copy(paths)) ||
	    !(ch->text = strdup(text))) {
		error = wf_error_oom();
		goto out;
	}
	ch->text_len = strlen(text);
	if ((error = wf_json_dump(&ch->paths_text, NULL, ch->paths, 0)) < 0)
		goto out;
	ch->kind = strcmp(kind, "patch") == 0 ? WF_CHANGE_PATCH :
	    strcmp(kind, "commits") == 0 ? WF_CHANGE_COMMITS : WF_CHANGE_FILES;
	ch->priority = json_integer_value(json_object_get(canon, "priority"));
	v = json_object_get(canon, "depends_on");
	{
		size_t n = json_array_size(v);
		const char **deps = calloc(n + 1, sizeof(*deps));

		for (i = 0; deps && i < n; i++)
			deps[i] = json_string_value(json_array_get(v, i));
		if (!deps || set_strings(ch, json_string_value(json_object_get(
		    canon, "id")), json_string_value(json_object_get(canon,
		    "target")), deps, n) < 0) {
			free(deps);
			error = wf_error_oom();
			goto out;
		}
		free(deps);
	}
	ch->hash = *hash;
	*out = ch;
	ch = NULL;
	error = 0;
out:
	free(again);
	json_decref(canon);
	wf_change_free(ch);
	return error;
}
