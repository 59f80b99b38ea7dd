/* pg_copy.c: db:copy, rows of Lua arrays into a table by COPY ... FROM STDIN, in one of two
 * forms: COPY's binary format when the caller gives the columns' types and every column and
 * value has a binary form below, else COPY's text format (any type, the server parses each
 * field). The binary form spares the server that parsing: reading a text row of the login
 * pipeline (its line, then its seven fields, then int4in and date_in) costs it twice what
 * storing the row does (callgrind of the backend: 10,300 and 5,400 instructions). A batch that
 * does not fit the binary form goes as text, so the server reads (or refuses) exactly what it
 * always did. The binary forms (the server's typsend/typreceive):
 *   text, varchar, bpchar  a Lua string without NUL: its bytes (the server checks the encoding
 *                          and the length limit as it does for text input: same functions);
 *   int2, int4, int8       a Lua integer in the type's range: big-endian two's complement;
 *   bool                   a Lua boolean: one byte, 0 or 1;
 *   date                   a Lua string "YYYY-MM-DD" (year 0001-9999, a day the month has):
 *                          big-endian int32, days since 2000-01-01 (the ISO form any DateStyle
 *                          reads as the same day);
 *   NULL                   nil, for any column.
 * Any other value (a float or a string for an integer column, a number for a text one, another
 * spelling of a date) sends the whole batch as text. */
#include "etlua/pg_internal.h"

#include <lauxlib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define COPY_CHUNK 65536 /* bytes handed to PQputCopyData at a time */

#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25
#define OID_BPCHAR 1042
#define OID_VARCHAR 1043
#define OID_DATE 1082

/* The types with a binary form here, 0-terminated (pg.copy_binary_types lists them to Lua). */
static const unsigned binary_types[] = {OID_TEXT, OID_VARCHAR, OID_BPCHAR, OID_INT2, OID_INT4,
                                        OID_INT8, OID_BOOL,    OID_DATE,   0};

void etl_pg_push_copy_types(lua_State *L)
{
    lua_newtable(L);
    for (int i = 0; binary_types[i] != 0; i++) {
        lua_pushboolean(L, 1);
        lua_rawseti(L, -2, binary_types[i]);
    }
}

static int has_binary(unsigned type)
{
    for (int i = 0; binary_types[i] != 0; i++)
        if (binary_types[i] == type)
            return 1;
    return 0;
}

/* ---- the data's buffer --------------------------------------------------------------------- */

/* The data of a COPY is built in a buffer of the connection, malloc'd and kept for its next
 * COPY (up to COPY_KEEP bytes; a larger one is freed after its COPY): a batch's data (~100 KiB
 * for 500 login rows) is not a new Lua userdata each time, doubled as it grows, that the
 * collector counts, walks and frees. Lua never holds a pointer into it, and only this
 * connection's db:copy writes it (its wait hook may not use the connection). */
#define COPY_KEEP ((size_t)1 << 20)

/* *buf grown (realloc, its bytes kept) to at least need bytes; raises when memory runs out (the
 * buffer stays the caller's: nothing leaks). */
static unsigned char *buf_room(lua_State *L, unsigned char **buf, size_t *cap, size_t need)
{
    if (*cap < need) {
        size_t n = *cap > 0 ? *cap : 4096;
        while (n < need)
            n *= 2;
        unsigned char *p = realloc(*buf, n);
        if (p == NULL)
            luaL_error(L, "not enough memory for the data of a COPY");
        *buf = p;
        *cap = n;
    }
    return *buf;
}

void etl_pg_copy_free(struct etl_pg_conn *c)
{
    free(c->copy_buf);
    c->copy_buf = NULL;
    c->copy_cap = 0;
}

/* ---- binary form ---------------------------------------------------------------------------- */

/* The binary data being built, in the caller's buffer (grown as needed). */
struct etl_pg_bin {
    lua_State *L;
    unsigned char **buf;
    size_t *cap;
    unsigned char *p;
    size_t len;
};

