# wf.mk: merge-queue targets for the Makefile of a repository whose
# server runs wf's hooks (wf-hooks install --server).  Include it:
#
#	include /usr/local/share/wf/wf.mk
#
#	make mq-submit                 push HEAD to refs/for/main/<topic>
#	make mq-submit MQ_WAIT=1       ... and wait for the landing result
#	make mq-status                 what waits in the queue
#
# Settings (make variables or environment):
#
#	MQ_REMOTE    the remote to push to (origin)
#	MQ_BRANCH    the branch to land on (main)
#	MQ_TOPIC     the topic: refs/for/<branch>/<topic> (default: the
#	             current branch, or HEAD's short id when that is
#	             MQ_BRANCH itself); one ref per topic, so pushes of
#	             different topics never collide
#	MQ_WAIT      non-empty: push with -o wf.wait
#	MQ_PRIORITY  push with -o wf.priority=N
#	MQ_MESSAGE   push with -o wf.message=TEXT
#	MQ_QUEUE     a command that runs wf-queue where the queue is, for
#	             mq-status, e.g. "ssh git@host wf-queue -C /srv/r.git"
#	             (default: wf-queue -C <url> when the remote is a local
#	             directory)
#
# The values reach git through the environment and quoted shell
# variables, never pasted into a command line, so a branch called
# "$(reboot)" is a branch called "$(reboot)".

MQ_REMOTE ?= origin
MQ_BRANCH ?= main
MQ_TOPIC ?=
MQ_WAIT ?=
MQ_PRIORITY ?=
MQ_MESSAGE ?=
MQ_QUEUE ?=
export MQ_REMOTE MQ_BRANCH MQ_TOPIC MQ_WAIT MQ_PRIORITY MQ_MESSAGE MQ_QUEUE

mq-submit:
	@topic=$$MQ_TOPIC; \
	if [ -z "$$topic" ]; then \
		topic=$$(git symbolic-ref --short -q HEAD) || topic=; \
		if [ -z "$$topic" ] || [ "$$topic" = "$$MQ_BRANCH" ]; then \
			topic=$$(git rev-parse --short HEAD) || exit; \
		fi; \
	fi; \
	set -- "$$MQ_REMOTE" "HEAD:refs/for/$$MQ_BRANCH/$$topic"; \
	if [ -n "$$MQ_WAIT" ]; then set -- -o wf.wait "$$@"; fi; \
	if [ -n "$$MQ_PRIORITY" ]; then \
		set -- -o "wf.priority=$$MQ_PRIORITY" "$$@"; \
	fi; \
	if [ -n "$$MQ_MESSAGE" ]; then \
		set -- -o "wf.message=$$MQ_MESSAGE" "$$@"; \
	fi; \
	git push "$$@"

mq-status:
	@echo "Waiting on $$MQ_REMOTE (landed changes leave; dead ones stay):"; \
	git ls-remote "$$MQ_REMOTE" 'refs/for/*' || exit; \
	url=$$(git remote get-url "$$MQ_REMOTE" 2>/dev/null) || \
		url=$$MQ_REMOTE; \
	if [ -n "$$MQ_QUEUE" ]; then \
		echo "The queue:"; $$MQ_QUEUE list --format text; \
	elif [ -d "$$url" ]; then \
		echo "The queue:"; wf-queue -C "$$url" list --format text; \
	fi

.PHONY: mq-submit mq-status
