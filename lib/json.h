#ifndef WF_JSON_H
#define WF_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * A JSON path such as `.stages[2].workflows`, kept as a stack while a
 * validator walks a value.  Keys are borrowed: they must outlive their
 * place on the stack.
 */
#define WF_JPATH_MAX 32

struct wf_jpath {
	struct {
		const char *key;	/* NULL for an array index */
		size_t index;
	} item[WF_JPATH_MAX];
	int depth;
};

#define WF_JPATH_INIT { .depth = 0 }

void wf_jpath_push_key(struct wf_jpath *p, const char *key);
void wf_jpath_push_index(struct wf_jpath *p, size_t index);
void wf_jpath_pop(struct wf_jpath *p);

/*
 * Write the path in jq syntax (`.a.b[2]`, `.a["odd key"]`, `.` for the
 * root) into buf; truncates to fit.  Returns buf.
 */
char *wf_jpath_format(char *buf, size_t size, const struct wf_jpath *p);

/*
 * One JSON value read from an input, with where it came from.  `text`
 * and `len` are the value's source bytes, `line` and `col` (1-based) the
 * place of its first byte in the input called `name`.  The reader that
 * filled a doc owns `text`, valid until its next call; the caller owns
 * the reference in `value`.
 */
struct wf_json_doc {
	json_t *value;
	const char *name;
	const char *text;
	size_t len;
	unsigned long line;
	unsigned long col;
};

/*
 * Find where the value at `path` starts in `doc->text`.  Sets *line and
 * *col (absolute in the input) and returns 0; returns -1 and leaves them
 * at the document's start when the path is not in the text.
 */
int wf_json_locate(unsigned long *line, unsigned long *col,
    const struct wf_json_doc *doc, const struct wf_jpath *path);

/*
 * Record an input error at `path` in `doc` and return WF_EINPUT.  The
 * message reads "<name>:<line>:<col>: <path>: <message>" (the path part
 * is left out when path is NULL or the root).
 */
