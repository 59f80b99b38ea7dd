/* pg.c: the etlua.pg module. Owns the libpq connection handle (userdata "etlua.pg.conn"),
 * parameterised exec (values travel as $n text parameters, never inside the SQL), and COPY of
 * Lua row arrays in text format. Expected failures return nil, message, code where code is the
 * SQLSTATE, or "connection" when the connection is gone; misuse raises.
 * Every call runs on libpq's non-blocking interface (PQsendQuery*, PQflush, PQconsumeInput,
 * PQisBusy, poll() on PQsocket), so while the server makes a call wait (a lock, a slow disk) the
 * connection's wait hook (db:on_wait) can run: the runner extends the SQS visibility of the
 * messages it holds from there.
 * Messages carry only libpq's primary message (DETAIL can echo row values, which may be PII), with
 * quoted values elided for data exceptions; connection errors are scrubbed of the password. */
#include "etlua/pg.h"

#include <errno.h>
#include <libpq-fe.h>
#include <lauxlib.h>
#include <lua.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONN_MT "etlua.pg.conn"
#define COPY_CHUNK 65536 /* bytes handed to PQputCopyData at a time */

/* The userdata; user value 1 is the wait hook (a function or nil), user value 2 the message of
 * the last error the hook raised (db:wait_error). */
struct etl_pg_conn {
    PGconn *conn;    /* NULL once closed */
    double interval; /* seconds between calls of the wait hook; 0: no hook */
    double due;      /* monotonic time of the hook's next call */
    int in_hook;     /* the hook is running: it must not use this connection */
};

/* ---- pure helpers (tests/c/test_pg.c) ---------------------------------------------------- */

size_t etl_pg_copy_escape(char *dst, const char *src, size_t len)
{
    if (memchr(src, '\0', len) != NULL)
        return ETL_PG_ESCAPE_NUL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        switch (c) {
        case '\\': dst[n++] = '\\'; dst[n++] = '\\'; break;
        case '\t': dst[n++] = '\\'; dst[n++] = 't'; break;
        case '\n': dst[n++] = '\\'; dst[n++] = 'n'; break;
        case '\r': dst[n++] = '\\'; dst[n++] = 'r'; break;
        default: dst[n++] = c; break;
        }
    }
    return n;
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
static int etl_pg_push_error(lua_State *L, PGconn *conn, const PGresult *res)
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

/* ---- waiting on the server ------------------------------------------------------------------ */

static double etl_pg_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Calls the wait hook of the connection at stack index 1 under lua_pcall (stack-neutral). An
 * error is kept for db:wait_error() and never reaches the call that was waiting. */
static void etl_pg_call_hook(lua_State *L, struct etl_pg_conn *c)
{
    if (lua_getiuservalue(L, 1, 1) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        c->interval = 0;
        return;
    }
    c->in_hook = 1;
    int rc = lua_pcall(L, 0, 0, 0);
    c->in_hook = 0;
    if (rc != LUA_OK) {
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            lua_pushliteral(L, "wait hook raised a non-string error");
        }
        lua_setiuservalue(L, 1, 2);
    }
}

/* Waits until the socket is ready for events, calling the wait hook each time it is due.
 * Returns 0 when ready (or in error: libpq finds out on its next read), -1 without a socket. */
