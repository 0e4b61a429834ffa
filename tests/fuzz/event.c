/*
 * Fuzz lib/event.c.  The input is a stream of JSON values, as wf-emit
 * reads them: each is parsed as a plan, a summary, a preview-skipped
 * plan and a change line, and counted in a batch.  What a parser takes
 * must render, in every form (redacted, as CloudEvents, pretty): the
 * parsers refuse what could not make a payload of its schema.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "event.h"
#include "fuzz.h"
#include "git.h"
#include "json.h"

#define MAX_VALUES 32

typedef int (*parse_fn)(struct wf_event **, const struct wf_json_doc *);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Redacted paths are hashed as git blobs. */
	if (wf_git_init() < 0)
		fuzz_fail("%s", wf_error_last());
	return 0;
}

static void
render(const struct wf_event *ev)
{
	static const enum wf_event_redact redact[] = { WF_EVENT_REDACT_KEEP,
	    WF_EVENT_REDACT_HASH, WF_EVENT_REDACT_DROP };
	struct wf_event_opts o = WF_EVENT_OPTS_INIT;
	json_t *v;
	char *s;
	size_t len, i;
	git_oid id;

	for (i = 0; i < 3; i++) {
		o.redact = redact[i];
		o.cloudevents = (int)i == 1;
		o.time = i == 1 ? 1700000000 : -1;
		if (wf_event_render(&s, &len, &id, ev, &o) < 0)
			fuzz_fail("%s: taken, but does not render: %s",
			    wf_event_type_name(ev->type), wf_error_last());
		if (len == 0 || s[len - 1] != '\n' || strlen(s) != len ||
		    memchr(s, '\n', len - 1))
			fuzz_fail("%s: not one line", wf_event_type_name(ev->type));
		if (!(v = json_loadb(s, len, 0, NULL)))
			fuzz_fail("%s: rendered as '%s', not JSON",
			    wf_event_type_name(ev->type), s);
		json_decref(v);
		free(s);
	}
	if (wf_event_render_pretty(&s, &len, ev, NULL) < 0)
		fuzz_fail("%s: does not render pretty: %s",
		    wf_event_type_name(ev->type), wf_error_last());
	free(s);
}

static void
parse_as(const struct wf_json_doc *doc, parse_fn fn)
{
	struct wf_event *ev = NULL;
	int error;

	error = fn(&ev, doc);
	if (error < 0) {
		if (ev || (error != WF_EINPUT && error != WF_ENOMEM))
			fuzz_fail("an event parser returned %d: %s", error,
			    wf_error_last());
		return;
	}
	if (!ev)
		fuzz_fail("an event parser took a value and gave nothing");
	render(ev);
	wf_event_free(ev);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const parse_fn parsers[] = { wf_event_from_plan,
	    wf_event_from_summary, wf_event_from_skipped_plan,
	    wf_event_from_change };
	struct wf_event_batch *b;
	struct wf_json_reader *r;
	struct wf_json_doc doc;
	struct wf_event metrics;
	size_t i;
	int n = 0;

	if (wf_event_batch_new(&b) < 0)
		fuzz_fail("wf_event_batch_new: out of memory");
	if (wf_json_reader_fdopen(&r, fuzz_fd(data, size), "<fuzz>") < 0)
		fuzz_fail("wf_json_reader_fdopen: %s", wf_error_last());
	while (n++ < MAX_VALUES && wf_json_reader_next(&doc, r) > 0) {
		for (i = 0; i < sizeof(parsers) / sizeof(*parsers); i++)
			parse_as(&doc, parsers[i]);
		wf_event_batch_add(b, &doc);
		json_decref(doc.value);
	}
	wf_json_reader_free(r);
	wf_event_batch_event(&metrics, b);
	render(&metrics);
	wf_event_batch_free(b);
	return 0;
}
