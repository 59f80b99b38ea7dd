/* test_pg.c: unit tests of src/pg.c that need no server: COPY text escaping (etl_pg_copy_escape),
 * password scrubbing (etl_pg_redact), the binary array parameters (etl_pg_binary_array: bytes
 * against array_send's layout, and which arrays fall back to text), COPY's binary format
 * (etl_pg_copy_binary: the bytes of each type, dates as days from 2000, which batches go as
 * text), and the Lua surface of etlua.pg against a closed port
 * (connect errors never carry the password, invalid conninfo is not echoed, misuse raises). */
#include "etlua/modules.h"
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
            CHECK(n == strlen(c->out) && memcmp(dst, c->out, n) == 0, "case %zu: got %.*s want %s",
                  i, (int)(n == ETL_PG_ESCAPE_NUL ? 0 : n), dst, c->out);
        }
    }
    /* every length up to 40 with each special byte at each position (and a plain byte that
     * differs from one by a bit), against a byte-at-a-time reference */
    static const char specials[] = {'\\', '\t', '\n', '\r', 'L', '\x0c', '\x8d', '\xdc'};
    for (size_t len = 0; len <= 40; len++)
        for (size_t pos = 0; pos < len; pos++)
            for (size_t k = 0; k < sizeof specials; k++) {
                char in[48], out[96], want[96];
                for (size_t i = 0; i < len; i++)
                    in[i] = (char)('a' + i % 26);
                in[pos] = specials[k];
                if (pos + 9 < len)
                    in[pos + 9] = '\\';
                size_t w = 0;
                for (size_t i = 0; i < len; i++) {
                    const char *e = in[i] == '\\'   ? "\\\\"
                                    : in[i] == '\t' ? "\\t"
                                    : in[i] == '\n' ? "\\n"
                                    : in[i] == '\r' ? "\\r"
                                                    : NULL;
                    if (e != NULL) {
                        want[w++] = e[0];
                        want[w++] = e[1];
                    } else {
                        want[w++] = in[i];
                    }
                }
                size_t n = etl_pg_copy_escape(out, in, len);
                CHECK(n == w && memcmp(out, want, w) == 0, "len %zu, 0x%02x at %zu", len,
                      (unsigned char)specials[k], pos);
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
                 "pw *** and ***") == 0,
          "redact: %s", out);
    CHECK(strcmp(etl_pg_redact(out, sizeof out, "nothing here", NULL), "nothing here") == 0,
          "redact NULL secret: %s", out);
    CHECK(strcmp(etl_pg_redact(out, sizeof out, "nothing here", ""), "nothing here") == 0,
          "redact empty secret: %s", out);
    CHECK(strcmp(etl_pg_redact(out, 6, "abcdefgh", "zz"), "abcde") == 0, "truncation: %s", out);
}

