/*
 * Running git itself, for what libgit2 does not do or a tool without
 * libgit2 needs: a ref transaction, the version of the git that runs
 * the hooks.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "git.h"

extern char **environ;

#define OUT_MAX (1024 * 1024)

/* Append what `fd` has to *buf (of *len bytes): 1 at its end, 0, WF_EOS. */
static int
drain(char **buf, size_t *len, int fd)
{
	char chunk[4096], *p;
	ssize_t got;

	if ((got = read(fd, chunk, sizeof(chunk))) < 0)
		return errno == EINTR || errno == EAGAIN ? 0 :
		    wf_error_set_errno(WF_EOS, "cannot read from git");
	if (got == 0)
		return 1;
	if (*len + (size_t)got > OUT_MAX)
		return 0;	/* more than anyone reads: dropped */
	if (!(p = realloc(*buf, *len + (size_t)got + 1)))
		return wf_error_oom();
	memcpy(p + *len, chunk, (size_t)got);
	*len += (size_t)got;
	p[*len] = '\0';
	*buf = p;
	return 0;
}

int
wf_git_run(char **out, int *status, const char *gitdir,
    const char *const *args, const char *input)
{
	posix_spawn_file_actions_t fa;
	const char *argv[32];
	char *obuf = NULL, *ebuf = NULL, *gd = NULL;
	size_t olen = 0, elen = 0, ilen = input ? strlen(input) : 0, ioff = 0;
	size_t i, n = 0;
	int in[2] = { -1, -1 }, o[2] = { -1, -1 }, e[2] = { -1, -1 };
	int error = 0, rc, wst, open_out = 1, open_err = 1;
	pid_t pid = -1;
	struct sigaction ign, old;

	if (out)
		*out = NULL;
	*status = -1;
	argv[n++] = "git";
	if (gitdir) {
		if (!(gd = malloc(strlen(gitdir) + sizeof("--git-dir="))))
			return wf_error_oom();
		sprintf(gd, "--git-dir=%s", gitdir);
		argv[n++] = gd;
	}
	for (i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pipe(in) < 0 || pipe(o) < 0 || pipe(e) < 0) {
		error = wf_error_set_errno(WF_EOS, "cannot run git");
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, o[1], 1);
	posix_spawn_file_actions_adddup2(&fa, e[1], 2);
	posix_spawn_file_actions_addclose(&fa, in[1]);
	posix_spawn_file_actions_addclose(&fa, o[0]);
	posix_spawn_file_actions_addclose(&fa, e[0]);
	rc = posix_spawnp(&pid, "git", &fa, NULL, (char *const *)argv,
	    environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		errno = rc;
		pid = -1;
		error = wf_error_set_errno(WF_EOS, "cannot run git");
		goto out;
	}
	close(in[0]);
	close(o[1]);
	close(e[1]);
	in[0] = o[1] = e[1] = -1;
	/* git may exit before reading all of its input. */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, &old);
	if (ilen == 0) {
		close(in[1]);
		in[1] = -1;
	}
	while (open_out || open_err) {
		struct pollfd p[3];
		nfds_t np = 0;
		size_t k;

		if (open_out) {
			p[np].fd = o[0];
			p[np++].events = POLLIN;
		}
		if (open_err) {
			p[np].fd = e[0];
			p[np++].events = POLLIN;
		}
		if (in[1] >= 0) {
			p[np].fd = in[1];
			p[np++].events = POLLOUT;
		}
		if (poll(p, np, -1) < 0) {
			if (errno == EINTR)
				continue;
			error = wf_error_set_errno(WF_EOS, "cannot wait for git");
			break;
		}
		for (k = 0; k < np; k++) {
			if (!p[k].revents)
				continue;
			if (p[k].fd == in[1]) {
				ssize_t w = write(in[1], input + ioff,
				    ilen - ioff);

				if (w > 0)
					ioff += (size_t)w;
				if ((w < 0 && errno != EINTR &&
				    errno != EAGAIN) || ioff == ilen) {
					close(in[1]);
					in[1] = -1;
				}
			} else if (p[k].fd == o[0]) {
				if ((rc = drain(&obuf, &olen, o[0])) != 0)
					open_out = 0;
				if (rc < 0 && !error)
					error = rc;
			} else {
				if ((rc = drain(&ebuf, &elen, e[0])) != 0)
					open_err = 0;
				if (rc < 0 && !error)
					error = rc;
			}
		}
		if (error < 0)
			break;
	}
	sigaction(SIGPIPE, &old, NULL);
out:
	if (pid > 0) {
		while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
			;
		*status = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 +
		    (WIFSIGNALED(wst) ? WTERMSIG(wst) : 0);
	}
	if (error == 0 && *status != 0) {
		while (elen > 0 && (ebuf[elen - 1] == '\n' ||
		    ebuf[elen - 1] == '\r'))
			ebuf[--elen] = '\0';
		error = wf_error_set(WF_EOS, "git %s failed (exit status %d)%s%s",
		    args[0] ? args[0] : "", *status, elen ? ": " : "",
		    elen ? ebuf : "");
	}
	if (error == 0 && out) {
		*out = obuf ? obuf : strdup("");
		obuf = NULL;
		if (!*out)
			error = wf_error_oom();
	}
	for (i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (o[i] >= 0)
			close(o[i]);
		if (e[i] >= 0)
			close(e[i]);
	}
	free(obuf);
	free(ebuf);
	free(gd);
	return error;
}

int
wf_git_version_parse(unsigned out[3], const char *text)
{
	const char *p;
	char *end;
	unsigned long v;
	int i;

	out[0] = out[1] = out[2] = 0;
	if (!text || strncmp(text, "git version ", 12) != 0)
		return wf_error_set(WF_EINPUT, "not a git version: '%.80s'",
		    text ? text : "");
	p = text + 12;
	for (i = 0; i < 3; i++) {
		if (*p < '0' || *p > '9') {
			if (i >= 2)
				break;
			return wf_error_set(WF_EINPUT, "not a git version: "
			    "'%.80s'", text);
		}
		errno = 0;
		v = strtoul(p, &end, 10);
		if (errno || v > 1000000)
			return wf_error_set(WF_EINPUT, "not a git version: "
			    "'%.80s'", text);
		out[i] = (unsigned)v;
		p = end;
		if (*p != '.')
			break;
		p++;
	}
	if (i < 1)
		return wf_error_set(WF_EINPUT, "not a git version: '%.80s'",
		    text);
	return 0;
}

int
wf_git_version(unsigned out[3])
{
	const char *args[] = { "--version", NULL };
	char *text = NULL;
	int status, error;

	out[0] = out[1] = out[2] = 0;
	if ((error = wf_git_run(&text, &status, NULL, args, NULL)) < 0)
		return error;
	error = wf_git_version_parse(out, text);
	free(text);
	return error;
}