int wf_json_error(const struct wf_json_doc *doc, const struct wf_jpath *path,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * A reader of a stream of JSON values (any type, separated by optional
 * white space) from a file, or from stdin when path is "-".  Values are
 * returned as soon as they are complete, so readers work in pipelines.
 */
struct wf_json_reader;

/* Open `path` ("-" for stdin).  *out is NULL on error. */
int wf_json_reader_open(struct wf_json_reader **out, const char *path);

/* Read from an open descriptor (not closed by the reader) named `name`. */
int wf_json_reader_fdopen(struct wf_json_reader **out, int fd,
    const char *name);

/*
 * Read the next value into *doc.  Returns 1 when a value was read, 0 at
 * the end of the input, WF_EINPUT for malformed or truncated JSON (the
 * message names the place), WF_EOS for a read error.  After an error the
 * reader returns the same error again.
 */
int wf_json_reader_next(struct wf_json_doc *doc, struct wf_json_reader *r);

/*
 * Parse the JSON object or array at s[0..len) quickly, without
 * jansson's parser.  Returns a new reference and the bytes it took in
 * *used, or NULL when it cannot: out of memory, input it leaves to
 * jansson (reals, integers of 19 digits or more, "\u0000") and every
 * malformed input.  On NULL, parse with jansson, whose answer this
 * never contradicts.
 */
json_t *wf_json_fast_parse(const char *s, size_t len, size_t *used);

/* The descriptor being read. */
int wf_json_reader_fd(const struct wf_json_reader *r);

/* Close (unless fdopen'ed) and free; no-op on NULL. */
void wf_json_reader_free(struct wf_json_reader *r);

/*
 * Read a whole file as one JSON document (not a stream): exactly one
 * value.  *doc->value is a new reference, and *buf receives the file's
 * text (doc->text points into it), which the caller frees.
 */
int wf_json_load_file(struct wf_json_doc *doc, char **buf, const char *path,
    const char *name);

/*
 * Validation helpers.  Each checks the value at `path` (already pushed by
 * the caller) inside `doc`, and on failure records an error naming the
 * place and returns WF_EINPUT.
 */

/* v is an object whose keys are all in the NULL-terminated `allowed`. */
int wf_json_check_object(const struct wf_json_doc *doc, struct wf_jpath *path,
    json_t *v, const char *const *allowed);

/* v is a string (not containing NUL); *out is borrowed from v. */
int wf_json_check_string(const char **out, const struct wf_json_doc *doc,
    struct wf_jpath *path, json_t *v);

/* v is an integer. */
int wf_json_check_int(int64_t *out, const struct wf_json_doc *doc,
    struct wf_jpath *path, json_t *v);

/* v is true or false. */
int wf_json_check_bool(int *out, const struct wf_json_doc *doc,
    struct wf_jpath *path, json_t *v);

/*
 * v is an array of strings.  *out is a new NULL-terminated array of
 * borrowed strings (free the array, not the strings); *n its length.
 */
int wf_json_check_strings(const char ***out, size_t *n,
    const struct wf_json_doc *doc, struct wf_jpath *path, json_t *v);

/*
 * Serialise for hashing and comparing: compact, keys sorted.  Returns a
 * malloc'ed string or NULL when out of memory.
 */
char *wf_json_canonical(const json_t *v);

/*
 * Fast JSON output.  jansson's dumper hands every piece to a callback
 * and walks strings code point by code point; a 100,000-workflow plan
 * (11 MB) takes it a third of a second, twice over when the plan is
 * hashed too.  This writes the same bytes into one growing buffer in a
 * tenth of the time.
 */

/* Sort object keys (byte order), as wf_json_canonical() does. */
#define WF_JSON_DUMP_SORT_KEYS 0x1

/*
 * Serialise v compactly: byte for byte what json_dumps(v, JSON_COMPACT |
 * JSON_ENCODE_ANY) gives, or with WF_JSON_DUMP_SORT_KEYS what
 * wf_json_canonical() gives (so wf_hash_buf() of it is wf_hash_json()).
 * *out is a malloc'ed, NUL-terminated string the caller frees and *len
 * its length (len may be NULL); both are NULL/0 on WF_ENOMEM.  Strings
 * are written as they are stored: jansson only stores valid UTF-8.
 */
int wf_json_dump(char **out, size_t *len, const json_t *v,
    unsigned int flags);

/*
 * Writing JSON a piece at a time into one buffer, with the bytes
 * wf_json_dump() writes: for callers that know the shape of what they
 * write and would otherwise build jansson values only to write them.
 * A failed allocation is remembered and reported by the finish.
 *
 *	struct wf_json_buf b = WF_JSON_BUF_INIT;
 *	wf_json_buf_raw(&b, "{\"id\":", 6);
 *	wf_json_buf_string(&b, id, strlen(id));
 *	...
 *	error = wf_json_buf_finish(&text, &len, &b);
 */
struct wf_json_buf {
	char *s;
	size_t len, cap;
	int failed;		/* out of memory: writes do nothing */
	int helper;		/* may hand half a long array to a thread */
};

#define WF_JSON_BUF_INIT { NULL, 0, 0, 0, 0 }

/* Bytes as they are (JSON punctuation, keys known not to need escapes). */
void wf_json_buf_raw(struct wf_json_buf *b, const char *s, size_t n);

/* s[0..n) as a JSON string. */
void wf_json_buf_string(struct wf_json_buf *b, const char *s, size_t n);

/* An integer. */
void wf_json_buf_int(struct wf_json_buf *b, json_int_t v);

/* A value, as wf_json_dump() writes it with `flags`. */
void wf_json_buf_value(struct wf_json_buf *b, const json_t *v,
    unsigned int flags);

/*
 * NUL-terminate and hand the text over: *out (the caller's to free)
 * and *len (may be NULL).  WF_ENOMEM when any write failed; the buffer
 * is empty again either way.
 */
int wf_json_buf_finish(char **out, size_t *len, struct wf_json_buf *b);

#endif