static unsigned char *bin_room(struct etl_pg_bin *b, size_t n)
{
    if (*b->cap - b->len < n)
        b->p = buf_room(b->L, b->buf, b->cap, b->len + n);
    unsigned char *w = b->p + b->len;
    b->len += n;
    return w;
}

static void be(unsigned char *w, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        w[i] = (unsigned char)v;
}

/* Days from 2000-01-01 of "YYYY-MM-DD" (s, len), or 0 with *ok = 0 when it is not exactly that
 * form of a real day of the years 1-9999. (Days from the civil date in the proleptic Gregorian
 * calendar: years from March, so the leap day ends the year.) */
static int32_t iso_date(const char *s, size_t len, int *ok)
{
    static const unsigned char mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    *ok = 0;
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    int f[8], k = 0;
    for (size_t i = 0; i < 10; i++) {
        if (i == 4 || i == 7)
            continue;
        if (s[i] < '0' || s[i] > '9')
            return 0;
        f[k++] = s[i] - '0';
    }
    int y = f[0] * 1000 + f[1] * 100 + f[2] * 10 + f[3], m = f[4] * 10 + f[5], d = f[6] * 10 + f[7];
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] || (m == 2 && d == 29 && !leap))
        return 0;
    int yy = m <= 2 ? y - 1 : y;              /* >= 0: no negative era */
    int era = yy / 400, yoe = yy - era * 400; /* [0, 399] */
    int doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    *ok = 1;
    return (int32_t)(era * 146097 + doe - 719468 - 10957); /* from 1970-01-01, then 2000-01-01 */
}

/* Appends the field on top of the stack (not popped) as a column of type `type`. Returns 0, or
 * -1 when it has no binary form of that type. */
static int bin_field(struct etl_pg_bin *b, unsigned type, int t)
{
    lua_State *L = b->L;
    if (t == LUA_TNIL) {
        be(bin_room(b, 4), UINT32_MAX, 4);
        return 0;
    }
    switch (type) {
    case OID_TEXT:
    case OID_VARCHAR:
    case OID_BPCHAR: {
        size_t len;
        if (t != LUA_TSTRING)
            return -1;
        const char *s = lua_tolstring(L, -1, &len);
        if (len > INT32_MAX || memchr(s, '\0', len) != NULL)
            return -1;
        unsigned char *w = bin_room(b, 4 + len);
        be(w, len, 4);
        memcpy(w + 4, s, len);
        return 0;
    }
    case OID_INT2:
    case OID_INT4:
    case OID_INT8: {
        if (!lua_isinteger(L, -1))
            return -1;
        lua_Integer v = lua_tointeger(L, -1);
        int bytes = type == OID_INT8 ? 8 : type == OID_INT4 ? 4 : 2;
        if ((bytes == 4 && (v < INT32_MIN || v > INT32_MAX)) ||
            (bytes == 2 && (v < INT16_MIN || v > INT16_MAX)))
            return -1;
        unsigned char *w = bin_room(b, 4 + (size_t)bytes);
        be(w, (uint64_t)bytes, 4);
        be(w + 4, (uint64_t)v, bytes);
        return 0;
    }
    case OID_BOOL: {
        if (t != LUA_TBOOLEAN)
            return -1;
        unsigned char *w = bin_room(b, 5);
        be(w, 1, 4);
        w[4] = (unsigned char)lua_toboolean(L, -1);
        return 0;
    }
    case OID_DATE: {
        size_t len;
        int ok;
        if (t != LUA_TSTRING)
            return -1;
        const char *s = lua_tolstring(L, -1, &len);
        int32_t days = iso_date(s, len, &ok);
        if (!ok)
            return -1;
        unsigned char *w = bin_room(b, 8);
        be(w, 4, 4);
        be(w + 4, (uint32_t)days, 4);
        return 0;
    }
    default:
        return -1;
    }
}

