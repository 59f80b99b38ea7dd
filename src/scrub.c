/* scrub.c: the etlua.scrub module, the Lua binding of the reject scrubber (the scanner itself:
 * src/scrub_text.c, src/scrub_detect.c, src/scrub_match.c; what it masks: include/etlua/scrub.h).
 *
 *   local sc = scrub.new(masker, keys [, canonical])
 *       masker: an etlua.mask hasher (mask.new(key)), kept by the scrubber; it computes the
 *       masks of addresses and keyed values. keys: list of field names (1..128 characters)
 *       whose values are masked; canonical: {name = "ip" | "lower" | "trim"} for those names.
 *   sc:text(s [, patterns]) -> s scrubbed (the very same string when nothing changes)
 *   local pats = scrub.patterns(raws)
 *       raws: list of a message's raw pii strings, each also a key mapping to its 64-hex mask
 *       (raws[i] = "10.1.2.3", raws["10.1.2.3"] = mask); every occurrence is replaced by it.
 *   scrub.clean(s) -> s with invalid UTF-8 as U+FFFD and NUL dropped
 *   sc:close(), pats:close() (also __gc, __close; safe twice)
 * Misuse raises; out of memory raises. Error messages never contain the text or a raw value. */
#include "etlua/modules.h"
#include "etlua/scrub.h"

#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#define SCRUBBER_MT "etlua.scrub.scrubber"
#define PATTERNS_MT "etlua.scrub.patterns"

struct scrubber {
    struct etl_scrub_key *keys; /* keys and their names in one block; NULL once closed */
    size_t nkeys;
};

struct patterns {
    struct etl_scrub_patterns *p; /* NULL once closed */
};

static int hash_with_masker(void *ud, const char *s, size_t len, char out[ETL_MASK_HEX_LEN + 1])
{
    return etl_mask_hasher_hex(ud, s, len, out);
}

static int canonical_of(lua_State *L, int canon_idx, const char *name)
{
    static const char *const names[] = {"none", "ip", "lower", "trim"}; /* the enum's order */
    if (lua_isnoneornil(L, canon_idx))
        return ETL_SCRUB_CANON_NONE;
    int c = -1;
    if (lua_getfield(L, canon_idx, name) == LUA_TNIL)
        c = ETL_SCRUB_CANON_NONE;
    for (int k = 0; c < 0 && k < 4 && lua_type(L, -1) == LUA_TSTRING; k++)
        if (strcmp(lua_tostring(L, -1), names[k]) == 0)
            c = k;
    if (c < 0)
        return luaL_error(L, "etlua.scrub: canonical form must be \"ip\", \"lower\" or \"trim\"");
    lua_pop(L, 1);
    return c;
}

/* scrub.new(masker, keys [, canonical]) */
static int etl_scrub_l_new(lua_State *L)
{
    etl_mask_check_hasher(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 2);
    size_t bytes = 0;
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len = 0;
        if (lua_geti(L, 2, i) != LUA_TSTRING)
            return luaL_error(L, "etlua.scrub: keys[%d] must be a string", (int)i);
        lua_tolstring(L, -1, &len);
        if (len == 0 || len > ETL_SCRUB_KEY_MAX)
            return luaL_error(L, "etlua.scrub: keys[%d] must have 1..%d characters", (int)i,
                              ETL_SCRUB_KEY_MAX);
        bytes += len;
        lua_pop(L, 1);
    }
    struct scrubber *sc = lua_newuserdatauv(L, sizeof *sc, 1);
    sc->keys = NULL;
    sc->nkeys = 0;
    luaL_setmetatable(L, SCRUBBER_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    sc->keys = malloc((size_t)n * sizeof *sc->keys + bytes + 1);
    if (sc->keys == NULL)
        return luaL_error(L, "etlua.scrub: out of memory");
    char *names = (char *)(sc->keys + n);
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len;
        lua_geti(L, 2, i);
        const char *s = lua_tolstring(L, -1, &len);
        memcpy(names, s, len);
        sc->keys[i - 1] = (struct etl_scrub_key){names, len, canonical_of(L, 3, s)};
        names += len;
        lua_pop(L, 1);
    }
    sc->nkeys = (size_t)n;
    return 1;
}

static int push_result(lua_State *L, int rc, int same_idx, char *out, size_t outlen)
{
    if (rc == ETL_SCRUB_SAME) {
        lua_pushvalue(L, same_idx);
        return 1;
    }
    if (rc == ETL_SCRUB_NOMEM)
        return luaL_error(L, "etlua.scrub: out of memory");
    if (rc == ETL_SCRUB_HASH_FAILED)
        return luaL_error(L, "etlua.scrub: HMAC-SHA-256 failed in OpenSSL");
    luaL_Buffer b;
    char *dst = luaL_buffinitsize(L, &b, outlen);
    memcpy(dst, out, outlen);
    free(out);
    luaL_pushresultsize(&b, outlen);
    return 1;
}

