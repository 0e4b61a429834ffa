/*
 * The patch parser: git's builtin apply rules (apply.c in git 2.39:
 * find_header, parse_git_diff_header and its gitdiff_* handlers,
 * find_name and unquote_c_style, parse_traditional_patch with its -p
 * guess and timestamps, parse_fragment, parse_binary), over a text
 * that may hold NUL bytes.  See lib/patch.c for why wf has its own.
 */
#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "error.h"
#include "patch.h"

/* git's isspace() (sane_ctype): space, tab, newline, carriage return. */
static int
git_isspace(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

#define TERM_SPACE 1
#define TERM_TAB 2

struct parser {
	const char *buf;	/* NUL-terminated */
	size_t len;
	size_t linenr;
	int p_value, p_value_known;
};

/* What parse_git_diff_header and friends fill in. */
struct header {
	char *def_name, *old_name, *new_name;
	unsigned old_mode, new_mode;
	int is_new, is_delete, is_rename, is_copy;	/* -1 unknown */
	int extension_linenr;
	char old_id[GIT_OID_HEXSZ + 1], new_id[GIT_OID_HEXSZ + 1];
};

static size_t
linelen(const char *s, size_t size)
{
	const char *nl = memchr(s, '\n', size);

	return nl ? (size_t)(nl - s) + 1 : size;
}

static int
starts(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);

	return n >= k && memcmp(s, prefix, k) == 0;
}

static int
is_dev_null(const char *s)
{
	return strncmp(s, "/dev/null", 9) == 0 && git_isspace((unsigned char)s[9]);
}

/* A growing string. */
struct sb {
	char *buf;
	size_t len, cap;
};

static int
sb_add(struct sb *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *nb;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (!(nb = realloc(b->buf, cap)))
			return wf_error_oom();
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, s, n);
	b->len += n;
	b->buf[b->len] = '\0';
	return 0;
}

static char *
memdupz(const char *s, size_t n)
{
	char *r = malloc(n + 1);

	if (r) {
		memcpy(r, s, n);
		r[n] = '\0';
	}
	return r;
}

/* git's squash_slash(): "a//b" is "a/b". */
static void
squash_slash(char *name)
{
	size_t i = 0, j = 0;

	if (!name)
		return;
	while (name[i])
		if ((name[j++] = name[i++]) == '/')
			while (name[i] == '/')
				i++;
	name[j] = '\0';
}

/*
 * git's unquote_c_style(): the name in double quotes at q, with
 * \a \b \f \n \r \t \v \\ \" and three-digit octal escapes.  1 when it
 * does not unquote, 0 with the name appended to `out` and *endp past
 * the closing quote, or WF_ENOMEM.
 */
static int
unquote_c(struct sb *out, const char *q, const char **endp)
{
	size_t old = out->len;
	int error;

	if (*q++ != '"')
		return 1;
	for (;;) {
		size_t n = strcspn(q, "\"\\");
		char ch;

		if ((error = sb_add(out, q, n)) < 0)
			return error;
		q += n;
		if (*q == '"') {
			if (endp)
				*endp = q + 1;
			return 0;
		}
		if (*q != '\\')
			goto bad;
		q++;
		switch ((ch = *q++)) {
		case 'a': ch = '\a'; break;
		case 'b': ch = '\b'; break;
		case 'f': ch = '\f'; break;
		case 'n': ch = '\n'; break;
		case 'r': ch = '\r'; break;
		case 't': ch = '\t'; break;
		case 'v': ch = '\v'; break;
		case '\\': case '"': break;
		case '0': case '1': case '2': case '3': {
			int ac = (ch - '0') << 6;

			if (*q < '0' || *q > '7')
				goto bad;
			ac |= (*q++ - '0') << 3;
			if (*q < '0' || *q > '7')
				goto bad;
			ac |= *q++ - '0';
			ch = (char)ac;
			break;
		}
		default:
			goto bad;
		}
		if ((error = sb_add(out, &ch, 1)) < 0)
			return error;
	}
bad:
	out->len = old;
	if (out->buf)
		out->buf[old] = '\0';
	return 1;
}

/* find_name_gnu(): a quoted name with p components stripped. */
static int
find_name_gnu(char **out, const char *line, int p)
{
	struct sb name = { NULL, 0, 0 };
	char *cp;
	int error;

	*out = NULL;
	if ((error = unquote_c(&name, line, NULL)) != 0) {
		free(name.buf);
		return error < 0 ? error : 0;
	}
	for (cp = name.buf; p; p--) {
		if (!(cp = strchr(cp, '/'))) {
			free(name.buf);
			return 0;
		}
		cp++;
	}
	memmove(name.buf, cp, strlen(cp) + 1);
	squash_slash(name.buf);
	*out = name.buf;
	return 0;
}

static size_t
sane_tz_len(const char *line, size_t len)
{
	const char *tz, *p;

	if (len < 6 || line[len - 6] != ' ')
		return 0;
	tz = line + len - 6;
	if (tz[1] != '+' && tz[1] != '-')
		return 0;
	for (p = tz + 2; p != line + len; p++)
		if (!isdigit((unsigned char)*p))
			return 0;
	return (size_t)(line + len - tz);
}

#define D(c) isdigit((unsigned char)(c))

