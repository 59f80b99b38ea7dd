-- luacheck configuration (Debian lua-check; run `luacheck .` from the repository root, or
-- ctest -R lint.luacheck). Host code is Lua 5.4; specs add busted's globals; pipeline scripts and
-- rule files run in etlua.sandbox, so they may use only what its allow-list gives them.
std = "lua54"
max_line_length = 120
self = false -- a method that ignores self keeps the interface it shares with the others
ignore = {"542"} -- an empty if branch with a comment says "nothing to do in this case" on purpose

include_files = {
  "src/lua/**/*.lua", "scripts/**/*.lua", "spec/**/*.lua", "tests/integration/*.lua",
  "bench/*.lua", ".luacheckrc",
}

-- The environment of etlua.sandbox (src/lua/etlua/sandbox.lua is the source of truth: BASE, OS,
-- the copied libraries without string.dump, and the wrapped functions).
stds.etlua_sandbox = {
  read_globals = {
    "assert", "error", "ipairs", "next", "pairs", "rawequal", "rawget", "rawlen", "rawset",
    "select", "tonumber", "tostring", "type", "_VERSION", "_G", "getmetatable", "setmetatable",
    "pcall", "xpcall", "load", "require",
    string = {fields = {"byte", "char", "find", "format", "gmatch", "gsub", "len", "lower",
                        "match", "pack", "packsize", "rep", "reverse", "sub", "unpack", "upper"}},
    os = {fields = {"time", "date", "clock", "difftime"}},
  },
  globals = {"table", "math", "utf8"}, -- copies of the libraries, one per sandbox
}

files["scripts"] = {std = "etlua_sandbox"}
files["tests/integration/*_pipeline.lua"] = {std = "etlua_sandbox"}
files["bench/upsert_etl.lua"] = {std = "etlua_sandbox"}
-- specs may stand in for the process environment and stdout (and put them back)
files["spec"] = {std = "+busted", globals = {os = {fields = {"getenv"}}, io = {fields = {"stdout"}}}}
files["tests/integration/*_spec.lua"] = {std = "+busted"}
files[".luacheckrc"] = {std = "+luacheckrc"}