static int etl_pg_wait(lua_State *L, struct etl_pg_conn *c, short events)
{
    int fd = PQsocket(c->conn);
    if (fd < 0)
        return -1;
    for (;;) {
        int timeout = -1;
        if (c->interval > 0) {
            double left = c->due - etl_pg_mono();
            if (left <= 0) {
                etl_pg_call_hook(L, c);
                c->due = etl_pg_mono() + c->interval;
                continue;
            }
            timeout = left > 86400.0 ? 86400000 : (int)(left * 1000.0) + 1;
        }
        struct pollfd p = {.fd = fd, .events = events, .revents = 0};
        int n = poll(&p, 1, timeout);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* Sends what libpq has buffered, reading input meanwhile. Returns 0, or -1 on failure. */
static int etl_pg_flush_out(lua_State *L, struct etl_pg_conn *c)
{
    int r;
    while ((r = PQflush(c->conn)) == 1)
        if (etl_pg_wait(L, c, POLLIN | POLLOUT) != 0 || PQconsumeInput(c->conn) == 0)
            return -1;
    return r == 0 ? 0 : -1;
}

/* The next result of the command in progress, waiting while libpq is busy; NULL once the
 * command is complete. */
static PGresult *etl_pg_next_result(lua_State *L, struct etl_pg_conn *c)
{
    while (PQisBusy(c->conn))
        if (etl_pg_wait(L, c, POLLIN) != 0 || PQconsumeInput(c->conn) == 0)
            break; /* PQgetResult reports the failure */
    return PQgetResult(c->conn);
}

/* What PQexec returns, the non-blocking way: the command's last result (its first error wins),
 * or its COPY_IN/COPY_OUT result as soon as that arrives; NULL when the connection failed. */
static PGresult *etl_pg_last_result(lua_State *L, struct etl_pg_conn *c)
{
    PGresult *last = NULL, *res;
    while ((res = etl_pg_next_result(L, c)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        int copy = st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH;
        if (!copy && last != NULL && PQresultStatus(last) == PGRES_FATAL_ERROR) {
            PQclear(res);
        } else {
            PQclear(last);
            last = res;
        }
        if (copy || PQstatus(c->conn) == CONNECTION_BAD)
            break;
    }
    return last;
}

/* PQputCopyData / PQputCopyEnd on a non-blocking connection: retried while libpq's buffers are
 * full. Return 0, or -1 on failure. */
static int etl_pg_put_copy(lua_State *L, struct etl_pg_conn *c, const char *buf, int len)
{
    int r;
    while ((r = PQputCopyData(c->conn, buf, len)) == 0)
        if (etl_pg_wait(L, c, POLLIN | POLLOUT) != 0 || PQconsumeInput(c->conn) == 0)
            return -1;
    return r == 1 ? 0 : -1;
}

static int etl_pg_put_end(lua_State *L, struct etl_pg_conn *c, const char *errormsg)
{
    int r;
    while ((r = PQputCopyEnd(c->conn, errormsg)) == 0)
        if (etl_pg_wait(L, c, POLLIN | POLLOUT) != 0 || PQconsumeInput(c->conn) == 0)
            return -1;
    return r == 1 ? etl_pg_flush_out(L, c) : -1;
}

/* Ends whatever the connection is in the middle of, so it is ready for the next command. */
static void etl_pg_drain(lua_State *L, struct etl_pg_conn *c)
{
    PGconn *conn = c->conn;
    PGresult *res;
    while ((res = etl_pg_next_result(L, c)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        PQclear(res);
        if (st == PGRES_COPY_IN) {
            if (etl_pg_put_end(L, c, "aborted by etlua") != 0)
                break;
        } else if (st == PGRES_COPY_OUT) {
            char *buf;
            while (PQgetCopyData(conn, &buf, 0) > 0)
                PQfreemem(buf);
        }
        if (PQstatus(conn) != CONNECTION_OK)
            break;
    }
}

/* ---- connect / close ----------------------------------------------------------------------- */

static void etl_pg_quiet(void *arg, const char *message)
{
    (void)arg; /* NOTICEs ("relation already exists, skipping") are not ours to print */
    (void)message;
}

/* Pushes nil, scrubbed message, "connection" for a failed connect. */
static int etl_pg_connect_error(lua_State *L, PGconn *conn, const char *conninfo_pw)
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

/* pg.connect(conninfo) -> conn | nil, msg, "connection" | nil, msg, "config" */
static int etl_pg_connect(lua_State *L)
{
    const char *conninfo = luaL_optstring(L, 1, "");
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (opts == NULL) {
        /* libpq's parse error quotes the offending text, which may be the password */
        PQfreemem(perr);
        lua_pushnil(L);
        lua_pushliteral(L, "postgres: invalid connection string");
        lua_pushliteral(L, "config");
        return 3;
    }
    char pw[512] = "";
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val != NULL)
            snprintf(pw, sizeof pw, "%s", o->val);
    PQconninfoFree(opts);

    struct etl_pg_conn *c = lua_newuserdatauv(L, sizeof *c, 2);
    c->conn = NULL;
    c->interval = c->due = 0;
    c->in_hook = 0;
    luaL_setmetatable(L, CONN_MT);
    /* conninfo (a keyword string or a URI; "" leaves everything to the PG* environment) is
     * expanded in place of dbname; the keywords after it override what it says. */
    const char *const keys[] = {"dbname", "client_encoding", "fallback_application_name", NULL};
    const char *const vals[] = {conninfo, "UTF8", "etlua", NULL};
    c->conn = PQconnectdbParams(keys, vals, 1);
    if (c->conn == NULL || PQstatus(c->conn) != CONNECTION_OK) {
        int n = etl_pg_connect_error(L, c->conn, pw);
        PQfinish(c->conn);
        c->conn = NULL;
        return n;
    }
    PQsetNoticeProcessor(c->conn, etl_pg_quiet, NULL);
    if (PQsetnonblocking(c->conn, 1) != 0) {
        int n = etl_pg_connect_error(L, c->conn, pw);
        PQfinish(c->conn);
        c->conn = NULL;
        return n;
    }
    return 1;
}

static struct etl_pg_conn *etl_pg_checkc(lua_State *L)
{
    struct etl_pg_conn *c = luaL_checkudata(L, 1, CONN_MT);
    if (c->conn == NULL)
        luaL_error(L, "attempt to use a closed postgres connection");
    if (c->in_hook)
        luaL_error(L, "attempt to use a postgres connection from its own wait hook");
    return c;
}

static PGconn *etl_pg_check(lua_State *L)
{
    return etl_pg_checkc(L)->conn;
}

/* db:on_wait(interval_s, fn [, first_s]) -> db: while a call waits on the server, fn() is called
 * every interval_s seconds (the first time first_s, default interval_s, after this call), under
 * lua_pcall: an error in fn never breaks the call (db:wait_error() returns it). fn must not use
 * this connection. db:on_wait(nil) removes the hook. */
static int etl_pg_on_wait(lua_State *L)
{
    struct etl_pg_conn *c = luaL_checkudata(L, 1, CONN_MT);
    if (lua_isnoneornil(L, 2)) {
        c->interval = 0;
        lua_pushnil(L);
        lua_setiuservalue(L, 1, 1);
        lua_settop(L, 1);
        return 1;
    }
    lua_Number interval = luaL_checknumber(L, 2);
    luaL_argcheck(L, interval >= 0.001 && interval <= 1e6, 2, "interval out of range");
    luaL_checktype(L, 3, LUA_TFUNCTION);
    lua_Number first = luaL_optnumber(L, 4, interval);
    luaL_argcheck(L, first >= 0 && first <= 1e6, 4, "first delay out of range");
    lua_pushvalue(L, 3);
    lua_setiuservalue(L, 1, 1);
    c->interval = interval;
    c->due = etl_pg_mono() + first;
    lua_settop(L, 1);
    return 1;
}

/* db:wait_error() -> the last error the wait hook raised (then forgotten), or nil */
static int etl_pg_wait_error(lua_State *L)
{
    luaL_checkudata(L, 1, CONN_MT);
    lua_getiuservalue(L, 1, 2);
    lua_pushnil(L);
    lua_setiuservalue(L, 1, 2);
    return 1;
}

/* db:close(): also __gc and __close; closing twice is safe. */
static int etl_pg_close(lua_State *L)
{
    struct etl_pg_conn *c = luaL_checkudata(L, 1, CONN_MT);
    if (c->in_hook)
        return luaL_error(L, "attempt to close a postgres connection from its own wait hook");
    if (c->conn != NULL) {
        PQfinish(c->conn);
        c->conn = NULL;
    }
    return 0;
}

/* db:status() -> "ok" | "bad" (closed counts as bad) */
static int etl_pg_status(lua_State *L)
{
    struct etl_pg_conn *c = luaL_checkudata(L, 1, CONN_MT);
    int ok = c->conn != NULL && PQstatus(c->conn) == CONNECTION_OK;
    lua_pushstring(L, ok ? "ok" : "bad");
    return 1;
}

/* db:quote_ident(name) -> "quoted"; raises on a name libpq cannot quote. */
static int etl_pg_quote_ident(lua_State *L)
{
    PGconn *conn = etl_pg_check(L);
    size_t len;
    const char *name = luaL_checklstring(L, 2, &len);
    luaL_argcheck(L, memchr(name, '\0', len) == NULL, 2, "identifier contains a NUL byte");
    char *q = PQescapeIdentifier(conn, name, len);
    if (q == NULL)
        return luaL_error(L, "cannot quote identifier: %s", PQerrorMessage(conn));
    lua_pushstring(L, q);
    PQfreemem(q);
    return 1;
}

/* ---- exec ---------------------------------------------------------------------------------- */

/* Converts the Lua array at idx into a Postgres array literal {"a","b",NULL} (each element
 * double-quoted, \ and " escaped), left on the stack. Its length is field n when that is an
 * integer (arrays with nil holes), else its raw length. */
static void etl_pg_array_literal(lua_State *L, int idx)
{
    luaL_Buffer b;
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    lua_getfield(L, idx, "n");
    if (lua_isinteger(L, -1))
        n = lua_tointeger(L, -1);
    lua_pop(L, 1);
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
        lua_rawgeti(L, idx, i);
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        /* luaL_gsub stops at a NUL byte: such a value goes in raw for the caller to refuse */
        if (memchr(s, '\0', len) == NULL && strpbrk(s, "\\\"") != NULL) {
            luaL_gsub(L, s, "\\", "\\\\");
            lua_remove(L, -2);
            luaL_gsub(L, lua_tostring(L, -1), "\"", "\\\"");
            lua_remove(L, -2);
        }
        luaL_addvalue(&b); /* the one call that takes a value above the buffer */
        luaL_addchar(&b, '"');
    }
    luaL_addchar(&b, '}');
    luaL_pushresult(&b);
}

/* Pushes the rows of a PGRES_TUPLES_OK result: array of arrays, NULL -> nil, each row has n. */
static void etl_pg_push_rows(lua_State *L, const PGresult *res)
{
    int nrows = PQntuples(res), ncols = PQnfields(res);
    lua_createtable(L, nrows, 0);
    for (int r = 0; r < nrows; r++) {
        lua_createtable(L, ncols, 1);
        for (int f = 0; f < ncols; f++) {
            if (PQgetisnull(res, r, f))
                continue;
            lua_pushlstring(L, PQgetvalue(res, r, f), (size_t)PQgetlength(res, r, f));
            lua_rawseti(L, -2, f + 1);
        }
        lua_pushinteger(L, ncols);
        lua_setfield(L, -2, "n");
        lua_rawseti(L, -2, r + 1);
    }
}

/* db:exec(sql, ...) -> rows, affected, ncols | nil, msg, code
 * Parameters: nil -> NULL, strings and numbers as text (lua_tolstring), booleans -> true/false,
 * arrays (tables, length n or #) -> a text array literal for $n::text[]. One statement only. */
static int etl_pg_exec(lua_State *L)
{
    struct etl_pg_conn *c = etl_pg_checkc(L);
    PGconn *conn = c->conn;
    const char *sql = luaL_checkstring(L, 2);
    int nparams = lua_gettop(L) - 2;
    luaL_argcheck(L, nparams <= 65535, 3, "too many parameters");
    const char **values = lua_newuserdatauv(L, sizeof(char *) * (size_t)(nparams + 1), 0);
    for (int i = 0; i < nparams; i++) {
        int idx = i + 3;
        size_t len = 0;
        switch (lua_type(L, idx)) {
        case LUA_TNIL: values[i] = NULL; continue;
        case LUA_TBOOLEAN: values[i] = lua_toboolean(L, idx) ? "true" : "false"; continue;
        case LUA_TTABLE:
            etl_pg_array_literal(L, idx);
            lua_replace(L, idx);
            break;
        case LUA_TSTRING: case LUA_TNUMBER: break;
        default: return luaL_argerror(L, idx, "expected nil, string, number, boolean or array");
        }
        values[i] = lua_tolstring(L, idx, &len); /* converts numbers in place on the stack */
        if (memchr(values[i], '\0', len) != NULL) {
            lua_pushnil(L);
            lua_pushfstring(L, "parameter $%d contains a NUL byte", i + 1);
            lua_pushliteral(L, "22021");
            return 3;
        }
    }
    PGresult *res = NULL;
    if (PQsendQueryParams(conn, sql, nparams, NULL, values, NULL, NULL, 0) == 1
        && etl_pg_flush_out(L, c) == 0)
        res = etl_pg_last_result(L, c);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT) {
        PQclear(res);
        etl_pg_drain(L, c);
        return luaL_error(L, "use db:copy() for COPY statements");
    }
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        int n = etl_pg_push_error(L, conn, res);
        PQclear(res);
        return n;
    }
    if (st == PGRES_TUPLES_OK) {
        etl_pg_push_rows(L, res);
        lua_pushinteger(L, PQntuples(res));
    } else {
        lua_newtable(L);
        lua_pushinteger(L, strtoll(PQcmdTuples(res), NULL, 10));
    }
    lua_pushinteger(L, PQnfields(res));
    PQclear(res);
    return 3;
}