/* A Lua state with the value the chunk returns on top, or NULL (a failed check) when it fails. */
static lua_State *chunk_state(const char *chunk)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    if (luaL_dostring(L, chunk) != LUA_OK) {
        CHECK(0, "%s: %s", chunk, lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    return L;
}

/* The binary form of the array the chunk returns, as parameter type `type`: its bytes in hex
 * ("text" when it has none) compared with want. */
static void check_binary(const char *chunk, unsigned type, const char *want)
{
    lua_State *L = chunk_state(chunk);
    if (!L)
        return;
    int top = lua_gettop(L);
    long long n = etl_pg_binary_array(L, -1, type);
    char got[512] = "text";
    if (n >= 0) {
        CHECK(lua_gettop(L) == top + 1, "%s: pushed %d values", chunk, lua_gettop(L) - top);
        const unsigned char *p = lua_touserdata(L, -1);
        for (long long i = 0; i < n && 2 * i + 2 < (long long)sizeof got; i++)
            snprintf(got + 2 * i, 3, "%02x", p[i]);
    } else {
        CHECK(lua_gettop(L) == top, "%s: pushed on refusal", chunk);
    }
    CHECK(strcmp(got, want) == 0, "%s as %u:\n got  %s\n want %s", chunk, type, got, want);
    lua_close(L);
}

/* An array made in C (etl_pg_push_int_array, etl_pg_push_char_array) has the bytes the same
 * values get from a Lua table, and pg.array_values reads them back. */
static void check_c_array(const char *chunk, unsigned type, const int64_t *v, const char *c,
                          size_t n)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    CHECK(luaL_dostring(L, chunk) == LUA_OK, "%s", chunk);
    long long want = etl_pg_binary_array(L, 1, type); /* 2 */
    if (c != NULL)
        etl_pg_push_char_array(L, c, n); /* 3 */
    else
        etl_pg_push_int_array(L, type, v, n);
    unsigned got_type = 0;
    size_t len = 0;
    const unsigned char *got = etl_pg_array_bytes(L, 3, &got_type, &len);
    CHECK(got != NULL && got_type == type, "%s: type %u", chunk, got_type);
    CHECK(want >= 0 && len == (size_t)want && memcmp(got, lua_touserdata(L, 2), len) == 0,
          "%s: bytes differ from the table's (%zu against %lld)", chunk, len, want);
    CHECK(etl_pg_array_bytes(L, 2, &got_type, &len) == NULL, "a table's binary form taken for C's");
    luaopen_etlua_pg(L);
    lua_getfield(L, -1, "array_values");
    lua_pushvalue(L, 3);
    lua_call(L, 1, 1);
    lua_getglobal(L, "same");
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -3);
    lua_call(L, 2, 1);
    CHECK(lua_toboolean(L, -1), "%s: pg.array_values differs", chunk);
    lua_close(L);
}

static void test_c_array(void)
{
    static const char same[] = "function same(a, b) if #a ~= #b then return false end "
                               "for i = 1, #a do if a[i] ~= b[i] then return false end end "
                               "return true end ";
    char chunk[256];
    const int64_t v4[] = {INT32_MIN, INT32_MAX, -1, 0, 5};
    snprintf(chunk, sizeof chunk, "%s return {-2147483648, 2147483647, -1, 0, 5}", same);
    check_c_array(chunk, 1007, v4, NULL, 5);
    const int64_t v8[] = {INT64_MIN, INT64_MAX, -5010229573455851542};
    snprintf(chunk, sizeof chunk,
             "%s return {math.mininteger, math.maxinteger, -5010229573455851542}", same);
    check_c_array(chunk, 1016, v8, NULL, 3);
    snprintf(chunk, sizeof chunk, "%s return {'r', 'j', 'd'}", same);
    check_c_array(chunk, 1002, NULL, "rjd", 3);
    snprintf(chunk, sizeof chunk, "%s return {}", same);
    check_c_array(chunk, 1007, v4, NULL, 0);
    check_c_array(chunk, 1002, NULL, "", 0);
}

