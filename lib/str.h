#ifndef WF_STR_H
#define WF_STR_H

#include <stdarg.h>

/*
 * printf into a new string of the right size: the caller frees it.
 * NULL when out of memory (or on an encoding error).
 */
char *wf_str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* wf_str_printf() with a va_list. */
char *wf_str_vprintf(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));

#include <stddef.h>

/*
 * Is s[0..n) UTF-8 as jansson takes it (shortest forms, no surrogates,
 * nothing above U+10FFFF)?  1 yes, 0 no.  NUL bytes are valid here.
 */
int wf_str_utf8_valid(const char *s, size_t n);

/*
 * A path as JSON text can hold it: the path itself when it is UTF-8,
 * else git's C-style quoted form (core.quotePath): in double quotes,
 * with the bytes that are not UTF-8, '"', '\\' and control characters
 * escaped ("caf\351.txt").  A new string; NULL when out of memory.
 */
char *wf_str_path_text(const char *path);

#endif
