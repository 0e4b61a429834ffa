#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "json.h"

void
wf_jpath_push_key(struct wf_jpath *p, const char *key)
{
	if (p->depth < WF_JPATH_MAX) {
		p->item[p->depth].key = key;
		p->item[p->depth].index = 0;
	}
	p->depth++;
}

void
wf_jpath_push_index(struct wf_jpath *p, size_t index)
{
	if (p->depth < WF_JPATH_MAX) {
		p->item[p->depth].key = NULL;
		p->item[p->depth].index = index;
	}
	p->depth++;
}

void
wf_jpath_pop(struct wf_jpath *p)
{
	if (p->depth > 0)
		p->depth--;
}

static int
is_ident(const char *s)
{
	if (!*s || !(*s == '_' || (*s >= 'a' && *s <= 'z') ||
	    (*s >= 'A' && *s <= 'Z')))
		return 0;
	for (; *s; s++)
		if (!(*s == '_' || (*s >= 'a' && *s <= 'z') ||
		    (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
			return 0;
	return 1;
}

char *
wf_jpath_format(char *buf, size_t size, const struct wf_jpath *p)
{
	size_t n = 0;
	int i, depth = p->depth < WF_JPATH_MAX ? p->depth : WF_JPATH_MAX;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	if (depth == 0) {
		snprintf(buf, size, ".");
		return buf;
	}
	for (i = 0; i < depth && n < size; i++) {
		const char *k = p->item[i].key;
		int w;

		if (!k)
			w = snprintf(buf + n, size - n, "%s[%zu]",
			    i == 0 ? "." : "", p->item[i].index);
		else if (is_ident(k))
			w = snprintf(buf + n, size - n, ".%s", k);
		else {
			json_t *s = json_string(k);
			char *q = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;

			json_decref(s);
			w = snprintf(buf + n, size - n, "%s[%s]",
			    i == 0 ? "." : "", q ? q : "?");
			free(q);
		}
		if (w < 0)
			break;
		n += (size_t)w;
	}
	if (n >= size)
		buf[size - 1] = '\0';
	return buf;
}

/*
 * Locating a path in source text.  jansson does not keep positions of
 * values, so this scans the (already valid) text once, tracking where
 * it is in the value tree, and stops at the value the path names.
 */
struct scan {
	const char *s;
	size_t len, i;
};

static void
scan_ws(struct scan *sc)
{
	while (sc->i < sc->len && (sc->s[sc->i] == ' ' ||
	    sc->s[sc->i] == '\t' || sc->s[sc->i] == '\n' ||
	    sc->s[sc->i] == '\r'))
		sc->i++;
}

/* Skip a string starting at the quote; returns 0 or -1. */
static int
scan_string(struct scan *sc)
{
	sc->i++;
	while (sc->i < sc->len) {
		char c = sc->s[sc->i++];

		if (c == '\\')
			sc->i++;
		else if (c == '"')
			return 0;
	}
	return -1;
}

/* Skip any value; returns 0 or -1. */
static int
scan_value(struct scan *sc)
{
	int depth = 0;

	scan_ws(sc);
	if (sc->i >= sc->len)
		return -1;
	do {
		char c;

		if (sc->i >= sc->len)
			return -1;
		c = sc->s[sc->i];
		if (c == '"') {
			if (scan_string(sc) < 0)
				return -1;
			continue;
		}
		if (c == '{' || c == '[')
			depth++;
		else if (c == '}' || c == ']')
			depth--;
		else if (depth == 0 && (c == ',' || c == ' ' || c == '\n' ||
		    c == '\t' || c == '\r'))
			return 0;
		sc->i++;
	} while (depth > 0 || (sc->i < sc->len &&
	    !strchr(",]} \t\r\n", sc->s[sc->i])));
	return 0;
}

/* Compare the string at sc->i (a quoted key) with key; skips it. */
static int
scan_key_equals(struct scan *sc, const char *key)
{
	size_t start = sc->i, end;
	json_t *v;
	json_error_t err;
	int eq;

	if (scan_string(sc) < 0)
		return -1;
	end = sc->i;
	v = json_loadb(sc->s + start, end - start,
	    JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	eq = v && json_is_string(v) && strcmp(json_string_value(v), key) == 0;
	json_decref(v);
	return eq;
}

static int
scan_to(struct scan *sc, const struct wf_jpath *p, int level)
{
	int depth = p->depth < WF_JPATH_MAX ? p->depth : WF_JPATH_MAX;

	scan_ws(sc);
	if (level == depth)
		return 0;
	if (sc->i >= sc->len)
		return -1;
	if (p->item[level].key) {
		if (sc->s[sc->i] != '{')
			return -1;
		sc->i++;
		for (;;) {
			int eq;

			scan_ws(sc);
			if (sc->i >= sc->len || sc->s[sc->i] != '"')
				return -1;
			eq = scan_key_equals(sc, p->item[level].key);
			if (eq < 0)
				return -1;
			scan_ws(sc);
			if (sc->i >= sc->len || sc->s[sc->i] != ':')
				return -1;
			sc->i++;
			if (eq)
				return scan_to(sc, p, level + 1);
			if (scan_value(sc) < 0)
				return -1;
			scan_ws(sc);
			if (sc->i >= sc->len || sc->s[sc->i] != ',')
				return -1;
			sc->i++;
		}
	} else {
		size_t k;

		if (sc->s[sc->i] != '[')
			return -1;
		sc->i++;
		for (k = 0;; k++) {
			scan_ws(sc);
			if (k == p->item[level].index)
				return scan_to(sc, p, level + 1);
			if (scan_value(sc) < 0)
				return -1;
			scan_ws(sc);
			if (sc->i >= sc->len || sc->s[sc->i] != ',')
				return -1;
			sc->i++;
		}
	}
}

static void
advance(unsigned long *line, unsigned long *col, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)s[i] & 0xc0) != 0x80) {
			(*col)++;
		}
	}
}