static size_t
tz_with_colon_len(const char *line, size_t len)
{
	const char *tz;

	if (len < 7 || line[len - 3] != ':')
		return 0;
	tz = line + len - 7;
	if (tz[0] != ' ' || (tz[1] != '+' && tz[1] != '-'))
		return 0;
	if (!D(tz[2]) || !D(tz[3]) || tz[4] != ':' || !D(tz[5]) || !D(tz[6]))
		return 0;
	return (size_t)(line + len - tz);
}

static size_t
date_len(const char *line, size_t len)
{
	const char *date, *p;

	if (len < 8 || line[len - 3] != '-')
		return 0;
	p = date = line + len - 8;
	if (!D(p[0]) || !D(p[1]) || p[2] != '-' || !D(p[3]) || !D(p[4]) ||
	    p[5] != '-' || !D(p[6]) || !D(p[7]))
		return 0;
	if (date - line >= 2 && D(date[-1]) && D(date[-2]))
		date -= 2;
	return (size_t)(line + len - date);
}

static size_t
short_time_len(const char *line, size_t len)
{
	const char *p;

	if (len < 9 || line[len - 3] != ':')
		return 0;
	p = line + len - 9;
	if (p[0] != ' ' || !D(p[1]) || !D(p[2]) || p[3] != ':' || !D(p[4]) ||
	    !D(p[5]) || p[6] != ':' || !D(p[7]) || !D(p[8]))
		return 0;
	return 9;
}

static size_t
fractional_time_len(const char *line, size_t len)
{
	const char *p;
	size_t n;

	if (!len || !D(line[len - 1]))
		return 0;
	p = line + len - 1;
	while (p > line && D(*p))
		p--;
	if (*p != '.')
		return 0;
	if (!(n = short_time_len(line, (size_t)(p - line))))
		return 0;
	return (size_t)(line + len - p) + n;
}

static size_t
trailing_spaces_len(const char *line, size_t len)
{
	const char *p;

	if (!len || line[len - 1] != ' ')
		return 0;
	p = line + len;
	while (p != line) {
		p--;
		if (*p != ' ')
			return (size_t)(line + len - (p + 1));
	}
	return len;
}

/* git's diff_timestamp_len(): the "\t2024-01-01 10:00:00 +0100" tail. */
static size_t
diff_timestamp_len(const char *line, size_t len)
{
	const char *end = line + len;
	size_t n;

	if (!len || !D(end[-1]))
		return 0;
	n = sane_tz_len(line, (size_t)(end - line));
	if (!n)
		n = tz_with_colon_len(line, (size_t)(end - line));
	end -= n;
	n = short_time_len(line, (size_t)(end - line));
	if (!n)
		n = fractional_time_len(line, (size_t)(end - line));
	end -= n;
	n = date_len(line, (size_t)(end - line));
	if (!n)
		return 0;
	end -= n;
	if (end == line)
		return 0;
	if (end[-1] == '\t')
		return (size_t)(line + len - (end - 1));
	if (end[-1] != ' ')
		return 0;
	end -= trailing_spaces_len(line, (size_t)(end - line));
	return (size_t)(line + len - end);
}

#undef D

/* find_name_common(): an unquoted name, p components stripped. */
static int
find_name_common(char **out, const char *line, const char *def, int p,
    const char *end, int terminate)
{
	const char *start = NULL;
	size_t len;

	*out = NULL;
	if (p == 0)
		start = line;
	while (line != end) {
		char c = *line;

		if (!end && (c == '\0' || git_isspace((unsigned char)c))) {
			if (c == '\n' || c == '\0')
				break;
			if ((c == ' ' && (terminate & TERM_SPACE)) ||
			    (c == '\t' && (terminate & TERM_TAB)) ||
			    (c != ' ' && c != '\t'))
				break;
		}
		line++;
		if (c == '/' && !--p)
			start = line;
	}
	if (!start || !(len = (size_t)(line - start))) {
		if (def && !(*out = strdup(def)))
			return wf_error_oom();
		squash_slash(*out);
		return 0;
	}
	/* The shorter name, when the other is it with ".orig" or "~". */
	if (def && strlen(def) < len && strncmp(start, def, strlen(def)) == 0)
		*out = strdup(def);
	else
		*out = memdupz(start, len);
	if (!*out)
		return wf_error_oom();
	squash_slash(*out);
	return 0;
}

static int
find_name(char **out, const char *line, const char *def, int p,
    int terminate)
{
	int error;

	if (*line == '"') {
		if ((error = find_name_gnu(out, line, p)) < 0 || *out)
			return error;
	}
	return find_name_common(out, line, def, p, NULL, terminate);
}

static int
find_name_traditional(char **out, const char *line, const char *def, int p)
{
	size_t len, dl;
	int error;

	if (*line == '"') {
		if ((error = find_name_gnu(out, line, p)) < 0 || *out)
			return error;
	}
	len = strcspn(line, "\n");
	if (!(dl = diff_timestamp_len(line, len)))
		return find_name_common(out, line, def, p, NULL, TERM_TAB);
	return find_name_common(out, line, def, p, line + len - dl, 0);
}

static int
guess_p_value(int *out, const char *nameline)
{
	char *name;
	int error;

	*out = -1;
	if (is_dev_null(nameline))
		return 0;
	if ((error = find_name_traditional(&name, nameline, NULL, 0)) < 0)
		return error;
	if (name && !strchr(name, '/'))
		*out = 0;
	free(name);
	return 0;
}

