/* sqs_request.c: what the blocking methods (sqs.c) and the concurrent ones (sqs_async.c) of
 * etlua.sqs share around a call: the checks of the receive arguments and of batch entries, the
 * bodies of ReceiveMessage, DeleteMessageBatch and ChangeMessageVisibilityBatch in both
 * protocols (a Lua table for JSON, a form for query), and the messages and batch failures of a
 * query answer as Lua values. Conventions: sqs_internal.h. */
#include "etlua/sqs.h"
#include "etlua/sqs_internal.h"

#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

/* ---- request bodies ------------------------------------------------------------------------ */

/* Reads max, wait_s [, visibility_s] from arguments first, first + 1, first + 2. */
void etl_sqs_check_recv_args(lua_State *L, int first, struct recv_args *a)
{
    a->max = luaL_checkinteger(L, first);
    a->wait = luaL_checkinteger(L, first + 1);
    a->has_vis = !lua_isnoneornil(L, first + 2);
    a->vis = a->has_vis ? luaL_checkinteger(L, first + 2) : 0;
    luaL_argcheck(L, a->max >= 1 && a->max <= 10, first, "between 1 and 10");
    luaL_argcheck(L, a->wait >= 0 && a->wait <= 20, first + 1, "between 0 and 20");
    luaL_argcheck(L, a->vis >= 0 && a->vis <= 43200, first + 2, "between 0 and 43200");
}

void etl_sqs_push_receive_json(lua_State *L, const char *queue, const struct recv_args *a)
{
    lua_createtable(L, 0, 6);
    lua_pushstring(L, queue);
    lua_setfield(L, -2, "QueueUrl");
    lua_pushinteger(L, a->max);
    lua_setfield(L, -2, "MaxNumberOfMessages");
    lua_pushinteger(L, a->wait);
    lua_setfield(L, -2, "WaitTimeSeconds");
    if (a->has_vis) {
        lua_pushinteger(L, a->vis);
        lua_setfield(L, -2, "VisibilityTimeout");
    }
    lua_createtable(L, 1, 0);
    lua_pushliteral(L, "SentTimestamp");
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "AttributeNames");
    lua_setfield(L, -2, "MessageSystemAttributeNames");
}

void etl_sqs_receive_form(struct etl_sqs_form *f, const char *queue, const struct recv_args *a)
{
    char num[32];
    etl_sqs_query_begin(f, "ReceiveMessage");
    etl_sqs_query_add(f, "QueueUrl", queue, strlen(queue));
    snprintf(num, sizeof num, "%lld", (long long)a->max);
    etl_sqs_query_add(f, "MaxNumberOfMessages", num, strlen(num));
    snprintf(num, sizeof num, "%lld", (long long)a->wait);
    etl_sqs_query_add(f, "WaitTimeSeconds", num, strlen(num));
    if (a->has_vis) {
        snprintf(num, sizeof num, "%lld", (long long)a->vis);
        etl_sqs_query_add(f, "VisibilityTimeout", num, strlen(num));
    }
    etl_sqs_query_add(f, "AttributeName.1", "SentTimestamp", 13);
    etl_sqs_query_add(f, "MessageSystemAttributeName.1", "SentTimestamp", 13);
}

/* Checks entries (argument 2): an array of at most 10 {id=string, receipt=string}. */
lua_Integer etl_sqs_check_entries(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    luaL_argcheck(L, n <= 10, 2, "at most 10 entries");
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 2, i) != LUA_TTABLE)
            luaL_argerror(L, 2, "entries must be tables {id=, receipt=}");
        if (lua_getfield(L, -1, "id") != LUA_TSTRING || lua_getfield(L, -2, "receipt") != LUA_TSTRING)
            luaL_argerror(L, 2, "each entry needs string id and receipt");
        lua_pop(L, 3);
    }
    return n;
}

/* The request of DeleteMessageBatch (timeout < 0) or ChangeMessageVisibilityBatch for the
 * entries at argument 2. */