/* ---- copy ---------------------------------------------------------------------------------- */

struct etl_pg_copybuf {
    lua_State *L;
    struct etl_pg_conn *c;
    PGconn *conn;
    char *buf; /* COPY_CHUNK bytes, owned by a Lua userdata */
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
        cb->used += etl_pg_copy_escape(cb->buf + cb->used, s, n);
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
            } else if (t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN) {
                s = t == LUA_TBOOLEAN ? (lua_toboolean(L, -1) ? "t" : "f")
                                      : lua_tolstring(L, -1, &len);
                if (t == LUA_TBOOLEAN)
                    len = 1;
                if (memchr(s, '\0', len) != NULL) {
                    etl_pg_copy_abort(cb);
                    lua_pushnil(L);
                    lua_pushfstring(L, "value contains a NUL byte (row %d, column %d)",
                                    (int)r, f);
                    lua_pushliteral(L, "22021");
                    return -1;
                }
                rc = etl_pg_put_field(cb, s, len);
            } else {
                etl_pg_copy_abort(cb);
                return luaL_error(L, "copy: rows[%d][%d] is a %s", (int)r, f,
                                  lua_typename(L, t));
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

/* db:copy(copy_sql, ncols, rows) -> count | nil, msg, code
 * copy_sql is "COPY t (cols) FROM STDIN" (text format); rows[i][j], j = 1..ncols, nil = NULL. */
static int etl_pg_copy(lua_State *L)
{
    struct etl_pg_conn *c = etl_pg_checkc(L);
    PGconn *conn = c->conn;
    const char *sql = luaL_checkstring(L, 2);
    lua_Integer ncols = luaL_checkinteger(L, 3);
    luaL_argcheck(L, ncols >= 1 && ncols <= 1600, 3, "column count out of range");
    luaL_checktype(L, 4, LUA_TTABLE);
    lua_settop(L, 4);
    struct etl_pg_copybuf cb = {L, c, conn, lua_newuserdatauv(L, COPY_CHUNK, 0), 0};

    PGresult *res = NULL;
    if (PQsendQuery(conn, sql) == 1 && etl_pg_flush_out(L, c) == 0)
        res = etl_pg_last_result(L, c);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        int n = PQresultStatus(res) == PGRES_FATAL_ERROR ? etl_pg_push_error(L, conn, res) : -1;
        PQclear(res);
        etl_pg_drain(L, c);
        if (n < 0)
            return luaL_error(L, "copy: statement is not COPY ... FROM STDIN");
        return n;
    }
    PQclear(res);
    if (etl_pg_copy_rows(L, &cb, (int)ncols) != 0)
        return 3;
    if (etl_pg_put_end(L, c, NULL) != 0) {
        etl_pg_push_error(L, conn, NULL);
        etl_pg_drain(L, c);
        return 3;
    }
    res = etl_pg_last_result(L, c);
    int n;
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        lua_pushinteger(L, strtoll(PQcmdTuples(res), NULL, 10));
        n = 1;
    } else {
        n = etl_pg_push_error(L, conn, res);
    }
    PQclear(res);
    etl_pg_drain(L, c);
    return n;
}

/* ---- module -------------------------------------------------------------------------------- */

int luaopen_etlua_pg(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"exec", etl_pg_exec},     {"copy", etl_pg_copy},     {"quote_ident", etl_pg_quote_ident},
        {"status", etl_pg_status}, {"close", etl_pg_close},   {"on_wait", etl_pg_on_wait},
        {"wait_error", etl_pg_wait_error}, {NULL, NULL},
    };
    static const luaL_Reg funcs[] = {{"connect", etl_pg_connect}, {NULL, NULL}};
    if (luaL_newmetatable(L, CONN_MT)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, etl_pg_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, etl_pg_close);
        lua_setfield(L, -2, "__close");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