int
wf_json_locate(unsigned long *line, unsigned long *col,
    const struct wf_json_doc *doc, const struct wf_jpath *path)
{
	struct scan sc = { doc->text, doc->len, 0 };

	*line = doc->line;
	*col = doc->col;
	if (!doc->text || !path || path->depth > WF_JPATH_MAX)
		return -1;
	if (scan_to(&sc, path, 0) < 0)
		return -1;
	advance(line, col, doc->text, sc.i);
	return 0;
}

int
wf_json_error(const struct wf_json_doc *doc, const struct wf_jpath *path,
    const char *fmt, ...)
{
	char msg[2048], where[512];
	unsigned long line, col;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	wf_json_locate(&line, &col, doc, path);
	if (path && path->depth > 0)
		return wf_error_set(WF_EINPUT, "%s:%lu:%lu: %s: %s", doc->name,
		    line, col, wf_jpath_format(where, sizeof(where), path), msg);
	return wf_error_set(WF_EINPUT, "%s:%lu:%lu: %s", doc->name, line, col,
	    msg);
}

/*
 * The stream reader keeps unread input in a buffer.  A value is parsed
 * with json_loadb() from the buffer; when the parse fails at the end of
 * the buffer and more input may come, it reads more and tries again, so
 * each value is returned as soon as its last byte arrives.
 */
struct wf_json_reader {
	int fd;
	int owned;
	int eof;
	int error;		/* sticky error code */
	char *name;
	char *buf;
	size_t cap, start, end;	/* unread bytes are buf[start..end) */
	unsigned long line, col;	/* position of buf[start] */
	char errmsg[1024];
};

int
wf_json_reader_fdopen(struct wf_json_reader **out, int fd, const char *name)
{
	struct wf_json_reader *r;

	*out = NULL;
	if (!(r = calloc(1, sizeof(*r))) || !(r->name = strdup(name))) {
		free(r);
		return wf_error_oom();
	}
	r->fd = fd;
	r->line = 1;
	r->col = 1;
	*out = r;
	return 0;
}

int
wf_json_reader_open(struct wf_json_reader **out, const char *path)
{
	struct stat st;
	int fd, error;

	*out = NULL;
	if (strcmp(path, "-") == 0)
		return wf_json_reader_fdopen(out, 0, "<stdin>");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return wf_error_set_errno(WF_EOS, "cannot open '%s'", path);
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		return wf_error_set(WF_EOS, "cannot read '%s': Is a directory",
		    path);
	}
	if ((error = wf_json_reader_fdopen(out, fd, path)) < 0) {
		close(fd);
		return error;
	}
	(*out)->owned = 1;
	return 0;
}

int
wf_json_reader_fd(const struct wf_json_reader *r)
{
	return r->fd;
}