/*
 * git's has_epoch_timestamp(): GNU diff writes the epoch on the side
 * of a created or deleted file.
 */
static int
has_epoch_timestamp(const char *nameline)
{
	const char *ts = NULL, *cp;
	int epoch_hour, hour, minute, zone, sign;

	for (cp = nameline; *cp && *cp != '\n'; cp++)
		if (*cp == '\t')
			ts = cp + 1;
	if (!ts)
		return 0;
	if (strncmp(ts, "1969-12-31 ", 11) == 0)
		epoch_hour = 24;
	else if (strncmp(ts, "1970-01-01 ", 11) == 0)
		epoch_hour = 0;
	else
		return 0;
	ts += 11;
	/* ^[0-2][0-9]:([0-5][0-9]):00(\.0+)? ([-+][0-2][0-9]:?[0-5][0-9])\n */
	if (!(ts[0] >= '0' && ts[0] <= '2') || !isdigit((unsigned char)ts[1]) ||
	    ts[2] != ':' || !(ts[3] >= '0' && ts[3] <= '5') ||
	    !isdigit((unsigned char)ts[4]) || ts[5] != ':' || ts[6] != '0' ||
	    ts[7] != '0')
		return 0;
	hour = (ts[0] - '0') * 10 + ts[1] - '0';
	minute = (ts[3] - '0') * 10 + ts[4] - '0';
	cp = ts + 8;
	if (*cp == '.') {
		if (cp[1] != '0')
			return 0;
		for (cp++; *cp == '0'; cp++)
			;
	}
	if (*cp++ != ' ' || (*cp != '+' && *cp != '-'))
		return 0;
	sign = *cp++ == '-' ? -1 : 1;
	if (!(cp[0] >= '0' && cp[0] <= '2') || !isdigit((unsigned char)cp[1]))
		return 0;
	zone = ((cp[0] - '0') * 10 + cp[1] - '0') * 60;
	cp += 2;
	if (*cp == ':')
		cp++;
	if (!(cp[0] >= '0' && cp[0] <= '5') || !isdigit((unsigned char)cp[1]) ||
	    cp[2] != '\n')
		return 0;
	zone += (cp[0] - '0') * 10 + cp[1] - '0';
	return hour * 60 + minute - sign * zone == epoch_hour * 60;
}

static int
parse_traditional(struct parser *ps, const char *first, const char *second,
    struct header *h)
{
	char *name = NULL, *first_name = NULL;
	int error, p, q;

	first += 4;
	second += 4;
	if (!ps->p_value_known) {
		if ((error = guess_p_value(&p, first)) < 0 ||
		    (error = guess_p_value(&q, second)) < 0)
			return error;
		if (p < 0)
			p = q;
		if (p >= 0 && p == q) {
			ps->p_value = p;
			ps->p_value_known = 1;
		}
	}
	if (is_dev_null(first)) {
		h->is_new = 1;
		h->is_delete = 0;
		if ((error = find_name_traditional(&name, second, NULL,
		    ps->p_value)) < 0)
			return error;
		h->new_name = name;
	} else if (is_dev_null(second)) {
		h->is_new = 0;
		h->is_delete = 1;
		if ((error = find_name_traditional(&name, first, NULL,
		    ps->p_value)) < 0)
			return error;
		h->old_name = name;
	} else {
		if ((error = find_name_traditional(&first_name, first, NULL,
		    ps->p_value)) < 0)
			return error;
		error = find_name_traditional(&name, second, first_name,
		    ps->p_value);
		free(first_name);
		if (error < 0)
			return error;
		if (has_epoch_timestamp(first)) {
			h->is_new = 1;
			h->is_delete = 0;
			h->new_name = name;
		} else if (has_epoch_timestamp(second)) {
			h->is_new = 0;
			h->is_delete = 1;
			h->old_name = name;
		} else {
			h->old_name = name;
			if (name && !(h->new_name = strdup(name)))
				return wf_error_oom();
		}
	}
	if (!name)
		return wf_error_set(WF_EINPUT, "unable to find filename in "
		    "patch at line %zu", ps->linenr);
	return 0;
}

/* skip_tree_prefix(): NULL for an absolute name or too few components. */
static const char *
skip_tree_prefix(int p, const char *line, size_t llen)
{
	size_t i;

	if (!p)
		return llen && line[0] == '/' ? NULL : line;
	for (i = 0; i < llen; i++)
		if (line[i] == '/' && --p <= 0)
			return i == 0 ? NULL : line + i + 1;
	return NULL;
}

/*
 * git_header_name(): the name a "diff --git" line gives when both
 * sides are the same (mode changes, empty files added or removed).
 * *out is NULL when it cannot tell.
 */
