#ifndef WF_DELTA_H
#define WF_DELTA_H

#include <stddef.h>

/*
 * Deltas in git's pack format that make the object t[0..tlen) from the
 * base b[0..blen).  Each sets *out to a new buffer of *len bytes, or to
 * NULL (and *len to 0) when the delta would not be much smaller than
 * `t` itself (then `t` is better stored whole).  0, or WF_ENOMEM.
 */

/*
 * For an edited tree: the common head and tail copied, the middle
 * inserted.  Taken when head and tail cover half of `t` or more.
 */
int wf_delta_tree(unsigned char **out, size_t *len, const unsigned char *b,
    size_t blen, const unsigned char *t, size_t tlen);

/*
 * For a file edited in a few places: the common head and tail copied,
 * and in between each 16-byte block of `t` whose rolling hash names a
 * block of `b` with the same bytes starts a copy, grown both ways as
 * far as the bytes agree; the rest inserted.  Taken when under half of
 * `t`.  A base of 4 GiB or more is never used.
 */
int wf_delta_blob(unsigned char **out, size_t *len, const unsigned char *b,
    size_t blen, const unsigned char *t, size_t tlen);

#endif