static void test_binary_array(void)
{
    /* ndim 1, no NULLs, int4 (23), 3 elements from 1; each: length 4, big-endian value */
    check_binary("return {-2147483648, 2147483647, -1}", 1007,
                 "00000001"
                 "00000000"
                 "00000017"
                 "00000003"
                 "00000001"
                 "00000004"
                 "80000000"
                 "00000004"
                 "7fffffff"
                 "00000004"
                 "ffffffff");
    check_binary("return {math.mininteger, 1, n = 3}", 1016, /* int8 (20), a NULL: flag 1 */
                 "00000001"
                 "00000001"
                 "00000014"
                 "00000003"
                 "00000001"
                 "00000008"
                 "8000000000000000"
                 "00000008"
                 "0000000000000001"
                 "ffffffff");
    check_binary("return {'r', 'j'}", 1002, /* "char" (18): one byte each */
                 "00000001"
                 "00000000"
                 "00000012"
                 "00000002"
                 "00000001"
                 "00000001"
                 "72"
                 "00000001"
                 "6a");
    check_binary("return {'', 'a\\\\\"b'}", 1009, /* text (25): raw bytes, no escaping */
                 "00000001"
                 "00000000"
                 "00000019"
                 "00000002"
                 "00000001"
                 "00000000"
                 "00000004"
                 "615c2262");
    check_binary("return {}", 1007,
                 "00000000"
                 "00000000"
                 "00000017"); /* empty: ndim 0 */
    check_binary("return {n = 0, 5}", 1016,
                 "00000000"
                 "00000000"
                 "00000014");
    /* no binary form: sent as text, refused (or read) by the server as it always was */
    check_binary("return {2147483648}", 1007, "text");
    check_binary("return {-2147483649}", 1007, "text");
    check_binary("return {1.0}", 1016, "text");
    check_binary("return {'12'}", 1007, "text");
    check_binary("return {'ab'}", 1002, "text");
    check_binary("return {''}", 1002, "text");
    check_binary("return {'\\xe9'}", 1002, "text");
    check_binary("return {'a\\0b'}", 1009, "text");
    check_binary("return {12}", 1009, "text");
    check_binary("return {true}", 1009, "text");
    check_binary("return {1}", 1700, "text"); /* numeric[]: not sent in binary */
}

/* The COPY binary form of the rows the chunk returns, for columns of types[0..ncols-1]: the bytes
 * between the 19-byte header and the 2-byte trailer in hex ("text" when there is none), compared
 * with want. */
