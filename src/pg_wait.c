/* pg_wait.c: running an etlua.pg command so that waiting on the server never shuts out Lua.
 * Every call runs on libpq's non-blocking interface (PQsendQuery*, PQflush, PQconsumeInput,
 * PQisBusy, poll() on PQsocket), so while the server makes a call wait (a lock, a slow disk) the
 * connection's wait hook (db:on_wait) can run: the runner extends the SQS visibility of the
 * messages it holds from there, and processes the next batch a slice at a time (a hook that
 * returns true has more to do: it is called again as soon as it returns, for as long as the
 * server has not answered). Owns the waiting loop, the hook's call under lua_pcall, collecting a
 * command's results, queued statements (BEGIN, SAVEPOINT) sent ahead of the next one in one
 * round trip (libpq's pipeline mode), sending COPY data and its end, and draining a connection
 * back to idle. */
#include "etlua/pg_internal.h"

#include <errno.h>
#include <poll.h>
#include <time.h>

/* ---- waiting on the server ------------------------------------------------------------------ */

double etl_pg_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Calls the wait hook of the connection at stack index 1 under lua_pcall (stack-neutral). An
 * error is kept for db:wait_error() and never reaches the call that was waiting. The hook's
 * result, true or not, is kept in c->more: true says it has more to do right away. */
static void etl_pg_call_hook(lua_State *L, struct etl_pg_conn *c)
{
    c->more = 0;
    if (lua_getiuservalue(L, 1, 1) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        c->interval = 0;
        return;
    }
    c->in_hook = 1;
    int rc = lua_pcall(L, 0, 1, 0);
    c->in_hook = 0;
    if (rc != LUA_OK) {
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            lua_pushliteral(L, "wait hook raised a non-string error");
        }
        lua_setiuservalue(L, 1, 2);
        return;
    }
    /* (a hook that removed itself, db:on_wait(nil), left interval 0: nothing more to call) */
    c->more = lua_toboolean(L, -1) && c->interval > 0;
    lua_pop(L, 1);
}

/* Waits until the socket is ready for events, calling the wait hook each time it is due: every
 * interval, or at once while it says it has more to do (the socket is then only looked at,
 * poll with no timeout, between its calls). The hook runs only here, between libpq's calls, so
 * never in the middle of one of them. Returns 0 when ready (or in error: libpq finds out on its
 * next read), -1 without a socket. */
static int etl_pg_wait(lua_State *L, struct etl_pg_conn *c, short events)
{
    int fd = PQsocket(c->conn);
    if (fd < 0)
        return -1;
    for (;;) {
        int timeout = -1;
        if (c->interval > 0 && c->more) {
            timeout = 0;
        } else if (c->interval > 0) {
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
        if (n == 0 && timeout == 0) { /* not answered yet: the hook's next piece of work */
            etl_pg_call_hook(L, c);
            c->due = etl_pg_mono() + c->interval;
        }
    }
}

/* Sends what libpq has buffered, reading input meanwhile. Returns 0, or -1 on failure. */
int etl_pg_flush_out(lua_State *L, struct etl_pg_conn *c)
{
    int r;
    while ((r = PQflush(c->conn)) == 1)
        if (etl_pg_wait(L, c, POLLIN | POLLOUT) != 0 || PQconsumeInput(c->conn) == 0)
            return -1;
    return r == 0 ? 0 : -1;
}

/* The next result of the command in progress, waiting while libpq is busy; NULL once the
 * command is complete. */
PGresult *etl_pg_next_result(lua_State *L, struct etl_pg_conn *c)
{
    while (PQisBusy(c->conn))
        if (etl_pg_wait(L, c, POLLIN) != 0 || PQconsumeInput(c->conn) == 0)
            break; /* PQgetResult reports the failure */
    return PQgetResult(c->conn);
}

/* What PQexec returns, the non-blocking way: the command's last result (its first error wins),
 * or its COPY_IN/COPY_OUT result as soon as that arrives; NULL when the connection failed. */
PGresult *etl_pg_last_result(lua_State *L, struct etl_pg_conn *c)
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

int etl_pg_pending_queue(lua_State *L, struct etl_pg_conn *c)
{
    int n = c->npending;
    if (n == 0)
        return 0;
    c->npending = 0;
    if (PQenterPipelineMode(c->conn) != 1)
        return -1;
    lua_getiuservalue(L, 1, 4);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        int ok = PQsendQueryParams(c->conn, lua_tostring(L, -1), 0, NULL, NULL, NULL, NULL, 0);
        lua_pop(L, 1);
        if (ok != 1) {
            lua_pop(L, 1);
            PQexitPipelineMode(c->conn);
            return -1;
        }
    }
    lua_pop(L, 1);
    return n;
}

