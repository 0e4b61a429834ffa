#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "change.h"
#include "error.h"
#include "mail.h"
#include "str.h"

/* A growing byte buffer, NUL-terminated. */
struct buf {
	char *s;
	size_t len, cap;
	int failed;
};

static void
put(struct buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *x;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (!(x = realloc(b->s, cap))) {
			b->failed = 1;
			return;
		}
		b->s = x;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
putc_(struct buf *b, char c)
{
	put(b, &c, 1);
}

/* The line at p (with its newline), *n its length. */
static const char *
line_at(const char *p, const char *end, size_t *n)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	*n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
	return p;
}

/* A line's length without its end of line (LF or CRLF). */
static size_t
chomp(const char *l, size_t n)
{
	if (n > 0 && l[n - 1] == '\n')
		n--;
	if (n > 0 && l[n - 1] == '\r')
		n--;
	return n;
}

/*
 * git mailsplit's test for an mbox separator: "From " and, near the end
 * of the line, something like "HH:MM:SS YYYY" with a year after 1990.
 */
/*
 * strtol() of s[0..end) in base 10, never reading past `end` (a line is
 * not NUL-terminated: the last one ends the buffer); large values stop
 * growing, which only compares them with a year.
 */
static long
year_at(const char *s, const char *end)
{
	long v = 0;
	int neg = 0;

	while (s < end && isspace((unsigned char)*s))
		s++;
	if (s < end && (*s == '+' || *s == '-'))
		neg = *s++ == '-';
	while (s < end && isdigit((unsigned char)*s) && v < 1000000)
		v = v * 10 + (*s++ - '0');
	return neg ? -v : v;
}

static int
is_from_line(const char *l, size_t n)
{
	const char *colon, *start = l + 5;

	n = chomp(l, n);
	if (n < 20 || memcmp(l, "From ", 5) != 0)
		return 0;
	colon = l + n - 2;
	for (;;) {
		if (colon < start)
			return 0;
		if (*--colon == ':')
			break;
	}
	if (colon - 4 < l || colon + 3 > l + n ||
	    !isdigit((unsigned char)colon[-4]) ||
	    !isdigit((unsigned char)colon[-2]) ||
	    !isdigit((unsigned char)colon[-1]) ||
	    !isdigit((unsigned char)colon[1]) ||
	    !isdigit((unsigned char)colon[2]))
		return 0;
	if (colon + 3 < l + n && year_at(colon + 3, l + n) <= 90)
		return 0;
	return 1;
}

int
wf_mail_next(const char **mail, size_t *len, const char **pos,
    const char *end)
{
	const char *p = *pos, *start = NULL, *l;
	size_t n;

	/* Skip to the first separator; a text without one is one mail. */
	for (l = p; l < end; l += n) {
		line_at(l, end, &n);
		if (is_from_line(l, n)) {
			start = l;
			break;
		}
	}
	if (!start) {
		/*
		 * What follows a mail runs to the next separator, so this
		 * is a whole text without one: a single mail, or nothing.
		 */
		for (l = p; l < end && isspace((unsigned char)*l); l++)
			;
		if (l == end)
			return 1;
		*mail = p;
		*len = (size_t)(end - p);
		*pos = end;
		return 0;
	}
	line_at(start, end, &n);
	for (l = start + n; l < end; l += n) {
		line_at(l, end, &n);
		if (is_from_line(l, n))
			break;
	}
	*mail = start;
	*len = (size_t)(l - start);
	*pos = l;
	return 0;
}

/* Re-code in[0..n) from `charset` to UTF-8 into b; -1 when it cannot. */
static int
to_utf8(struct buf *b, const char *charset, const char *in, size_t n)
{
	iconv_t cd;
	char out[1024];

	if (!charset || !*charset || strcasecmp(charset, "utf-8") == 0 ||
	    strcasecmp(charset, "utf8") == 0 ||
	    strcasecmp(charset, "us-ascii") == 0) {
		put(b, in, n);
		return 0;
	}
	if ((cd = iconv_open("UTF-8", charset)) == (iconv_t)-1)
		return -1;
	while (n > 0) {
		char *ip = (char *)(uintptr_t)in, *op = out;
		size_t il = n, ol = sizeof(out);

		if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1 &&
		    errno != E2BIG) {
			iconv_close(cd);
			return -1;
		}
		put(b, out, (size_t)(op - out));
		in = ip;
		n = il;
	}
	iconv_close(cd);
	return 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Quoted-printable in[0..n) into b; `header`: '_' is a space (RFC 2047). */