void
wf_json_reader_free(struct wf_json_reader *r)
{
	if (!r)
		return;
	if (r->owned)
		close(r->fd);
	free(r->name);
	free(r->buf);
	free(r);
}

/* Read more input; returns bytes read, 0 at EOF, <0 on error. */
static int
fill(struct wf_json_reader *r)
{
	ssize_t n;

	if (r->start > 0 && (r->start == r->end || r->start > r->cap / 2)) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->cap - r->end < 4096) {
		size_t cap = r->cap ? r->cap * 2 : 65536;
		char *b = realloc(r->buf, cap);

		if (!b)
			return wf_error_oom();
		r->buf = b;
		r->cap = cap;
	}
	do
		n = read(r->fd, r->buf + r->end, r->cap - r->end);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return wf_error_set_errno(WF_EOS, "cannot read '%s'", r->name);
	if (n == 0)
		r->eof = 1;
	r->end += (size_t)n;
	return (int)(n > 0);
}

static int
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int
sticky(struct wf_json_reader *r, int code)
{
	r->error = code;
	snprintf(r->errmsg, sizeof(r->errmsg), "%s", wf_error_last());
	return code;
}

int
wf_json_reader_next(struct wf_json_doc *doc, struct wf_json_reader *r)
{
	json_error_t err;
	json_t *v;
	int n;

	memset(doc, 0, sizeof(*doc));
	if (r->error)
		return wf_error_set(r->error, "%s", r->errmsg);
	for (;;) {
		size_t avail;

		/* Skip white space, keeping the position. */
		while (r->start < r->end && is_ws(r->buf[r->start])) {
			advance(&r->line, &r->col, r->buf + r->start, 1);
			r->start++;
		}
		if (r->start == r->end) {
			if (r->eof)
				return 0;
			if ((n = fill(r)) < 0)
				return sticky(r, n);
			continue;
		}
		avail = r->end - r->start;
		v = json_loadb(r->buf + r->start, avail,
		    JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &err);
		/*
		 * A scalar at the end of the buffer may go on (12 then 34),
		 * and a failure near the end may be a value cut short: read
		 * more before deciding, unless the input has ended.
		 */
		if (!r->eof && ((v && !json_is_object(v) && !json_is_array(v) &&
		    (size_t)err.position >= avail) ||
		    (!v && (size_t)err.position + 4 >= avail))) {
			json_decref(v);
			if ((n = fill(r)) < 0)
				return sticky(r, n);
			continue;
		}
		break;
	}
	if (!v) {
		unsigned long line = r->line, col = r->col;
		size_t at = (size_t)err.position;

		if (at > r->end - r->start)
			at = r->end - r->start;
		/* jansson counts the offending token as read; step back. */
		if (at > 0 && at == r->end - r->start && r->eof)
			;
		else if (at > 0)
			at--;
		advance(&line, &col, r->buf + r->start, at);
		wf_error_set(WF_EINPUT, "%s:%lu:%lu: %s", r->name, line, col,
		    err.text);
		return sticky(r, WF_EINPUT);
	}
	doc->value = v;
	doc->name = r->name;
	doc->text = r->buf + r->start;
	doc->len = (size_t)err.position;
	doc->line = r->line;
	doc->col = r->col;
	advance(&r->line, &r->col, doc->text, doc->len);
	r->start += doc->len;
	/* A scalar needs a separator before the next value ("4true"). */
	if (r->start < r->end && !json_is_object(v) && !json_is_array(v) &&
	    !is_ws(r->buf[r->start]) && r->buf[r->start] != '{' &&
	    r->buf[r->start] != '[') {
		json_decref(v);
		memset(doc, 0, sizeof(*doc));
		wf_error_set(WF_EINPUT, "%s:%lu:%lu: expected white space "
		    "between values", r->name, r->line, r->col);
		return sticky(r, WF_EINPUT);
	}
	return 1;
}

