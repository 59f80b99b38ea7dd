/* json_internal.h: what the C files of etlua.json share and nothing outside them uses.
 *  - src/json.c         the Lua binding (luaopen_etlua_json), number text;
 *  - src/json_decode.c  text -> Lua values, in one pass onto the Lua stack;
 *  - src/json_encode.c  Lua values -> text, into one growable buffer. */
#ifndef ETLUA_JSON_INTERNAL_H
#define ETLUA_JSON_INTERNAL_H

#include "etlua/json.h"

#include <stddef.h>

struct lua_State;

/* The decoder's cache of object keys (one per decode closure): the bytes of the last key made
 * in each of ETL_JSON_KEY_SLOTS slots (picked by a hash of the key's length and three of its
 * bytes), beside the closure's upvalues that hold those keys' strings, one a slot (so the
 * collector keeps them). A key found here is pushed from its upvalue (a lua_pushvalue; from a
 * table, lua_rawgeti cost three times that): lua_pushlstring would hash it and look it up among
 * all of Lua's strings. len[i]: the key's length + 1, 0 for a free slot. */
#define ETL_JSON_KEY_SLOTS 64
#define ETL_JSON_KEY_MAX 32 /* longer keys are not kept */
struct etl_json_keys {
    unsigned char pairs; /* the pairs of the last outermost object (at most 32): the next one's
                            table is made that size at once, its pairs set as they are read */
    unsigned char len[ETL_JSON_KEY_SLOTS];
    char bytes[ETL_JSON_KEY_SLOTS][ETL_JSON_KEY_MAX];
};

/* Decodes s[0..len) (s[len] must be '\0', as in every Lua string) and pushes the value (1 is
 * returned) or nil and a one-line message naming the byte offset (2 is returned). mt_idx is the
 * stack index of json.array_mt. keys: the key cache (zeroed when made), or NULL for none;
 * strings_up: then the number of the running C closure's upvalue holding slot 0's string, slot
 * h's at strings_up + h (ETL_JSON_KEY_SLOTS of them, any value at first). Raises only on memory
 * errors. */
int etl_json_decode(struct lua_State *L, const char *s, size_t len, int mt_idx,
                    struct etl_json_keys *keys, int strings_up);

#define ETL_JSON_SCRATCH_MIN 1024  /* the encoder's first buffer */
#define ETL_JSON_SCRATCH_MAX 65536 /* a larger one is not kept for the next call */

/* Encodes the value at idx and pushes its text (1 is returned) or nil and a one-line message
 * (2 is returned). mt_idx as above. scratch_idx: 0, or the index of a slot (an upvalue) holding
 * a userdata buffer to start from; it then receives the buffer the call ended with, when that
 * is at most ETL_JSON_SCRATCH_MAX bytes. Raises only on memory errors. */
int etl_json_encode(struct lua_State *L, int idx, int mt_idx, int scratch_idx);

#endif
