/* sqs_values.c: the results of SQS requests as Lua values, for the binding (sqs.c): messages,
 * name -> value pairs (queue attributes, message attributes) and per-entry batch failures.
 * Fields a result lacks are left out of the Lua table, never set to a placeholder. */
#include "etlua/sqs_values.h"

#include <string.h>

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

static void set_count(lua_State *L, const char *key, long long v)
{
    if (v >= 0) {
        lua_pushinteger(L, (lua_Integer)v);
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

void etl_sqs_push_messages(lua_State *L, const struct etl_sqs_result *r)
{
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
        set_string(L, "id", m->id);
        set_string(L, "receipt", m->receipt);
        set_string(L, "body", m->body ? m->body : "");
        set_count(L, "sent_ms", m->sent_ms);
        set_count(L, "receive_count", m->receive_count);
        set_string(L, "group_id", m->group_id);
        set_string(L, "sequence_number", m->sequence_number);
        etl_sqs_push_pairs(L, m->attributes, m->nattributes);
        lua_setfield(L, -2, "attributes");
        lua_rawseti(L, -2, ++n);
    }
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