static int
git_header_name(char **out, int p, const char *line, size_t llen)
{
	struct sb first = { NULL, 0, 0 }, sp = { NULL, 0, 0 };
	const char *name, *second = NULL, *cp, *end;
	size_t len, line_len;
	int error = 0;

	*out = NULL;
	line += 11;
	llen -= 11;
	end = line + llen;
	if (*line == '"') {
		if ((error = unquote_c(&first, line, &second)) != 0)
			goto fail;
		if (!(cp = skip_tree_prefix(p, first.buf, first.len)))
			goto fail;
		memmove(first.buf, cp, strlen(cp) + 1);
		first.len = strlen(first.buf);
		while (second < end && git_isspace((unsigned char)*second))
			second++;
		if (end <= second)
			goto fail;
		if (*second == '"') {
			if ((error = unquote_c(&sp, second, NULL)) != 0)
				goto fail;
			if (!(cp = skip_tree_prefix(p, sp.buf, sp.len)) ||
			    strcmp(cp, first.buf))
				goto fail;
			free(sp.buf);
			*out = first.buf;
			return 0;
		}
		if (!(cp = skip_tree_prefix(p, second, (size_t)(end - second))))
			goto fail;
		/* As git: the newline counts, so this never matches. */
		if ((size_t)(end - cp) != first.len ||
		    memcmp(first.buf, cp, first.len))
			goto fail;
		*out = first.buf;
		return 0;
fail:
		free(first.buf);
		free(sp.buf);
		return error < 0 ? error : 0;
	}
	if (!(name = skip_tree_prefix(p, line, llen)))
		return 0;
	/* The first name is unquoted: a quote starts the second. */
	for (second = name; second < end; second++) {
		if (*second != '"')
			continue;
		if ((error = unquote_c(&sp, second, NULL)) != 0)
			goto fail2;
		if (!(cp = skip_tree_prefix(p, sp.buf, sp.len)))
			goto fail2;
		len = strlen(cp);
		if (len < (size_t)(second - name) && !strncmp(cp, name, len) &&
		    git_isspace((unsigned char)name[len])) {
			memmove(sp.buf, cp, len + 1);
			*out = sp.buf;
			return 0;
		}
fail2:
		free(sp.buf);
		return error < 0 ? error : 0;
	}
	/* A name that shows up twice, exactly the same. */
	if (!(second = memchr(name, '\n', (size_t)(end - name))))
		return 0;
	line_len = (size_t)(second - name);
	for (len = 0; len < line_len; len++) {
		if (name[len] != '\t' && name[len] != ' ')
			continue;
		if (len + 1 >= line_len)
			return 0;
		if (!(cp = skip_tree_prefix(p, name + len + 1,
		    line_len - (len + 1))))
			return 0;
		if ((size_t)(name + line_len - cp) == len &&
		    !strncmp(name, cp, len)) {
			if (!(*out = memdupz(name, len)))
				return wf_error_oom();
			return 0;
		}
	}
	return 0;
}

static int
verify_name(struct parser *ps, const char *line, int isnull, char **name,
    const char *side)
{
	char *another;
	int error;

	if (!*name && !isnull)
		return find_name(name, line, NULL, ps->p_value, TERM_TAB);
	if (*name) {
		if (isnull)
			return wf_error_set(WF_EINPUT, "bad git diff: expected "
			    "/dev/null on line %zu", ps->linenr);
		if ((error = find_name(&another, line, NULL, ps->p_value,
		    TERM_TAB)) < 0)
			return error;
		if (!another || strcmp(another, *name)) {
			free(another);
			return wf_error_set(WF_EINPUT, "bad git diff: "
			    "inconsistent %s filename on line %zu", side,
			    ps->linenr);
		}
		free(another);
	} else if (!is_dev_null(line)) {
		return wf_error_set(WF_EINPUT, "bad git diff: expected "
		    "/dev/null on line %zu", ps->linenr);
	}
	return 0;
}

static int
parse_mode(struct parser *ps, const char *line, unsigned *mode)
{
	char *end;
	unsigned long m = strtoul(line, &end, 8);

	if (end == line || !git_isspace((unsigned char)*end) || m > 0177777)
		return wf_error_set(WF_EINPUT, "invalid mode on line %zu",
		    ps->linenr);
	*mode = (unsigned)m;
	return 0;
}

static int
set_name(char **slot, const char *from)
{
	free(*slot);
	*slot = NULL;
	if (from && !(*slot = strdup(from)))
		return wf_error_oom();
	return 0;
}

/* gitdiff_index(): "index abc..def[ mode]". */
static int
parse_index(struct parser *ps, const char *line, struct header *h)
{
	const char *dots = strchr(line, '.'), *sp, *eol;
	size_t len;

	if (!dots || dots[1] != '.' || (size_t)(dots - line) > GIT_OID_HEXSZ)
		return 0;
	len = (size_t)(dots - line);
	memcpy(h->old_id, line, len);
	h->old_id[len] = '\0';
	line = dots + 2;
	sp = strchr(line, ' ');
	eol = line + strcspn(line, "\n");
	if (!sp || eol < sp)
		sp = eol;
	if ((len = (size_t)(sp - line)) > GIT_OID_HEXSZ)
		return 0;
	memcpy(h->new_id, line, len);
	h->new_id[len] = '\0';
	if (*sp == ' ')
		return parse_mode(ps, sp + 1, &h->old_mode);
	return 0;
}

/* A name line of the extended header: "rename from x", "copy to x". */
static int
header_name(struct parser *ps, const char *l, int *kind, char **slot)
{
	*kind = 1;
	free(*slot);
	return find_name(slot, l, NULL, ps->p_value ? ps->p_value - 1 : 0, 0);
}

/*
 * One extended header line; 1 when it ends the header (a hunk, or a
 * line that is none of git's).
 */
