/* sqs_async.c: the concurrent methods of etlua.sqs (start_receive, start_delete_batch,
 * start_change_visibility_batch, poll, pending, receive_many; their Lua conventions are in
 * include/etlua/sqs.h). It owns the client's curl multi transport (http.h), the table of
 * requests in flight (user value UV_PENDING: token -> kind) and the list of finished ones not
 * yet handed out by poll (UV_DONE). Signing and reading answers: sqs_call.c; request bodies:
 * sqs_request.c. */
#include "etlua/host.h"
#include "etlua/http.h"
#include "etlua/sqs.h"
#include "etlua/sqs_internal.h"

#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

/* What a request in flight was for; kept in the pending table as kind * 2 + (json ? 1 : 0). */
enum kind { K_RECEIVE = 1, K_DELETE, K_CHANGE };

static const char *kind_name(int kind)
{
    return kind == K_RECEIVE ? "receive" : kind == K_DELETE ? "delete_batch"
                                                            : "change_visibility_batch";
}

static const char *kind_action(int kind)
{
    return kind == K_RECEIVE ? "ReceiveMessage" : kind == K_DELETE ? "DeleteMessageBatch"
                                                                   : "ChangeMessageVisibilityBatch";
}

static void ensure_multi(lua_State *L, struct client *c)
{
    if (!c->multi && !(c->multi = etl_http_multi_open(etl_http_ca_bundle(c->http), c->max_inflight)))
        luaL_error(L, "etlua.sqs: cannot initialise libcurl multi");
}

/* Sends the request body (a JSON string at the top of the stack, consumed, or the form) on the
 * concurrent transport and records it as pending. Pushes the token, or nil, msg, code. */
static int start_request(lua_State *L, struct client *c, int kind, struct etl_sqs_form *form,
                         long extra_ms)
{
    int json = form == NULL;
    const char *action = kind_action(kind);
    char msg[600];
    unsigned long long id = 0;
    enum etl_sqs_code code;
    if (json) {
        size_t len;
        const char *body = lua_tolstring(L, -1, &len);
        code = etl_sqs_start_signed(c, action, 1, body, len, extra_ms, kind == K_RECEIVE, &id,
                                    msg, sizeof msg);
        lua_pop(L, 1);
    } else if (!form->ok) {
        etl_sqs_query_free(form);
        return etl_sqs_push_failure(L, ETL_SQS_CLIENT, "SQS: out of memory");
    } else {
        code = etl_sqs_start_signed(c, action, 0, form->p, form->len, extra_ms,
                                    kind == K_RECEIVE, &id, msg, sizeof msg);
        etl_sqs_query_free(form);
    }
    if (code != ETL_SQS_OK)
        return etl_sqs_push_failure(L, code, msg);
    lua_getiuservalue(L, 1, UV_PENDING);
    lua_pushinteger(L, kind * 2 + json);
    lua_rawseti(L, -2, (lua_Integer)id);
    lua_pop(L, 1);
    lua_pushinteger(L, (lua_Integer)id);
    return 1;
}

/* Starts one ReceiveMessage with the arguments at a. Pushes the token, or nil, msg, code. */
static int start_receive(lua_State *L, struct client *c, const char *queue,
                         const struct recv_args *a)
{
    long extra_ms = (long)a->wait * 1000;
    if (c->protocol == PROTO_JSON) {
        etl_sqs_push_receive_json(L, queue, a);
        if (etl_sqs_encode_json_request(L) != 0)
            return 3;
        return start_request(L, c, K_RECEIVE, NULL, extra_ms);
    }
    struct etl_sqs_form f;
    etl_sqs_receive_form(&f, queue, a);
    return start_request(L, c, K_RECEIVE, &f, extra_ms);
}

/* Appends a finished request to the done list (table at done): the record on top is consumed. */
static void append_done(lua_State *L, int done)
{
    lua_rawseti(L, done, (lua_Integer)lua_rawlen(L, done) + 1);
}

/* Moves every finished request of the transport into the done list as a record
 * {token=, kind=, result=} or {token=, kind=, err=, code=}. */