static void
unqp(struct buf *b, const char *in, size_t n, int header)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (in[i] == '=' && i + 2 < n &&
		    hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0) {
			putc_(b, (char)(hexval(in[i + 1]) * 16 +
			    hexval(in[i + 2])));
			i += 2;
		} else if (in[i] == '=' && !header && (i + 1 == n ||
		    in[i + 1] == '\n' || (in[i + 1] == '\r' && i + 2 < n &&
		    in[i + 2] == '\n'))) {
			/* A soft line break. */
			i += i + 1 < n && in[i + 1] == '\r' ? 2 : 1;
		} else if (header && in[i] == '_') {
			putc_(b, ' ');
		} else {
			putc_(b, in[i]);
		}
	}
}

/* Base64 in[0..n), ignoring white space, into b; -1 when it is not. */
static int
unb64(struct buf *b, const char *in, size_t n)
{
	struct buf clean = { NULL, 0, 0, 0 };
	unsigned char *out = NULL;
	size_t i, len;
	int error;

	for (i = 0; i < n; i++)
		if (!isspace((unsigned char)in[i]))
			putc_(&clean, in[i]);
	if (clean.failed) {
		b->failed = 1;
		return 0;
	}
	if (!clean.s) {
		free(clean.s);
		return 0;
	}
	error = wf_change_unbase64(&out, &len, clean.s);
	free(clean.s);
	if (error < 0)
		return -1;
	put(b, (char *)out, len);
	free(out);
	return 0;
}

/*
 * A header's value with its RFC 2047 encoded words decoded, and the
 * rest re-coded from the mail's charset; white space between two
 * encoded words is dropped.
 */
static int
decode_header(struct buf *out, const char *v, size_t n, const char *charset)
{
	const char *p = v, *end = v + n, *plain = v;
	int last_encoded = 0;

	while (p < end) {
		const char *q1, *q2, *q3, *e;
		char cs[64];
		struct buf raw = { NULL, 0, 0, 0 };
		int enc, error;

		if (p + 1 >= end || p[0] != '=' || p[1] != '?') {
			p++;
			continue;
		}
		if (!(q1 = memchr(p + 2, '?', (size_t)(end - p - 2))) ||
		    q1 + 3 >= end || q1[2] != '?' ||
		    !(e = strstr(q1 + 3, "?=")) || e >= end) {
			p++;
			continue;
		}
		q2 = q1 + 1;
		q3 = q1 + 2;
		enc = toupper((unsigned char)*q2);
		if ((enc != 'Q' && enc != 'B') || (size_t)(q1 - p - 2) >=
		    sizeof(cs)) {
			p++;
			continue;
		}
		memcpy(cs, p + 2, (size_t)(q1 - p - 2));
		cs[q1 - p - 2] = '\0';
		/* RFC 2231 language: charset*lang. */
		if (strchr(cs, '*'))
			*strchr(cs, '*') = '\0';
		/* The text before: dropped when it is space between words. */
		{
			const char *s;
			int blank = 1;

			for (s = plain; s < p; s++)
				if (!isspace((unsigned char)*s))
					blank = 0;
			if (!(blank && last_encoded) &&
			    to_utf8(out, charset, plain, (size_t)(p - plain)) < 0)
				return wf_error_set(WF_EINPUT, "cannot convert "
				    "a header from '%s'", charset);
		}
		if (enc == 'Q')
			unqp(&raw, q3 + 1, (size_t)(e - q3 - 1), 1);
		else if (unb64(&raw, q3 + 1, (size_t)(e - q3 - 1)) < 0) {
			free(raw.s);
			return wf_error_set(WF_EINPUT, "bad base64 in a header");
		}
		if (raw.failed)
			return wf_error_oom();
		error = to_utf8(out, cs, raw.s ? raw.s : "", raw.len);
		free(raw.s);
		if (error < 0)
			return wf_error_set(WF_EINPUT, "cannot convert a header "
			    "from '%s'", cs);
		p = plain = e + 2;
		last_encoded = 1;
	}
	if (to_utf8(out, charset, plain, (size_t)(end - plain)) < 0)
		return wf_error_set(WF_EINPUT, "cannot convert a header from "
		    "'%s'", charset);
	return out->failed ? wf_error_oom() : 0;
}

