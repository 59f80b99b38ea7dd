/* test_lua_alloc.c: the Lua state's allocator (src/lua_alloc.c). Blocks of every size class
 * and across the small/large limit keep their bytes and their alignment and never overlap;
 * resizing within a class, across classes and across the limit keeps the content; freeing
 * everything gives the slabs back (at most ETL_LUA_ALLOC_KEEP_EMPTY kept); a Lua state on it
 * runs, collects and closes; etlua.budget's memory allowance, which wraps the state's
 * allocator during a call, still refuses a huge allocation and the state goes on after it.
 * Under AddressSanitizer every block goes to malloc: the slab counts are then not checked.
 * A plain program: prints each failure and exits non-zero when any check failed. */
#include "etlua/lua_alloc.h"
#include "etlua/modules.h"

#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define NBLOCKS 20000

struct blk {
    unsigned char *p;
    size_t n;
    unsigned char fill;
};

static void fill(struct blk *b) { memset(b->p, b->fill, b->n); }

static int intact(const struct blk *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->p[i] != b->fill)
            return 0;
    return 1;
}

static size_t rnd_size(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    unsigned r = (*seed >> 8) % 1000;
    if (r < 900)
        return 1 + r % ETL_LUA_ALLOC_SMALL_MAX; /* mostly small, as Lua's objects */
    return ETL_LUA_ALLOC_SMALL_MAX + 1 + r * 7; /* some large */
}

static void test_blocks(void)
{
    struct etl_lua_alloc *a = etl_lua_alloc_new();
    CHECK(a != NULL);
    if (a == NULL)
        return;
    static struct blk b[NBLOCKS];
    unsigned seed = 17;
    int misaligned = 0;
    for (int i = 0; i < NBLOCKS; i++) {
        b[i].n = rnd_size(&seed);
        b[i].fill = (unsigned char)(i * 31 + 1);
        b[i].p = etl_lua_alloc_f(a, NULL, LUA_TTABLE, b[i].n);
        CHECK(b[i].p != NULL, "block %d of %zu bytes", i, b[i].n);
        if (b[i].p == NULL)
            return;
        misaligned += ((uintptr_t)b[i].p % 16) != 0;
        fill(&b[i]);
    }
    CHECK(misaligned == 0, "%d blocks not aligned to 16 bytes", misaligned);
    /* free every third block, then allocate again into the holes */
    for (int i = 0; i < NBLOCKS; i += 3) {
        CHECK(etl_lua_alloc_f(a, b[i].p, b[i].n, 0) == NULL);
        b[i].n = rnd_size(&seed);
        b[i].p = etl_lua_alloc_f(a, NULL, LUA_TSTRING, b[i].n);
        fill(&b[i]);
    }
    /* resize: grow and shrink within a class, across classes, across the small/large limit */
    static const size_t to[] = {1, 15, 16, 17, 100, 255, 256, 257, 1000, 40, 300, 256, 3};
    for (int i = 1; i < NBLOCKS; i += 5) {
        size_t n = to[(size_t)i % (sizeof to / sizeof to[0])];
        size_t keep = n < b[i].n ? n : b[i].n;
        unsigned char *p = etl_lua_alloc_f(a, b[i].p, b[i].n, n);
        CHECK(p != NULL && (uintptr_t)p % 16 == 0, "resize %zu -> %zu", b[i].n, n);
        if (p == NULL)
            return;
        size_t bad = 0;
        for (size_t k = 0; k < keep; k++)
            bad += p[k] != b[i].fill;
        CHECK(bad == 0, "resize %zu -> %zu lost %zu bytes", b[i].n, n, bad);
        b[i].p = p;
        b[i].n = n;
        fill(&b[i]);
    }
    int broken = 0;
    for (int i = 0; i < NBLOCKS; i++)
        broken += !intact(&b[i]);
    CHECK(broken == 0, "%d blocks overwritten by others", broken);

    struct etl_lua_alloc_stats st;
    etl_lua_alloc_stats(a, &st);
    if (etl_lua_alloc_pooled())
        CHECK(st.slabs > ETL_LUA_ALLOC_KEEP_EMPTY && st.small_bytes > 0, "slabs %zu bytes %zu",
              st.slabs, st.small_bytes);
    for (int i = 0; i < NBLOCKS; i++)
        etl_lua_alloc_f(a, b[i].p, b[i].n, 0);
    etl_lua_alloc_stats(a, &st);
    CHECK(st.small_bytes == 0, "%zu bytes still counted live after freeing all", st.small_bytes);
    CHECK(st.slabs <= ETL_LUA_ALLOC_KEEP_EMPTY, "%zu slabs held after freeing all", st.slabs);
    CHECK(etl_lua_alloc_f(a, NULL, 0, 0) == NULL, "free of NULL");
    etl_lua_alloc_close(a);
    etl_lua_alloc_close(NULL);
}

