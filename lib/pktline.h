#ifndef WF_PKTLINE_H
#define WF_PKTLINE_H

#include <stddef.h>

/*
 * git's pkt-line framing (Documentation/gitprotocol-common.txt): four
 * hex digits giving the length of the packet, those four included,
 * then the payload; "0000" is a flush packet, which ends a section.
 * Payloads are at most WF_PKTLINE_MAX bytes.
 */

#define WF_PKTLINE_MAX 65516

/*
 * Read one packet from `fd`: *out is its payload (in a buffer of the
 * caller's, `buf` of WF_PKTLINE_MAX + 1 bytes, NUL-terminated, a final
 * newline cut off), *len its length, or -1 for a flush packet.  When
 * `raw` is not NULL, the bytes read are appended to *raw (of *raw_len
 * bytes, realloc'ed) as they came.  WF_EINPUT for a malformed packet
 * or the end of input, WF_EOS for a read error.
 */
int wf_pktline_read(char *buf, long *len, int fd, char **raw,
    size_t *raw_len);

/* Write `len` bytes of `data` to `fd` as one packet.  WF_EOS. */
int wf_pktline_write(int fd, const char *data, size_t len);

/* Write a flush packet to `fd`.  WF_EOS. */
int wf_pktline_flush(int fd);

#endif