PGresult *etl_pg_pipeline_result(lua_State *L, struct etl_pg_conn *c, int n)
{
    PGresult *failed = NULL, *res = NULL, *r;
    int sent = PQpipelineSync(c->conn) == 1 && etl_pg_flush_out(L, c) == 0, ok = sent;
    /* each query's results end with a NULL; after a failure the rest come as PIPELINE_ABORTED */
    for (int i = 0; sent && i < n && PQstatus(c->conn) == CONNECTION_OK; i++) {
        r = etl_pg_last_result(L, c);
        if (ok && (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)) {
            failed = r;
            ok = 0;
        } else {
            PQclear(r);
        }
    }
    if (sent && PQstatus(c->conn) == CONNECTION_OK)
        res = etl_pg_last_result(L, c);
    while (sent && PQstatus(c->conn) == CONNECTION_OK && (r = etl_pg_next_result(L, c)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st == PGRES_PIPELINE_SYNC)
            break;
    }
    PQexitPipelineMode(c->conn); /* fails only on a connection that is gone */
    if (!ok) {
        PQclear(res);
        return failed; /* NULL when the connection failed */
    }
    return res;
}

/* Runs the statements db:queue left pending one by one, outside any pipeline (before a COPY, or
 * before preparing a statement: Parse would be refused in a transaction a queued ROLLBACK TO
 * SAVEPOINT is to repair). Returns 0, or 3 with nil, msg, code pushed (the first failure). */
int etl_pg_pending_alone(lua_State *L, struct etl_pg_conn *c)
{
    int n = c->npending;
    c->npending = 0;
    if (n == 0)
        return 0;
    lua_getiuservalue(L, 1, 4);
    for (int i = 1; i <= n; i++) {
        PGresult *res = NULL;
        lua_rawgeti(L, -1, i);
        if (PQsendQueryParams(c->conn, lua_tostring(L, -1), 0, NULL, NULL, NULL, NULL, 0) == 1 &&
            etl_pg_flush_out(L, c) == 0)
            res = etl_pg_last_result(L, c);
        lua_pop(L, 1);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            lua_pop(L, 1);
            int rc = etl_pg_push_error(L, c->conn, res);
            PQclear(res);
            return rc;
        }
        PQclear(res);
    }
    lua_pop(L, 1);
    return 0;
}

/* PQputCopyData / PQputCopyEnd on a non-blocking connection: retried while libpq's buffers are
 * full. Return 0, or -1 on failure. */
int etl_pg_put_copy(lua_State *L, struct etl_pg_conn *c, const char *buf, int len)
{
    int r;
    while ((r = PQputCopyData(c->conn, buf, len)) == 0)
        if (etl_pg_wait(L, c, POLLIN | POLLOUT) != 0 || PQconsumeInput(c->conn) == 0)
            return -1;
    return r == 1 ? 0 : -1;
}

int etl_pg_put_end(lua_State *L, struct etl_pg_conn *c, const char *errormsg)
{
    int r;
    while ((r = PQputCopyEnd(c->conn, errormsg)) == 0)
        if (etl_pg_wait(L, c, POLLIN | POLLOUT) != 0 || PQconsumeInput(c->conn) == 0)
            return -1;
    return r == 1 ? etl_pg_flush_out(L, c) : -1;
}

/* Ends whatever the connection is in the middle of, so it is ready for the next command. */
void etl_pg_drain(lua_State *L, struct etl_pg_conn *c)
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