/* sc:text(s [, patterns]) */
static int etl_scrub_l_text(lua_State *L)
{
    struct scrubber *sc = luaL_checkudata(L, 1, SCRUBBER_MT);
    size_t len, outlen = 0;
    const char *s = luaL_checklstring(L, 2, &len);
    struct etl_scrub_patterns *p = NULL;
    if (!lua_isnoneornil(L, 3)) {
        struct patterns *pp = luaL_checkudata(L, 3, PATTERNS_MT);
        if (pp->p == NULL)
            return luaL_error(L, "etlua.scrub: patterns are closed");
        p = pp->p;
    }
    if (sc->keys == NULL)
        return luaL_error(L, "etlua.scrub: scrubber is closed");
    lua_settop(L, 3);
    lua_getiuservalue(L, 1, 1); /* the masker, at index 4 for the duration of the call */
    struct etl_scrub_cfg cfg = {sc->keys, sc->nkeys, p, hash_with_masker,
                                etl_mask_check_hasher(L, 4)};
    char *out = NULL;
    int rc = etl_scrub_text(&cfg, s, len, &out, &outlen);
    return push_result(L, rc, 2, out, outlen);
}

static int etl_scrub_l_close(lua_State *L)
{
    struct scrubber *sc = luaL_checkudata(L, 1, SCRUBBER_MT);
    free(sc->keys);
    sc->keys = NULL;
    sc->nkeys = 0;
    return 0;
}

/* scrub.patterns(raws) */
static int etl_scrub_l_patterns(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    if (n < 0 || (lua_Unsigned)n > ((size_t)-1) / (3 * sizeof(void *)))
        return luaL_error(L, "etlua.scrub: patterns: too many raw values");
    /* scratch arrays as a userdata, so an error below leaks nothing */
    const char **text = lua_newuserdatauv(L, (size_t)(n ? n : 1) * 3 * sizeof(void *), 0);
    const char **hex = text + n;
    size_t *lens = (size_t *)(hex + n);
    for (lua_Integer i = 1; i <= n; i++) {
        size_t hl;
        if (lua_geti(L, 1, i) != LUA_TSTRING)
            return luaL_error(L, "etlua.scrub: patterns: raws[%d] must be a string", (int)i);
        text[i - 1] = lua_tolstring(L, -1, &lens[i - 1]); /* kept alive by the table */
        if (lua_rawget(L, 1) != LUA_TSTRING ||
            (hex[i - 1] = lua_tolstring(L, -1, &hl), hl) != ETL_MASK_HEX_LEN)
            return luaL_error(L, "etlua.scrub: patterns: raw value #%d has no 64-hex mask", (int)i);
        lua_pop(L, 1);
    }
    struct patterns *pp = lua_newuserdatauv(L, sizeof *pp, 0);
    pp->p = NULL;
    luaL_setmetatable(L, PATTERNS_MT);
    pp->p = etl_scrub_patterns_new((size_t)n, text, lens, hex);
    if (pp->p == NULL)
        return luaL_error(L, "etlua.scrub: out of memory");
    return 1;
}

static int etl_scrub_l_patterns_close(lua_State *L)
{
    struct patterns *pp = luaL_checkudata(L, 1, PATTERNS_MT);
    etl_scrub_patterns_free(pp->p);
    pp->p = NULL;
    return 0;
}

/* scrub.clean(s) */
static int etl_scrub_l_clean(lua_State *L)
{
    size_t len, outlen = 0;
    const char *s = luaL_checklstring(L, 1, &len);
    char *out = NULL;
    int rc = etl_scrub_clean(s, len, &out, &outlen);
    return push_result(L, rc, 1, out, outlen);
}

static void new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction close)
{
    if (luaL_newmetatable(L, name)) {
        lua_pushcfunction(L, close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, close);
        lua_setfield(L, -2, "__close");
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_pushcfunction(L, close);
        lua_setfield(L, -2, "close");
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
}

int luaopen_etlua_scrub(lua_State *L)
{
    static const luaL_Reg scrubber_methods[] = {{"text", etl_scrub_l_text}, {NULL, NULL}};
    static const luaL_Reg patterns_methods[] = {{NULL, NULL}};
    static const luaL_Reg funcs[] = {
        {"new", etl_scrub_l_new},
        {"patterns", etl_scrub_l_patterns},
        {"clean", etl_scrub_l_clean},
        {NULL, NULL},
    };
    new_class(L, SCRUBBER_MT, scrubber_methods, etl_scrub_l_close);
    new_class(L, PATTERNS_MT, patterns_methods, etl_scrub_l_patterns_close);
    luaL_newlib(L, funcs);
    return 1;
}
