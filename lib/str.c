#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <string.h>

#include "str.h"

char *
wf_str_vprintf(const char *fmt, va_list ap)
{
	va_list again;
	char *s;
	int n;

	va_copy(again, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	if (n < 0 || !(s = malloc((size_t)n + 1))) {
		va_end(again);
		return NULL;
	}
	vsnprintf(s, (size_t)n + 1, fmt, again);
	va_end(again);
	return s;
}

char *
wf_str_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = wf_str_vprintf(fmt, ap);
	va_end(ap);
	return s;
}

/* Length of the UTF-8 sequence at s[0..n), 0 when it is not one. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned int c = s[0], v;
	size_t k, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		k = 2, v = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		k = 3, v = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		k = 4, v = c & 0x07;
	else
		return 0;
	if (n < k)
		return 0;
	for (i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if ((k == 3 && v < 0x800) || (k == 4 && v < 0x10000) ||
	    v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	return k;
}

int
wf_str_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (!(k = utf8_seq(p + i, n - i)))
			return 0;
		i += k;
	}
	return 1;
}

char *
wf_str_path_text(const char *path)
{
	const unsigned char *p = (const unsigned char *)path;
	size_t n = strlen(path), i, k;
	char *out, *o;

	if (wf_str_utf8_valid(path, n))
		return strdup(path);
	if (!(out = malloc(4 * n + 3)))
		return NULL;
	o = out;
	*o++ = '"';
	for (i = 0; i < n; i += k) {
		k = p[i] < 0x80 ? 1 : utf8_seq(p + i, n - i);
		if (k > 1) {
			memcpy(o, p + i, k);
			o += k;
			continue;
		}
		k = 1;
		switch (p[i]) {
		case '"': o = stpcpy(o, "\\\""); continue;
		case '\\': o = stpcpy(o, "\\\\"); continue;
		case '\t': o = stpcpy(o, "\\t"); continue;
		case '\n': o = stpcpy(o, "\\n"); continue;
		}
		if (p[i] < 0x20 || p[i] >= 0x7f) {
			sprintf(o, "\\%03o", p[i]);
			o += 4;
		} else {
			*o++ = (char)p[i];
		}
	}
	*o++ = '"';
	*o = '\0';
	return out;
}