void etl_sqs_push_batch_json(lua_State *L, const char *queue, lua_Integer n, lua_Integer timeout)
{
    lua_createtable(L, 0, 2);
    lua_pushstring(L, queue);
    lua_setfield(L, -2, "QueueUrl");
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        lua_createtable(L, 0, 3);
        lua_getfield(L, -2, "id");
        lua_setfield(L, -2, "Id");
        lua_getfield(L, -2, "receipt");
        lua_setfield(L, -2, "ReceiptHandle");
        if (timeout >= 0) {
            lua_pushinteger(L, timeout);
            lua_setfield(L, -2, "VisibilityTimeout");
        }
        lua_rawseti(L, -3, i);
        lua_pop(L, 1);
    }
    lua_setfield(L, -2, "Entries");
}

const char *etl_sqs_batch_action(lua_Integer timeout)
{
    return timeout < 0 ? "DeleteMessageBatch" : "ChangeMessageVisibilityBatch";
}

void etl_sqs_batch_form(lua_State *L, struct etl_sqs_form *f, const char *queue, lua_Integer n,
                        lua_Integer timeout)
{
    const char *prefix = timeout < 0 ? "DeleteMessageBatchRequestEntry"
                                     : "ChangeMessageVisibilityBatchRequestEntry";
    char key[96], num[32];
    etl_sqs_query_begin(f, etl_sqs_batch_action(timeout));
    etl_sqs_query_add(f, "QueueUrl", queue, strlen(queue));
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len;
        lua_rawgeti(L, 2, i);
        lua_getfield(L, -1, "id");
        const char *s = lua_tolstring(L, -1, &len);
        snprintf(key, sizeof key, "%s.%lld.Id", prefix, (long long)i);
        etl_sqs_query_add(f, key, s, len);
        lua_getfield(L, -2, "receipt");
        s = lua_tolstring(L, -1, &len);
        snprintf(key, sizeof key, "%s.%lld.ReceiptHandle", prefix, (long long)i);
        etl_sqs_query_add(f, key, s, len);
        if (timeout >= 0) {
            snprintf(key, sizeof key, "%s.%lld.VisibilityTimeout", prefix, (long long)i);
            snprintf(num, sizeof num, "%lld", (long long)timeout);
            etl_sqs_query_add(f, key, num, strlen(num));
        }
        lua_pop(L, 3);
    }
}

/* ---- query results as Lua values ------------------------------------------------------- */

void etl_sqs_push_query_messages(lua_State *L, const struct etl_sqs_result *r)
{
    lua_createtable(L, (int)r->nmessages, 0);
    lua_Integer n = 0;
    for (size_t i = 0; i < r->nmessages; i++) {
        const struct etl_sqs_message *m = &r->messages[i];
        if (!m->id || !m->receipt)
            continue;
        lua_createtable(L, 0, 4);
        lua_pushstring(L, m->id);
        lua_setfield(L, -2, "id");
        lua_pushstring(L, m->receipt);
        lua_setfield(L, -2, "receipt");
        lua_pushstring(L, m->body ? m->body : "");
        lua_setfield(L, -2, "body");
        if (m->sent_ms >= 0) {
            lua_pushinteger(L, (lua_Integer)m->sent_ms);
            lua_setfield(L, -2, "sent_ms");
        }
        lua_rawseti(L, -2, ++n);
    }
}

void etl_sqs_push_query_failures(lua_State *L, const struct etl_sqs_result *r)
{
    lua_createtable(L, (int)r->nfailures, 0);
    for (size_t i = 0; i < r->nfailures; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, r->failures[i].id);
        lua_setfield(L, -2, "id");
        lua_pushstring(L, r->failures[i].code);
        lua_setfield(L, -2, "code");
        lua_pushstring(L, r->failures[i].message);
        lua_setfield(L, -2, "message");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}
