/* lua_alloc.c: owns the allocator of etlua's Lua state (the lua_Alloc given to lua_newstate by
 * src/host.c). Small blocks (at most ETL_LUA_ALLOC_SMALL_MAX bytes: strings, tables, closures,
 * upvalues, most table parts) come from per-size-class slabs; larger blocks go to malloc.
 *
 * Why hand-written: Lua's default allocator is glibc's realloc/free, and a message's work
 * allocates and the collector frees hundreds of small objects; malloc/free (with its
 * consolidation of free chunks) were ~17% of etlua's CPU on --input. Lua tells the allocator
 * the size of every block it frees or resizes, so a size-class allocator needs no header per
 * block, and its allocation and free are a few instructions on a list. No library in Debian
 * offers a lua_Alloc, and a general replacement of malloc (jemalloc, tcmalloc) would change
 * every library's allocations in the process, not only the Lua state's.
 *
 * Layout: a slab is ETL_LUA_ALLOC_SLAB_BYTES of anonymous memory mapped at an address aligned
 * to its size, so the slab of a block is its address rounded down; its header comes first, then
 * blocks of one class (multiples of 16 bytes, the alignment Lua needs). A slab hands out its
 * never-used blocks in address order, then the blocks freed to it (a list threaded through
 * their first word). Each class keeps a list of its slabs that have a free block.
 *
 * Memory is bounded: a freed block goes back to its own slab; a slab whose blocks are all free
 * leaves its class and is kept for any class (at most KEEP_EMPTY of them, so a class that
 * oscillates across a slab boundary costs no system calls) or returned to the system
 * (munmap). So what is held is the live small blocks, the free blocks of partly used slabs and
 * at most KEEP_EMPTY empty slabs; etl_lua_alloc_close returns the rest.
 *
 * Checkers keep seeing every block: under AddressSanitizer (CI's sanitizer build) every block
 * goes to malloc, as with Lua's own allocator; under valgrind memcheck the slab blocks are
 * described with memcheck's client requests (MALLOCLIKE/FREELIKE: a freed block is
 * inaccessible until it is handed out again, leaks are reported per block), compiled in when
 * valgrind's header is installed (the valgrind package, which CI installs; a header only, no
 * library: outside valgrind a request is a few instructions that do nothing).
 * One state per allocator, and a state is used by one thread at a time: no locking. */
#include "etlua/lua_alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ETLUA_SANITIZE: defined by CMake for the sanitizer builds (ETLUA_SANITIZE=ON, the fuzz
 * targets) */
#if defined(ETLUA_SANITIZE) || defined(__SANITIZE_ADDRESS__)
#define POOLED 0
#else
#define POOLED 1
#endif

/* ETLUA_HAVE_VALGRIND_H: defined by CMake when valgrind's memcheck.h is installed */
#ifdef ETLUA_HAVE_VALGRIND_H
#include <valgrind/memcheck.h>
/* memcheck answers this request -1; valgrind's other tools (callgrind) and no valgrind, 0 */
#define UNDER_MEMCHECK(a) ((long)VALGRIND_MAKE_MEM_DEFINED((a), sizeof *(a)) == -1)
#else
#define UNDER_MEMCHECK(a) 0
#define VALGRIND_MALLOCLIKE_BLOCK(p, n, rz, zeroed) ((void)(p), (void)(n))
#define VALGRIND_FREELIKE_BLOCK(p, rz) ((void)(p))
#define VALGRIND_RESIZEINPLACE_BLOCK(p, o, n, rz) ((void)(p), (void)(o), (void)(n))
#define VALGRIND_MAKE_MEM_NOACCESS(p, n) ((void)(p), (void)(n))
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n) ((void)(p), (void)(n))
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#endif
/* a client request only under memcheck: outside it, one predictable branch instead of ~15
 * instructions per request (they were a third of the allocator's instructions); each request in
 * a function of its own, out of line, so the allocation's and the free's own path keep no stack
 * frame for the request's arguments (that frame and the registers saved for it were ~20 of the
 * ~50 instructions of a call) */
#define VG(a, request)                                                                             \
    do {                                                                                           \
        if (__builtin_expect((a)->memcheck, 0))                                                    \
            request;                                                                               \
    } while (0)
