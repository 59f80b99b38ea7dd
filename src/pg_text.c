/* pg_text.c: the text etlua.pg puts into and takes out of Postgres, as functions that never
 * touch the network: one field of COPY text format (etl_pg_copy_escape), Lua arrays as Postgres
 * array literals, and error messages safe to log. Messages carry only libpq's primary message
 * (DETAIL can echo row values, which may be PII), with quoted values elided for data exceptions;
 * connection errors are scrubbed of the password (etl_pg_redact). */
#include "etlua/pg_internal.h"

#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- pure helpers (tests/c/test_pg.c) ---------------------------------------------------- */

/* The bytes COPY text format escapes: backslash, tab, newline, carriage return. */
static const unsigned char copy_special[256] = {
    ['\\'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\r'] = 'r'};

/* Nonzero when one of the 8 bytes of w is the byte of `ones * b` (the classic "has zero byte"
 * test on w ^ that: exact as to whether some byte matches). */
#define ONES 0x0101010101010101ULL
static inline uint64_t has_byte(uint64_t w, unsigned char b)
{
    uint64_t y = w ^ (ONES * b);
    return (y - ONES) & ~y & (ONES << 7);
}

size_t etl_pg_copy_escape_nonul(char *dst, const char *src, size_t len)
{
    size_t n = 0, i = 0;
    for (;;) {
        size_t from = i; /* a run of plain bytes goes out in one copy; 8 bytes per test first */
        for (uint64_t w; i + 8 <= len; i += 8) {
            memcpy(&w, src + i, 8);
            if (has_byte(w, '\\') | has_byte(w, '\t') | has_byte(w, '\n') | has_byte(w, '\r'))
                break;
        }
        while (i < len && copy_special[(unsigned char)src[i]] == 0)
            i++;
        memcpy(dst + n, src + from, i - from);
        n += i - from;
        if (i == len)
            return n;
        unsigned char e = copy_special[(unsigned char)src[i++]];
        dst[n++] = '\\';
        dst[n++] = e == 'b' ? '\\' : (char)e;
    }
}

size_t etl_pg_copy_escape(char *dst, const char *src, size_t len)
{
    if (memchr(src, '\0', len) != NULL)
        return ETL_PG_ESCAPE_NUL;
    return etl_pg_copy_escape_nonul(dst, src, len);
}

size_t etl_pg_int_text(char *dst, long long v)
{
    char tmp[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    size_t len = 0;
    if (v < 0)
        dst[len++] = '-';
    while (n > 0)
        dst[len++] = tmp[--n];
    return len;
}

char *etl_pg_redact(char *out, size_t cap, const char *msg, const char *secret)
{
    size_t slen = secret ? strlen(secret) : 0, n = 0;
    if (cap == 0)
        return out;
    while (*msg != '\0' && n + 1 < cap) {
        if (slen > 0 && strncmp(msg, secret, slen) == 0) {
            for (const char *r = "***"; *r != '\0' && n + 1 < cap; r++)
                out[n++] = *r;
            msg += slen;
        } else {
            out[n++] = *msg++;
        }
    }
    out[n] = '\0';
    return out;
}

/* ---- errors -------------------------------------------------------------------------------- */

/* Data exceptions quote the offending value (value "..." is out of range for type integer;
 * invalid input syntax for type integer: "..."), and the value may itself hold quotes: everything
 * from the first to the last double quote is replaced by "...". */
static void etl_pg_push_unquoted(lua_State *L, const char *msg, size_t len)
{
    const char *first = memchr(msg, '"', len), *last = NULL;
    for (const char *p = msg + len; first != NULL && p > first; p--)
        if (p[-1] == '"') {
            last = p - 1;
            break;
        }
    if (first == NULL || last == first) {
        lua_pushlstring(L, msg, len);
        return;
    }
    lua_pushlstring(L, msg, (size_t)(first - msg));
    lua_pushliteral(L, "\"...\"");
    lua_pushlstring(L, last + 1, len - (size_t)(last + 1 - msg));
    lua_concat(L, 3);
}

/* Pushes nil, message, code for a failed result (res may be NULL) and returns 3. */
int etl_pg_push_error(lua_State *L, PGconn *conn, const PGresult *res)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = primary ? primary : PQerrorMessage(conn);
    size_t len = strcspn(msg, "\n"); /* libpq's own messages: the first line only */
    lua_pushnil(L);
    if (len == 0)
        lua_pushliteral(L, "postgres: unknown error");
    else if (state != NULL && strncmp(state, "22", 2) == 0)
        etl_pg_push_unquoted(L, msg, len);
    else
        lua_pushlstring(L, msg, len);
    if (PQstatus(conn) != CONNECTION_OK)
        lua_pushliteral(L, "connection");
    else
        lua_pushstring(L, state ? state : "client");
    return 3;
}

/* Pushes nil, scrubbed message, "connection" for a failed connect. */
int etl_pg_connect_error(lua_State *L, PGconn *conn, const char *conninfo_pw)
{
    const char *secrets[3] = {conninfo_pw, getenv("PGPASSWORD"), conn ? PQpass(conn) : NULL};
    char a[2048], b[2048];
    const char *msg = conn ? PQerrorMessage(conn) : "out of memory";
    snprintf(a, sizeof a, "%s", msg);
    for (int i = 0; i < 3; i++) {
        etl_pg_redact(b, sizeof b, a, secrets[i]);
        memcpy(a, b, sizeof a);
    }
    size_t len = 0; /* one line: libpq's multi-line hints become spaces */
    for (const char *p = a; *p != '\0'; p++) {
        int blank = *p == '\n' || *p == '\t' || *p == ' ';
        if (!blank || (len > 0 && a[len - 1] != ' '))
            a[len++] = blank ? ' ' : *p;
    }
    while (len > 0 && a[len - 1] == ' ')
        len--;
    lua_pushnil(L);
    lua_pushliteral(L, "postgres: ");
    if (len > 0)
        lua_pushlstring(L, a, len);
    else
        lua_pushliteral(L, "connection failed");
    lua_concat(L, 2);
    lua_pushliteral(L, "connection");
    return 3;
}

/* ---- array parameters ---------------------------------------------------------------------- */

/* Converts the Lua array at idx into a Postgres array literal {"a","b",NULL} (each element
 * double-quoted, \ and " escaped), left on the stack. Its length is field n when that is an
 * integer (arrays with nil holes), else its raw length. */
void etl_pg_array_literal(lua_State *L, int idx)
{
    luaL_Buffer b;
    lua_Integer n = etl_pg_array_len(L, idx);
    luaL_buffinit(L, &b);
    luaL_addchar(&b, '{');
    for (lua_Integer i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, ',');
        /* the stack must be at the buffer's level for luaL_addchar: peek at the type first */
        int t = lua_rawgeti(L, idx, i);
        lua_pop(L, 1);
        if (t == LUA_TNIL) {
            luaL_addstring(&b, "NULL");
            continue;
        }
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            luaL_error(L, "array parameter element %d is a %s", (int)i, lua_typename(L, t));
        luaL_addchar(&b, '"');
        if (t == LUA_TNUMBER) { /* digits need no escaping */
            lua_rawgeti(L, idx, i);
            luaL_addvalue(&b); /* the one call that takes a value above the buffer */
        } else {
            /* One pass, \ and " escaped. The table keeps the string alive (and Lua strings do
             * not move), so it can be read after the pop that keeps the stack at the buffer's
             * level. luaL_gsub here was quadratic under a sanitizer's strstr (a 1 MiB run of
             * quotes in a reject body took minutes). */
            size_t len;
            lua_rawgeti(L, idx, i);
            const char *s = lua_tolstring(L, -1, &len);
            lua_pop(L, 1);
            size_t from = 0;
            for (size_t k = 0; k < len; k++) {
                if (s[k] != '\\' && s[k] != '"')
                    continue;
                luaL_addlstring(&b, s + from, k - from);
                luaL_addchar(&b, '\\');
                from = k; /* the special character itself goes out with the next run */
            }
            luaL_addlstring(&b, s + from, len - from);
        }
        luaL_addchar(&b, '"');
    }
    luaL_addchar(&b, '}');
    luaL_pushresult(&b);
}