/* The headers git am reads. */
struct headers {
	struct buf from, subject, date, type, cte;
};

static void
headers_release(struct headers *h)
{
	free(h->from.s);
	free(h->subject.s);
	free(h->date.s);
	free(h->type.s);
	free(h->cte.s);
}

static struct buf *
header_slot(struct headers *h, const char *l, size_t n, size_t *skip)
{
	static const struct {
		const char *name;
		size_t off;
	} known[] = {
		{ "from:", offsetof(struct headers, from) },
		{ "subject:", offsetof(struct headers, subject) },
		{ "date:", offsetof(struct headers, date) },
		{ "content-type:", offsetof(struct headers, type) },
		{ "content-transfer-encoding:", offsetof(struct headers, cte) },
	};
	size_t i, k;

	for (i = 0; i < sizeof(known) / sizeof(*known); i++) {
		k = strlen(known[i].name);
		if (n >= k && strncasecmp(l, known[i].name, k) == 0) {
			*skip = k;
			return (struct buf *)(void *)((char *)h + known[i].off);
		}
	}
	return NULL;
}

/*
 * Read headers from *p (unfolded: a line that starts with white space
 * continues the one before), stopping after the blank line that ends
 * them.  Values are raw; the last of a name wins.
 */
static void
read_headers(struct headers *h, const char **p, const char *end)
{
	const char *l = *p;
	size_t n;

	while (l < end) {
		struct buf *slot;
		size_t skip = 0, m;

		line_at(l, end, &n);
		m = chomp(l, n);
		if (m == 0) {
			l += n;
			break;
		}
		slot = header_slot(h, l, m, &skip);
		if (slot) {
			slot->len = 0;
			while (skip < m && (l[skip] == ' ' || l[skip] == '\t'))
				skip++;
			put(slot, l + skip, m - skip);
			if (!slot->s)
				put(slot, "", 0);
		}
		l += n;
		/* Folded lines. */
		while (l < end && (*l == ' ' || *l == '\t')) {
			line_at(l, end, &n);
			if (slot)
				put(slot, l, chomp(l, n));
			l += n;
		}
	}
	*p = l;
}

/* The value of parameter `name` of a Content-Type, into out. */
static void
type_param(char *out, size_t size, const char *type, const char *name)
{
	const char *p = type;
	size_t k = strlen(name), i;

	*out = '\0';
	while ((p = strchr(p, ';'))) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, name, k) != 0 || p[k] != '=')
			continue;
		p += k + 1;
		if (*p == '"')
			p++;
		for (i = 0; i + 1 < size && p[i] && p[i] != '"' &&
		    p[i] != ';' && !isspace((unsigned char)p[i]); i++)
			out[i] = p[i];
		out[i] = '\0';
		return;
	}
}

/* git mailinfo's patchbreak(): does the patch start at this line? */
static int
patchbreak(const char *l, size_t n)
{
	size_t i;

	if (n >= 6 && memcmp(l, "diff -", 6) == 0)
		return 1;
	if (n >= 7 && memcmp(l, "Index: ", 7) == 0)
		return 1;
	if (n < 4 || memcmp(l, "---", 3) != 0)
		return 0;
	if (l[3] == ' ' && !isspace((unsigned char)l[4]))
		return 1;
	for (i = 3; i < n; i++) {
		if (l[i] == '\n')
			return 1;
		if (!isspace((unsigned char)l[i]))
			break;
	}
	return 0;
}

