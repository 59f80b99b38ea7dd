/* lines.c: the etlua.lines module. Owns the cutting of an --input file into its lines for the
 * file source, src/lua/etlua/source_file.lua; lines.message also numbers each line and makes its
 * message id (the source makes the rest of the message).
 *
 * Why C: read in Lua, a file came as 64 KiB strings (f:read(n)), each line then found and cut
 * out of one with string.find and string.sub: every chunk a new 64 KiB Lua string for the
 * collector to count (~190 bytes a login line, 8% of what a message allocated) besides the
 * lines themselves. Here the bytes are read into one buffer of the reader's own (malloc'd, grown
 * for a longer line, never a Lua value) and only the lines become Lua strings.
 *
 * Lua API:
 *   lines.digest(f) -> hex | nil, message (a read error)
 *       what names an --input file's content in its messages' ids: read from f's position to
 *       its end in steps of 1 MiB (the last one shorter), d = SHA-256 hex of (d .. step) from
 *       d = "" on, then the SHA-256 hex of (d .. ":" .. the byte count in decimal). Only a step
 *       is in memory at a time, in a buffer of its own (not a Lua string, nor joined to d).
 *   local r = lines.reader(f)   f: an open Lua file (io.open); read from its current position
 *                               with fread, 64 KiB at a time. The file stays the caller's (to
 *                               close); the reader keeps it alive.
 *   r:next() -> line | nil (the end of the file) | nil, message (a read error)
 *       line: the bytes up to the next \n, without it and without one \r just before it (a
 *       \r\n line end); the last line needs no \n (its one trailing \r is dropped too). Empty
 *       lines are lines (""). As io.lines reads them, but for the \r.
 *   lines.next(r)               the same as r:next() (a local for a loop: no method lookup)
 *   lines.message(r, prefix, line) -> body, line, id | nil, line | nil, line, message
 *       what the file source makes of the next line that is not empty: its bytes (as next),
 *       its number (line: the number of the line before it; empty lines are counted) and
 *       id = prefix .. that number in decimal; at the end of the file (or a read error) nil,
 *       the number of the last line read (and the message). One call a message, the id made
 *       here: in Lua it was a concatenation and two lookups of the number's digits.
 *   r:close()                   frees the buffer (also __gc and __close; twice is safe); next()
 *                               on a closed reader, or on a closed file, raises. */
#include "etlua/mask.h"
#include "etlua/modules.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#define READER_MT "etlua.lines.reader"
#define CHUNK 65536 /* bytes read at a time */

struct etl_lines_reader {
    char *buf;         /* NULL once closed */
    size_t cap;        /* bytes of buf */
    size_t start, end; /* the bytes read and not yet handed out: buf[start..end) */
    size_t scanned;    /* buf[start..scanned) holds no \n */
    int eof;           /* fread has reached the end of the file */
};

/* lines.reader(f) */
static int etl_lines_reader(lua_State *L)
{
    luaL_Stream *s = luaL_checkudata(L, 1, LUA_FILEHANDLE);
    luaL_argcheck(L, s->closef != NULL, 1, "file is closed");
    struct etl_lines_reader *r = lua_newuserdatauv(L, sizeof *r, 1);
    r->buf = NULL;
    r->cap = r->start = r->end = r->scanned = 0;
    r->eof = 0;
    luaL_setmetatable(L, READER_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1); /* the file, kept alive */
    r->buf = malloc(CHUNK);
    if (r->buf == NULL)
        return luaL_error(L, "not enough memory");
    r->cap = CHUNK;
    return 1;
}

#define DIGEST_STEP ((size_t)1 << 20) /* bytes of the file hashed at a time */

/* lines.digest(f) */
static int etl_lines_digest(lua_State *L)
{
    luaL_Stream *s = luaL_checkudata(L, 1, LUA_FILEHANDLE);
    luaL_argcheck(L, s->closef != NULL, 1, "file is closed");
    char *buf = malloc(DIGEST_STEP);
    if (buf == NULL)
        return luaL_error(L, "not enough memory");
    char d[ETL_MASK_HEX_LEN + 1] = "", next[ETL_MASK_HEX_LEN + 1];
    size_t dlen = 0, n;
    unsigned long long total = 0;
    int ok = 1, e = 0;
    do {
        errno = 0;
        n = fread(buf, 1, DIGEST_STEP, s->f);
        if (n < DIGEST_STEP && ferror(s->f)) {
            e = errno != 0 ? errno : EIO;
            clearerr(s->f);
            break;
        }
        if (n > 0) {
            total += n;
            ok = etl_mask_sha256_hex2(d, dlen, buf, n, next) == 0;
            memcpy(d, next, sizeof d);
            dlen = ETL_MASK_HEX_LEN;
        }
    } while (ok && n == DIGEST_STEP);
    free(buf);
    if (e != 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(e));
        return 2;
    }
    char count[32];
    int clen = snprintf(count, sizeof count, ":%llu", total);
    if (!ok || etl_mask_sha256_hex2(d, dlen, count, (size_t)clen, next) != 0)
        return luaL_error(L, "etlua.lines: SHA-256 failed in OpenSSL");
    lua_pushlstring(L, next, ETL_MASK_HEX_LEN);
    return 1;
}

/* Pushes buf[from..to) without one \r at its end. */
static void push_line(lua_State *L, const char *from, const char *to)
{
    if (to > from && to[-1] == '\r')
        to--;
    lua_pushlstring(L, from, (size_t)(to - from));
}

