#ifndef WF_MAIL_H
#define WF_MAIL_H

#include <stddef.h>

/*
 * Patch mails, as git format-patch writes them and git am reads them:
 * an mbox split at its "From " lines (git mailsplit's rule), each mail's
 * headers unfolded and RFC 2047 words decoded, its body decoded from
 * quoted-printable or base64, in-body From/Subject/Date taking over,
 * and the body cut at the patch (git mailinfo's rules).  The message is
 * the cleaned subject, a blank line and the body, with git's
 * stripspace, re-coded to UTF-8 from the mail's charset as git am does
 * by default; the patch is kept byte for byte.
 */
struct wf_mail {
	char *name;		/* the author, UTF-8 */
	char *email;
	char *date;		/* "SECONDS +HHMM", NULL when the mail has none */
	char *message;		/* NUL-terminated; may hold bytes that are
				   not UTF-8 when the mail names no charset */
	size_t message_len;
	char *patch;		/* the diff and what surrounds it */
	size_t patch_len;
	char commit[41];	/* from the "From <id>" line, "" if none */
};

/*
 * The next mail of an mbox: *mail and *len are set to it (borrowed from
 * the text), *pos moves past it.  0 when one was found, 1 at the end.
 * Text before the first "From " line is a mail of its own only when the
 * mbox has none (a single mail without its separator).
 */
int wf_mail_next(const char **mail, size_t *len, const char **pos,
    const char *end);

/*
 * Parse one mail into *out, which the caller releases with
 * wf_mail_release().  WF_EINPUT (the reason says what: no author, no
 * patch, a multipart mail, a charset that cannot be converted),
 * WF_ENOMEM; *out is then empty.
 */
int wf_mail_parse(struct wf_mail *out, const char *text, size_t len);

/* Free what a parsed mail holds; the struct itself is the caller's. */
void wf_mail_release(struct wf_mail *m);

#endif