/* git mailinfo's cleanup_space(): each run of white space one space. */
static void
cleanup_space(struct buf *s)
{
	size_t i, j = 0;

	for (i = 0; i < s->len; i++) {
		if (isspace((unsigned char)s->s[i])) {
			if (j > 0 && s->s[j - 1] == ' ')
				continue;
			s->s[j++] = ' ';
		} else {
			s->s[j++] = s->s[i];
		}
	}
	s->len = j;
	if (s->s)
		s->s[j] = '\0';
}

/* git mailinfo's cleanup_subject() (without -k): prefixes go. */
static void
cleanup_subject(struct buf *s)
{
	size_t at = 0, rm;
	char *close;

	while (at < s->len) {
		switch (s->s[at]) {
		case 'r':
		case 'R':
			if (s->len > at + 3 && (s->s[at + 1] == 'e' ||
			    s->s[at + 1] == 'E') && s->s[at + 2] == ':') {
				memmove(s->s + at, s->s + at + 3,
				    s->len - at - 2);
				s->len -= 3;
				continue;
			}
			break;
		case ' ':
		case '\t':
		case ':':
			memmove(s->s + at, s->s + at + 1, s->len - at);
			s->len--;
			continue;
		case '[':
			if (!(close = memchr(s->s + at, ']', s->len - at)))
				break;
			rm = (size_t)(close - (s->s + at)) + 1;
			memmove(s->s + at, s->s + at + rm, s->len - at - rm + 1);
			s->len -= rm;
			continue;
		}
		break;
	}
	while (s->len > 0 && isspace((unsigned char)s->s[s->len - 1]))
		s->len--;
	if (s->s)
		s->s[s->len] = '\0';
}

/*
 * git's stripspace: trailing white space off every line, runs of blank
 * lines made one, none at either end, every line ending in a newline.
 */
static void
stripspace(struct buf *out, const char *in, size_t n)
{
	const char *p = in, *end = in + n;
	size_t len;
	int blanks = 0;

	while (p < end) {
		const char *l = line_at(p, end, &len);

		p += len;
		len = chomp(l, len);
		while (len > 0 && isspace((unsigned char)l[len - 1]))
			len--;
		if (len == 0) {
			blanks++;
			continue;
		}
		if (out->len > 0 && blanks > 0)
			putc_(out, '\n');
		blanks = 0;
		put(out, l, len);
		putc_(out, '\n');
	}
	if (!out->s)
		put(out, "", 0);
}

/* "Name <email>", "email (Name)" or "email", as git mailinfo takes them. */
static int
parse_from(struct wf_mail *m, const char *v)
{
	const char *lt = strchr(v, '<'), *gt = lt ? strchr(lt, '>') : NULL;
	const char *ns, *ne;
	size_t k;

	if (lt && gt) {
		ns = v;
		ne = lt;
		if (!(m->email = strndup(lt + 1, (size_t)(gt - lt - 1))))
			return wf_error_oom();
	} else {
		const char *paren = strchr(v, '(');

		ne = paren ? paren : v + strlen(v);
		for (k = 0; v + k < ne && !isspace((unsigned char)v[k]); k++)
			;
		if (!(m->email = strndup(v, k)))
			return wf_error_oom();
		ns = paren ? paren + 1 : v + k;
		ne = paren && strchr(paren, ')') ? strchr(paren, ')') :
		    v + strlen(v);
	}
	while (ns < ne && isspace((unsigned char)*ns))
		ns++;
	while (ne > ns && isspace((unsigned char)ne[-1]))
		ne--;
	if (ne - ns >= 2 && *ns == '"' && ne[-1] == '"') {
		ns++;
		ne--;
	}
	if (ne == ns) {
		/* No name: git takes the email's local part. */
		const char *at = strchr(m->email, '@');

		ns = m->email;
		ne = at ? at : m->email + strlen(m->email);
	}
	if (!(m->name = strndup(ns, (size_t)(ne - ns))))
		return wf_error_oom();
	if (!*m->email)
		return wf_error_set(WF_EINPUT, "the From header '%s' names no "
		    "email address", v);
	return 0;
}