/* The reader at index 1, tested against the reader metatable at upvalue 1 (next's: no lookup of
 * the metatable by its name in the registry, a strcmp in Lua's string cache, for every line);
 * the same error as luaL_checkudata. */
static struct etl_lines_reader *etl_lines_check(lua_State *L)
{
    struct etl_lines_reader *r = lua_touserdata(L, 1);
    int same = r != NULL && lua_getmetatable(L, 1);
    if (same) {
        same = lua_rawequal(L, -1, lua_upvalueindex(1));
        lua_pop(L, 1);
    }
    if (!same)
        luaL_typeerror(L, 1, READER_MT);
    return r;
}

/* Pushes the next line (1 is returned), nil at the end of the file (1), or nil and a message
 * on a read error (2). */
static int etl_lines_read(lua_State *L, struct etl_lines_reader *r);

/* r:next() */
static int etl_lines_next(lua_State *L) { return etl_lines_read(L, etl_lines_check(L)); }

/* lines.message(r, prefix, line) */
static int etl_lines_message(lua_State *L)
{
    struct etl_lines_reader *r = etl_lines_check(L);
    size_t plen;
    const char *prefix = luaL_checklstring(L, 2, &plen);
    lua_Integer line = luaL_checkinteger(L, 3);
    lua_settop(L, 3);
    for (;;) {
        int n = etl_lines_read(L, r);
        if (lua_isnil(L, 4)) { /* the end, or a read error: nil, line [, message] */
            lua_pushinteger(L, line);
            if (n == 2)
                lua_rotate(L, 5, 1);
            return n + 1;
        }
        line++;
        if (lua_rawlen(L, 4) > 0)
            break;
        lua_settop(L, 3); /* an empty line: counted, not a message */
    }
    lua_pushinteger(L, line);
    char digits[24], *d = digits + sizeof digits;
    lua_Unsigned u = (lua_Unsigned)line;
    do
        *--d = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    size_t dlen = (size_t)(digits + sizeof digits - d);
    luaL_Buffer b;
    char *id = luaL_buffinitsize(L, &b, plen + dlen);
    memcpy(id, prefix, plen);
    memcpy(id + plen, d, dlen);
    luaL_pushresultsize(&b, plen + dlen);
    return 3;
}

static int etl_lines_read(lua_State *L, struct etl_lines_reader *r)
{
    if (r->buf == NULL)
        return luaL_error(L, "attempt to use a closed lines reader");
    lua_getiuservalue(L, 1, 1);
    luaL_Stream *s = lua_touserdata(L, -1);
    if (s->closef == NULL)
        return luaL_error(L, "attempt to read lines of a closed file");
    lua_pop(L, 1);
    for (;;) {
        char *nl = memchr(r->buf + r->scanned, '\n', r->end - r->scanned);
        if (nl != NULL) {
            push_line(L, r->buf + r->start, nl);
            r->start = r->scanned = (size_t)(nl - r->buf) + 1;
            return 1;
        }
        r->scanned = r->end;
        if (r->eof) {
            if (r->end == r->start) {
                lua_pushnil(L);
                return 1;
            }
            push_line(L, r->buf + r->start, r->buf + r->end);
            r->start = r->scanned = r->end;
            return 1;
        }
        /* read on: what is left to the front, room for a chunk more (a line longer than the
         * buffer grows it) */
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->scanned = r->end;
            r->start = 0;
        }
        if (r->cap - r->end < CHUNK / 2) {
            char *b = realloc(r->buf, r->cap * 2);
            if (b == NULL)
                return luaL_error(L, "not enough memory for a line of %d bytes", (int)r->end);
            r->buf = b;
            r->cap *= 2;
        }
        size_t want = r->cap - r->end;
        errno = 0;
        size_t n = fread(r->buf + r->end, 1, want, s->f);
        r->end += n;
        if (n < want) {
            if (ferror(s->f)) {
                int e = errno;
                clearerr(s->f);
                lua_pushnil(L);
                lua_pushstring(L, e != 0 ? strerror(e) : "read error");
                return 2;
            }
            r->eof = 1;
        }
    }
}

/* r:close(), __gc, __close */
static int etl_lines_close(lua_State *L)
{
    struct etl_lines_reader *r = luaL_checkudata(L, 1, READER_MT);
    free(r->buf);
    r->buf = NULL;
    return 0;
}

int luaopen_etlua_lines(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"next", etl_lines_next},
        {"close", etl_lines_close},
        {NULL, NULL},
    };
    if (luaL_newmetatable(L, READER_MT)) {
        luaL_newlibtable(L, methods);
        lua_pushvalue(L, -2); /* the metatable: the methods' upvalue (etl_lines_check) */
        luaL_setfuncs(L, methods, 1);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, etl_lines_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, etl_lines_close);
        lua_setfield(L, -2, "__close");
    }
    lua_newtable(L);
    lua_pushcfunction(L, etl_lines_reader);
    lua_setfield(L, -2, "reader");
    lua_pushcfunction(L, etl_lines_digest);
    lua_setfield(L, -2, "digest");
    lua_pushvalue(L, -2); /* the metatable */
    lua_pushcclosure(L, etl_lines_next, 1);
    lua_setfield(L, -2, "next");
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, etl_lines_message, 1);
    lua_setfield(L, -2, "message");
    lua_remove(L, -2); /* the metatable */
    return 1;
}
