/* main.c: the program's entry point, and the entry point of the Lua module build.
 *
 * As the executable, main() hands argv to the host (src/host.c), which runs etlua.cli under
 * lua_pcall and returns the exit status. Built with ETLUA_AS_MODULE (the etlua.so that plain
 * lua5.4 and busted require), this file provides luaopen_etlua instead: it preloads the same
 * modules, so `require "etlua"` followed by `require "etlua.runner"` works outside the binary. */
#include "etlua/host.h"
#include "etlua/modules.h"

#include <lauxlib.h>
#include <lua.h>

#ifdef ETLUA_AS_MODULE
int luaopen_etlua(lua_State *L)
{
    etl_host_preload(L);
    lua_newtable(L);
    lua_pushliteral(L, ETLUA_VERSION);
    lua_setfield(L, -2, "version");
    return 1;
}
#else
int main(int argc, char **argv) { return etl_host_main(argc, argv); }
#endif