static void collect(lua_State *L, struct client *c)
{
    lua_getiuservalue(L, 1, UV_DONE);
    int done = lua_gettop(L);
    lua_getiuservalue(L, 1, UV_PENDING);
    int pending = done + 1;
    lua_getiuservalue(L, 1, UV_CODEC);
    int codec = done + 2;
    struct etl_http_done d;
    while (etl_http_multi_next(c->multi, &d)) {
        lua_rawgeti(L, pending, (lua_Integer)d.id);
        lua_Integer tag = lua_tointeger(L, -1);
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_rawseti(L, pending, (lua_Integer)d.id);
        int kind = (int)(tag / 2), json = (int)(tag % 2);
        if (kind < K_RECEIVE || kind > K_CHANGE) { /* not ours: cannot happen */
            etl_http_response_free(&d.resp);
            continue;
        }
        const char *action = kind_action(kind);
        lua_createtable(L, 0, 4);
        int rec = lua_gettop(L);
        lua_pushinteger(L, (lua_Integer)d.id);
        lua_setfield(L, rec, "token");
        lua_pushstring(L, kind_name(kind));
        lua_setfield(L, rec, "kind");
        int failed = 0;
        if (d.status != ETL_HTTP_OK) {
            char msg[600];
            snprintf(msg, sizeof msg, "SQS %s: %s", action, d.err);
            etl_sqs_push_failure(L, etl_sqs_code_of_http(d.status), msg);
            failed = 1;
        } else if (json) {
            int mismatch;
            if (etl_sqs_answer_json(L, c, codec, action, &d.resp, &mismatch) != 0) {
                failed = 1;
            } else {
                if (kind == K_RECEIVE)
                    etl_sqs_json_messages(L, -1);
                else
                    etl_sqs_json_failures(L, -1);
                lua_remove(L, -2);
            }
        } else {
            struct etl_sqs_result r;
            memset(&r, 0, sizeof r);
            if (etl_sqs_answer_query(L, c, action, &d.resp, &r) != 0) {
                failed = 1;
            } else {
                if (kind == K_RECEIVE)
                    etl_sqs_push_query_messages(L, &r);
                else
                    etl_sqs_push_query_failures(L, &r);
                etl_sqs_result_free(&r);
            }
        }
        if (failed) { /* nil, msg, code on top */
            lua_setfield(L, rec, "code");
            lua_setfield(L, rec, "err");
            lua_pop(L, 1);
        } else {
            lua_setfield(L, rec, "result");
        }
        append_done(L, done);
    }
    lua_settop(L, done - 1);
}

/* Records an answer known without asking the service (an empty batch) under a new token. */
static int local_done(lua_State *L, struct client *c, int kind)
{
    lua_Integer token = --c->last_local_token;
    lua_getiuservalue(L, 1, UV_DONE);
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, token);
    lua_setfield(L, -2, "token");
    lua_pushstring(L, kind_name(kind));
    lua_setfield(L, -2, "kind");
    lua_newtable(L);
    lua_setfield(L, -2, "result");
    append_done(L, lua_gettop(L) - 1);
    lua_pop(L, 1);
    lua_pushinteger(L, token);
    return 1;
}

int etl_sqs_m_start_receive(lua_State *L)
{
    struct client *c = etl_sqs_check_client(L);
    struct recv_args a;
    etl_sqs_check_recv_args(L, 2, &a);
    const char *queue = etl_sqs_need_queue(L, c);
    if (etl_sqs_ensure_protocol(L, c) != 0)
        return 3;
    ensure_multi(L, c);
    return start_receive(L, c, queue, &a);
}

static int start_batch(lua_State *L, struct client *c, lua_Integer n, lua_Integer timeout)
{
    int kind = timeout < 0 ? K_DELETE : K_CHANGE;
    const char *queue = etl_sqs_need_queue(L, c);
    if (n == 0)
        return local_done(L, c, kind);
    if (etl_sqs_ensure_protocol(L, c) != 0)
        return 3;
    ensure_multi(L, c);
    if (c->protocol == PROTO_JSON) {
        etl_sqs_push_batch_json(L, queue, n, timeout);
        if (etl_sqs_encode_json_request(L) != 0)
            return 3;
        return start_request(L, c, kind, NULL, 0);
    }
    struct etl_sqs_form f;
    etl_sqs_batch_form(L, &f, queue, n, timeout);
    return start_request(L, c, kind, &f, 0);
}

int etl_sqs_m_start_delete_batch(lua_State *L)
{
    struct client *c = etl_sqs_check_client(L);
    lua_Integer n = etl_sqs_check_entries(L);
    return start_batch(L, c, n, -1);
}

int etl_sqs_m_start_change_visibility_batch(lua_State *L)
{
    struct client *c = etl_sqs_check_client(L);
    lua_Integer n = etl_sqs_check_entries(L);
    lua_Integer timeout = luaL_checkinteger(L, 3);
    luaL_argcheck(L, timeout >= 0 && timeout <= 43200, 3, "between 0 and 43200");
    return start_batch(L, c, n, timeout);
}

