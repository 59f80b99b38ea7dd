/* sqs.c: the Lua binding of etlua.sqs. A client is a userdata ("etlua.sqs.client") holding the
 * settings, the credentials and one HTTP transport (struct client, sqs_internal.h); its user
 * values are the cjson codec and the bookkeeping of the concurrent calls. This file owns the
 * constructor sqs.client, closing (close, __gc, __close), the blocking methods (protocol,
 * detect, get_queue_url, receive, delete_batch, change_visibility_batch, attributes), the method
 * table and luaopen_etlua_sqs. Elsewhere: one request and its answer, the error vocabulary and
 * protocol detection in sqs_call.c; the request bodies and results shared with the concurrent
 * methods in sqs_request.c; the concurrent methods in sqs_async.c. Expected failures return nil,
 * message, code; misuse raises. Messages never carry secrets, signatures or message bodies. */
#include "etlua/http.h"
#include "etlua/sqs.h"
#include "etlua/sqs_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include <openssl/crypto.h>

#define CLIENT_MT "etlua.sqs.client"

#define DEFAULT_INFLIGHT 32

/* ---- the client ------------------------------------------------------------------------- */

static void free_secret(char **s)
{
    if (*s) {
        OPENSSL_cleanse(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

static int client_close(lua_State *L)
{
    struct client *c = luaL_checkudata(L, 1, CLIENT_MT);
    etl_http_close(c->http);
    c->http = NULL;
    etl_http_multi_close(c->multi); /* receipts of receives in flight come back after the
                                       visibility timeout */
    c->multi = NULL;
    free(c->endpoint);
    free(c->queue_url);
    free(c->region);
    free(c->access_key);
    c->endpoint = c->queue_url = c->region = c->access_key = NULL;
    free_secret(&c->secret_key);
    free_secret(&c->session_token);
    lua_pushboolean(L, 1);
    return 1;
}

struct client *etl_sqs_check_client(lua_State *L)
{
    struct client *c = luaL_checkudata(L, 1, CLIENT_MT);
    if (!c->http)
        luaL_error(L, "attempt to use a closed SQS client");
    return c;
}

static const char *proto_name(enum proto p)
{
    return p == PROTO_JSON ? "json" : p == PROTO_QUERY ? "query" : "auto";
}

const char *etl_sqs_need_queue(lua_State *L, struct client *c)
{
    if (!c->queue_url)
        luaL_error(L, "etlua.sqs: no queue_url (give one to sqs.client or call get_queue_url)");
    return c->queue_url;
}

/* ---- methods ------------------------------------------------------------------------------- */

static int m_protocol(lua_State *L)
{
    struct client *c = etl_sqs_check_client(L);
    lua_pushstring(L, proto_name(c->protocol));
    return 1;
}

static int m_detect(lua_State *L)
{
    struct client *c = etl_sqs_check_client(L);
    if (!c->forced && etl_sqs_detect(L, c) != 0)
        return 3;
    lua_pushstring(L, proto_name(c->protocol));
    return 1;
}

static int m_get_queue_url(lua_State *L)
{
    struct client *c = etl_sqs_check_client(L);
    const char *name = luaL_checkstring(L, 2);
    if (etl_sqs_ensure_protocol(L, c) != 0)
        return 3;
    if (c->protocol == PROTO_JSON) {
        int mismatch;
        lua_createtable(L, 0, 1);
        lua_pushstring(L, name);
        lua_setfield(L, -2, "QueueName");
        if (etl_sqs_call_json(L, c, "GetQueueUrl", 0, &mismatch) != 0)
            return 3;
        if (lua_getfield(L, -1, "QueueUrl") != LUA_TSTRING)
            return etl_sqs_push_failure(L, ETL_SQS_PROTOCOL,
                                        "SQS GetQueueUrl: no QueueUrl in the answer");
    } else {
        struct etl_sqs_form f;
        struct etl_sqs_result r;
        etl_sqs_query_begin(&f, "GetQueueUrl");
        etl_sqs_query_add(&f, "QueueName", name, strlen(name));
        if (etl_sqs_call_query(L, c, "GetQueueUrl", &f, 0, &r) != 0)
            return 3;
        if (!r.queue_url) {
            etl_sqs_result_free(&r);
            return etl_sqs_push_failure(L, ETL_SQS_PROTOCOL,
                                        "SQS GetQueueUrl: no QueueUrl in the answer");
        }
        lua_pushstring(L, r.queue_url);
        etl_sqs_result_free(&r);
    }
    if (!c->queue_url) {
        c->queue_url = strdup(lua_tostring(L, -1));
        if (!c->queue_url)
            return luaL_error(L, "out of memory");
    }
    return 1;
}
/* ---- blocking calls ------------------------------------------------------------------------ */

static int m_receive(lua_State *L)
{
    struct client *c = etl_sqs_check_client(L);
    struct recv_args a;
    etl_sqs_check_recv_args(L, 2, &a);
    const char *queue = etl_sqs_need_queue(L, c);
    if (etl_sqs_ensure_protocol(L, c) != 0)
        return 3;
    long extra_ms = (long)a.wait * 1000;
    if (c->protocol == PROTO_JSON) {
        int mismatch;
        etl_sqs_push_receive_json(L, queue, &a);
        if (etl_sqs_call_json(L, c, "ReceiveMessage", extra_ms, &mismatch) != 0)
            return 3;
        etl_sqs_json_messages(L, -1);
        return 1;
    }
    struct etl_sqs_form f;
    struct etl_sqs_result r;
    etl_sqs_receive_form(&f, queue, &a);
    if (etl_sqs_call_query(L, c, "ReceiveMessage", &f, extra_ms, &r) != 0)
        return 3;
    etl_sqs_push_query_messages(L, &r);
    etl_sqs_result_free(&r);
    return 1;
}

/* DeleteMessageBatch (timeout < 0) or ChangeMessageVisibilityBatch. */
static int batch(lua_State *L, struct client *c, lua_Integer n, lua_Integer timeout)
{
    const char *action = etl_sqs_batch_action(timeout);
    const char *queue = etl_sqs_need_queue(L, c);
    if (n == 0) {
        lua_newtable(L);
        return 1;
    }
    if (etl_sqs_ensure_protocol(L, c) != 0)
        return 3;
    if (c->protocol == PROTO_JSON) {
        int mismatch;
        etl_sqs_push_batch_json(L, queue, n, timeout);
        if (etl_sqs_call_json(L, c, action, 0, &mismatch) != 0)
            return 3;
        etl_sqs_json_failures(L, -1);
        return 1;
    }
    struct etl_sqs_form f;
    struct etl_sqs_result r;
    etl_sqs_batch_form(L, &f, queue, n, timeout);
    if (etl_sqs_call_query(L, c, action, &f, 0, &r) != 0)
        return 3;
    etl_sqs_push_query_failures(L, &r);
    etl_sqs_result_free(&r);
    return 1;
}

static int m_delete_batch(lua_State *L)
{
    struct client *c = etl_sqs_check_client(L);
    lua_Integer n = etl_sqs_check_entries(L);
    return batch(L, c, n, -1);
}

static int m_change_visibility_batch(lua_State *L)
{
    struct client *c = etl_sqs_check_client(L);
    lua_Integer n = etl_sqs_check_entries(L);
    lua_Integer timeout = luaL_checkinteger(L, 3);
    luaL_argcheck(L, timeout >= 0 && timeout <= 43200, 3, "between 0 and 43200");
    return batch(L, c, n, timeout);
}

static int m_attributes(lua_State *L)
{
    struct client *c = etl_sqs_check_client(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
            luaL_argerror(L, 2, "attribute names must be strings");
        lua_pop(L, 1);
    }
    const char *queue = etl_sqs_need_queue(L, c);
    if (etl_sqs_ensure_protocol(L, c) != 0)
        return 3;
    if (c->protocol == PROTO_JSON) {
        int mismatch;
        lua_createtable(L, 0, 2);
        lua_pushstring(L, queue);
        lua_setfield(L, -2, "QueueUrl");
        if (n > 0) {
            lua_pushvalue(L, 2);
            lua_setfield(L, -2, "AttributeNames");
        }
        if (etl_sqs_call_json(L, c, "GetQueueAttributes", 0, &mismatch) != 0)
            return 3;
        lua_newtable(L);
        if (lua_getfield(L, -2, "Attributes") == LUA_TTABLE) {
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
                    lua_pushvalue(L, -2);
                    lua_insert(L, -2);
                    lua_rawset(L, -5);
                } else {
                    lua_pop(L, 1);
                }
            }
        }
        lua_pop(L, 1);
        return 1;
    }
    char key[48];
    struct etl_sqs_form f;
    struct etl_sqs_result r;
    etl_sqs_query_begin(&f, "GetQueueAttributes");
    etl_sqs_query_add(&f, "QueueUrl", queue, strlen(queue));
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len;
        lua_rawgeti(L, 2, i);
        const char *s = lua_tolstring(L, -1, &len);
        snprintf(key, sizeof key, "AttributeName.%lld", (long long)i);
        etl_sqs_query_add(&f, key, s, len);
        lua_pop(L, 1);
    }
    if (etl_sqs_call_query(L, c, "GetQueueAttributes", &f, 0, &r) != 0)
        return 3;
    lua_createtable(L, 0, (int)r.nattributes);
    for (size_t i = 0; i < r.nattributes; i++) {
        lua_pushstring(L, r.attributes[i].value);
        lua_setfield(L, -2, r.attributes[i].name);
    }
    etl_sqs_result_free(&r);
    return 1;
}