static void check_copy(const char *chunk, int ncols, const unsigned *types, const char *want)
{
    lua_State *L = chunk_state(chunk);
    if (!L)
        return;
    int top = lua_gettop(L);
    unsigned char *buf = NULL;
    size_t cap = 0;
    long long n = etl_pg_copy_binary(L, -1, ncols, types, &buf, &cap);
    char got[512] = "text";
    CHECK(lua_gettop(L) == top, "%s: left %d values", chunk, lua_gettop(L) - top);
    if (n >= 0) {
        CHECK((size_t)n <= cap, "%s: %lld bytes in a buffer of %zu", chunk, n, cap);
        const unsigned char *p = buf;
        CHECK(n >= 21 && memcmp(p, "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19) == 0 &&
                  p[n - 2] == 0xff && p[n - 1] == 0xff,
              "%s: header or trailer", chunk);
        for (long long i = 19; i < n - 2 && 2 * (i - 19) + 2 < (long long)sizeof got; i++)
            snprintf(got + 2 * (i - 19), 3, "%02x", p[i]);
        if (n == 21)
            got[0] = '\0';
    }
    CHECK(strcmp(got, want) == 0, "%s:\n got  %s\n want %s", chunk, got, want);
    free(buf);
    lua_close(L);
}

static void test_copy_binary(void)
{
    /* varchar 1043, int4 23, date 1082, int8 20, int2 21, bool 16, text 25, bpchar 1042 */
    const unsigned t3[] = {1043, 23, 1082};
    /* per row: field count, then each field's length and bytes (-1: NULL) */
    check_copy("return {{'a\\\\\tb', 2003000, '2024-02-29'}, {nil, -1, nil}}", 3, t3,
               "0003"
               "00000004"
               "615c0962"
               "00000004"
               "001e9038"
               "00000004"
               "00002279"
               "0003"
               "ffffffff"
               "00000004"
               "ffffffff"
               "ffffffff");
    check_copy("return {}", 3, t3, "");
    const unsigned t5[] = {20, 21, 16, 25, 1042};
    check_copy("return {{math.mininteger, -32768, true, '', 'x'}, {math.maxinteger, 32767, false, "
               "'é', nil}}",
               5, t5,
               "0005"
               "00000008"
               "8000000000000000"
               "00000002"
               "8000"
               "00000001"
               "01"
               "00000000"
               "00000001"
               "78"
               "0005"
               "00000008"
               "7fffffffffffffff"
               "00000002"
               "7fff"
               "00000001"
               "00"
               "00000002"
               "c3a9"
               "ffffffff");
    /* A row of more columns than Lua's minimal stack (its fields are kept until the row ends) */
    unsigned t40[40];
    char want40[4 + 39 * 8 + 16 + 1] = "0028";
    for (int i = 0; i < 40; i++)
        t40[i] = 23;
    for (int i = 0; i < 39; i++)
        memcpy(want40 + 4 + 8 * i, "ffffffff", 8);
    memcpy(want40 + 4 + 39 * 8, "0000000400000007", 17);
    check_copy("return {{[40] = 7}}", 40, t40, want40);
    /* days from 2000-01-01 */
    const unsigned td[] = {1082};
    check_copy(
        "return {{'2000-01-01'}, {'1999-12-31'}, {'0001-01-01'}, {'9999-12-31'}, {'1970-01-01'},"
        " {'2000-03-01'}, {'1900-03-01'}}",
        1, td,
        "0001"
        "00000004"
        "00000000"
        "0001"
        "00000004"
        "ffffffff"
        "0001"
        "00000004"
        "fff4dbf9"
        "0001"
        "00000004"
        "002c95d3"
        "0001"
        "00000004"
        "ffffd533"
        "0001"
        "00000004"
        "0000003c"
        "0001"
        "00000004"
        "ffff718f");
    /* no binary form: the whole batch goes as text, read (or refused) by the server as before */
    check_copy("return {{'2023-02-29'}}", 1, td, "text"); /* not a day */
    check_copy("return {{'1900-02-29'}}", 1, td, "text");
    check_copy("return {{'0000-01-01'}}", 1, td, "text");
    check_copy("return {{'2024-13-01'}}", 1, td, "text");
    check_copy("return {{'2024-1-02'}}", 1, td, "text"); /* another spelling */
    check_copy("return {{'2024-01-02 '}}", 1, td, "text");
    check_copy("return {{'Jan 2 2024'}}", 1, td, "text");
    check_copy("return {{20240102}}", 1, td, "text");
    check_copy("return {{'a', 1, '2024-01-02'}, {'b', 2147483648, '2024-01-02'}}", 3, t3, "text");
    check_copy("return {{'a', 1.0, '2024-01-02'}}", 3, t3, "text");
    check_copy("return {{'a', '1', '2024-01-02'}}", 3, t3, "text");
    check_copy("return {{1, 1, '2024-01-02'}}", 3, t3, "text"); /* a number for varchar */
    check_copy("return {{'a\\0b', 1, '2024-01-02'}}", 3, t3, "text");
    check_copy("return {{'a', true, '2024-01-02'}}", 3, t3, "text");
    check_copy("return {{'a', 1, '2024-01-02'}, 'not a row'}", 3, t3, "text");
    const unsigned t2[] = {21, 16};
    check_copy("return {{32768, true}}", 2, t2, "text");
    check_copy("return {{1, 't'}}", 2, t2, "text");
    const unsigned tn[] = {1700}; /* numeric: no binary form here */
    check_copy("return {{'1'}}", 1, tn, "text");
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
    run_lua(
        "uri password scrubbed",
        "local pg = require 'etlua.pg'\n"
        "local db, msg = pg.connect('postgresql://u:S3cretPw@127.0.0.1:1/db?connect_timeout=2')\n"
        "if db ~= nil then return 'connected?' end\n"
        "if msg:find('S3cretPw', 1, true) then return 'password leaked: ' .. msg end\n"
        "return 'ok'");
    run_lua("api shape", "local pg = require 'etlua.pg'\n"
                         "if type(pg.connect) ~= 'function' then return 'no connect' end\n"
                         "local ok, err = pcall(pg.connect, {})\n"
                         "if ok then return 'table conninfo accepted' end\n"
                         "return 'ok'");
}

int main(void)
{
    test_copy_escape();
    test_redact();
    test_binary_array();
    test_c_array();
    test_copy_binary();
    test_lua_surface();
    return CHECK_DONE("test_pg");
}
