#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "arena.h"

#define CHUNK ((size_t)2 << 20)		/* size and alignment of a chunk */
#define BIG (CHUNK / 4)			/* larger blocks get a chunk each */
#define ALIGN alignof(max_align_t)

/*
 * A chunk starts with this header; blocks follow.  `live` counts its
 * blocks not yet freed, plus one while it is some thread's current
 * chunk.  A block never starts past the first CHUNK bytes, so masking
 * its address finds the header.
 */
struct chunk {
	atomic_size_t live;
	size_t used;			/* bytes handed out, header included */
	alignas(max_align_t) char data[];
};

static _Thread_local struct chunk *cur;

static size_t
round_up(size_t n, size_t to)
{
	return (n + to - 1) & ~(to - 1);
}

static void
unref(struct chunk *c)
{
	if (atomic_fetch_sub(&c->live, 1) == 1)
		free(c);
}

static struct chunk *
chunk_new(size_t size, size_t live)
{
	struct chunk *c = aligned_alloc(CHUNK, round_up(size, CHUNK));

	if (c) {
#ifdef MADV_HUGEPAGE
		/* One fault per chunk instead of 512, where THP allows. */
		(void)madvise(c, round_up(size, CHUNK), MADV_HUGEPAGE);
#endif
		atomic_init(&c->live, live);
		c->used = offsetof(struct chunk, data);
	}
	return c;
}

void *
wf_arena_alloc(size_t size)
{
	struct chunk *c;
	char *p;

	if (size > SIZE_MAX - 2 * CHUNK)
		return NULL;
	size = round_up(size ? size : 1, ALIGN);
	if (size > BIG) {
		if (!(c = chunk_new(offsetof(struct chunk, data) + size, 1)))
			return NULL;
		return c->data;
	}
	if (!cur || CHUNK - cur->used < size) {
		if (!(c = chunk_new(CHUNK, 1)))
			return NULL;
		if (cur)
			unref(cur);
		cur = c;
	}
	p = (char *)cur + cur->used;
	cur->used += size;
	atomic_fetch_add_explicit(&cur->live, 1, memory_order_relaxed);
	return p;
}

void
wf_arena_free(void *p)
{
	if (p)
		unref((struct chunk *)((uintptr_t)p & ~(uintptr_t)(CHUNK - 1)));
}

void
wf_arena_release(void)
{
	if (cur) {
		unref(cur);
		cur = NULL;
	}
}