long long etl_pg_copy_binary(lua_State *L, int rows, int ncols, const unsigned *types,
                             unsigned char **buf, size_t *cap)
{
    rows = lua_absindex(L, rows);
    for (int f = 0; f < ncols; f++)
        if (!has_binary(types[f]))
            return -1;
    lua_Integer nrows = (lua_Integer)lua_rawlen(L, rows);
    int top = lua_gettop(L);
    size_t guess = (size_t)nrows * (size_t)(2 + ncols * 12) + 21;
    struct etl_pg_bin b = {L, buf, cap,
                           buf_room(L, buf, cap, guess < COPY_CHUNK ? guess : COPY_CHUNK), 0};
    /* signature, flags (no OIDs), header extension length */
    memcpy(bin_room(&b, 19), "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19);
    /* A row's fields are left on the stack as they are written and dropped with the row: one
     * lua_settop a row instead of one a field (callgrind, 5,000 login rows of 7 columns: ~150
     * instructions a row fewer). A stack that cannot hold them sends the text form. */
    if (!lua_checkstack(L, ncols + 1))
        return -1;
    for (lua_Integer r = 1; r <= nrows; r++) {
        if (lua_rawgeti(L, rows, r) != LUA_TTABLE) {
            lua_settop(L, top);
            return -1;
        }
        be(bin_room(&b, 2), (uint64_t)ncols, 2);
        for (int f = 1; f <= ncols; f++) {
            int t = lua_rawgeti(L, top + 1, f);
            if (bin_field(&b, types[f - 1], t) != 0) {
                lua_settop(L, top);
                return -1;
            }
        }
        lua_settop(L, top);
    }
    be(bin_room(&b, 2), UINT16_MAX, 2); /* the trailer: field count -1 */
    return (long long)b.len;
}

/* ---- text form ------------------------------------------------------------------------------ */

struct etl_pg_copybuf {
    lua_State *L;
    struct etl_pg_conn *c;
    PGconn *conn;
    char *buf; /* COPY_CHUNK bytes: the connection's buffer */
    size_t used;
};

static int etl_pg_flush(struct etl_pg_copybuf *cb)
{
    if (cb->used > 0 && etl_pg_put_copy(cb->L, cb->c, cb->buf, (int)cb->used) != 0)
        return -1;
    cb->used = 0;
    return 0;
}

/* Appends len raw bytes (no escaping). */
static int etl_pg_put_raw(struct etl_pg_copybuf *cb, const char *s, size_t len)
{
    if (COPY_CHUNK - cb->used < len && etl_pg_flush(cb) != 0)
        return -1;
    memcpy(cb->buf + cb->used, s, len);
    cb->used += len;
    return 0;
}

/* Appends one escaped field, in pieces when it is larger than the buffer. The caller has
 * checked it holds no NUL byte. */
static int etl_pg_put_field(struct etl_pg_copybuf *cb, const char *s, size_t len)
{
    while (len > 0) {
        size_t room = (COPY_CHUNK - cb->used) / 2;
        if (room == 0) {
            if (etl_pg_flush(cb) != 0)
                return -1;
            continue;
        }
        size_t n = len < room ? len : room;
        cb->used += etl_pg_copy_escape_nonul(cb->buf + cb->used, s, n);
        s += n;
        len -= n;
    }
    return 0;
}

/* Aborts the COPY in progress and consumes its results. */
static void etl_pg_copy_abort(struct etl_pg_copybuf *cb)
{
    etl_pg_put_end(cb->L, cb->c, "aborted by etlua");
    etl_pg_drain(cb->L, cb->c);
}

/* Sends the rows. Returns 0, or -1 with (nil, msg, code) pushed, or raises after aborting. */
static int etl_pg_copy_rows(lua_State *L, struct etl_pg_copybuf *cb, int ncols)
{
    lua_Integer nrows = (lua_Integer)lua_rawlen(L, 4);
    for (lua_Integer r = 1; r <= nrows; r++) {
        if (lua_rawgeti(L, 4, r) != LUA_TTABLE) {
            etl_pg_copy_abort(cb);
            return luaL_error(L, "copy: rows[%d] is not a table", (int)r);
        }
        for (int f = 1; f <= ncols; f++) {
            int t = lua_rawgeti(L, -1, f), rc;
            size_t len;
            const char *s;
            if (t == LUA_TNIL) {
                rc = etl_pg_put_raw(cb, "\\N", 2);
            } else if (t == LUA_TNUMBER && lua_isinteger(L, -1)) {
                char digits[24]; /* the text lua_tolstring gives, without making a string */
                len = etl_pg_int_text(digits, lua_tointeger(L, -1));
                rc = etl_pg_put_raw(cb, digits, len);
            } else if (t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN) {
                s = t == LUA_TBOOLEAN ? (lua_toboolean(L, -1) ? "t" : "f")
                                      : lua_tolstring(L, -1, &len);
                if (t == LUA_TBOOLEAN)
                    len = 1;
                if (memchr(s, '\0', len) != NULL) {
                    etl_pg_copy_abort(cb);
                    lua_pushnil(L);
                    lua_pushfstring(L, "value contains a NUL byte (row %d, column %d)", (int)r, f);
                    lua_pushliteral(L, "22021");
                    return -1;
                }
                rc = etl_pg_put_field(cb, s, len);
            } else {
                etl_pg_copy_abort(cb);
                return luaL_error(L, "copy: rows[%d][%d] is a %s", (int)r, f, lua_typename(L, t));
            }
            lua_pop(L, 1);
            if (rc == 0)
                rc = etl_pg_put_raw(cb, f < ncols ? "\t" : "\n", 1);
            if (rc != 0) {
                etl_pg_push_error(L, cb->conn, NULL);
                etl_pg_drain(cb->L, cb->c);
                return -1;
            }
        }
        lua_pop(L, 1);
    }
    if (etl_pg_flush(cb) != 0) {
        etl_pg_push_error(L, cb->conn, NULL);
        etl_pg_drain(cb->L, cb->c);
        return -1;
    }
    return 0;
}

/* Sends len bytes of binary data in COPY_CHUNK pieces. Returns 0, or -1 with (nil, msg, code)
 * pushed. */
static int etl_pg_copy_data(lua_State *L, struct etl_pg_conn *c, const unsigned char *p, size_t len)
{
    for (size_t off = 0; off < len; off += COPY_CHUNK) {
        size_t n = len - off < COPY_CHUNK ? len - off : COPY_CHUNK;
        if (etl_pg_put_copy(L, c, (const char *)p + off, (int)n) != 0) {
            etl_pg_push_error(L, c->conn, NULL);
            etl_pg_drain(L, c);
            return -1;
        }
    }
    return 0;
}

/* Whether the guard's result (one column: a type OID a row) names exactly types[0..ncols-1]. */
static int guard_matches(const PGresult *res, const unsigned *types, int ncols)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != ncols || PQnfields(res) < 1)
        return 0;
    for (int f = 0; f < ncols; f++)
        if (PQgetisnull(res, f, 0) ||
            strtoll(PQgetvalue(res, f, 0), NULL, 10) != (long long)types[f])
            return 0;
    return 1;
}

