/* fuzz_sqs_json.c: libFuzzer target for the SQS JSON protocol codec (src/sqs_json.c, lua-cjson):
 * arbitrary JSON answers to every action under several HTTP statuses, read exactly as the client
 * reads them, in one Lua state per process with lua-cjson prepared as sqs.client does; the
 * invariants are those of sqs_answer.h, plus a balanced Lua stack after each input. A full
 * collection ends each input so that its allocations are balanced. */
#include "sqs_answer.h"

#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[200];
    if (!L) {
        L = luaL_newstate();
        if (!L)
            abort();
        luaL_openlibs(L);
        if (etl_sqs_json_codec.prepare(L, why, sizeof why) != 0) {
            fprintf(stderr, "fuzz_sqs_json: %s\n", why);
            abort();
        }
    }
    int top = lua_gettop(L);
    fuzz_answer(&etl_sqs_json_codec, L, data, size);
    if (lua_gettop(L) != top)
        abort();
    /* Free this input's garbage now: libFuzzer runs a (slow) leak check after any input that
     * allocated more than it freed, and Lua's collector would otherwise free it later. */
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
