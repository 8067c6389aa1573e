/* mem: allocation with one out-of-memory policy, as Redis's zmalloc has it.
 *
 * A failed allocation aborts the process with a message: a server that cannot
 * allocate a few bytes cannot answer anyone correctly, and half-handled OOM
 * branches are where bugs hide. Memory is bounded by limits (docs/http.md),
 * not by hoping malloc fails gracefully. */
#ifndef MULTIVAC_MEM_H
#define MULTIVAC_MEM_H

#include <stddef.h>

void *mem_malloc(size_t size);
void *mem_calloc(size_t n, size_t size);
void *mem_realloc(void *p, size_t size);
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t len);
/* The failure itself: reports `size` and aborts. For sizes that cannot be
 * allocated before they reach malloc (their arithmetic would overflow). */
void mem_oom(size_t size) __attribute__((noreturn));

/* Process-wide allocator policy, called once at start: buffers of 128 KiB and
 * more get their own mappings, so freeing a large request body gives its
 * memory back to the system instead of leaving the heap grown. */
void mem_init(void);
/* Returns free heap memory to the system (after many connections closed). */
void mem_release_free(void);

#endif
