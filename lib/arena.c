#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
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
	size_t size;			/* CHUNK, or more for a big block */
	struct chunk *next;		/* in the spare list */
	alignas(max_align_t) char data[];
};

static _Thread_local struct chunk *cur;

/*
 * A few emptied chunks are kept for the next one needed: a stream of
 * documents made on one thread and freed on another empties and needs
 * a chunk every few hundred documents, and a fresh one costs the
 * kernel 2 MiB of zeroed pages each time.
 */
#define SPARES 8
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static struct chunk *spares;
static int nspares;

static size_t
round_up(size_t n, size_t to)
{
	return (n + to - 1) & ~(to - 1);
}

static void
unref(struct chunk *c)
{
	if (atomic_fetch_sub(&c->live, 1) != 1)
		return;
	if (c->size == CHUNK) {
		pthread_mutex_lock(&spare_lock);
		if (nspares < SPARES) {
			c->next = spares;
			spares = c;
			nspares++;
			c = NULL;
		}
		pthread_mutex_unlock(&spare_lock);
	}
	free(c);
}

static struct chunk *
chunk_new(size_t size, size_t live)
{
	struct chunk *c = NULL;

	size = round_up(size, CHUNK);
	if (size == CHUNK) {
		pthread_mutex_lock(&spare_lock);
		if ((c = spares)) {
			spares = c->next;
			nspares--;
		}
		pthread_mutex_unlock(&spare_lock);
	}
	if (!c && (c = aligned_alloc(CHUNK, size))) {
#ifdef MADV_HUGEPAGE
		/* One fault per chunk instead of 512, where THP allows. */
		(void)madvise(c, size, MADV_HUGEPAGE);
#endif
	}
	if (c) {
		atomic_init(&c->live, live);
		c->used = offsetof(struct chunk, data);
		c->size = size;
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
