/* pg_internal.h: what the C files of etlua.pg share and nothing outside them uses: the
 * connection userdata (struct etl_pg_conn) and the functions one file calls in another. The files:
 *  - src/pg.c       the Lua binding: connect, the handle's methods (exec, copy, on_wait, ...),
 *                   luaopen_etlua_pg;
 *  - src/pg_wait.c  running a command without blocking: sending, polling the socket, calling
 *                   the wait hook, collecting results, COPY data and its end, draining;
 *  - src/pg_text.c  text in and out of Postgres: COPY field escaping, array literals, and error
 *                   messages made safe to log (quoted values elided, passwords scrubbed);
 *  - src/pg_copy.c  db:copy: rows into a table by COPY, in binary form when it can, else text;
 *  - src/pg_prestart.c a connection started early in a thread (pg.prestart), taken by connect;
 *  - src/pg_param.c a statement's parameters: Lua values to libpq's values, lengths and formats
 *                   (arrays in binary form for the typed parameters of prepared statements).
 * The functions that reach a connection's user values (the wait hook) expect it at stack index
 * 1 (the self of a method); "pushes nil, msg, code" means the three values of an expected
 * failure. */
#ifndef ETLUA_PG_INTERNAL_H
#define ETLUA_PG_INTERNAL_H

#include "etlua/pg.h"

#include <libpq-fe.h>
#include <lua.h>

/* The userdata; user value 1 is the wait hook (a function or nil), user value 2 the message of
 * the last error the hook raised (db:wait_error), user value 3 the statements prepared on this
 * connection (db:exec_prepared: SQL text -> its struct etl_pg_stmt userdata), user value 4 the
 * statements queued by db:queue / db:begin (an array of npending strings). */
struct etl_pg_conn {
    PGconn *conn;    /* NULL once closed */
    unsigned nstmt;  /* statements prepared so far: names the next one */
    int npending;    /* statements db:queue / db:begin left to go out with the next one */
    double interval; /* seconds between calls of the wait hook; 0: no hook */
    double due;      /* monotonic time of the hook's next call */
    int in_hook;     /* the hook is running: it must not use this connection */
    int more;        /* the hook's last call returned true: call it again as soon as it returns */
    unsigned char *copy_buf; /* db:copy's data, kept for the next COPY (malloc'd; pg_copy.c) */
    size_t copy_cap;
};

/* ---- connecting (pg.c, pg_prestart.c) -------------------------------------------------------- */

/* The one way etlua.pg connects: PQconnectdbParams with conninfo expanded in place of dbname,
 * client_encoding UTF8 and fallback_application_name etlua. The result as libpq gives it. */
PGconn *etl_pg_connectdb(const char *conninfo);

/* pg.prestart(conninfo): etl_pg_connectdb(conninfo) started in a thread of its own (the
 * executable only). */
int etl_pg_prestart(lua_State *L);

/* The prestarted connection's result when it was started for exactly conninfo (waited for; *taken
 * = 1, the result possibly NULL or failed, as etl_pg_connectdb's), else NULL with *taken = 0 (one
 * for another conninfo is given up). */
PGconn *etl_pg_prestarted(const char *conninfo, int *taken);

/* Frees the connection's COPY buffer (db:close). */
void etl_pg_copy_free(struct etl_pg_conn *c);

/* ---- waiting on the server (pg_wait.c) ----------------------------------------------------- */

/* Monotonic time in seconds: when the wait hook is due. */
double etl_pg_mono(void);

/* Sends what libpq has buffered, reading input meanwhile. Returns 0, or -1 on failure. */
int etl_pg_flush_out(lua_State *L, struct etl_pg_conn *c);

/* What PQexec returns, the non-blocking way: the command's last result (its first error wins),
 * or its COPY_IN/COPY_OUT result as soon as that arrives; NULL when the connection failed. */
PGresult *etl_pg_last_result(lua_State *L, struct etl_pg_conn *c);

/* The next result of the command in progress, waiting while libpq is busy; NULL once the
 * command is complete. */
PGresult *etl_pg_next_result(lua_State *L, struct etl_pg_conn *c);

/* PQputCopyData / PQputCopyEnd on a non-blocking connection: retried while libpq's buffers are
 * full. Return 0, or -1 on failure. */
int etl_pg_put_copy(lua_State *L, struct etl_pg_conn *c, const char *buf, int len);
int etl_pg_put_end(lua_State *L, struct etl_pg_conn *c, const char *errormsg);

/* The statements db:queue / db:begin left pending (connection at stack index 1), queued ahead of
 * the statement about to be sent: enters pipeline mode and queues them (returns how many), or
 * returns 0 when none is pending (the queue is emptied either way), -1 when libpq refused (the
 * connection is unusable: PQerrorMessage). */