static int m_tostring(lua_State *L)
{
    struct client *c = luaL_checkudata(L, 1, CLIENT_MT);
    if (c->http)
        lua_pushfstring(L, "etlua.sqs.client (%s, %s)", c->endpoint, proto_name(c->protocol));
    else
        lua_pushliteral(L, "etlua.sqs.client (closed)");
    return 1;
}

/* ---- constructor --------------------------------------------------------------------------- */

static const char *opt_string(lua_State *L, const char *key, const char *def)
{
    int t = lua_getfield(L, 1, key);
    const char *s = def;
    if (t == LUA_TSTRING)
        s = lua_tostring(L, -1);
    else if (t != LUA_TNIL)
        luaL_error(L, "etlua.sqs.client: option '%s' must be a string", key);
    lua_pop(L, 1); /* the string stays reachable from the options table */
    return s;
}

static char *dup_or_raise(lua_State *L, const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        luaL_error(L, "out of memory");
    return d;
}

/* scheme://authority of a URL, into a new string; NULL when it is not http(s). */
static char *origin_of(const char *url)
{
    const char *sep = strstr(url, "://");
    if (!sep || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return NULL;
    size_t n = (size_t)(sep + 3 - url) + strcspn(sep + 3, "/?#");
    char *o = malloc(n + 1);
    if (o)
        snprintf(o, n + 1, "%s", url);
    return o;
}

static int l_client(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *endpoint = opt_string(L, "endpoint", NULL);
    const char *queue_url = opt_string(L, "queue_url", NULL);
    const char *region = opt_string(L, "region", "us-east-1");
    const char *access_key = opt_string(L, "access_key", NULL);
    const char *secret_key = opt_string(L, "secret_key", NULL);
    const char *token = opt_string(L, "session_token", NULL);
    const char *protocol = opt_string(L, "protocol", "auto");
    const char *ca_bundle = opt_string(L, "ca_bundle", NULL);
    lua_Integer timeout_ms = 30000;
    if (lua_getfield(L, 1, "timeout_ms") != LUA_TNIL) {
        int isint = 0;
        timeout_ms = lua_tointegerx(L, -1, &isint);
        if (!isint || timeout_ms <= 0 || timeout_ms > 3600000)
            return luaL_error(L, "etlua.sqs.client: timeout_ms must be an integer in 1..3600000");
    }
    lua_pop(L, 1);
    lua_Integer max_inflight = DEFAULT_INFLIGHT;
    if (lua_getfield(L, 1, "max_inflight") != LUA_TNIL) {
        int isint = 0;
        max_inflight = lua_tointegerx(L, -1, &isint);
        if (!isint || max_inflight < 1 || max_inflight > (lua_Integer)ETL_HTTP_MULTI_MAX)
            return luaL_error(L, "etlua.sqs.client: max_inflight must be an integer in 1..%d",
                              (int)ETL_HTTP_MULTI_MAX);
    }
    lua_pop(L, 1);
    if (!access_key || !secret_key)
        return luaL_error(L, "etlua.sqs.client: access_key and secret_key are required");
    if (!*region)
        return luaL_error(L, "etlua.sqs.client: region must not be empty");
    enum proto proto;
    if (strcmp(protocol, "auto") == 0)
        proto = PROTO_AUTO;
    else if (strcmp(protocol, "json") == 0)
        proto = PROTO_JSON;
    else if (strcmp(protocol, "query") == 0)
        proto = PROTO_QUERY;
    else
        return luaL_error(L, "etlua.sqs.client: protocol must be 'auto', 'json' or 'query'");

    if (etl_sqs_json_load(L) != 0)
        return lua_error(L);
    int codec = lua_gettop(L);

    struct client *c = lua_newuserdatauv(L, sizeof *c, UV_COUNT);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CLIENT_MT); /* from here __gc frees whatever was set */
    lua_pushvalue(L, codec);
    lua_setiuservalue(L, -2, UV_CODEC);
    lua_newtable(L);
    lua_setiuservalue(L, -2, UV_DONE);
    lua_newtable(L);
    lua_setiuservalue(L, -2, UV_PENDING);
    c->max_inflight = (size_t)max_inflight;
    c->protocol = proto;
    c->forced = proto != PROTO_AUTO;
    c->timeout_ms = (long)timeout_ms;
    if (endpoint) {
        c->endpoint = origin_of(endpoint);
    } else if (queue_url) {
        c->endpoint = origin_of(queue_url);
    } else {
        char buf[300];
        snprintf(buf, sizeof buf, "https://sqs.%s.amazonaws.com", region);
        c->endpoint = strdup(buf);
    }
    if (!c->endpoint)
        return luaL_error(L, "etlua.sqs.client: endpoint must be an http:// or https:// URL");
    c->queue_url = dup_or_raise(L, queue_url);
    c->region = dup_or_raise(L, region);
    c->access_key = dup_or_raise(L, access_key);
    c->secret_key = dup_or_raise(L, secret_key);
    c->session_token = token && *token ? dup_or_raise(L, token) : NULL;
    c->http = etl_http_open(ca_bundle);
    if (!c->http)
        return luaL_error(L, "etlua.sqs.client: cannot initialise libcurl");
    return 1;
}

int luaopen_etlua_sqs(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"protocol", m_protocol},
        {"detect", m_detect},
        {"get_queue_url", m_get_queue_url},
        {"receive", m_receive},
        {"delete_batch", m_delete_batch},
        {"change_visibility_batch", m_change_visibility_batch},
        {"attributes", m_attributes},
        {"receive_many", etl_sqs_m_receive_many},
        {"start_receive", etl_sqs_m_start_receive},
        {"start_delete_batch", etl_sqs_m_start_delete_batch},
        {"start_change_visibility_batch", etl_sqs_m_start_change_visibility_batch},
        {"poll", etl_sqs_m_poll},
        {"pending", etl_sqs_m_pending},
        {"close", client_close},
        {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", client_close}, {"__close", client_close}, {"__tostring", m_tostring}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {{"client", l_client}, {NULL, NULL}};
    if (luaL_newmetatable(L, CLIENT_MT)) {
        luaL_setfuncs(L, meta, 0);
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
