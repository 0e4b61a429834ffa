#include <errno.h>
#include <pthread.h>
#include <stdint.h>
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
			char *q = NULL;

			/* Not json_dumps(): its text is jansson's to free. */
			if (s && wf_json_dump(&q, NULL, s, 0) < 0)
				q = NULL;
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
	/*
	 * How far an object or array starting at buf[start] has been
	 * scanned for its end, so jansson parses each value once rather
	 * than once per read (quadratic on a pipe).
	 */
	size_t scanned;
	int depth, in_string, escaped;
};

/*
 * Scan on from where the last call stopped; 1 when the object or array
 * at buf[start] is complete (or plainly malformed: let jansson say so),
 * 0 when more input is needed.
 */
static int
scan_complete(struct wf_json_reader *r)
{
	const char *base = r->buf + r->start, *end = r->buf + r->end;
	const char *p = base + r->scanned;

	for (; p < end; p++) {
		char c = *p;

		if (r->in_string) {
			if (r->escaped)
				r->escaped = 0;
			else if (c == '\\')
				r->escaped = 1;
			else if (c == '"')
				r->in_string = 0;
			continue;
		}
		if (c == '"') {
			r->in_string = 1;
		} else if (c == '{' || c == '[') {
			r->depth++;
		} else if (c == '}' || c == ']') {
			if (--r->depth <= 0) {
				r->scanned = (size_t)(p - base) + 1;
				return 1;
			}
		}
	}
	r->scanned = (size_t)(end - base);
	return 0;
}

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
		if (!r->eof && (r->buf[r->start] == '{' ||
		    r->buf[r->start] == '[') && !scan_complete(r)) {
			if ((n = fill(r)) < 0)
				return sticky(r, n);
			continue;
		}
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
	r->scanned = 0;
	r->depth = r->in_string = r->escaped = 0;
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
	char *s;

	if (wf_json_dump(&s, NULL, v, WF_JSON_DUMP_SORT_KEYS) < 0)
		return NULL;
	return s;
}

/*
 * Fast compact output (wf_json_dump): the bytes jansson would write, built
 * in one buffer.
 */
struct buf {
	char *s;
	size_t len, cap;
	int failed;
	int helper;		/* may hand half an array to a thread */
};

/*
 * Arrays at least this long are written in two halves, the second by a
 * helper thread into its own buffer.  The work is chasing pointers
 * through jansson's values, so two cores nearly halve it.  One helper
 * at a time: a half does not split again.
 */
#define SPLIT_MIN 8192

/* Make room for n more bytes; sets failed and returns -1 if it cannot. */
static int
reserve(struct buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *s;

	if (b->failed)
		return -1;
	if (b->len + n < b->cap)
		return 0;
	while (cap <= b->len + n) {
		if (cap > SIZE_MAX / 2) {
			b->failed = 1;
			return -1;
		}
		cap *= 2;
	}
	if (!(s = realloc(b->s, cap))) {
		b->failed = 1;
		return -1;
	}
	b->s = s;
	b->cap = cap;
	return 0;
}

static void
put(struct buf *b, const char *s, size_t n)
{
	if (reserve(b, n) == 0) {
		memcpy(b->s + b->len, s, n);
		b->len += n;
	}
}

static void
putc1(struct buf *b, char c)
{
	if (reserve(b, 1) == 0)
		b->s[b->len++] = c;
}

/* As jansson's dump_string() without JSON_ENSURE_ASCII or ESCAPE_SLASH. */
static void
put_string(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i = 0, run;

	putc1(b, '"');
	while (i < n) {
		unsigned char c;

		for (run = i; run < n; run++) {
			c = (unsigned char)s[run];
			if (c < 0x20 || c == '"' || c == '\\')
				break;
		}
		put(b, s + i, run - i);
		if (run == n)
			break;
		c = (unsigned char)s[run];
		switch (c) {
		case '"': put(b, "\\\"", 2); break;
		case '\\': put(b, "\\\\", 2); break;
		case '\b': put(b, "\\b", 2); break;
		case '\f': put(b, "\\f", 2); break;
		case '\n': put(b, "\\n", 2); break;
		case '\r': put(b, "\\r", 2); break;
		case '\t': put(b, "\\t", 2); break;
		default: {
			char seq[6] = { '\\', 'u', '0', '0', hex[c >> 4],
			    hex[c & 0xf] };

			put(b, seq, 6);
		}
		}
		i = run + 1;
	}
	putc1(b, '"');
}

/* As "%" JSON_INTEGER_FORMAT, without printf's cost per call. */
static void
put_int(struct buf *b, json_int_t v)
{
	char num[24], *p = num + sizeof(num);
	/* In unsigned arithmetic, so the most negative value negates. */
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v :
	    (unsigned long long)v;

	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) > 0);
	if (v < 0)
		*--p = '-';
	put(b, p, (size_t)(num + sizeof(num) - p));
}

/* As jansson's jsonp_dtostr() at its default precision, in the C locale. */
static void
put_real(struct buf *b, double v)
{
	char s[64], *e, *end;
	int n = snprintf(s, sizeof(s) - 3, "%.17g", v);

	if (n < 0 || (size_t)n >= sizeof(s) - 3) {
		b->failed = 1;
		return;
	}
	if (!strchr(s, '.') && !strchr(s, 'e')) {
		memcpy(s + n, ".0", 3);
		n += 2;
	}
	/* "1e+22" -> "1e22", "1e-07" -> "1e-7". */
	if ((e = strchr(s, 'e'))) {
		e++;
		end = e + 1;
		if (*e == '-')
			e++;
		while (*end == '0')
			end++;
		if (end != e) {
			memmove(e, end, (size_t)(s + n - end) + 1);
			n -= (int)(end - e);
		}
	}
	put(b, s, (size_t)n);
}