static int
header_line(struct parser *ps, const char *l, size_t n, struct header *h)
{
	static const char *const names[] = { "copy from ", "copy to ",
	    "rename old ", "rename new ", "rename from ", "rename to " };
	size_t i;

	if (starts(l, n, "@@ -"))
		return 1;
	if (starts(l, n, "--- "))
		return verify_name(ps, l + 4, h->is_new, &h->old_name, "old");
	if (starts(l, n, "+++ "))
		return verify_name(ps, l + 4, h->is_delete, &h->new_name,
		    "new");
	if (starts(l, n, "old mode "))
		return parse_mode(ps, l + 9, &h->old_mode);
	if (starts(l, n, "new mode "))
		return parse_mode(ps, l + 9, &h->new_mode);
	if (starts(l, n, "deleted file mode ")) {
		h->is_delete = 1;
		return set_name(&h->old_name, h->def_name) < 0 ? WF_ENOMEM :
		    parse_mode(ps, l + 18, &h->old_mode);
	}
	if (starts(l, n, "new file mode ")) {
		h->is_new = 1;
		return set_name(&h->new_name, h->def_name) < 0 ? WF_ENOMEM :
		    parse_mode(ps, l + 14, &h->new_mode);
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (starts(l, n, names[i]))
			return header_name(ps, l + strlen(names[i]),
			    i < 2 ? &h->is_copy : &h->is_rename,
			    i % 2 ? &h->new_name : &h->old_name);
	if (starts(l, n, "similarity index ") ||
	    starts(l, n, "dissimilarity index "))
		return 0;
	if (starts(l, n, "index "))
		return parse_index(ps, l + 6, h);
	return 1;
}

static int
check_header_line(struct parser *ps, struct header *h)
{
	int ext = (h->is_delete == 1) + (h->is_new == 1) +
	    (h->is_rename == 1) + (h->is_copy == 1);

	if (ext > 1)
		return wf_error_set(WF_EINPUT, "inconsistent header lines %d "
		    "and %zu", h->extension_linenr, ps->linenr);
	if (ext && !h->extension_linenr)
		h->extension_linenr = (int)ps->linenr;
	return 0;
}

/*
 * parse_git_diff_header(): *used is the header's length (the
 * "diff --git" line and its extended lines).
 */
static int
parse_git_header(struct parser *ps, size_t *used, const char *line,
    size_t len, size_t size, struct header *h)
{
	size_t off;
	int error;

	h->is_new = h->is_delete = 0;
	if ((error = git_header_name(&h->def_name, ps->p_value, line,
	    len)) < 0)
		return error;
	line += len;
	size -= len;
	ps->linenr++;
	for (off = len; size > 0; off += len, size -= len, line += len,
	    ps->linenr++) {
		len = linelen(line, size);
		if (!len || line[len - 1] != '\n')
			break;
		if ((error = header_line(ps, line, len, h)) < 0 ||
		    check_header_line(ps, h) < 0)
			return error < 0 ? error : WF_EINPUT;
		if (error > 0)
			break;
	}
	if (!h->old_name && !h->new_name) {
		if (!h->def_name)
			return wf_error_set(WF_EINPUT, "git diff header lacks "
			    "filename information when removing %d leading "
			    "pathname component%s (line %zu)", ps->p_value,
			    ps->p_value == 1 ? "" : "s", ps->linenr);
		if (!(h->old_name = strdup(h->def_name)) ||
		    !(h->new_name = strdup(h->def_name)))
			return wf_error_oom();
	}
	if ((!h->new_name && !h->is_delete) || (!h->old_name && !h->is_new))
		return wf_error_set(WF_EINPUT, "git diff header lacks "
		    "filename information (line %zu)", ps->linenr);
	*used = off;
	return 0;
}

/* parse_range() over a NUL-terminated line. */
static int
parse_num(const char *l, unsigned long *out)
{
	char *end;

	if (!isdigit((unsigned char)*l))
		return 0;
	*out = strtoul(l, &end, 10);
	return (int)(end - l);
}

static long
parse_range(const char *line, size_t len, long off, const char *expect,
    unsigned long *p1, unsigned long *p2)
{
	int digits;
	size_t ex;

	if (off < 0 || (size_t)off >= len)
		return -1;
	line += off;
	len -= (size_t)off;
	if (!(digits = parse_num(line, p1)) || (size_t)digits > len)
		return -1;
	off += digits;
	line += digits;
	len -= (size_t)digits;
	*p2 = 1;
	if (len > 0 && *line == ',') {
		if (!(digits = parse_num(line + 1, p2)) ||
		    (size_t)digits + 1 > len)
			return -1;
		off += digits + 1;
		line += digits + 1;
		len -= (size_t)digits + 1;
	}
	ex = strlen(expect);
	if (ex > len || memcmp(line, expect, ex))
		return -1;
	return off + (long)ex;
}

static long
parse_hunk_header(const char *line, size_t len, struct wf_patch_hunk *h)
{
	long off;

	if (!len || line[len - 1] != '\n')
		return -1;
	off = parse_range(line, len, 4, " +", &h->old_start, &h->old_lines);
	return parse_range(line, len, off, " @@", &h->new_start,
	    &h->new_lines);
}

/*
 * find_header(): the offset of the next file's header from `line`,
 * its length in *hdrsize; 1 when there is none.
 */
static int
find_header(struct parser *ps, size_t *offset, size_t *hdrsize,
    const char *line, size_t size, struct header *h)
{
	size_t off, len;
	int error;

	h->is_rename = h->is_copy = 0;
	h->is_new = h->is_delete = -1;
	for (off = 0; size > 0; off += len, size -= len, line += len,
	    ps->linenr++) {
		size_t nextlen;

		len = linelen(line, size);
		if (len < 6)
			continue;
		if (starts(line, len, "@@ -")) {
			struct wf_patch_hunk dummy;

			if (parse_hunk_header(line, len, &dummy) < 0)
				continue;
			return wf_error_set(WF_EINPUT, "patch fragment without "
			    "header at line %zu: %.*s", ps->linenr,
			    (int)(len - 1 > 200 ? 200 : len - 1), line);
		}
		if (size < len + 6)
			break;
		if (starts(line, len, "diff --git ")) {
			size_t used = 0;

			if ((error = parse_git_header(ps, &used, line, len,
			    size, h)) < 0)
				return error;
			if (used <= len) {
				/* Only the "diff --git" line: skip it. */
				free(h->def_name);
				free(h->old_name);
				free(h->new_name);
				memset(h, 0, sizeof(*h));
				h->is_new = h->is_delete = -1;
				continue;
			}
			*hdrsize = used;
			*offset = off;
			return 0;
		}
		if (!starts(line, len, "--- ") ||
		    !starts(line + len, size - len, "+++ "))
			continue;
		nextlen = linelen(line + len, size - len);
		if (size < len + nextlen + 14 ||
		    !starts(line + len + nextlen, size - len - nextlen, "@@ -"))
			continue;
		if ((error = parse_traditional(ps, line, line + len, h)) < 0)
			return error;
		*hdrsize = len + nextlen;
		*offset = off;
		ps->linenr += 2;
		return 0;
	}
	return 1;
}

static int
add_line(struct wf_patch_hunk *h, size_t *alloc, char origin,
    const char *ptr, size_t len)
{
	if (h->nlines == *alloc) {
		size_t n = *alloc ? *alloc * 2 : 16;
		struct wf_patch_line *l = realloc(h->lines, n * sizeof(*l));

		if (!l)
			return wf_error_oom();
		h->lines = l;
		*alloc = n;
	}
	h->lines[h->nlines].origin = origin;
	h->lines[h->nlines].ptr = ptr;
	h->lines[h->nlines].len = len;
	h->nlines++;
	return 0;
}

/*
 * parse_fragment(): one hunk at `line`; *used is its length, 0 when it
 * is corrupt.
 */
static int
parse_hunk(struct parser *ps, size_t *used, const char *line, size_t size,
    struct wf_patch_hunk *h)
{
	size_t len = linelen(line, size), off, alloc = 0;
	unsigned long oldlines, newlines;
	int added = 0, deleted = 0, error;

	*used = 0;
	if (parse_hunk_header(line, len, h) < 0)
		return 0;
	oldlines = h->old_lines;
	newlines = h->new_lines;
	line += len;
	size -= len;
	ps->linenr++;
	for (off = len; size > 0; off += len, size -= len, line += len,
	    ps->linenr++) {
		size_t plen;

		if (!oldlines && !newlines)
			break;
		len = linelen(line, size);
		if (!len || line[len - 1] != '\n')
			return 0;
		/* A line followed by "\ No newline" loses its newline. */
		plen = len - 1;
		if (len < size && line[len] == '\\')
			plen--;
		switch (*line) {
		case '\n':
		case ' ':
			if (!oldlines || !newlines)
				return 0;
			oldlines--;
			newlines--;
			if (!deleted && !added)
				h->leading++;
			h->trailing++;
			if (*line == '\n' ? len < size && line[len] == '\\' :
			    0)
				break;
			if ((error = *line == '\n' ?
			    add_line(h, &alloc, ' ', line, 1) :
			    add_line(h, &alloc, ' ', line + 1, plen)) < 0)
				return error;
			break;
		case '-':
			if (!oldlines)
				return 0;
			deleted++;
			oldlines--;
			h->trailing = 0;
			if ((error = add_line(h, &alloc, '-', line + 1,
			    plen)) < 0)
				return error;
			break;
		case '+':
			if (!newlines)
				return 0;
			added++;
			newlines--;
			h->trailing = 0;
			if ((error = add_line(h, &alloc, '+', line + 1,
			    plen)) < 0)
				return error;
			break;
		case '\\':
			if (len < 12 || memcmp(line, "\\ ", 2))
				return 0;
			break;
		default:
			return 0;
		}
	}
	if (oldlines || newlines)
		return 0;
	if (!deleted && !added)
		return 0;
	if (size > 12 && !memcmp(line, "\\ ", 2))
		off += linelen(line, size);
	*used = off;
	return 0;
}

/* git's base85 alphabet (base85.c). */
static const char b85[] = "0123456789"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "abcdefghijklmnopqrstuvwxyz"
    "!#$%&()*+-;<=>?@^_`{|}~";

static int
decode_85(unsigned char *dst, const char *s, size_t len)
{
	static signed char de85[256];
	static int ready;
	size_t i;

	if (!ready) {
		memset(de85, -1, sizeof(de85));
		for (i = 0; i < 85; i++)
			de85[(unsigned char)b85[i]] = (signed char)i;
		ready = 1;
	}
	while (len) {
		uint32_t acc = 0;
		int cnt, de;

		for (cnt = 0; cnt < 4; cnt++) {
			if ((de = de85[(unsigned char)*s++]) < 0)
				return -1;
			acc = acc * 85 + (uint32_t)de;
		}
		if ((de = de85[(unsigned char)*s++]) < 0)
			return -1;
		if (0xffffffffu / 85 < acc ||
		    0xffffffffu - (uint32_t)de < (acc *= 85))
			return -1;
		acc += (uint32_t)de;
		cnt = len < 4 ? (int)len : 4;
		len -= (size_t)cnt;
		do {
			acc = (acc << 8) | (acc >> 24);
			*dst++ = (unsigned char)acc;
		} while (--cnt);
	}
	return 0;
}

static int
inflate_all(unsigned char **out, const unsigned char *data, size_t size,
    size_t inflated)
{
	z_stream z;
	unsigned char *buf;
	int st;

	*out = NULL;
	/*
	 * deflate expands data at most 1032 times: a larger size is a lie,
	 * which must not size an allocation (nor pass zlib's uInt).
	 */
	if (inflated > UINT_MAX || inflated / 1032 > size + 1)
		return 1;
	if (!(buf = malloc(inflated ? inflated : 1)))
		return wf_error_oom();
	memset(&z, 0, sizeof(z));
	if (inflateInit(&z) != Z_OK) {
		free(buf);
		return wf_error_oom();
	}
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)size;
	z.next_out = buf;
	z.avail_out = (uInt)inflated;
	st = inflate(&z, Z_FINISH);
	inflateEnd(&z);
	if (st != Z_STREAM_END || z.total_out != inflated) {
		free(buf);
		return 1;
	}
	*out = buf;
	return 0;
}

