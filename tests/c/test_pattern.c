/* test_pattern.c: src/pattern.c, the string pattern functions etlua's sandbox uses, against
 * Lua's own (lstrlib.c) as the oracle. Two states run the same Lua chunk: one with Lua's
 * string library, one whose string.find, match, gmatch and gsub are budget.patterns (installed
 * as etlua.sandbox installs them). The chunk calls the four functions on a table of cases (every
 * item of the pattern language, the malformed patterns and their errors, init positions, each
 * kind of gsub replacement) and on 3,000 random patterns and subjects, and returns one line per
 * call: the results, or the error message. Every line must be equal.
 * Then the budget: a backtracking pattern (hours for Lua's matcher) is cut at a 50 ms budget,
 * also when the script catches the error, and a call within its budget is not. */
#include "check.h"

#include "etlua/modules.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <time.h>

/* Each call as one line: "label => ok,results" or "label => false,message". */
static const char *const CASES =
    "local out = {}\n"
    "local function text(...)\n"
    "  local t = {}\n"
    "  for i = 1, select('#', ...) do\n"
    "    local v = select(i, ...)\n"
    "    t[i] = type(v) == 'string' and ('%q'):format(v) or tostring(v)\n"
    "  end\n"
    "  return table.concat(t, ',')\n"
    "end\n"
    "local function all(s, p, init)\n"
    "  local t = {}\n"
    "  for a, b, c in string.gmatch(s, p, init) do\n"
    "    t[#t + 1] = text(a, b, c)\n"
    "    if #t > 40 then break end\n"
    "  end\n"
    "  return table.concat(t, ';')\n"
    "end\n"
    "local function call(label, f, ...)\n"
    "  out[#out + 1] = label .. ' => ' .. text(pcall(f, ...))\n"
    "end\n"
    "local function each(s, p)\n"
    "  local l = ('%q %q '):format(s, p)\n"
    "  call(l .. 'find', string.find, s, p)\n"
    "  call(l .. 'find 2', string.find, s, p, 2)\n"
    "  call(l .. 'find -3', string.find, s, p, -3)\n"
    "  call(l .. 'find 99', string.find, s, p, 99)\n"
    "  call(l .. 'find plain', string.find, s, p, 1, true)\n"
    "  call(l .. 'match', string.match, s, p)\n"
    "  call(l .. 'match 0', string.match, s, p, 0)\n"
    "  call(l .. 'gmatch', all, s, p)\n"
    "  call(l .. 'gmatch 3', all, s, p, 3)\n"
    "  call(l .. 'gsub', string.gsub, s, p, '<%0>')\n"
    "  call(l .. 'gsub %1', string.gsub, s, p, '%1-%%-%1')\n"
    "  call(l .. 'gsub %2', string.gsub, s, p, '[%2]')\n"
    "  call(l .. 'gsub 1', string.gsub, s, p, 'x', 1)\n"
    "  call(l .. 'gsub fn', string.gsub, s, p,\n"
    "       function(a, b) if b then return a .. tostring(b) end if a == 'b' then return false "
    "end\n"
    "                      return a and a:upper() end)\n"
    "  call(l .. 'gsub table', string.gsub, s, p, {a = 'A', ab = false, b = 7, [1] = 'one'})\n"
    "  call(l .. 'gsub bad', string.gsub, s, p, '%x')\n"
    "  call(l .. 'gsub end%', string.gsub, s, p, 'a%')\n"
    "end\n"
    "local subjects = {'', 'a', 'ab', 'aab', 'abc abc', 'x(a)(b(c))y', 'THE (quick) fox',\n"
    "  '  trim  ', 'a.b.c', '1.25e3 -7', 'a\\0b\\0', '\\xc3\\xa9t\\xc3\\xa9', 'aaa', 'xy xxyy',\n"
    "  'a]b', 'a-b^c$d', 'key=val; k2=v2', 'THE END\\n', '%d%%'}\n"
    "local patterns = {'', 'a', '^a', 'a$', '^$', '.', '..', '%a+', '%A+', '[%a%d]+', '[^%s]+',\n"
    "  '[a-c]+', '[]]', '[^]]+', '[a-]+', '[%]]', '[%a-z]', '[]-a]', '(a)(b)', '()a()', "
    "'(a*(.)%w(%s*))',\n"
    "  '%bxy', '%b()', '%b((', '%f[%w]%w+', '%f[%W]', '%f[%z]', '%f[^a]', '(%a)%1', 'a-b', 'a*b',\n"
    "  'a+b', 'a?b', '%d+%.?%d*', '[%d.]+', '$a', 'a$b', '^^', '%', '[a', '[^', '[', '(', ')',\n"
    "  '%b', '%bx', '%f', '%fa', '%1', '(a)%2', '(a)%0', '%0', '(()', '[%', 'a%', '%g+', '%c',\n"
    "  '%p+', '%u%l*', '%x+', '%S+', '.-$', '^(.-)%s*$', '^%s*(.-)%s*$', '(%w+)=(%w+)', '%s*',\n"
    "  '()', '(())', 'b*', 'x*', '.-', '[%w_]+', '%.', '\\0', '[\\0]', '%z', '[a-]', '[-a]',\n"
    "  '(a', 'a)', '((a)', '(a(b)c)', '(%d)(%d)(%d)', '^(%w+)', '[^%a%d]', '^.-(%d+)$'}\n"
    "for _, s in ipairs(subjects) do\n"
    "  for _, p in ipairs(patterns) do each(s, p) end\n"
    "end\n"
    "call('too complex', string.match, ('a'):rep(300), ('a?'):rep(300))\n"
    "call('many captures', string.match, ('a'):rep(40), ('(a)'):rep(40))\n"
    "call('32 captures', string.match, ('a'):rep(40), ('(a)'):rep(32))\n"
    "call('unfinished', string.gsub, 'abc', '(a', '%1')\n"
    "call('position in gsub', string.gsub, 'abc', '()b', '%1')\n"
    "call('number args', string.find, 12345, 34)\n"
    "call('no subject', string.find, nil, 'a')\n"
    "call('no pattern', string.match, 'a')\n"
    "call('bad repl', string.gsub, 'a', 'a', true)\n"
    "call('bad repl value', string.gsub, 'a', 'a', function() return {} end)\n"
    "call('bad max', string.gsub, 'a', 'a', 'b', 'x')\n"
    "call('bad init', string.find, 'a', 'a', 'x')\n"
    "call('fn error', string.gsub, 'a', 'a', function() error('boom', 0) end)\n"
    "call('gmatch anchor', all, '^a^a', '^a')\n"
    "call('gsub anchor', string.gsub, 'aaa', '^a', 'b')\n"
    "call('gsub empty', string.gsub, 'abc', '', '-')\n"
    "call('gsub x*', string.gsub, 'abc', 'x*', '-')\n"
    "call('gmatch empty', all, 'abc', '')\n"
    "call('long subject', string.find, ('ab'):rep(5000) .. 'c', '(b)c')\n"
    "-- random patterns from pattern atoms, on random subjects\n"
    "math.randomseed(20261204)\n"
    "local atoms = {'a', 'b', 'c', '.', '%a', '%d', '%s', '%w', '%W', '[ab]', '[^a]', '[a-c]', "
    "'%%',\n"
    "  '(', ')', '()', '%1', '%2', '%bab', '%b()', '%f[a]', '%f[%s]', '*', '+', '-', '?', '^', "
    "'$',\n"
    "  ' ', '1', '[%d ]'}\n"
    "local chars = {'a', 'b', 'c', ' ', '1', '(', ')', 'x'}\n"
    "for _ = 1, 3000 do\n"
    "  local p = {}\n"
    "  for i = 1, math.random(1, 7) do p[i] = atoms[math.random(#atoms)] end\n"
    "  local s = {}\n"
    "  for i = 1, math.random(0, 14) do s[i] = chars[math.random(#chars)] end\n"
    "  local subject, pattern = table.concat(s), table.concat(p)\n"
    "  call(('%q %q find'):format(subject, pattern), string.find, subject, pattern)\n"
    "  call(('%q %q match'):format(subject, pattern), string.match, subject, pattern)\n"
    "  call(('%q %q gmatch'):format(subject, pattern), all, subject, pattern)\n"
    "  call(('%q %q gsub'):format(subject, pattern), string.gsub, subject, pattern, '<%0|%1>')\n"
    "end\n"
    "return table.concat(out, '\\n')\n";