struct pair {
	const char *key;
	size_t len;
	json_t *value;
};

/* Byte order, as jansson's compare_keys(). */
static int
key_less(const struct pair *x, const struct pair *y)
{
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->key, y->key, n);

	return c < 0 || (c == 0 && x->len < y->len);
}

static int
cmp_pair(const void *a, const void *b)
{
	return key_less(a, b) ? -1 : key_less(b, a);
}

static void emit(struct buf *b, const json_t *v, unsigned int flags);
static void emit_items(struct buf *b, const json_t *v, size_t from,
    size_t to, unsigned int flags);
static void emit_split(struct buf *b, const json_t *v, size_t n,
    unsigned int flags);

static void
emit_pair(struct buf *b, const struct pair *p, int first,
    unsigned int flags)
{
	if (!first)
		putc1(b, ',');
	put_string(b, p->key, p->len);
	putc1(b, ':');
	emit(b, p->value, flags);
}

static void
emit_object(struct buf *b, const json_t *v, unsigned int flags)
{
	struct pair small[16], *p = small, t;
	size_t n = json_object_size(v), i = 0, j;
	void *it;

	putc1(b, '{');
	/* The iterator API wants a non-const object; it only reads. */
	it = json_object_iter((json_t *)v);
	if (!(flags & WF_JSON_DUMP_SORT_KEYS)) {
		for (; it && !b->failed; i++) {
			t.key = json_object_iter_key(it);
			t.len = json_object_iter_key_len(it);
			t.value = json_object_iter_value(it);
			emit_pair(b, &t, i == 0, flags);
			it = json_object_iter_next((json_t *)v, it);
		}
		putc1(b, '}');
		return;
	}
	if (n > sizeof(small) / sizeof(small[0]) &&
	    !(p = malloc(n * sizeof(*p)))) {
		b->failed = 1;
		return;
	}
	for (; it && i < n; i++) {
		p[i].key = json_object_iter_key(it);
		p[i].len = json_object_iter_key_len(it);
		p[i].value = json_object_iter_value(it);
		it = json_object_iter_next((json_t *)v, it);
	}
	n = i;
	if (p == small) {
		/* Insertion sort: small objects are the common case. */
		for (i = 1; i < n; i++) {
			t = p[i];
			for (j = i; j > 0 && key_less(&t, &p[j - 1]); j--)
				p[j] = p[j - 1];
			p[j] = t;
		}
	} else {
		qsort(p, n, sizeof(*p), cmp_pair);
	}
	for (i = 0; i < n && !b->failed; i++)
		emit_pair(b, &p[i], i == 0, flags);
	if (p != small)
		free(p);
	putc1(b, '}');
}

/* Items [from, to) of array v, comma separated. */
static void
emit_items(struct buf *b, const json_t *v, size_t from, size_t to,
    unsigned int flags)
{
	size_t i;

	for (i = from; i < to && !b->failed; i++) {
		if (i > from)
			putc1(b, ',');
		emit(b, json_array_get(v, i), flags);
	}
}

struct half {
	struct buf b;
	const json_t *v;
	size_t from, to;
	unsigned int flags;
};

static void *
emit_half(void *arg)
{
	struct half *h = arg;

	emit_items(&h->b, h->v, h->from, h->to, h->flags);
	return NULL;
}

/*
 * Write the items of a long array: the second half on a helper thread
 * (reading jansson values from two threads is safe; nothing changes
 * them), or everything here when no thread can be had.
 */
static void
emit_split(struct buf *b, const json_t *v, size_t n, unsigned int flags)
{
	struct half h = { { NULL, 0, 0, 0, 0 }, v, n / 2, n, flags };
	pthread_t t;

	if (pthread_create(&t, NULL, emit_half, &h) != 0) {
		emit_items(b, v, 0, n, flags);
		return;
	}
	b->helper = 0;
	emit_items(b, v, 0, n / 2, flags);
	b->helper = 1;
	pthread_join(t, NULL);
	if (h.b.failed)
		b->failed = 1;
	putc1(b, ',');
	put(b, h.b.s, h.b.len);
	free(h.b.s);
}

static void
emit(struct buf *b, const json_t *v, unsigned int flags)
{
	size_t n;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		emit_object(b, v, flags);
		break;
	case JSON_ARRAY:
		putc1(b, '[');
		n = json_array_size(v);
		if (b->helper && n >= SPLIT_MIN)
			emit_split(b, v, n, flags);
		else
			emit_items(b, v, 0, n, flags);
		putc1(b, ']');
		break;
	case JSON_STRING:
		put_string(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		put_int(b, json_integer_value(v));
		break;
	case JSON_REAL:
		put_real(b, json_real_value(v));
		break;
	case JSON_TRUE:
		put(b, "true", 4);
		break;
	case JSON_FALSE:
		put(b, "false", 5);
		break;
	case JSON_NULL:
		put(b, "null", 4);
		break;
	}
}

int
wf_json_dump(char **out, size_t *len, const json_t *v, unsigned int flags)
{
	struct buf b = { NULL, 0, 0, 0, 1 };

	*out = NULL;
	if (len)
		*len = 0;
	if (v)
		emit(&b, v, flags);
	if (!v || reserve(&b, 1) < 0) {
		free(b.s);
		return v ? wf_error_oom() : wf_error_set(WF_ERROR,
		    "no JSON value to write");
	}
	b.s[b.len] = '\0';
	*out = b.s;
	if (len)
		*len = b.len;
	return 0;
}