/*
 * parse_binary_hunk(): "literal N" or "delta N" and its base85 lines
 * up to an empty line.  *used is 0 when there is no such hunk.
 */
static int
parse_binary_hunk(struct parser *ps, size_t *used, const char *buf,
    size_t size, struct wf_patch_binary *out)
{
	unsigned char *data = NULL, *nd;
	size_t llen = linelen(buf, size), total = llen, hunk = 0;
	unsigned long origlen;
	int error;

	*used = 0;
	if (starts(buf, llen, "delta ")) {
		out->kind = WF_PATCH_BINARY_DELTA;
		origlen = strtoul(buf + 6, NULL, 10);
	} else if (starts(buf, llen, "literal ")) {
		out->kind = WF_PATCH_BINARY_LITERAL;
		origlen = strtoul(buf + 8, NULL, 10);
	} else {
		return 0;
	}
	ps->linenr++;
	buf += llen;
	size -= llen;
	for (;;) {
		size_t max, blen;

		llen = linelen(buf, size);
		total += llen;
		ps->linenr++;
		if (llen == 1 && *buf == '\n')
			break;
		if (llen < 7 || (llen - 2) % 5 || buf[llen - 1] != '\n')
			goto corrupt;
		max = (llen - 2) / 5 * 4;
		if (*buf >= 'A' && *buf <= 'Z')
			blen = (size_t)(*buf - 'A' + 1);
		else if (*buf >= 'a' && *buf <= 'z')
			blen = (size_t)(*buf - 'a' + 27);
		else
			goto corrupt;
		if (max < blen || blen + 4 <= max)
			goto corrupt;
		if (!(nd = realloc(data, hunk + blen))) {
			free(data);
			return wf_error_oom();
		}
		data = nd;
		if (decode_85(data + hunk, buf + 1, blen) < 0)
			goto corrupt;
		hunk += blen;
		buf += llen;
		size -= llen;
	}
	if ((error = inflate_all(&out->data, data, hunk, origlen)) != 0) {
		free(data);
		if (error < 0)
			return error;
		return wf_error_set(WF_EINPUT, "corrupt binary patch at line "
		    "%zu: data does not inflate", ps->linenr - 1);
	}
	free(data);
	out->len = origlen;
	*used = total;
	return 0;
corrupt:
	free(data);
	out->kind = WF_PATCH_BINARY_NONE;
	return wf_error_set(WF_EINPUT, "corrupt binary patch at line %zu: "
	    "%.*s", ps->linenr - 1, (int)(llen && llen - 1 < 200 ? llen - 1 :
	    0), buf);
}

