#ifndef WF_ARENA_H
#define WF_ARENA_H

#include <stddef.h>

/*
 * A bump allocator for the many small, short-lived blocks of a parsed
 * JSON document, to hand to json_set_alloc_funcs().  A 100,000-workflow
 * WorkflowPlan is about a million jansson values; glibc's malloc and
 * free of them cost as much as parsing them.  Here an allocation bumps
 * a pointer in the calling thread's current 2 MiB chunk (a huge page
 * where the kernel allows) and a free decrements the count of live
 * blocks of its chunk (found by masking the address), which goes back
 * to malloc when its count reaches zero.
 * So memory is given back as the documents that used it are freed, and
 * the allocator needs no notion of a document.
 *
 * The chunks come from aligned_alloc(), so LeakSanitizer still sees a
 * leaked value, as a leaked chunk; AddressSanitizer sees chunks only.
 */

/*
 * Like malloc(): size bytes aligned for any scalar type, or NULL when
 * out of memory.  Free with wf_arena_free() only, from any thread.
 */
void *wf_arena_alloc(size_t size);

/* Free a block from wf_arena_alloc(); no-op on NULL. */
void wf_arena_free(void *p);

/*
 * Let go of the calling thread's current chunk, so it is freed with its
 * last block.  Call when the thread is done allocating (at exit).
 */
void wf_arena_release(void);

#endif