/* Pushes nil, msg, "types_changed", {the guard's type OIDs} and returns 4. */
static int push_types_changed(lua_State *L, const PGresult *res)
{
    lua_pushnil(L);
    lua_pushliteral(L, "the table's column types changed since they were read");
    lua_pushliteral(L, "types_changed");
    int rows = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : 0;
    lua_createtable(L, rows, 0);
    for (int r = 0; r < rows; r++) {
        lua_pushinteger(L, strtoll(PQgetvalue(res, r, 0), NULL, 10));
        lua_rawseti(L, -2, r + 1);
    }
    return 4;
}

/* db:copy(copy_sql, ncols, rows [, types [, guard [, after]]]) -> count | nil, msg, code [, types]
 * (the connection at stack index 1). See pg_internal.h. */
int etl_pg_copy_run(lua_State *L, struct etl_pg_conn *c)
{
    PGconn *conn = c->conn;
    const char *sql = luaL_checkstring(L, 2);
    lua_Integer ncols = luaL_checkinteger(L, 3);
    luaL_argcheck(L, ncols >= 1 && ncols <= 1600, 3, "column count out of range");
    luaL_checktype(L, 4, LUA_TTABLE);
    if (!lua_isnoneornil(L, 5))
        luaL_checktype(L, 5, LUA_TTABLE);
    const char *guard = luaL_optstring(L, 6, NULL);
    const char *after = luaL_optstring(L, 7, NULL);
    lua_settop(L, 7);
    long long binary = -1;
    unsigned types[1600];
    if (lua_istable(L, 5)) {
        int known = (lua_Integer)lua_rawlen(L, 5) == ncols;
        for (int f = 0; known && f < ncols; f++) {
            lua_rawgeti(L, 5, f + 1);
            lua_Integer oid = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
            lua_pop(L, 1);
            known = oid > 0 && oid <= UINT32_MAX;
            types[f] = (unsigned)oid;
        }
        if (known)
            binary = etl_pg_copy_binary(L, 4, (int)ncols, types, &c->copy_buf, &c->copy_cap);
    }
    /* one Query message: the guard, the COPY, what runs after it (a failure skips the rest) */
    sql = lua_pushfstring(L, "%s%s%s%s%s%s", guard ? guard : "", guard ? "; " : "", sql,
                          binary >= 0 ? " (FORMAT binary)" : "", after ? "; " : "",
                          after ? after : "");
    struct etl_pg_copybuf cb = {L, c, conn, NULL, 0};
    if (binary < 0)
        cb.buf = (char *)buf_room(L, &c->copy_buf, &c->copy_cap, COPY_CHUNK);

    PGresult *res = NULL, *guarded = NULL;
    int queued = etl_pg_pending_alone(L, c); /* COPY cannot join a pipeline */
    if (queued != 0)
        return queued;
    if (PQsendQuery(conn, sql) == 1 && etl_pg_flush_out(L, c) == 0) {
        /* the guard's results (its rows kept), up to the COPY's CopyInResponse or an error */
        while ((res = etl_pg_next_result(L, c)) != NULL) {
            ExecStatusType st = PQresultStatus(res);
            if (st == PGRES_TUPLES_OK) {
                PQclear(guarded);
                guarded = res;
            } else if (st == PGRES_COMMAND_OK) {
                PQclear(res);
            } else {
                break;
            }
        }
    }
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        int n = PQresultStatus(res) == PGRES_FATAL_ERROR ? etl_pg_push_error(L, conn, res) : -1;
        PQclear(res);
        PQclear(guarded);
        etl_pg_drain(L, c);
        if (n < 0)
            return luaL_error(L, "copy: statement is not COPY ... FROM STDIN");
        return n;
    }
    PQclear(res);
    /* binary data is read by the types the table has now: the guard says they are the ones the
     * data was made for, or the COPY ends here, sending nothing (the transaction is aborted) */
    if (guard != NULL && binary >= 0 && !guard_matches(guarded, types, (int)ncols)) {
        etl_pg_put_end(L, c, "column types changed");
        etl_pg_drain(L, c);
        int n = push_types_changed(L, guarded);
        PQclear(guarded);
        return n;
    }
    PQclear(guarded);
    int failed = binary >= 0 ? etl_pg_copy_data(L, c, c->copy_buf, (size_t)binary)
                             : etl_pg_copy_rows(L, &cb, (int)ncols);
    if (c->copy_cap > COPY_KEEP) /* sent: a buffer that large is not kept */
        etl_pg_copy_free(c);
    if (failed != 0)
        return 3;
    if (etl_pg_put_end(L, c, NULL) != 0) {
        etl_pg_push_error(L, conn, NULL);
        etl_pg_drain(L, c);
        return 3;
    }
    res = etl_pg_next_result(L, c); /* the COPY's */
    int n;
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        long long count = strtoll(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        /* what ran after it: its last result, the first failure winning */
        res = after != NULL ? etl_pg_last_result(L, c) : NULL;
        if (after != NULL && PQresultStatus(res) != PGRES_COMMAND_OK) {
            n = etl_pg_push_error(L, conn, res);
        } else {
            lua_pushinteger(L, count);
            n = 1;
        }
    } else {
        n = etl_pg_push_error(L, conn, res);
    }
    PQclear(res);
    etl_pg_drain(L, c);
    return n;
}