int etl_sqs_m_poll(lua_State *L)
{
    struct client *c = etl_sqs_check_client(L);
    lua_Integer timeout = luaL_optinteger(L, 2, 0);
    lua_getiuservalue(L, 1, UV_DONE);
    size_t ready = lua_rawlen(L, -1);
    lua_pop(L, 1);
    if (c->multi) {
        long t = ready > 0 ? 0 : timeout > 86400000 ? 86400000 : (long)timeout;
        etl_http_multi_run(c->multi, t < 0 ? -1 : t, etl_host_stop_requested);
        collect(L, c);
    }
    lua_getiuservalue(L, 1, UV_DONE); /* handed out; a fresh list takes its place */
    lua_newtable(L);
    lua_setiuservalue(L, 1, UV_DONE);
    return 1;
}

int etl_sqs_m_pending(lua_State *L)
{
    struct client *c = etl_sqs_check_client(L);
    lua_getiuservalue(L, 1, UV_DONE);
    size_t ready = lua_rawlen(L, -1);
    lua_pop(L, 1);
    lua_pushinteger(L, (lua_Integer)(ready + (c->multi ? etl_http_multi_inflight(c->multi) : 0)));
    return 1;
}

/* receive_many(n, max, wait_s [, visibility_s]): n ReceiveMessage calls at once; waits for all
 * of them. Completions of other asynchronous requests met meanwhile stay for poll. */
int etl_sqs_m_receive_many(lua_State *L)
{
    struct client *c = etl_sqs_check_client(L);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 1 && (size_t)n <= c->max_inflight, 2, "between 1 and max_inflight");
    struct recv_args a;
    etl_sqs_check_recv_args(L, 3, &a);
    lua_settop(L, 5);
    const char *queue = etl_sqs_need_queue(L, c);
    if (etl_sqs_ensure_protocol(L, c) != 0)
        return 3;
    ensure_multi(L, c);
    lua_newtable(L); /* 6: tokens of ours -> true */
    lua_pushnil(L);  /* 7: first error message */
    lua_pushnil(L);  /* 8: its code */
    lua_newtable(L); /* 9: the messages */
    lua_Integer waiting = 0, ok = 0, nmsg = 0;
    for (lua_Integer i = 0; i < n; i++) {
        if (start_receive(L, c, queue, &a) == 1) {
            lua_pushboolean(L, 1);
            lua_rawset(L, 6);
            waiting++;
        } else {
            if (lua_isnil(L, 7)) {
                lua_replace(L, 8);
                lua_replace(L, 7);
            }
            lua_settop(L, 9);
        }
    }
    while (waiting > 0) {
        etl_http_multi_run(c->multi, -1, etl_host_stop_requested);
        collect(L, c);
        lua_getiuservalue(L, 1, UV_DONE); /* 10 */
        lua_Integer len = (lua_Integer)lua_rawlen(L, 10), keep = 0;
        for (lua_Integer i = 1; i <= len; i++) {
            lua_rawgeti(L, 10, i); /* 11: record */
            lua_getfield(L, 11, "token");
            if (lua_rawget(L, 6) == LUA_TNIL) { /* someone else's: keep it, in order */
                lua_pop(L, 1);
                lua_rawseti(L, 10, ++keep);
                continue;
            }
            lua_pop(L, 1);
            waiting--;
            if (lua_getfield(L, 11, "result") == LUA_TTABLE) {
                ok++;
                for (lua_Integer j = 1; lua_rawgeti(L, 12, j) != LUA_TNIL; j++)
                    lua_rawseti(L, 9, ++nmsg);
                lua_pop(L, 1);
            } else if (lua_isnil(L, 7)) {
                lua_getfield(L, 11, "err");
                lua_replace(L, 7);
                lua_getfield(L, 11, "code");
                lua_replace(L, 8);
            }
            lua_settop(L, 10);
        }
        for (lua_Integer i = keep + 1; i <= len; i++) {
            lua_pushnil(L);
            lua_rawseti(L, 10, i);
        }
        lua_settop(L, 9);
        if (waiting > 0 && etl_http_multi_inflight(c->multi) == 0)
            return luaL_error(L, "etlua.sqs: lost track of a request in flight"); /* a bug */
    }
    if (ok == 0) {
        lua_pushnil(L);
        lua_pushvalue(L, 7);
        lua_pushvalue(L, 8);
        return 3;
    }
    lua_pushvalue(L, 9);
    lua_pushvalue(L, 7);
    lua_pushvalue(L, 8);
    return 3;
}