#define COLD __attribute__((noinline, cold))
static COLD void vg_malloclike(void *p, size_t n) { VALGRIND_MALLOCLIKE_BLOCK(p, n, 0, 0); }
static COLD void vg_freelike(void *p)
{
    VALGRIND_FREELIKE_BLOCK(p, 0);
    VALGRIND_MAKE_MEM_UNDEFINED(p, sizeof(void *));
}
static COLD void vg_noaccess(void *p, size_t n) { VALGRIND_MAKE_MEM_NOACCESS(p, n); }
static COLD void vg_defined(void *p, size_t n) { VALGRIND_MAKE_MEM_DEFINED(p, n); }
static COLD void vg_resize(void *p, size_t o, size_t n)
{
    VALGRIND_RESIZEINPLACE_BLOCK(p, o, n, 0);
}

#define SLAB ((size_t)ETL_LUA_ALLOC_SLAB_BYTES)
#define GRAIN 16 /* block sizes are multiples of it, and blocks are aligned to it */
#define NCLASS (ETL_LUA_ALLOC_SMALL_MAX / GRAIN)
#define KEEP_EMPTY ETL_LUA_ALLOC_KEEP_EMPTY

struct slab {
    struct slab *prev, *next;         /* the class's slabs with a free block (or the empties) */
    struct slab *all_prev, *all_next; /* every slab mapped, for etl_lua_alloc_close */
    void *free;                       /* blocks freed to this slab */
    char *bump;                       /* its first never-used block */
    unsigned live;                    /* blocks handed out and not freed */
    unsigned cls;
    int listed; /* on its class's list */
};

/* the first block: after the header, aligned to GRAIN */
#define SLAB_DATA ((sizeof(struct slab) + GRAIN - 1) / GRAIN * GRAIN)

struct etl_lua_alloc {
    struct slab *avail[NCLASS]; /* per class: slabs with a free or never-used block */
    struct slab *empty;         /* empty slabs kept, linked through next */
    unsigned n_empty;
    struct slab *all;
    size_t slabs, small_bytes;
    int memcheck; /* running under valgrind's memcheck: describe the blocks to it */
};

int etl_lua_alloc_pooled(void) { return POOLED; }

struct etl_lua_alloc *etl_lua_alloc_new(void)
{
    struct etl_lua_alloc *a = calloc(1, sizeof(struct etl_lua_alloc));
    if (a != NULL)
        a->memcheck = UNDER_MEMCHECK(a);
    return a;
}

void etl_lua_alloc_stats(const struct etl_lua_alloc *a, struct etl_lua_alloc_stats *out)
{
    out->slabs = a->slabs;
    out->small_bytes = a->small_bytes;
}

static unsigned size_class(size_t n) { return (unsigned)((n - 1) / GRAIN); } /* n >= 1 */
static size_t class_size(unsigned c) { return ((size_t)c + 1) * GRAIN; }

static void list_push(struct slab **head, struct slab *s)
{
    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
}

static void list_remove(struct slab **head, struct slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
}