/* RFC 2822 "[Day,] DD Mon YYYY HH:MM[:SS] +HHMM" as "SECONDS +HHMM". */
static int
parse_date(struct wf_mail *m, const char *v)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	struct tm tm;
	char mon[4], zone[8], out[64];
	int day, year, hh, mm, ss = 0, off, k;
	const char *p = v, *c;
	long long t;

	memset(&tm, 0, sizeof(tm));
	if ((c = strchr(p, ',')))
		p = c + 1;
	if (sscanf(p, " %d %3s %d %d:%d%n", &day, mon, &year, &hh, &mm,
	    &k) != 5)
		return 0;
	p += k;
	if (*p == ':' && sscanf(p, ":%d%n", &ss, &k) == 1)
		p += k;
	if (sscanf(p, " %7s", zone) != 1 || (zone[0] != '+' &&
	    zone[0] != '-') || strlen(zone) != 5 ||
	    strspn(zone + 1, "0123456789") != 4)
		snprintf(zone, sizeof(zone), "+0000");
	for (k = 0; mon[k]; k++)
		mon[k] = (char)tolower((unsigned char)mon[k]);
	if (strlen(mon) != 3 || !(c = strstr(months, mon)) ||
	    (c - months) % 3 != 0)
		return 0;
	if (year < 100)
		year += year < 70 ? 2000 : 1900;
	tm.tm_year = year - 1900;
	tm.tm_mon = (int)((c - months) / 3);
	tm.tm_mday = day;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	off = ((zone[1] - '0') * 10 + (zone[2] - '0')) * 60 +
	    (zone[3] - '0') * 10 + (zone[4] - '0');
	t = (long long)timegm(&tm) - (zone[0] == '-' ? -off : off) * 60LL;
	snprintf(out, sizeof(out), "%lld %s", t, zone);
	if (!(m->date = strdup(out)))
		return wf_error_oom();
	return 0;
}

void
wf_mail_release(struct wf_mail *m)
{
	free(m->name);
	free(m->email);
	free(m->date);
	free(m->message);
	free(m->patch);
	memset(m, 0, sizeof(*m));
}

