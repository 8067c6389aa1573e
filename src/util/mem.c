/* mem: allocations that abort with a message instead of returning NULL, and the
 * process's malloc policy (mem.h). */
#include "util/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

void mem_oom(size_t size) {
    fprintf(stderr, "multivac: out of memory allocating %zu bytes\n", size);
    abort();
}

void *mem_malloc(size_t size) {
    void *p = malloc(size ? size : 1);
    if (!p) mem_oom(size);
    return p;
}

void *mem_calloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) mem_oom(n * size);
    return p;
}

void *mem_realloc(void *old, size_t size) {
    void *p = realloc(old, size ? size : 1);
    if (!p) mem_oom(size);
    return p;
}

char *mem_strdup(const char *s) { return mem_strndup(s, strlen(s)); }

char *mem_strndup(const char *s, size_t len) {
    char *p = mem_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void mem_init(void) {
#if defined(__GLIBC__)
    /* glibc raises its mmap threshold each time a mapped block is freed, after
     * which large bodies come from the heap and stay there; a fixed threshold
     * turns that off. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
}

void mem_release_free(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