/* SLAB bytes aligned to SLAB: map twice the size, unmap what is around the aligned part. */
static struct slab *slab_map(void)
{
    char *m = mmap(NULL, 2 * SLAB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    uintptr_t start = ((uintptr_t)m + SLAB - 1) & ~(uintptr_t)(SLAB - 1);
    size_t head = start - (uintptr_t)m;
    if (head > 0)
        munmap(m, head);
    if (SLAB - head > 0)
        munmap((char *)start + SLAB, SLAB - head);
    return (struct slab *)start;
}

/* A slab for class c, on its list: a kept empty one, or a new mapping. */
static COLD struct slab *slab_take(struct etl_lua_alloc *a, unsigned c)
{
    struct slab *s = a->empty;
    if (s != NULL) {
        a->empty = s->next;
        a->n_empty--;
    } else {
        s = slab_map();
        if (s == NULL)
            return NULL;
        s->all_prev = NULL;
        s->all_next = a->all;
        if (a->all)
            a->all->all_prev = s;
        a->all = s;
        a->slabs++;
        VG(a, vg_noaccess((char *)s + SLAB_DATA, SLAB - SLAB_DATA));
    }
    s->free = NULL;
    s->bump = (char *)s + SLAB_DATA;
    s->live = 0;
    s->cls = c;
    s->listed = 1;
    list_push(&a->avail[c], s);
    return s;
}

static void slab_unmap(struct etl_lua_alloc *a, struct slab *s)
{
    if (s->all_prev)
        s->all_prev->all_next = s->all_next;
    else
        a->all = s->all_next;
    if (s->all_next)
        s->all_next->all_prev = s->all_prev;
    a->slabs--;
    munmap(s, SLAB);
}

static inline __attribute__((always_inline)) void *alloc_small(struct etl_lua_alloc *a, unsigned c,
                                                               size_t n)
{
    size_t size = class_size(c);
    struct slab *s = a->avail[c];
    if (__builtin_expect(s == NULL, 0) && (s = slab_take(a, c)) == NULL)
        return NULL;
    void *p = s->free;
    if (p != NULL) {
        VG(a, vg_defined(p, sizeof(void *)));
        s->free = *(void **)p;
        __builtin_prefetch(s->free, 1); /* the next one handed out: its link read then */
    } else {
        p = s->bump;
        s->bump += size;
    }
    s->live++;
    if (s->free == NULL && (size_t)((char *)s + SLAB - s->bump) < size) {
        list_remove(&a->avail[c], s); /* full */
        s->listed = 0;
    }
    a->small_bytes += size;
    VG(a, vg_malloclike(p, n));
    return p;
}

/* A slab whose last live block was freed (free_small): kept empty or returned to the system. */
static COLD void slab_emptied(struct etl_lua_alloc *a, struct slab *s, unsigned c)
{
    if (s->listed) /* empty: out of its class */
        list_remove(&a->avail[c], s);
    s->listed = 0;
    if (a->n_empty < KEEP_EMPTY) {
        VG(a, vg_noaccess((char *)s + SLAB_DATA, SLAB - SLAB_DATA));
        s->next = a->empty;
        a->empty = s;
        a->n_empty++;
    } else {
        slab_unmap(a, s);
    }
}

static inline __attribute__((always_inline)) void free_small(struct etl_lua_alloc *a, void *p,
                                                             unsigned c)
{
    struct slab *s = (struct slab *)((uintptr_t)p & ~(uintptr_t)(SLAB - 1));
    VG(a, vg_freelike(p));
    *(void **)p = s->free;
    VG(a, vg_noaccess(p, sizeof(void *)));
    s->free = p;
    a->small_bytes -= class_size(c);
    if (__builtin_expect(--s->live > 0, 1)) {
        if (!s->listed) {
            list_push(&a->avail[c], s);
            s->listed = 1;
        }
        return;
    }
    slab_emptied(a, s, c);
}

static inline __attribute__((always_inline)) void free_block(struct etl_lua_alloc *a, void *p,
                                                             size_t size)
{
    if (size <= ETL_LUA_ALLOC_SMALL_MAX)
        free_small(a, p, size_class(size));
    else
        free(p);
}

/* Every call but a small block's allocation or free (etl_lua_alloc_f's own): a large block, a
 * resize; out of line, so those two keep a short path that saves few registers. */
static __attribute__((noinline)) void *alloc_other(struct etl_lua_alloc *a, void *ptr, size_t osize,
                                                   size_t nsize)
{
    if (nsize == 0) { /* a large block's free (ptr set) */
        free(ptr);
        return NULL;
    }
    if (ptr == NULL) /* a large block */
        return malloc(nsize);
    if (osize > ETL_LUA_ALLOC_SMALL_MAX && nsize > ETL_LUA_ALLOC_SMALL_MAX)
        return realloc(ptr, nsize);
    if (osize <= ETL_LUA_ALLOC_SMALL_MAX && nsize <= ETL_LUA_ALLOC_SMALL_MAX &&
        size_class(osize) == size_class(nsize)) {
        VG(a, vg_resize(ptr, osize, nsize));
        return ptr;
    }
    void *p;
    if (nsize <= ETL_LUA_ALLOC_SMALL_MAX)
        p = alloc_small(a, size_class(nsize), nsize);
    else
        p = malloc(nsize);
    if (p == NULL)
        return p; /* on failure the old block stays, as Lua expects */
    memcpy(p, ptr, osize < nsize ? osize : nsize);
    free_block(a, ptr, osize);
    return p;
}

void *etl_lua_alloc_f(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct etl_lua_alloc *a = ud;
    if (!POOLED) { /* Lua's own l_alloc */
        if (nsize == 0) {
            free(ptr);
            return NULL;
        }
        return realloc(ptr, nsize);
    }
    /* Lua passes the size of every block it frees or resizes (without ptr, osize is a type) */
    if (nsize == 0) {
        if (ptr == NULL)
            return NULL;
        if (osize <= ETL_LUA_ALLOC_SMALL_MAX) {
            free_small(a, ptr, size_class(osize));
            return NULL;
        }
    } else if (ptr == NULL && nsize <= ETL_LUA_ALLOC_SMALL_MAX) {
        return alloc_small(a, size_class(nsize), nsize);
    }
    return alloc_other(a, ptr, osize, nsize);
}

void etl_lua_alloc_close(struct etl_lua_alloc *a)
{
    if (a == NULL)
        return;
    while (a->all != NULL)
        slab_unmap(a, a->all);
    free(a);
}
