/* sqs_options.c: the options table of sqs.client (include/etlua/sqs_options.h), for the
 * constructor of the binding (sqs.c): each option read with its type, range and default, the
 * required ones checked, the protocol named turned into its codec, and the URL requests go to. */
#include "etlua/sqs_options.h"
#include "etlua/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#define DEFAULT_INFLIGHT 32

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

static lua_Integer opt_integer(lua_State *L, const char *key, lua_Integer def, lua_Integer max)
{
    lua_Integer v = def;
    if (lua_getfield(L, 1, key) != LUA_TNIL) {
        int isint = 0;
        v = lua_tointegerx(L, -1, &isint);
        if (!isint || v < 1 || v > max)
            luaL_error(L, "etlua.sqs.client: %s must be an integer in 1..%d", key, (int)max);
    }
    lua_pop(L, 1);
    return v;
}

/* "scheme://authority/" of a URL, into a new string; NULL when it is not http(s). */
static char *root_of(const char *url)
{
    const char *sep = strstr(url, "://");
    if (!sep || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return NULL;
    size_t n = (size_t)(sep + 3 - url) + strcspn(sep + 3, "/?#");
    char *o = malloc(n + 2);
    if (o)
        snprintf(o, n + 2, "%.*s/", (int)n, url);
    return o;
}

void etl_sqs_options_read(lua_State *L, struct etl_sqs_options *o)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    o->endpoint = opt_string(L, "endpoint", NULL);
    o->queue_url = opt_string(L, "queue_url", NULL);
    o->region = opt_string(L, "region", "us-east-1");
    o->access_key = opt_string(L, "access_key", NULL);
    o->secret_key = opt_string(L, "secret_key", NULL);
    o->session_token = opt_string(L, "session_token", NULL);
    const char *protocol = opt_string(L, "protocol", "auto");
    o->ca_bundle = opt_string(L, "ca_bundle", NULL);
    o->timeout_ms = opt_integer(L, "timeout_ms", 30000, 3600000);
    o->max_inflight =
        opt_integer(L, "max_inflight", DEFAULT_INFLIGHT, (lua_Integer)ETL_HTTP_MAX_INFLIGHT);
    if (!o->access_key || !o->secret_key)
        luaL_error(L, "etlua.sqs.client: access_key and secret_key are required");
    if (!*o->region)
        luaL_error(L, "etlua.sqs.client: region must not be empty");
    o->codec = NULL;
    if (strcmp(protocol, "json") == 0)
        o->codec = &etl_sqs_json_codec;
    else if (strcmp(protocol, "query") == 0)
        o->codec = &etl_sqs_query_codec;
    else if (strcmp(protocol, "auto") != 0)
        luaL_error(L, "etlua.sqs.client: protocol must be 'auto', 'json' or 'query'");
}

char *etl_sqs_options_url(const struct etl_sqs_options *o)
{
    if (o->endpoint || o->queue_url)
        return root_of(o->endpoint ? o->endpoint : o->queue_url);
    char buf[300];
    snprintf(buf, sizeof buf, "https://sqs.%s.amazonaws.com/", o->region);
    return strdup(buf);
}
