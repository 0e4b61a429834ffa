/*
 * Fuzz lib/mail.c: the input is an mbox, as wf-enqueue --mbox reads
 * one: split into mails, each parsed as git mailinfo would, its patch
 * then parsed.  What a mail gives must lie within it and be the strings
 * its header promises.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fuzz.h"
#include "mail.h"
#include "patch.h"

#define MAX_MAILS 32

static void
check_mail(const char *text, size_t len)
{
	struct wf_mail m;
	struct wf_patch *p = NULL;
	int error;

	memset(&m, 0, sizeof(m));
	error = wf_mail_parse(&m, text, len);
	if (error < 0) {
		if (error != WF_EINPUT && error != WF_ENOMEM)
			fuzz_fail("wf_mail_parse returned %d: %s", error,
			    wf_error_last());
		fuzz_note("refused: %s", wf_error_last());
		wf_mail_release(&m);
		return;
	}
	if (!m.name || !m.email || !m.message || !m.patch)
		fuzz_fail("a mail taken without its author, message or patch");
	if (strlen(m.message) > m.message_len || strlen(m.commit) > 40)
		fuzz_fail("a mail's message or commit overruns");
	if (m.patch_len > len)
		fuzz_fail("a patch of %zu bytes from a mail of %zu", m.patch_len,
		    len);
	fuzz_note("taken: %s <%s>, %zu bytes of patch", m.name, m.email,
	    m.patch_len);
	if (wf_patch_parse(&p, m.patch, m.patch_len) == 0)
		wf_patch_free(p);
	wf_mail_release(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *pos = text, *end = text + size;
	const char *mail, *last = NULL;
	size_t len;
	int n = 0;

	while (n++ < MAX_MAILS && wf_mail_next(&mail, &len, &pos, end) == 0) {
		if (mail < text || len > (size_t)(end - mail) || pos < mail ||
		    pos > end)
			fuzz_fail("a mail outside the mbox");
		/* wf-enqueue --mbox reads until the end: it must come. */
		if (last && pos <= last)
			fuzz_fail("the mbox reader does not move on");
		last = pos;
		check_mail(mail, len);
	}
	return 0;
}
