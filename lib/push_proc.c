/*
 * The proc-receive hook's side of its conversation with
 * git-receive-pack (githooks(5), "proc-receive"), in pkt-lines:
 *
 *   S: version=1\0push-options atomic...   flush
 *   H: version=1\0push-options             flush
 *   S: <old> <new> <ref> ...               flush
 *   S: <push option> ...                   flush
 *   H: ok <ref> | ng <ref> <reason>, each ok followed by its
 *      "option refname|old-oid|new-oid|forced-update" lines;  flush
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "pktline.h"
#include "push.h"

static int
push_str(char ***v, size_t *n, const char *s, size_t len)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(**v));

	if (!nv)
		return wf_error_oom();
	*v = nv;
	if (!(nv[*n] = malloc(len + 1)))
		return wf_error_oom();
	memcpy(nv[*n], s, len);
	nv[*n][len] = '\0';
	nv[++*n] = NULL;
	return 0;
}

/* Read packets up to a flush into *v. */
static int
read_section(char ***v, size_t *n, char *buf, struct wf_push_proc *p,
    int in)
{
	long len;
	int error;

	for (;;) {
		if ((error = wf_pktline_read(buf, &len, in, &p->raw,
		    &p->raw_len)) < 0)
			return error;
		if (len < 0)
			return 0;
		if ((error = push_str(v, n, buf, (size_t)len)) < 0)
			return error;
	}
}

int
wf_push_proc_read(struct wf_push_proc *p, int in, int out, int answered)
{
	static const char reply[] = "version=1\0push-options";
	char *buf;
	long len;
	int error, version = 0;

	memset(p, 0, sizeof(*p));
	if (!(buf = malloc(WF_PKTLINE_MAX + 1)))
		return wf_error_oom();
	for (;;) {
		if ((error = wf_pktline_read(buf, &len, in, &p->raw,
		    &p->raw_len)) < 0)
			goto out;
		if (len < 0)
			break;
		if (strncmp(buf, "version=", 8) == 0) {
			version = strcmp(buf, "version=1") == 0 ? 1 : -1;
			if ((size_t)len > strlen(buf) && strstr(buf +
			    strlen(buf) + 1, "atomic"))
				p->atomic = 1;
		}
	}
	if (version != 1) {
		error = wf_error_set(WF_EINPUT, "git-receive-pack does not "
		    "speak version 1 of the proc-receive protocol");
		goto out;
	}
	if (!answered && ((error = wf_pktline_write(out, reply,
	    sizeof(reply) - 1)) < 0 || (error = wf_pktline_flush(out)) < 0))
		goto out;
	if ((error = read_section(&p->commands, &p->ncommands, buf, p,
	    in)) < 0 ||
	    (error = read_section(&p->options, &p->noptions, buf, p, in)) < 0)
		goto out;
out:
	free(buf);
	if (error < 0)
		wf_push_proc_release(p);
	return error;
}

void
wf_push_proc_release(struct wf_push_proc *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->ncommands; i++)
		free(p->commands[i]);
	for (i = 0; i < p->noptions; i++)
		free(p->options[i]);
	free(p->commands);
	free(p->options);
	free(p->raw);
	memset(p, 0, sizeof(*p));
}

/* Write "<word> <a>[ <b>]" as a packet, newlines in it made spaces. */
static int
say3(int fd, const char *word, const char *a, const char *b)
{
	size_t n = strlen(word) + strlen(a) + (b ? strlen(b) + 1 : 0) + 1, i;
	char *s;
	int error;

	if (n > WF_PKTLINE_MAX)
		n = WF_PKTLINE_MAX;
	if (!(s = malloc(n + 1)))
		return wf_error_oom();
	snprintf(s, n + 1, "%s %s%s%s", word, a, b ? " " : "", b ? b : "");
	for (i = 0; s[i]; i++)
		if (s[i] == '\n' || s[i] == '\r')
			s[i] = ' ';
	error = wf_pktline_write(fd, s, strlen(s));
	free(s);
	return error;
}

int
wf_push_proc_answer(int fd, const char *ref, const char *kept,
    const char *why)
{
	int error;

	if (why)
		return say3(fd, "ng", ref, why);
	if ((error = say3(fd, "ok", ref, NULL)) < 0)
		return error;
	if (kept && (error = say3(fd, "option", "refname", kept)) < 0)
		return error;
	return 0;
}
