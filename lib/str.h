#ifndef WF_STR_H
#define WF_STR_H

/*
 * printf into a new string of the right size: the caller frees it.
 * NULL when out of memory (or on an encoding error).
 */
char *wf_str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
