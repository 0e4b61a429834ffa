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
		/* jansson keeps the last of duplicate keys: so does this. */
		size_t found = 0;
		int have = 0;

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
			if (eq) {
				found = sc->i;
				have = 1;
			}
			if (scan_value(sc) < 0)
				return -1;
			scan_ws(sc);
			if (sc->i < sc->len && sc->s[sc->i] == '}' && have) {
				sc->i = found;
				return scan_to(sc, p, level + 1);
			}
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

/*
 * Byte scanning sixteen at a time where the CPU has SSE2 (every x86-64
 * does): the stream reader's bracket scan, position counting and the
 * string paths of the fast parser and the writer all look for a few
 * bytes in long runs of ordinary ones.
 */
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/*
 * How many bytes of s[0..n) come before the first one that is '"',
 * '\\', a control character, or (with `high`) 0x80 or above.
 */
static size_t
plain_run(const unsigned char *s, size_t n, int high)
{
	size_t i = 0;

#ifdef __SSE2__
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
	    ctl = _mm_set1_epi8(0x1f);

	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(s + i));
		__m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote),
		    _mm_cmpeq_epi8(v, bslash)),
		    _mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl));
		unsigned int bits = (unsigned int)_mm_movemask_epi8(m);

		if (high)
			bits |= (unsigned int)_mm_movemask_epi8(v);
		if (bits)
			return i + (size_t)__builtin_ctz(bits);
	}
#endif
	for (; i < n; i++)
		if (s[i] == '"' || s[i] == '\\' || s[i] < 0x20 ||
		    (high && s[i] >= 0x80))
			break;
	return i;
}

/*
 * How many bytes of s[0..n) come before the first '"' or '\\' (`k` 2)
 * or, with `k` 5, the first of '"', '{', '}', '[' and ']'.
 */
static size_t
find_any(const char *s, size_t n, int k)
{
	size_t i = 0;

#ifdef __SSE2__
	const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'),
	    lb = _mm_set1_epi8('{'), rb = _mm_set1_epi8('}'),
	    ls = _mm_set1_epi8('['), rs = _mm_set1_epi8(']');

	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(s + i));
		__m128i m = _mm_cmpeq_epi8(v, q);
		unsigned int bits;

		if (k == 2)
			m = _mm_or_si128(m, _mm_cmpeq_epi8(v, bs));
		else
			m = _mm_or_si128(_mm_or_si128(m,
			    _mm_or_si128(_mm_cmpeq_epi8(v, lb),
			    _mm_cmpeq_epi8(v, rb))), _mm_or_si128(
			    _mm_cmpeq_epi8(v, ls), _mm_cmpeq_epi8(v, rs)));
		if ((bits = (unsigned int)_mm_movemask_epi8(m)))
			return i + (size_t)__builtin_ctz(bits);
	}
#endif
	for (; i < n; i++)
		if (s[i] == '"' || (k == 2 ? s[i] == '\\' : (s[i] == '{' ||
		    s[i] == '}' || s[i] == '[' || s[i] == ']')))
			return i;
	return n;
}

/* How many bytes of s[0..n) start a UTF-8 character (are not 10xxxxxx). */
static size_t
count_chars(const char *s, size_t n)
{
	size_t i = 0, count = 0;

#ifdef __SSE2__
	const __m128i cont = _mm_set1_epi8((char)0xbf), one = _mm_set1_epi8(1);
	__m128i sum = _mm_setzero_si128();

	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(s + i));

		/*
		 * As signed bytes, 0x80-0xbf are the ones <= (char)0xbf;
		 * the others, as ones, summed by the SAD instruction.
		 */
		sum = _mm_add_epi64(sum, _mm_sad_epu8(_mm_and_si128(
		    _mm_cmpgt_epi8(v, cont), one), _mm_setzero_si128()));
	}
	count = (size_t)_mm_cvtsi128_si64(sum) +
	    (size_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(sum, sum));