int
wf_mail_parse(struct wf_mail *out, const char *text, size_t len)
{
	struct headers h, inbody;
	struct buf body = { NULL, 0, 0, 0 }, msg = { NULL, 0, 0, 0 };
	struct buf from = { NULL, 0, 0, 0 }, subject = { NULL, 0, 0, 0 };
	struct buf raw = { NULL, 0, 0, 0 }, log = { NULL, 0, 0, 0 };
	const char *p = text, *end = text + len, *b, *bend, *l;
	char charset[64], cte[32];
	size_t n;
	int error;

	memset(out, 0, sizeof(*out));
	memset(&h, 0, sizeof(h));
	memset(&inbody, 0, sizeof(inbody));
	/* The separator line names the commit the mail was made from. */
	line_at(p, end, &n);
	if (is_from_line(p, n)) {
		if (n > 46 && strspn(p + 5, "0123456789abcdef") == 40 &&
		    p[45] == ' ') {
			memcpy(out->commit, p + 5, 40);
			out->commit[40] = '\0';
		}
		p += n;
	}
	read_headers(&h, &p, end);
	if (h.from.failed || h.subject.failed ||
	    h.date.failed || h.type.failed || h.cte.failed) {
		error = wf_error_oom();
		goto out;
	}
	type_param(charset, sizeof(charset), h.type.s ? h.type.s : "",
	    "charset");
	if (h.type.s && strncasecmp(h.type.s, "multipart/", 10) == 0) {
		error = wf_error_set(WF_EINPUT, "a multipart mail (send the "
		    "patch inline: git format-patch without --attach)");
		goto out;
	}
	snprintf(cte, sizeof(cte), "%s", h.cte.s ? h.cte.s : "");
	/* The body, decoded from its transfer encoding. */
	if (strncasecmp(cte, "quoted-printable", 16) == 0) {
		unqp(&body, p, (size_t)(end - p), 0);
	} else if (strncasecmp(cte, "base64", 6) == 0) {
		if (unb64(&body, p, (size_t)(end - p)) < 0) {
			error = wf_error_set(WF_EINPUT, "the body is not "
			    "valid base64");
			goto out;
		}
	} else {
		put(&body, p, (size_t)(end - p));
	}
	if (body.failed) {
		error = wf_error_oom();
		goto out;
	}
	b = body.s ? body.s : "";
	bend = b + body.len;
	/* In-body headers at the top take over (blank lines first skipped). */
	while (b < bend && (*b == '\n' || (*b == '\r' && b + 1 < bend &&
	    b[1] == '\n')))
		b += *b == '\r' ? 2 : 1;
	for (;;) {
		size_t skip;

		line_at(b, bend, &n);
		if (b >= bend || !header_slot(&inbody, b, chomp(b, n), &skip) ||
		    (strncasecmp(b, "from:", 5) != 0 &&
		    strncasecmp(b, "subject:", 8) != 0 &&
		    strncasecmp(b, "date:", 5) != 0))
			break;
		read_headers(&inbody, &b, bend);
	}
	if (inbody.from.s) {
		free(h.from.s);
		h.from = inbody.from;
		inbody.from.s = NULL;
	}
	if (inbody.subject.s) {
		free(h.subject.s);
		h.subject = inbody.subject;
		inbody.subject.s = NULL;
	}
	if (inbody.date.s) {
		free(h.date.s);
		h.date = inbody.date;
		inbody.date.s = NULL;
	}
	if (!h.from.s || !*h.from.s) {
		error = wf_error_set(WF_EINPUT, "the mail has no From header");
		goto out;
	}
	if ((error = decode_header(&from, h.from.s, h.from.len, charset)) < 0)
		goto out;
	cleanup_space(&from);
	if ((error = parse_from(out, from.s ? from.s : "")) < 0)
		goto out;
	if (h.subject.s && (error = decode_header(&subject, h.subject.s,
	    h.subject.len, charset)) < 0)
		goto out;
	cleanup_space(&subject);
	cleanup_subject(&subject);
	if (h.date.s && (error = parse_date(out, h.date.s)) < 0)
		goto out;
	/* The log message runs to the patch. */
	for (l = b; l < bend; l += n) {
		line_at(l, bend, &n);
		if (patchbreak(l, n))
			break;
	}
	if (l == bend) {
		error = wf_error_set(WF_EINPUT, "the mail%s%s holds no patch",
		    subject.len ? " " : "", subject.len ? subject.s : "");
		goto out;
	}
	if (to_utf8(&log, charset, b, (size_t)(l - b)) < 0) {
		error = wf_error_set(WF_EINPUT, "cannot convert the message "
		    "from '%s'", charset);
		goto out;
	}
	put(&raw, subject.s ? subject.s : "", subject.len);
	put(&raw, "\n\n", 2);
	put(&raw, log.s ? log.s : "", log.len);
	stripspace(&msg, raw.s, raw.len);
	if (msg.failed || raw.failed || log.failed) {
		error = wf_error_oom();
		goto out;
	}
	out->message = msg.s;
	out->message_len = msg.len;
	msg.s = NULL;
	if (!(out->patch = malloc((size_t)(bend - l) + 1))) {
		error = wf_error_oom();
		goto out;
	}
	memcpy(out->patch, l, (size_t)(bend - l));
	out->patch[bend - l] = '\0';
	out->patch_len = (size_t)(bend - l);
	error = 0;
out:
	if (error < 0)
		wf_mail_release(out);
	headers_release(&h);
	headers_release(&inbody);
	free(body.s);
	free(msg.s);
	free(from.s);
	free(subject.s);
	free(raw.s);
	free(log.s);
	return error;
}