int etl_pg_pending_queue(lua_State *L, struct etl_pg_conn *c);

/* After etl_pg_pending_queue returned n > 0 and the statement was queued: sends them with one
 * Sync and returns what etl_pg_last_result would for the statement (the first queued
 * statement's error when one failed), out of pipeline mode again. NULL when the connection
 * failed. */
PGresult *etl_pg_pipeline_result(lua_State *L, struct etl_pg_conn *c, int n);

/* Runs the statements db:queue left pending one by one, outside any pipeline (before a COPY,
 * or before preparing a statement). Returns 0, or 3 with nil, msg, code pushed. */
int etl_pg_pending_alone(lua_State *L, struct etl_pg_conn *c);

/* Ends whatever the connection is in the middle of, so it is ready for the next command. */
void etl_pg_drain(lua_State *L, struct etl_pg_conn *c);

/* ---- COPY (pg_copy.c) ----------------------------------------------------------------------- */

/* db:copy(copy_sql, ncols, rows [, types [, guard [, after]]]) -> count | nil, msg, code [, types],
 * c being the connection at stack index 1. copy_sql is "COPY t (cols) FROM STDIN", without
 * options; rows[i][j], j = 1..ncols, nil = NULL. types (optional): the server's type OID of each
 * column, in order; when given, the rows go in COPY's binary format (copy_sql .. " (FORMAT
 * binary)") if every column's type and every value has a binary form pg_copy.c knows, else as
 * text. guard (optional): statements without parameters sent ahead of the COPY in the same
 * message (simple protocol), the last of them answering the columns' type OIDs as the table has
 * them now, one row each, in order (LOCK TABLE, then that SELECT): binary data goes only if they
 * are `types`, else the COPY is cancelled, nothing sent, and the call returns nil, msg,
 * "types_changed", the OIDs the guard read (the transaction is then aborted). after (optional):
 * statements sent after the COPY in the same message (COMMIT: a round trip less), run only when
 * the COPY succeeded; their failure is the call's. count is the COPY's. */
int etl_pg_copy_run(lua_State *L, struct etl_pg_conn *c);

/* Pushes the set of type OIDs with a binary form in db:copy ({[oid] = true}): pg.copy_binary_types. */
void etl_pg_push_copy_types(lua_State *L);

/* ---- parameters (pg_param.c) ---------------------------------------------------------------- */

/* What PQsendQueryParams / PQsendQueryPrepared take; the arrays live in a userdata on the stack. */
struct etl_pg_params {
    const char **values;
    int *lengths;
    int *formats;
    int binary; /* some parameter is in binary form */
};

/* Fills p from the nparams Lua values at stack index first.. (types[i]: the server's type of
 * parameter i, or types NULL: no binary form). Converted values replace the originals on the
 * stack, which keeps them alive until the call ends; pushes one userdata. Returns 0, or 3 with
 * nil, msg, code pushed (a NUL byte in a text parameter); raises on a value of another type. */
int etl_pg_params(lua_State *L, int first, int nparams, const Oid *types, struct etl_pg_params *p);

/* pg.array_values(a) -> the elements of an array made by etl_pg_push_int_array or
 * etl_pg_push_char_array, as a Lua array (tests). */
int etl_pg_array_values(lua_State *L);
/* The element count of the Lua array at idx: field n when it is an integer, else its raw length. */
lua_Integer etl_pg_array_len(lua_State *L, int idx);

/* ---- text (pg_text.c) ---------------------------------------------------------------------- */

/* Pushes nil, message, code for a failed result (res may be NULL) and returns 3. */
int etl_pg_push_error(lua_State *L, PGconn *conn, const PGresult *res);

/* Pushes nil, scrubbed message, "connection" for a failed connect and returns 3. */
int etl_pg_connect_error(lua_State *L, PGconn *conn, const char *conninfo_pw);

/* etl_pg_copy_escape for src the caller has checked holds no NUL byte. */
size_t etl_pg_copy_escape_nonul(char *dst, const char *src, size_t len);

/* Writes v in decimal (as lua_tolstring would) into dst (>= 21 bytes, not NUL-terminated);
 * returns the length. */
size_t etl_pg_int_text(char *dst, long long v);

/* Converts the Lua array at idx into a Postgres array literal {"a","b",NULL} (each element
 * double-quoted, \ and " escaped), left on the stack. Its length is field n when that is an
 * integer (arrays with nil holes), else its raw length. Raises on an element that is not a
 * string or number. */
void etl_pg_array_literal(lua_State *L, int idx);

#endif