#endif
	for (; i < n; i++)
		count += ((unsigned char)s[i] & 0xc0) != 0x80;
	return count;
}

static void
advance(unsigned long *line, unsigned long *col, const char *s, size_t n)
{
	const char *p = s, *end = s + n, *nl;

	while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
		(*line)++;
		*col = 1;
		p = nl + 1;
	}
	*col += count_chars(p, (size_t)(end - p));
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
 * A fast path for reading JSON.  jansson's parser takes each byte
 * through a stream callback and a growing buffer, about 40 MB/s here:
 * most of what wf-enqueue spent on a stream of requests.  This one
 * builds the same jansson values from a complete value in memory at
 * several times that speed.  It takes the common subset: every
 * structure, every string (escapes, surrogate pairs, UTF-8 checked as
 * jansson checks it), true, false, null and integers of up to 18
 * digits.  Anything else (reals, longer integers, "\u0000", nesting
 * deeper than jansson allows, and every malformed input) makes it give
 * up, and the caller asks jansson, whose value or error message is
 * then the answer: the result is always what jansson would return.
 */
struct fast {
	const unsigned char *p, *end;
	int depth;
	char *tmp;		/* unescaped strings */
	size_t tmpcap;
};

#define FAST_MAX_DEPTH 2048	/* jansson's JSON_PARSER_DEFAULT_DEPTH */

static json_t *fast_value(struct fast *f);

static void
fast_ws(struct fast *f)
{
	while (f->p < f->end && (*f->p == ' ' || *f->p == '\n' ||
	    *f->p == '\r' || *f->p == '\t'))
		f->p++;
}

/* Length of the valid UTF-8 sequence at s (jansson's rules), 0 if bad. */
static size_t
utf8_len(const unsigned char *s, const unsigned char *end)
{
	unsigned int c = s[0], v;
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, v = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, v = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, v = c & 0x07;
	else
		return 0;
	if ((size_t)(end - s) < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) ||
	    v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	return n;
}

static int
hex4(const unsigned char *s, unsigned int *out)
{
	unsigned int v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		unsigned int c = s[i];

		if (c >= '0' && c <= '9')
			c -= '0';
		else if (c >= 'a' && c <= 'f')
			c -= 'a' - 10;
		else if (c >= 'A' && c <= 'F')
			c -= 'A' - 10;
		else
			return -1;
		v = v << 4 | c;
	}
	*out = v;
	return 0;
}

/*
 * The string at f->p (just after its opening quote): *out points at its
 * bytes (in the input, or in f->tmp when it had escapes), *len their
 * count.  -1 to give up.
 */