static int
add_file(struct wf_patch *p, size_t *alloc)
{
	if (p->nfiles == *alloc) {
		size_t n = *alloc ? *alloc * 2 : 8;
		struct wf_patch_file *f = realloc(p->files, n * sizeof(*f));

		if (!f)
			return wf_error_oom();
		p->files = f;
		*alloc = n;
	}
	memset(&p->files[p->nfiles], 0, sizeof(p->files[0]));
	p->nfiles++;
	return 0;
}

static void
file_release(struct wf_patch_file *f)
{
	size_t i;

	free(f->old_path);
	free(f->new_path);
	for (i = 0; i < f->nhunks; i++)
		free(f->hunks[i].lines);
	free(f->hunks);
	free(f->forward.data);
	free(f->reverse.data);
}

/*
 * parse_chunk() and parse_single_patch(): the file whose header is
 * at `off`; *used is how far the text is read.
 */
static int
parse_file(struct parser *ps, struct wf_patch_file *f, size_t *used,
    size_t start, struct header *h, size_t off, size_t hdrsize)
{
	const char *line;
	size_t pos = start + off + hdrsize, size = ps->len - pos, halloc = 0;
	unsigned long oldlines = 0, newlines = 0;
	int error;

	while (size > 4 && starts(ps->buf + pos, size, "@@ -")) {
		struct wf_patch_hunk *hk;
		size_t n;

		if (f->nhunks == halloc) {
			size_t na = halloc ? halloc * 2 : 4;

			if (!(hk = realloc(f->hunks, na * sizeof(*hk))))
				return wf_error_oom();
			f->hunks = hk;
			halloc = na;
		}
		hk = &f->hunks[f->nhunks];
		memset(hk, 0, sizeof(*hk));
		f->nhunks++;
		if ((error = parse_hunk(ps, &n, ps->buf + pos, size, hk)) < 0)
			return error;
		if (!n)
			return wf_error_set(WF_EINPUT, "corrupt patch at line "
			    "%zu", ps->linenr);
		oldlines += hk->old_lines;
		newlines += hk->new_lines;
		pos += n;
		size -= n;
	}
	if (h->is_new < 0 && (oldlines || f->nhunks > 1))
		h->is_new = 0;
	if (h->is_delete < 0 && (newlines || f->nhunks > 1))
		h->is_delete = 0;
	if (h->is_new > 0 && oldlines)
		return wf_error_set(WF_EINPUT, "new file %s depends on old "
		    "contents", h->new_name);
	if (h->is_delete > 0 && newlines)
		return wf_error_set(WF_EINPUT, "deleted file %s still has "
		    "contents", h->old_name);
	if (!f->nhunks) {
		size_t llen = linelen(ps->buf + pos, size);

		line = ps->buf + pos;
		if (starts(line, llen, "GIT binary patch\n") && llen == 17) {
			size_t u1, u2 = 0;

			ps->linenr++;
			pos += llen;
			size -= llen;
			if ((error = parse_binary_hunk(ps, &u1, ps->buf + pos,
			    size, &f->forward)) < 0)
				return error;
			if (!u1)
				return wf_error_set(WF_EINPUT, "unrecognized "
				    "binary patch at line %zu", ps->linenr - 1);
			if ((error = parse_binary_hunk(ps, &u2, ps->buf + pos +
			    u1, size - u1, &f->reverse)) < 0)
				return error;
			pos += u1 + u2;
			f->is_binary = 1;
		} else if (llen >= 8 && !memcmp(line + llen - 8, " differ\n",
		    8) && (starts(line, llen, "Binary files ") ||
		    starts(line, llen, "Files "))) {
			ps->linenr++;
			f->is_binary = 1;
			pos += llen;
		}
		if (!f->is_binary && !(h->is_rename > 0 || h->is_copy > 0 ||
		    h->is_new > 0 || h->is_delete ||
		    (h->old_mode && h->new_mode &&
		    h->old_mode != h->new_mode)))
			return wf_error_set(WF_EINPUT, "patch with only "
			    "garbage at line %zu", ps->linenr);
	}
	f->old_mode = h->old_mode;
	f->new_mode = h->new_mode;
	memcpy(f->old_id, h->old_id, sizeof(f->old_id));
	memcpy(f->new_id, h->new_id, sizeof(f->new_id));
	if (h->is_new > 0) {
		f->status = WF_PATCH_ADDED;
		free(h->old_name);
		h->old_name = NULL;
	} else if (h->is_delete > 0) {
		f->status = WF_PATCH_DELETED;
		free(h->new_name);
		h->new_name = NULL;
	} else if (h->is_rename > 0) {
		f->status = WF_PATCH_RENAMED;
	} else if (h->is_copy > 0) {
		f->status = WF_PATCH_COPIED;
	} else {
		f->status = WF_PATCH_MODIFIED;
		f->maybe_new = h->is_new < 0;
	}
	f->old_path = h->old_name;
	f->new_path = h->new_name;
	h->old_name = h->new_name = NULL;
	*used = pos - start;
	return 0;
}

