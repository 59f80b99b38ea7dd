/* lua_alloc.h: the allocator of etlua's Lua state (src/lua_alloc.c): small blocks from
 * per-size-class slabs, larger ones from malloc. */
#ifndef ETLUA_LUA_ALLOC_H
#define ETLUA_LUA_ALLOC_H

#include <stddef.h>

/* Blocks of at most this many bytes come from the slabs; larger ones from malloc. 512: a table
 * part of 16 slots (384 bytes: a message that became its own item, with more fields than 8, as
 * an SQS message does) and a body of a few hundred bytes are slab blocks too. */
#define ETL_LUA_ALLOC_SMALL_MAX 512
/* Bytes of one slab (also its alignment): the unit taken from and returned to the system. */
#define ETL_LUA_ALLOC_SLAB_BYTES (64 * 1024)
/* Empty slabs kept for reuse (by any size class) rather than returned to the system: at most
 * 2 MiB. The collector frees a batch's garbage a few slabs at a time; with 4 kept, `--input` of
 * 50,000 login bodies mapped and unmapped slabs ~300 times (page faults 4,100 -> 1,880 with 32;
 * 16 was already enough to stop the churn). */
#define ETL_LUA_ALLOC_KEEP_EMPTY 32

struct etl_lua_alloc;

/* A new allocator, or NULL when out of memory. Pass it as the ud of etl_lua_alloc_f. */
struct etl_lua_alloc *etl_lua_alloc_new(void);

/* The lua_Alloc function: lua_newstate(etl_lua_alloc_f, a). */
void *etl_lua_alloc_f(void *ud, void *ptr, size_t osize, size_t nsize);

/* Releases every slab and the allocator; after lua_close of the state that used it. NULL: no-op. */
void etl_lua_alloc_close(struct etl_lua_alloc *a);

/* What the allocator holds: slabs (each ETL_LUA_ALLOC_SLAB_BYTES, from the system) and bytes in
 * live small blocks (rounded up to their class). Both 0 when the blocks are not pooled. */
struct etl_lua_alloc_stats {
    size_t slabs;
    size_t small_bytes;
};
void etl_lua_alloc_stats(const struct etl_lua_alloc *a, struct etl_lua_alloc_stats *out);

/* 1 when small blocks come from the slabs, 0 when every block goes to malloc (under
 * AddressSanitizer, so that it sees each block). */
int etl_lua_alloc_pooled(void);

#endif
