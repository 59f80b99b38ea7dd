/* sqs_values.c: the results of SQS requests as Lua values, for the binding (sqs.c): messages,
 * name -> value pairs (queue attributes, message attributes) and per-entry batch failures.
 * Fields a result lacks are left out of the Lua table, never set to a placeholder. */
#include "etlua/sqs_values.h"

#include <string.h>

#include <lauxlib.h>
#include <lua.h>

/* lua_pushlstring, not lua_pushstring: pushstring first looks the text up in Lua's cache of C
 * strings by address (strcmp against the strings that cache holds for it), which an answer's
 * fresh strings never match: on a drain those lookups were ~1% of the CPU. */
static void set_string(lua_State *L, const char *key, const char *v)
{
    if (v) {
        lua_pushlstring(L, v, strlen(v));
        lua_setfield(L, -2, key);
    }
}

void etl_sqs_push_pairs(lua_State *L, const struct etl_sqs_pair *p, size_t n)
{
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        if (!p[i].name || !p[i].value)
            continue; /* a copy that ran out of memory */
        lua_pushlstring(L, p[i].value, strlen(p[i].value));
        lua_setfield(L, -2, p[i].name);
    }
}

/* A message's field names, pushed once for an answer (KEY_...: their stack slots after base), each
 * message's fields then set with lua_rawset on them: lua_setfield looks its C string up in Lua's
 * string cache at every field (a strcmp) and a new key goes the way of a set that may meet a
 * metamethod. */
enum {
    KEY_ID = 1,
    KEY_RECEIPT,
    KEY_BODY,
    KEY_SENT,
    KEY_COUNT,
    KEY_GROUP,
    KEY_SEQ,
    KEY_ATTRS,
    NKEYS
};
static const char *const KEYS[NKEYS] = {
    NULL,        "id", "receipt", "body", "sent_ms", "receive_count", "group_id", "sequence_number",
    "attributes"};

static void raw_string(lua_State *L, int key, const char *v)
{
    if (v) {
        lua_pushvalue(L, key);
        lua_pushlstring(L, v, strlen(v));
        lua_rawset(L, -3);
    }
}

static void raw_count(lua_State *L, int key, long long v)
{
    if (v >= 0) {
        lua_pushvalue(L, key);
        lua_pushinteger(L, (lua_Integer)v);
        lua_rawset(L, -3);
    }
}

void etl_sqs_push_messages(lua_State *L, const struct etl_sqs_result *r)
{
    int base = lua_gettop(L);
    luaL_checkstack(L, NKEYS + 8, "SQS answer");
    for (int k = 1; k < NKEYS; k++)
        lua_pushstring(L, KEYS[k]);
    lua_createtable(L, (int)r->nmessages, 0);
    lua_Integer n = 0;
    for (size_t i = 0; i < r->nmessages; i++) {
        const struct etl_sqs_message *m = &r->messages[i];
        if (!m->id || !m->receipt)
            continue;
        /* room for the runtime's own fields too: on a drain a message also gets received_ms
         * (source), row or rows, key and message (record: the message is its own item) and
         * acked (source): eleven keys, which would outgrow 8 slots and rehash every message's
         * table into 16 */
        lua_createtable(L, 0, 16);
        raw_string(L, base + KEY_ID, m->id);
        raw_string(L, base + KEY_RECEIPT, m->receipt);
        raw_string(L, base + KEY_BODY, m->body ? m->body : "");
        raw_count(L, base + KEY_SENT, m->sent_ms);
        raw_count(L, base + KEY_COUNT, m->receive_count);
        raw_string(L, base + KEY_GROUP, m->group_id);
        raw_string(L, base + KEY_SEQ, m->sequence_number);
        lua_pushvalue(L, base + KEY_ATTRS);
        etl_sqs_push_pairs(L, m->attributes, m->nattributes);
        lua_rawset(L, -3);
        lua_rawseti(L, -2, ++n);
    }
    lua_replace(L, base + 1); /* the list where the first name was, the names dropped */
    lua_settop(L, base + 1);
}

void etl_sqs_push_failures(lua_State *L, const struct etl_sqs_result *r)
{
    lua_createtable(L, (int)r->nfailures, 0);
    for (size_t i = 0; i < r->nfailures; i++) {
        lua_createtable(L, 0, 3);
        set_string(L, "id", r->failures[i].id);
        set_string(L, "code", r->failures[i].code);
        set_string(L, "message", r->failures[i].message);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}