int
wf_patch_parse(struct wf_patch **out, const char *text, size_t len)
{
	struct parser ps;
	struct wf_patch *p;
	size_t pos = 0, alloc = 0;
	int error = 0;

	*out = NULL;
	if (!(p = calloc(1, sizeof(*p))) || !(p->text = malloc(len + 1))) {
		free(p);
		return wf_error_oom();
	}
	memcpy(p->text, text, len);
	p->text[len] = '\0';
	p->len = len;
	memset(&ps, 0, sizeof(ps));
	ps.buf = p->text;
	ps.len = len;
	ps.linenr = 1;
	ps.p_value = 1;
	while (pos < len) {
		struct header h;
		size_t off = 0, hdrsize = 0, used = 0;

		memset(&h, 0, sizeof(h));
		error = find_header(&ps, &off, &hdrsize, p->text + pos,
		    len - pos, &h);
		if (error == 0 && (error = add_file(p, &alloc)) == 0)
			error = parse_file(&ps, &p->files[p->nfiles - 1], &used,
			    pos, &h, off, hdrsize);
		free(h.def_name);
		free(h.old_name);
		free(h.new_name);
		if (error)
			break;
		pos += used;
	}
	if (error < 0) {
		wf_patch_free(p);
		return error;
	}
	*out = p;
	return 0;
}

void
wf_patch_free(struct wf_patch *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->nfiles; i++)
		file_release(&p->files[i]);
	free(p->files);
	free(p->text);
	free(p);
}
