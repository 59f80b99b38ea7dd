/* pg.c: the etlua.pg module, the Lua binding. Owns the libpq connection handle (userdata
 * "etlua.pg.conn"): connect, close, status, quote_ident, quote_literal, the wait hook's
 * settings (on_wait, wait_error), parameterised exec (values travel as $n text parameters, never
 * inside the SQL), prepared statements (db:exec_prepared: parsed once per connection, arrays in
 * binary form), statements queued to go out with the next one (db:queue, db:begin), and
 * luaopen_etlua_pg; db:copy's COPY of Lua row arrays is pg_copy.c. Expected failures return nil,
 * message, code where code is the SQLSTATE, or "connection" when the connection is gone; misuse
 * raises. Waiting on the server without blocking is pg_wait.c; escaping and error messages are
 * pg_text.c (include/etlua/pg_internal.h lists what they share). */
#include "etlua/modules.h"
#include "etlua/pg_internal.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONN_MT "etlua.pg.conn"

/* ---- connect / close ----------------------------------------------------------------------- */

static void etl_pg_quiet(void *arg, const char *message)
{
    (void)arg; /* NOTICEs ("relation already exists, skipping") are not ours to print */
    (void)message;
}

/* libpq's reading of a connection string, or NULL with nil, msg, "config" pushed (3 values).
 * The message never quotes the string: libpq's own parse error does, and it may hold a password. */
static PQconninfoOption *parse_conninfo(lua_State *L, const char *conninfo)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (opts == NULL) {
        PQfreemem(perr);
        lua_pushnil(L);
        lua_pushliteral(L, "postgres: invalid connection string");
        lua_pushliteral(L, "config");
    }
    return opts;
}

PGconn *etl_pg_connectdb(const char *conninfo)
{
    /* conninfo (a keyword string or a URI; "" leaves everything to the PG* environment) is
     * expanded in place of dbname; the keywords after it override what it says. */
    const char *const keys[] = {"dbname", "client_encoding", "fallback_application_name", NULL};
    const char *const vals[] = {conninfo, "UTF8", "etlua", NULL};
    return PQconnectdbParams(keys, vals, 1);
}

/* pg.connect(conninfo) -> conn | nil, msg, "connection" | nil, msg, "config" */
static int etl_pg_connect(lua_State *L)
{
    const char *conninfo = luaL_optstring(L, 1, "");
    PQconninfoOption *opts = parse_conninfo(L, conninfo);
    if (opts == NULL)
        return 3;
    char pw[512] = "";
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val != NULL)
            snprintf(pw, sizeof pw, "%s", o->val);
    PQconninfoFree(opts);

    struct etl_pg_conn *c = lua_newuserdatauv(L, sizeof *c, 4);
    c->conn = NULL;
    c->interval = c->due = 0;
    c->in_hook = 0;
    c->more = 0;
    c->nstmt = 0;
    c->npending = 0;
    c->copy_buf = NULL;
    c->copy_cap = 0;
    luaL_setmetatable(L, CONN_MT);
    int taken; /* made by pg.prestart for this conninfo (pg_prestart.c), its outcome ours */
    c->conn = etl_pg_prestarted(conninfo, &taken);
    if (!taken)
        c->conn = etl_pg_connectdb(conninfo);
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

/* pg.parse_conninfo(s) -> {keyword = value} for the keywords s sets (a URI or key=value pairs,
 * read by libpq itself, percent-decoding included) | nil, msg, "config". The message never quotes
 * s: libpq's own parse error does, and s may hold a password. */