static int
fast_string(struct fast *f, const char **out, size_t *len)
{
	const unsigned char *p = f->p, *start = p;
	size_t n = 0, k;

	/* The usual case: no escapes. */
	for (;;) {
		p += plain_run(p, (size_t)(f->end - p), 1);
		if (p == f->end)
			return -1;
		if (*p == '"') {
			*out = (const char *)start;
			*len = (size_t)(p - start);
			f->p = p + 1;
			return 0;
		}
		if (*p == '\\')
			break;
		if (*p < 0x20)
			return -1;
		if (*p < 0x80) {
			p++;
		} else {
			if (!(k = utf8_len(p, f->end)))
				return -1;
			p += k;
		}
	}
	/* Escapes: copy into f->tmp, decoding them. */
	for (p = start;;) {
		unsigned int c;

		if (f->tmpcap - n < 8) {
			size_t cap = f->tmpcap ? f->tmpcap * 2 : 256;
			char *t = realloc(f->tmp, cap);

			if (!t)
				return -1;
			f->tmp = t;
			f->tmpcap = cap;
		}
		if (p == f->end)
			return -1;
		c = *p;
		if (c == '"') {
			*out = f->tmp;
			*len = n;
			f->p = p + 1;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c >= 0x80) {
			if (!(k = utf8_len(p, f->end)))
				return -1;
			memcpy(f->tmp + n, p, k);
			n += k;
			p += k;
			continue;
		}
		if (c != '\\') {
			f->tmp[n++] = (char)c;
			p++;
			continue;
		}
		if (f->end - p < 2)
			return -1;
		switch (p[1]) {
		case '"': case '\\': case '/':
			f->tmp[n++] = (char)p[1];
			p += 2;
			continue;
		case 'b': f->tmp[n++] = '\b'; p += 2; continue;
		case 'f': f->tmp[n++] = '\f'; p += 2; continue;
		case 'n': f->tmp[n++] = '\n'; p += 2; continue;
		case 'r': f->tmp[n++] = '\r'; p += 2; continue;
		case 't': f->tmp[n++] = '\t'; p += 2; continue;
		case 'u':
			break;
		default:
			return -1;
		}
		if (f->end - p < 6 || hex4(p + 2, &c) < 0)
			return -1;
		p += 6;
		if (c >= 0xd800 && c <= 0xdbff) {
			unsigned int lo;

			if (f->end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
			    hex4(p + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
				return -1;
			p += 6;
			c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
		} else if ((c >= 0xdc00 && c <= 0xdfff) || c == 0) {
			return -1;
		}
		if (c < 0x80) {
			f->tmp[n++] = (char)c;
		} else if (c < 0x800) {
			f->tmp[n++] = (char)(0xc0 | c >> 6);
			f->tmp[n++] = (char)(0x80 | (c & 0x3f));
		} else if (c < 0x10000) {
			f->tmp[n++] = (char)(0xe0 | c >> 12);
			f->tmp[n++] = (char)(0x80 | ((c >> 6) & 0x3f));
			f->tmp[n++] = (char)(0x80 | (c & 0x3f));
		} else {
			f->tmp[n++] = (char)(0xf0 | c >> 18);
			f->tmp[n++] = (char)(0x80 | ((c >> 12) & 0x3f));
			f->tmp[n++] = (char)(0x80 | ((c >> 6) & 0x3f));
			f->tmp[n++] = (char)(0x80 | (c & 0x3f));
		}
	}
}

static json_t *
fast_object(struct fast *f)
{
	json_t *obj = json_object(), *v;
	const char *k;
	char *copy;
	size_t klen;

	if (!obj)
		return NULL;
	fast_ws(f);
	if (f->p < f->end && *f->p == '}') {
		f->p++;
		return obj;
	}
	for (;;) {
		if (f->p == f->end || *f->p != '"')
			goto fail;
		f->p++;
		if (fast_string(f, &k, &klen) < 0)
			goto fail;
		/* An unescaped key outlives f->tmp, which the value reuses. */
		copy = NULL;
		if (k == f->tmp) {
			if (!(copy = malloc(klen ? klen : 1)))
				goto fail;
			k = memcpy(copy, k, klen);
		}
		fast_ws(f);
		if (f->p == f->end || *f->p != ':') {
			free(copy);
			goto fail;
		}
		f->p++;
		fast_ws(f);
		v = fast_value(f);
		if (!v || json_object_setn_new_nocheck(obj, k, klen, v) < 0) {
			free(copy);
			goto fail;
		}
		free(copy);
		fast_ws(f);
		if (f->p == f->end)
			goto fail;
		if (*f->p == '}') {
			f->p++;
			return obj;
		}
		if (*f->p != ',')
			goto fail;
		f->p++;
		fast_ws(f);
	}
fail:
	json_decref(obj);
	return NULL;
}

static json_t *
fast_array(struct fast *f)
{
	json_t *arr = json_array(), *v;

	if (!arr)
		return NULL;
	fast_ws(f);
	if (f->p < f->end && *f->p == ']') {
		f->p++;
		return arr;
	}
	for (;;) {
		if (!(v = fast_value(f)) || json_array_append_new(arr, v) < 0)
			goto fail;
		fast_ws(f);
		if (f->p == f->end)
			goto fail;
		if (*f->p == ']') {
			f->p++;
			return arr;
		}
		if (*f->p != ',')
			goto fail;
		f->p++;
		fast_ws(f);
	}
fail:
	json_decref(arr);
	return NULL;
}

static int
fast_literal(struct fast *f, const char *word, size_t n)
{
	if ((size_t)(f->end - f->p) < n || memcmp(f->p, word, n) != 0)
		return -1;
	f->p += n;
	/* "truex" is not "true": let jansson say what it is. */
	if (f->p < f->end && ((*f->p >= 'a' && *f->p <= 'z') ||
	    (*f->p >= 'A' && *f->p <= 'Z') || (*f->p >= '0' && *f->p <= '9')))
		return -1;
	return 0;
}

static json_t *
fast_value(struct fast *f)
{
	const char *s;
	size_t len;
	json_t *v;

	if (f->p == f->end)
		return NULL;
	switch (*f->p) {
	case '{':
	case '[':
		if (++f->depth > FAST_MAX_DEPTH)
			return NULL;
		f->p++;
		v = f->p[-1] == '{' ? fast_object(f) : fast_array(f);
		f->depth--;
		return v;
	case '"':
		f->p++;
		if (fast_string(f, &s, &len) < 0)
			return NULL;
		return json_stringn_nocheck(s, len);
	case 't':
		return fast_literal(f, "true", 4) < 0 ? NULL : json_true();
	case 'f':
		return fast_literal(f, "false", 5) < 0 ? NULL : json_false();
	case 'n':
		return fast_literal(f, "null", 4) < 0 ? NULL : json_null();
	default:
		break;
	}
	/* Integers of up to 18 digits, without a leading zero. */
	{
		const unsigned char *p = f->p;
		int neg = *p == '-';
		json_int_t n = 0;
		int digits = 0;

		if (neg)
			p++;
		if (p == f->end || *p < '0' || *p > '9' ||
		    (*p == '0' && p + 1 < f->end && p[1] >= '0' && p[1] <= '9'))
			return NULL;
		for (; p < f->end && *p >= '0' && *p <= '9'; p++) {
			if (++digits > 18)
				return NULL;
			n = n * 10 + (*p - '0');
		}
		if (p < f->end && (*p == '.' || *p == 'e' || *p == 'E' ||
		    (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
			return NULL;
		f->p = p;
		return json_integer(neg ? -n : n);
	}
}

json_t *
wf_json_fast_parse(const char *s, size_t len, size_t *used)
{
	struct fast f = { (const unsigned char *)s,
	    (const unsigned char *)s + len, 0, NULL, 0 };
	json_t *v;

	fast_ws(&f);
	v = fast_value(&f);
	free(f.tmp);
	if (v && used)
		*used = (size_t)((const char *)f.p - s);
	return v;
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

	while (p < end) {
		char c;

		if (r->in_string) {
			if (r->escaped) {
				r->escaped = 0;
				p++;
				continue;
			}
			p += find_any(p, (size_t)(end - p), 2);
			if (p == end)
				break;
			if (*p++ == '\\')
				r->escaped = 1;
			else
				r->in_string = 0;
			continue;
		}
		p += find_any(p, (size_t)(end - p), 5);
		if (p == end)
			break;
		c = *p++;
		if (c == '"') {
			r->in_string = 1;
		} else if (c == '{' || c == '[') {
			r->depth++;
		} else if (--r->depth <= 0) {
			r->scanned = (size_t)(p - base);
			return 1;
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
	size_t used;
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
		if ((r->buf[r->start] == '{' || r->buf[r->start] == '[') &&
		    !scan_complete(r) && !r->eof) {
			if ((n = fill(r)) < 0)
				return sticky(r, n);
			continue;
		}
		/* A whole object or array: the fast path first. */
		if (r->depth <= 0 && r->scanned > 0 &&
		    (v = wf_json_fast_parse(r->buf + r->start, r->scanned,
		    &used))) {
			if (used == r->scanned) {
				err.position = (int)used;
				break;
			}
			json_decref(v);
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
		/* To the first byte of the character it is in. */
		while (at > 0 && at < r->end - r->start &&
		    ((unsigned char)r->buf[r->start + at] & 0xc0) == 0x80)
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

/*
 * Arrays at least this long are written in two halves, the second by a
 * helper thread into its own buffer.  The work is chasing pointers
 * through jansson's values, so two cores nearly halve it.  One helper
 * at a time: a half does not split again.
 */
#define SPLIT_MIN 8192

/* Make room for n more bytes; sets failed and returns -1 if it cannot. */
static int
reserve(struct wf_json_buf *b, size_t n)
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
put(struct wf_json_buf *b, const char *s, size_t n)
{
	if (reserve(b, n) == 0) {
		memcpy(b->s + b->len, s, n);
		b->len += n;
	}
}

static void
putc1(struct wf_json_buf *b, char c)
{
	if (reserve(b, 1) == 0)
		b->s[b->len++] = c;
}

/* As jansson's dump_string() without JSON_ENSURE_ASCII or ESCAPE_SLASH. */
static void
put_string(struct wf_json_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i = 0, run;

	putc1(b, '"');
	while (i < n) {
		unsigned char c;

		run = i + plain_run((const unsigned char *)s + i, n - i, 0);
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
put_int(struct wf_json_buf *b, json_int_t v)
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
put_real(struct wf_json_buf *b, double v)
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

static void emit(struct wf_json_buf *b, const json_t *v, unsigned int flags);
static void emit_items(struct wf_json_buf *b, const json_t *v, size_t from,
    size_t to, unsigned int flags);
static void emit_split(struct wf_json_buf *b, const json_t *v, size_t n,
    unsigned int flags);

static void
emit_pair(struct wf_json_buf *b, const struct pair *p, int first,
    unsigned int flags)
{
	if (!first)
		putc1(b, ',');
	put_string(b, p->key, p->len);
	putc1(b, ':');
	emit(b, p->value, flags);
}

static void
emit_object(struct wf_json_buf *b, const json_t *v, unsigned int flags)
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
emit_items(struct wf_json_buf *b, const json_t *v, size_t from, size_t to,
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
	struct wf_json_buf b;
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
emit_split(struct wf_json_buf *b, const json_t *v, size_t n, unsigned int flags)
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
emit(struct wf_json_buf *b, const json_t *v, unsigned int flags)
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

/*
 * Give back what the text does not use when that is much: a buffer
 * starts at 4 KiB, and a caller may keep many short texts.
 */
static void
shrink(struct wf_json_buf *b)
{
	char *s;

	if (b->cap - b->len > 256 && (s = realloc(b->s, b->len + 1))) {
		b->s = s;
		b->cap = b->len + 1;
	}
}

int
wf_json_dump(char **out, size_t *len, const json_t *v, unsigned int flags)
{
	struct wf_json_buf b = { NULL, 0, 0, 0, 1 };

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
	shrink(&b);
	*out = b.s;
	if (len)
		*len = b.len;
	return 0;
}

void
wf_json_buf_raw(struct wf_json_buf *b, const char *s, size_t n)
{
	put(b, s, n);
}

void
wf_json_buf_string(struct wf_json_buf *b, const char *s, size_t n)
{
	put_string(b, s, n);
}

void
wf_json_buf_int(struct wf_json_buf *b, json_int_t v)
{
	put_int(b, v);
}

void
wf_json_buf_value(struct wf_json_buf *b, const json_t *v, unsigned int flags)
{
	emit(b, v, flags);
}

int
wf_json_buf_finish(char **out, size_t *len, struct wf_json_buf *b)
{
	*out = NULL;
	if (len)
		*len = 0;
	if (reserve(b, 1) < 0) {
		free(b->s);
		b->s = NULL;
		return wf_error_oom();
	}
	b->s[b->len] = '\0';
	shrink(b);
	*out = b->s;
	if (len)
		*len = b->len;
	b->s = NULL;
	b->len = b->cap = 0;
	return 0;
}
