/*
 * Patch ids: git's builtin/patch-id.c (get_one_patchid() with
 * --stable) over the text of a parsed patch.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "patch.h"
#include "sha1.h"

/* git's isspace() (sane_ctype): space, tab, newline, carriage return. */
static int
git_isspace(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

struct pid {
	struct wf_sha1 ctx;
	unsigned char result[20];	/* this commit's id */
	unsigned char total[20];	/* the sum over commits */
	int before, after, is_binary;
	unsigned flags;
	size_t patchlen, total_len;
	char pre[GIT_OID_HEXSZ + 1], post[GIT_OID_HEXSZ + 1];
};

/* Add hash[] into sum[], bytewise with carry, as git does. */
static void
add_into(unsigned char sum[20], const unsigned char hash[20])
{
	unsigned carry = 0;
	int i;

	for (i = 0; i < 20; i++) {
		carry += sum[i] + hash[i];
		sum[i] = (unsigned char)carry;
		carry >>= 8;
	}
}

/* flush_one_hunk() */
static void
flush_one(struct pid *s)
{
	unsigned char hash[20];

	wf_sha1_final(hash, &s->ctx);
	wf_sha1_init(&s->ctx);
	add_into(s->result, hash);
}

/* The end of one commit's patch: its id joins the total. */
static void
end_patch(struct pid *s)
{
	flush_one(s);
	if (s->patchlen)
		add_into(s->total, s->result);
	s->total_len += s->patchlen;
	memset(s->result, 0, sizeof(s->result));
	s->patchlen = 0;
	s->before = s->after = -1;
	s->is_binary = 0;
}

static int
is_hex40(const char *p)
{
	return strspn(p, "0123456789abcdefABCDEF") >= GIT_OID_HEXSZ;
}

static int
scan_hunk_header(const char *p, int *before, int *after)
{
	static const char digits[] = "0123456789";
	const char *q, *r;
	size_t n;

	q = p + 4;
	n = strspn(q, digits);
	if (q[n] == ',') {
		q += n + 1;
		*before = atoi(q);
		n = strspn(q, digits);
	} else {
		*before = 1;
	}
	if (n == 0 || q[n] != ' ' || q[n + 1] != '+')
		return 0;
	r = q + n + 2;
	n = strspn(r, digits);
	if (r[n] == ',') {
		r += n + 1;
		*after = atoi(r);
		n = strspn(r, digits);
	} else {
		*after = 1;
	}
	return n != 0;
}

static size_t
remove_space(char *line)
{
	char *src = line, *dst = line;
	unsigned char c;

	while ((c = (unsigned char)*src++) != '\0')
		if (!git_isspace(c))
			*dst++ = (char)c;
	return (size_t)(dst - line);
}

static void
copy_id(char out[GIT_OID_HEXSZ + 1], const char *s, size_t n)
{
	if (n > GIT_OID_HEXSZ)
		n = GIT_OID_HEXSZ;
	memcpy(out, s, n);
	out[n] = '\0';
}

/* One line of the text, as a C string (it ends at a NUL, as in git). */
static void
one_line(struct pid *s, char *line)
{
	const char *p = line;
	size_t len;

	if (strncmp(line, "commit ", 7) == 0)
		p = line + 7;
	else if (strncmp(line, "From ", 5) == 0)
		p = line + 5;
	else if (strncmp(line, "\\ ", 2) == 0 && strlen(line) > 12)
		return;
	if (is_hex40(p)) {
		end_patch(s);
		return;
	}
	if (!s->patchlen && strncmp(line, "diff ", 5) != 0)
		return;
	if (s->before == -1) {
		if (strncmp(line, "GIT binary patch", 16) == 0 ||
		    strncmp(line, "Binary files", 12) == 0) {
			s->is_binary = 1;
			s->before = 0;
			wf_sha1_update(&s->ctx, s->pre, strlen(s->pre));
			wf_sha1_update(&s->ctx, s->post, strlen(s->post));
			flush_one(s);
			return;
		} else if ((s->flags & WF_PATCH_ID_NO_SCORE) &&
		    (strncmp(line, "similarity index ", 17) == 0 ||
		    strncmp(line, "dissimilarity index ", 20) == 0)) {
			return;
		} else if (strncmp(line, "index ", 6) == 0) {
			char *e1 = strstr(line, ".."), *e2 = NULL;

			if (e1)
				e2 = strstr(e1, " ");
			if (!e2)
				e2 = line + strlen(line) - 1;
			if (e1 && e2 >= e1 + 2) {
				copy_id(s->pre, line + 6, e1 >= line + 6 ?
				    (size_t)(e1 - (line + 6)) : 0);
				copy_id(s->post, e1 + 2, (size_t)(e2 - (e1 + 2)));
			}
			return;
		} else if (strncmp(line, "--- ", 4) == 0) {
			s->before = s->after = 1;
		} else if (!((line[0] | 0x20) >= 'a' && (line[0] | 0x20) <= 'z')) {
			end_patch(s);
			return;
		}
	}
	if (s->is_binary) {
		if (strncmp(line, "diff ", 5) == 0) {
			s->is_binary = 0;
			s->before = -1;
		}
		return;
	}
	if (s->before == 0 && s->after == 0) {
		if (strncmp(line, "@@ -", 4) == 0) {
			scan_hunk_header(line, &s->before, &s->after);
			return;
		}
		if (strncmp(line, "diff ", 5) != 0) {
			end_patch(s);
			return;
		}
		flush_one(s);
		s->before = s->after = -1;
	}
	if (line[0] == '-' || line[0] == ' ')
		s->before--;
	if (line[0] == '+' || line[0] == ' ')
		s->after--;
	len = remove_space(line);
	s->patchlen += len;
	wf_sha1_update(&s->ctx, line, len);
}

int
wf_patch_id(git_oid *out, const struct wf_patch *p)
{
	return wf_patch_id_text(out, p->text, p->len, 0);
}

int
wf_patch_id_text(git_oid *out, const char *text, size_t len, unsigned flags)
{
	const char *l = text, *end = text + len;
	struct pid s;
	char *buf = NULL;
	size_t cap = 0;

	memset(&s, 0, sizeof(s));
	s.flags = flags;
	wf_sha1_init(&s.ctx);
	s.before = s.after = -1;
	while (l < end) {
		const char *nl = memchr(l, '\n', (size_t)(end - l));
		size_t n = nl ? (size_t)(nl - l) + 1 : (size_t)(end - l);

		if (n + 1 > cap) {
			char *b = realloc(buf, n + 1);

			if (!b) {
				free(buf);
				return wf_error_oom();
			}
			buf = b;
			cap = n + 1;
		}
		memcpy(buf, l, n);
		buf[n] = '\0';
		one_line(&s, buf);
		l += n;
	}
	free(buf);
	end_patch(&s);
	if (!s.total_len)
		return wf_error_set(WF_EINPUT, "the patch changes no file");
	memcpy(out->id, s.total, sizeof(s.total));
	return 0;
}
