/* test_pg.c: unit tests of src/pg.c that need no server: COPY text escaping (etl_pg_copy_escape),
 * password scrubbing (etl_pg_redact), and the Lua surface of etlua.pg against a closed port
 * (connect errors never carry the password, invalid conninfo is not echoed, misuse raises). */
#include "etlua/pg.h"

#include "check.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct escape_case {
    const char *in;
    size_t len;
    const char *out; /* NULL: refused */
};

static void test_copy_escape(void)
{
    static const struct escape_case cases[] = {
        {"", 0, ""},
        {"plain", 5, "plain"},
        {"a\tb", 3, "a\\tb"},
        {"line1\nline2", 11, "line1\\nline2"},
        {"cr\r", 3, "cr\\r"},
        {"back\\slash", 10, "back\\\\slash"},
        {"\\N", 2, "\\\\N"}, /* the text \N is not NULL */
        {"'quote\"", 7, "'quote\""},
        {"caf\xc3\xa9", 5, "caf\xc3\xa9"},
        {"\\\t\n\r", 4, "\\\\\\t\\n\\r"},
        {"a\0b", 3, NULL},
        {"\0", 1, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct escape_case *c = &cases[i];
        char dst[64];
        memset(dst, 'X', sizeof dst);
        size_t n = etl_pg_copy_escape(dst, c->in, c->len);
        if (c->out == NULL) {
            CHECK(n == ETL_PG_ESCAPE_NUL, "case %zu: NUL byte not refused", i);
            CHECK(dst[0] == 'X', "case %zu: dst written on refusal", i);
        } else {
            CHECK(n == strlen(c->out) && memcmp(dst, c->out, n) == 0,
                  "case %zu: got %.*s want %s", i, (int)(n == ETL_PG_ESCAPE_NUL ? 0 : n), dst,
                  c->out);
        }
    }
    /* worst case: every byte doubles, never more */
    char src[256], dst[512];
    memset(src, '\\', sizeof src);
    CHECK(etl_pg_copy_escape(dst, src, sizeof src) == sizeof dst, "worst case not 2x");
}

static void test_redact(void)
{
    char out[64];
    CHECK(strcmp(etl_pg_redact(out, sizeof out, "pw hunter2 and hunter2", "hunter2"),
                 "pw *** and ***") == 0, "redact: %s", out);
    CHECK(strcmp(etl_pg_redact(out, sizeof out, "nothing here", NULL), "nothing here") == 0,
          "redact NULL secret: %s", out);
    CHECK(strcmp(etl_pg_redact(out, sizeof out, "nothing here", ""), "nothing here") == 0,
          "redact empty secret: %s", out);
    CHECK(strcmp(etl_pg_redact(out, 6, "abcdefgh", "zz"), "abcde") == 0, "truncation: %s", out);
}

/* Runs a chunk with etlua.pg preloaded; the chunk returns a string ("ok" or what failed). */
static void run_lua(const char *name, const char *chunk)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "etlua.pg", luaopen_etlua_pg, 0);
    lua_pop(L, 1);
    if (luaL_dostring(L, chunk) != LUA_OK) {
        CHECK(0, "%s: %s", name, lua_tostring(L, -1));
    } else {
        const char *r = lua_tostring(L, -1);
        CHECK(r && strcmp(r, "ok") == 0, "%s: %s", name, r ? r : "(no result)");
    }
    lua_close(L);
}

static void test_lua_surface(void)
{
    /* port 1 on loopback: connection refused, no server needed */
    run_lua("connect error scrubbed",
            "local pg = require 'etlua.pg'\n"
            "local db, msg, code = pg.connect('host=127.0.0.1 port=1 user=u password=S3cretPw "
            "connect_timeout=2')\n"
            "if db ~= nil then return 'connected?' end\n"
            "if code ~= 'connection' then return 'code ' .. tostring(code) end\n"
            "if msg:find('S3cretPw', 1, true) then return 'password leaked: ' .. msg end\n"
            "if msg:find('\\n') then return 'multi-line: ' .. msg end\n"
            "return 'ok'");
    run_lua("invalid conninfo not echoed",
            "local pg = require 'etlua.pg'\n"
            "local db, msg, code = pg.connect('password=S3cretPw garbage')\n"
            "if db ~= nil or code ~= 'config' then return 'code ' .. tostring(code) end\n"
            "if msg:find('S3cretPw', 1, true) then return 'password leaked: ' .. msg end\n"
            "return 'ok'");
    run_lua("uri password scrubbed",
            "local pg = require 'etlua.pg'\n"
            "local db, msg = pg.connect('postgresql://u:S3cretPw@127.0.0.1:1/db?connect_timeout=2')\n"
            "if db ~= nil then return 'connected?' end\n"
            "if msg:find('S3cretPw', 1, true) then return 'password leaked: ' .. msg end\n"
            "return 'ok'");
    run_lua("api shape",
            "local pg = require 'etlua.pg'\n"
            "if type(pg.connect) ~= 'function' then return 'no connect' end\n"
            "local ok, err = pcall(pg.connect, {})\n"
            "if ok then return 'table conninfo accepted' end\n"
            "return 'ok'");
}

int main(void)
{
    test_copy_escape();
    test_redact();
    test_lua_surface();
    return CHECK_DONE("test_pg");
}