/* The chunk's lines in L, or its error. */
static char *run_cases(lua_State *L)
{
    if (luaL_dostring(L, CASES) != LUA_OK) {
        check_fail_at(__FILE__, __LINE__, "the cases raised: %s", lua_tostring(L, -1));
        return NULL;
    }
    char *copy = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    return copy;
}

static const char *run(lua_State *L, const char *code)
{
    if (luaL_dostring(L, code) != LUA_OK)
        return lua_tostring(L, -1);
    return lua_tostring(L, -1);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Compares the two outputs line by line; prints the first few differences. */
static void compare(const char *want, const char *got)
{
    int lines = 0, differ = 0;
    while (*want || *got) {
        const char *we = strchr(want, '\n'), *ge = strchr(got, '\n');
        size_t wl = we ? (size_t)(we - want) : strlen(want);
        size_t gl = ge ? (size_t)(ge - got) : strlen(got);
        lines++;
        if (wl != gl || memcmp(want, got, wl) != 0) {
            if (++differ <= 10)
                check_fail_at(__FILE__, __LINE__, "line %d:\n  Lua:    %.*s\n  etlua:  %.*s", lines,
                              (int)wl, want, (int)gl, got);
        }
        want += wl + (we ? 1 : 0);
        got += gl + (ge ? 1 : 0);
    }
    CHECK(lines > 40000, "only %d calls compared", lines);
    printf("test_pattern: %d calls compared, %d differ\n", lines, differ);
}

int main(void)
{
    lua_State *lua = luaL_newstate(); /* Lua's own string library: the oracle */
    luaL_openlibs(lua);
    lua_State *L = luaL_newstate(); /* budget.patterns in the string library */
    luaL_openlibs(L);
    luaL_requiref(L, "etlua.budget", luaopen_etlua_budget, 0);
    lua_setglobal(L, "budget");
    CHECK_STR_EQ(run(L, "for k, f in pairs(budget.patterns) do string[k] = f end\n"
                        "return tostring(string.find == budget.patterns.find)"),
                 "true");

    char *want = run_cases(lua), *got = run_cases(L);
    if (want && got)
        compare(want, got);
    free(want);
    free(got);

    /* the budget cuts a backtracking pattern (hours for Lua's matcher) at its time */
    double t0 = now_ms();
    CHECK_STR_EQ(run(L, "local ok, why, text = budget.call(50, function()\n"
                        "  return ('a'):rep(3000):find(('a-'):rep(12) .. 'b')\n"
                        "end)\n"
                        "return tostring(ok) .. ' ' .. why .. ': ' .. text"),
                 "false timeout: ran past its time budget");
    double took = now_ms() - t0;
    /* seconds, not hours: memcheck.drain runs this test under valgrind too, where the cut at
     * 50 ms of CPU takes about 4 s of wall time */
    CHECK(took < 30000, "the cut took %.0f ms for a budget of 50 ms", took);
    /* also when the script catches the error: it is raised again at the next instruction */
    CHECK_STR_EQ(
        run(L, "local ok, why = budget.call(50, function()\n"
               "  local caught = pcall(string.gsub, ('a'):rep(3000), ('a-'):rep(12) .. 'b', '')\n"
               "  for _ in ('a'):rep(3000):gmatch(('a-'):rep(12) .. 'b') do end\n"
               "  return caught\n"
               "end)\n"
               "return tostring(ok) .. ' ' .. why"),
        "false timeout");
    /* a call within its budget, and the same functions after the cut call, work as before */
    CHECK_STR_EQ(run(L, "local ok, a, b = budget.call(1000, string.find, ('ab'):rep(2000) .. 'c', "
                        "'(b)c')\n"
                        "return tostring(ok) .. ' ' .. a .. ' ' .. b .. ' ' .. "
                        "select(2, ('a.b'):gsub('%.', '/'))"),
                 "true 4000 4001 1");

    lua_close(lua);
    lua_close(L);
    return CHECK_DONE("test_pattern");
}