int
wf_json_load_file(struct wf_json_doc *doc, char **buf, const char *path,
    const char *name)
{
	struct wf_json_reader *r = NULL;
	struct wf_json_doc extra;
	int error;

	memset(doc, 0, sizeof(*doc));
	*buf = NULL;
	if ((error = wf_json_reader_open(&r, path)) < 0)
		return error;
	if (name) {
		char *n = strdup(name);

		if (!n) {
			wf_json_reader_free(r);
			return wf_error_oom();
		}
		free(r->name);
		r->name = n;
	}
	if ((error = wf_json_reader_next(doc, r)) < 0)
		goto out;
	if (error == 0) {
		error = wf_error_set(WF_EINPUT, "%s:1:1: empty file, expected "
		    "a JSON value", r->name);
		goto out;
	}
	if ((error = wf_json_reader_next(&extra, r)) < 0)
		goto out;
	if (error > 0) {
		json_decref(extra.value);
		error = wf_error_set(WF_EINPUT, "%s:%lu:%lu: more than one "
		    "JSON value in the file", r->name, extra.line, extra.col);
		goto out;
	}
	/* Hand the buffer, and with it doc->text, to the caller. */
	*buf = r->buf;
	r->buf = NULL;
	doc->name = NULL;
	error = 0;
out:
	if (error < 0) {
		json_decref(doc->value);
		memset(doc, 0, sizeof(*doc));
	} else {
		/* doc->name must outlive the reader: keep it in the buffer. */
		size_t off = (size_t)(doc->text - *buf);
		size_t nlen = strlen(r->name) + 1;
		/*
		 * Reading on to the end may have emptied the buffer (end 0)
		 * without moving the text: keep the text itself.
		 */
		size_t keep = off + doc->len;
		char *b = realloc(*buf, keep + nlen);

		if (!b) {
			json_decref(doc->value);
			memset(doc, 0, sizeof(*doc));
			free(*buf);
			*buf = NULL;
			error = wf_error_oom();
		} else {
			memcpy(b + keep, r->name, nlen);
			*buf = b;
			doc->text = b + off;
			doc->name = b + keep;
		}
	}
	wf_json_reader_free(r);
	return error;
}

static const char *
type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "a value";
}

int
wf_json_check_object(const struct wf_json_doc *doc, struct wf_jpath *path,
    json_t *v, const char *const *allowed)
{
	const char *key;
	json_t *val;

	if (!json_is_object(v))
		return wf_json_error(doc, path, "expected an object, got %s",
		    type_name(v));
	json_object_foreach(v, key, val) {
		const char *const *a;
		int error;

		for (a = allowed; *a; a++)
			if (strcmp(*a, key) == 0)
				break;
		if (*a)
			continue;
		wf_jpath_push_key(path, key);
		error = wf_json_error(doc, path, "unknown field");
		wf_jpath_pop(path);
		return error;
	}
	return 0;
}

int
wf_json_check_string(const char **out, const struct wf_json_doc *doc,
    struct wf_jpath *path, json_t *v)
{
	if (!json_is_string(v))
		return wf_json_error(doc, path, "expected a string, got %s",
		    type_name(v));
	if (strlen(json_string_value(v)) != json_string_length(v))
		return wf_json_error(doc, path, "string contains a NUL byte");
	*out = json_string_value(v);
	return 0;
}

int
wf_json_check_int(int64_t *out, const struct wf_json_doc *doc,
    struct wf_jpath *path, json_t *v)
{
	if (!json_is_integer(v))
		return wf_json_error(doc, path, "expected an integer, got %s",
		    type_name(v));
	*out = (int64_t)json_integer_value(v);
	return 0;
}

int
wf_json_check_bool(int *out, const struct wf_json_doc *doc,
    struct wf_jpath *path, json_t *v)
{
	if (!json_is_boolean(v))
		return wf_json_error(doc, path, "expected true or false, got %s",
		    type_name(v));
	*out = json_is_true(v);
	return 0;
}

int
wf_json_check_strings(const char ***out, size_t *n,
    const struct wf_json_doc *doc, struct wf_jpath *path, json_t *v)
{
	const char **a;
	size_t i;
	int error;

	*out = NULL;
	*n = 0;
	if (!json_is_array(v))
		return wf_json_error(doc, path,
		    "expected an array of strings, got %s", type_name(v));
	if (!(a = calloc(json_array_size(v) + 1, sizeof(*a))))
		return wf_error_oom();
	for (i = 0; i < json_array_size(v); i++) {
		wf_jpath_push_index(path, i);
		error = wf_json_check_string(&a[i], doc, path,
		    json_array_get(v, i));
		wf_jpath_pop(path);
		if (error < 0) {
			free(a);
			return error;
		}
	}
	*out = a;
	*n = i;
	return 0;
}

char *
wf_json_canonical(const json_t *v)
{
	return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}