/* A slab whose blocks are all freed is returned whatever the order of the frees. */
static void test_slabs_returned(void)
{
    if (!etl_lua_alloc_pooled())
        return;
    struct etl_lua_alloc *a = etl_lua_alloc_new();
    enum { N = 50000 };
    static void *p[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++)
            p[i] = etl_lua_alloc_f(a, NULL, LUA_TSTRING, 48);
        struct etl_lua_alloc_stats st;
        etl_lua_alloc_stats(a, &st);
        size_t per_slab = ETL_LUA_ALLOC_SLAB_BYTES / 48;
        CHECK(st.slabs >= N / per_slab && st.slabs <= N / (per_slab - 8) + 2,
              "%zu slabs for %d blocks of 48 bytes", st.slabs, N);
        for (int i = round % 2; i < N; i += 2)
            etl_lua_alloc_f(a, p[i], 48, 0); /* interleaved */
        for (int i = 1 - round % 2; i < N; i += 2)
            etl_lua_alloc_f(a, p[i], 48, 0);
        etl_lua_alloc_stats(a, &st);
        CHECK(st.slabs <= ETL_LUA_ALLOC_KEEP_EMPTY && st.small_bytes == 0,
              "round %d: %zu slabs, %zu bytes after freeing all", round, st.slabs, st.small_bytes);
    }
    etl_lua_alloc_close(a);
}

static const char *run(lua_State *L, const char *code)
{
    if (luaL_dostring(L, code) != LUA_OK)
        return lua_tostring(L, -1);
    return lua_tostring(L, -1);
}

static void test_lua_state(void)
{
    struct etl_lua_alloc *a = etl_lua_alloc_new();
    lua_State *L = lua_newstate(etl_lua_alloc_f, a);
    CHECK(L != NULL);
    if (L == NULL)
        return;
    luaL_openlibs(L);
    lua_Alloc f;
    void *ud;
    f = lua_getallocf(L, &ud);
    CHECK(f == etl_lua_alloc_f && ud == a);
    CHECK_STR_EQ(run(L, "local t, keep = {}, {}\n"
                        "for i = 1, 200000 do\n"
                        "  local s = ('x'):rep(i % 300) .. i\n"
                        "  t[i % 1000] = {s, function() return s end, {i}}\n"
                        "  if i % 997 == 0 then keep[#keep + 1] = s end\n"
                        "end\n"
                        "collectgarbage()\n"
                        "local n = 0\n"
                        "for _, s in ipairs(keep) do n = n + #s end\n"
                        "return tostring(n) .. ' ' .. t[5][2]():sub(-6)"),
                 "31089 199005");
    struct etl_lua_alloc_stats st;
    etl_lua_alloc_stats(a, &st);
    if (etl_lua_alloc_pooled())
        CHECK(st.small_bytes > 0 && st.slabs > 0 && st.slabs < 200, "slabs %zu", st.slabs);

    /* etlua.budget wraps the state's allocator during a call: the allowance still holds */
    luaL_requiref(L, "etlua.budget", luaopen_etlua_budget, 0);
    lua_setglobal(L, "budget");
    CHECK_STR_EQ(
        run(L, "local ok, why = budget.call(1000, function() return ('x'):rep(200 << 20) end)\n"
               "local ok2, s = budget.call(1000, function() return ('y'):rep(1000) end)\n"
               "return tostring(ok) .. ' ' .. why .. ' ' .. tostring(ok2) .. ' ' .. #s"),
        "false memory true 1000");
    CHECK(lua_getallocf(L, NULL) == etl_lua_alloc_f, "the state's allocator is back after a call");
    lua_close(L);
    etl_lua_alloc_stats(a, &st);
    CHECK(st.small_bytes == 0, "%zu bytes live after lua_close", st.small_bytes);
    CHECK(st.slabs <= ETL_LUA_ALLOC_KEEP_EMPTY, "%zu slabs after lua_close", st.slabs);
    etl_lua_alloc_close(a);
}

int main(void)
{
    test_blocks();
    test_slabs_returned();
    test_lua_state();
    return CHECK_DONE("test_lua_alloc");
}