static int etl_pg_parse_conninfo(lua_State *L)
{
    PQconninfoOption *opts = parse_conninfo(L, luaL_checkstring(L, 1));
    if (opts == NULL)
        return 3;
    lua_newtable(L);
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (o->val != NULL) {
            lua_pushstring(L, o->val);
            lua_setfield(L, -2, o->keyword);
        }
    PQconninfoFree(opts);
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

static PGconn *etl_pg_check(lua_State *L) { return etl_pg_checkc(L)->conn; }

/* db:on_wait(interval_s, fn [, first_s]) -> db: while a call waits on the server, fn() is called
 * every interval_s seconds (the first time first_s, default interval_s, after this call), under
 * lua_pcall: an error in fn never breaks the call (db:wait_error() returns it). fn returning true
 * says it has more to do: it is called again as soon as it returns, in this wait and the next
 * ones, for as long as the server has not answered, until a call returns something else. fn must
 * not use this connection. db:on_wait(nil) removes the hook. */
static int etl_pg_on_wait(lua_State *L)
{
    struct etl_pg_conn *c = luaL_checkudata(L, 1, CONN_MT);
    c->more = 0;
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
    etl_pg_copy_free(c);
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

/* Pushes the string at stack index 2 quoted by libpq's escape (PQescapeIdentifier or
 * PQescapeLiteral: both refuse what this server's encoding cannot hold); raises on a NUL byte or
 * what libpq refuses. what: "identifier" or "string", for the errors. */
static int etl_pg_push_quoted(lua_State *L, char *(*escape)(PGconn *, const char *, size_t),
                              const char *what)
{
    PGconn *conn = etl_pg_check(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    if (memchr(s, '\0', len) != NULL)
        return luaL_argerror(L, 2, lua_pushfstring(L, "%s contains a NUL byte", what));
    char *q = escape(conn, s, len);
    if (q == NULL)
        return luaL_error(L, "cannot quote %s: %s", what, PQerrorMessage(conn));
    lua_pushstring(L, q);
    PQfreemem(q);
    return 1;
}

/* db:quote_ident(name) -> "quoted"; raises on a name libpq cannot quote. */
static int etl_pg_quote_ident(lua_State *L)
{
    return etl_pg_push_quoted(L, PQescapeIdentifier, "identifier");
}

/* db:quote_literal(s) -> 's' quoted as a string constant of this connection's server; raises on
 * a string libpq cannot quote. For names in a statement without parameters (db:copy's guard). */
static int etl_pg_quote_literal(lua_State *L)
{
    return etl_pg_push_quoted(L, PQescapeLiteral, "string");
}

/* ---- exec ---------------------------------------------------------------------------------- */

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

/* Pushes what db:exec returns for res (and clears it): rows, affected, ncols | nil, msg, code. */
static int etl_pg_exec_result(lua_State *L, struct etl_pg_conn *c, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT) {
        PQclear(res);
        etl_pg_drain(L, c);
        return luaL_error(L, "use db:copy() for COPY statements");
    }
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        int n = etl_pg_push_error(L, c->conn, res);
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

/* db:exec(sql, ...) -> rows, affected, ncols | nil, msg, code
 * Parameters: nil -> NULL, strings and numbers as text (lua_tolstring), booleans -> true/false,
 * arrays (tables, length n or #) -> a text array literal for $n::text[]. One statement only. */
static int etl_pg_exec(lua_State *L)
{
    struct etl_pg_conn *c = etl_pg_checkc(L);
    const char *sql = luaL_checkstring(L, 2);
    int nparams = lua_gettop(L) - 2;
    luaL_argcheck(L, nparams <= 65535, 3, "too many parameters");
    struct etl_pg_params p;
    if (etl_pg_params(L, 3, nparams, NULL, &p) != 0)
        return 3;
    int piped = etl_pg_pending_queue(L, c);
    PGresult *res = NULL;
    if (piped >= 0 &&
        PQsendQueryParams(c->conn, sql, nparams, NULL, p.values, p.binary ? p.lengths : NULL,
                          p.binary ? p.formats : NULL, 0) == 1)
        res = piped                         ? etl_pg_pipeline_result(L, c, piped)
              : etl_pg_flush_out(L, c) == 0 ? etl_pg_last_result(L, c)
                                            : NULL;
    else if (piped > 0)
        PQclear(etl_pg_pipeline_result(L, c, piped));
    return etl_pg_exec_result(L, c, res);
}

/* db:queue(sql) -> true: sql (one statement without parameters, e.g. SAVEPOINT) goes out ahead
 * of the next db:exec or db:exec_prepared, in the same round trip (libpq's pipeline mode; before
 * a db:copy, each alone). When a queued statement fails, the next call returns its error and
 * the statements after it do not run. At most 8 wait at a time. */
static int etl_pg_queue(lua_State *L)
{
    struct etl_pg_conn *c = etl_pg_checkc(L);
    luaL_checkstring(L, 2);
    luaL_argcheck(L, c->npending < 8, 2, "too many queued statements");
    if (c->npending == 0 || lua_getiuservalue(L, 1, 4) != LUA_TTABLE) {
        lua_settop(L, 2);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, 4);
    }
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, ++c->npending);
    lua_pushboolean(L, 1);
    return 1;
}

/* db:begin() -> true: db:queue("BEGIN"), a round trip less per transaction. */
static int etl_pg_begin(lua_State *L)
{
    lua_settop(L, 1);
    lua_pushliteral(L, "BEGIN");
    return etl_pg_queue(L);
}

/* A statement prepared on a connection: its name and the types the server gave its parameters. */
struct etl_pg_stmt {
    char name[24];
    int nparams;
    Oid types[];
};

/* Pushes the etl_pg_stmt of sql on c (the connection at stack index 1), preparing it (Parse,
 * then Describe: two round trips, once per connection and statement) when it is new. Returns it,
 * or NULL with nil, msg, code pushed. */
static struct etl_pg_stmt *etl_pg_stmt(lua_State *L, struct etl_pg_conn *c, int sql_idx)
{
    if (lua_getiuservalue(L, 1, 3) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, 3);
    }
    lua_pushvalue(L, sql_idx);
    if (lua_rawget(L, -2) == LUA_TUSERDATA) {
        lua_remove(L, -2);
        return lua_touserdata(L, -1);
    }
    lua_pop(L, 2);
    if (etl_pg_pending_alone(L, c) != 0) /* Parse after what is queued (a ROLLBACK TO ...) */
        return NULL;
    lua_getiuservalue(L, 1, 3);
    char name[24];
    snprintf(name, sizeof name, "etlua_%u", ++c->nstmt);
    PGresult *res = NULL;
    if (PQsendPrepare(c->conn, name, lua_tostring(L, sql_idx), 0, NULL) == 1 &&
        etl_pg_flush_out(L, c) == 0)
        res = etl_pg_last_result(L, c);
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        PQclear(res);
        res = NULL;
        if (PQsendDescribePrepared(c->conn, name) == 1 && etl_pg_flush_out(L, c) == 0)
            res = etl_pg_last_result(L, c);
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        lua_pop(L, 1);
        etl_pg_push_error(L, c->conn, res);
        PQclear(res);
        return NULL;
    }
    int n = PQnparams(res);
    struct etl_pg_stmt *st = lua_newuserdatauv(L, sizeof *st + sizeof(Oid) * (size_t)n, 0);
    memcpy(st->name, name, sizeof name);
    st->nparams = n;
    for (int i = 0; i < n; i++)
        st->types[i] = PQparamtype(res, i);
    PQclear(res);
    lua_pushvalue(L, sql_idx);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4); /* cache[sql] = st */
    lua_remove(L, -2);
    return st;
}

/* db:exec_prepared(sql, ...) -> as db:exec. For a statement run many times: it is parsed and
 * planned once per connection (a named prepared statement, kept by its text for the
 * connection's life), and array parameters the server typed int4[], int8[], "char"[] or text[]
 * travel in binary form (pg_param.c). The text must hold values only as $n parameters. A
 * statement the server no longer has (DISCARD ALL) or whose plan no longer fits (its result
 * type changed) is forgotten and prepared again: at once outside a transaction (the server ran
 * nothing), else at the next call (the error has ended the transaction). */
static int etl_pg_exec_prepared(lua_State *L)
{
    struct etl_pg_conn *c = etl_pg_checkc(L);
    luaL_checkstring(L, 2);
    int nparams = lua_gettop(L) - 2;
    luaL_argcheck(L, nparams <= 65535, 3, "too many parameters");
    for (int attempt = 0;; attempt++) {
        struct etl_pg_stmt *st = etl_pg_stmt(L, c, 2);
        if (st == NULL)
            return 3;
        /* converted in copies: a second attempt needs the values as they came */
        luaL_checkstack(L, nparams + 8, "too many parameters");
        int first = lua_gettop(L) + 1;
        for (int i = 0; i < nparams; i++)
            lua_pushvalue(L, 3 + i);
        struct etl_pg_params p;
        if (etl_pg_params(L, first, nparams, nparams == st->nparams ? st->types : NULL, &p) != 0)
            return 3;
        int piped = etl_pg_pending_queue(L, c);
        PGresult *res = NULL;
        if (piped >= 0 &&
            PQsendQueryPrepared(c->conn, st->name, nparams, p.values, p.lengths, p.formats, 0) == 1)
            res = piped                         ? etl_pg_pipeline_result(L, c, piped)
                  : etl_pg_flush_out(L, c) == 0 ? etl_pg_last_result(L, c)
                                                : NULL;
        else if (piped > 0)
            PQclear(etl_pg_pipeline_result(L, c, piped));
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (state == NULL || (strcmp(state, "26000") != 0 && strcmp(state, "0A000") != 0))
            return etl_pg_exec_result(L, c, res);
        lua_getiuservalue(L, 1, 3);
        lua_pushvalue(L, 2);
        lua_pushnil(L);
        lua_rawset(L, -3);
        if (attempt > 0 || PQtransactionStatus(c->conn) != PQTRANS_IDLE)
            return etl_pg_exec_result(L, c, res);
        PQclear(res);
        lua_settop(L, nparams + 2);
    }
}

/* db:copy(copy_sql, ncols, rows [, types [, guard [, after]]]) -> count | nil, msg, code [, types]
 * (pg_copy.c) */
static int etl_pg_copy(lua_State *L) { return etl_pg_copy_run(L, etl_pg_checkc(L)); }

/* ---- module -------------------------------------------------------------------------------- */

int luaopen_etlua_pg(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"exec", etl_pg_exec},
        {"exec_prepared", etl_pg_exec_prepared},
        {"begin", etl_pg_begin},
        {"queue", etl_pg_queue},
        {"copy", etl_pg_copy},
        {"quote_ident", etl_pg_quote_ident},
        {"quote_literal", etl_pg_quote_literal},
        {"status", etl_pg_status},
        {"close", etl_pg_close},
        {"on_wait", etl_pg_on_wait},
        {"wait_error", etl_pg_wait_error},
        {NULL, NULL},
    };
    static const luaL_Reg funcs[] = {{"connect", etl_pg_connect},
                                     {"prestart", etl_pg_prestart},
                                     {"parse_conninfo", etl_pg_parse_conninfo},
                                     {"array_values", etl_pg_array_values},
                                     {NULL, NULL}};
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
    etl_pg_push_copy_types(L);
    lua_setfield(L, -2, "copy_binary_types");
    return 1;
}
