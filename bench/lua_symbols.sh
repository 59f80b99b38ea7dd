#!/usr/bin/env bash
# bench/lua_symbols.sh [DIR]: Debian's own Lua 5.4 built with symbols, for profiling only.
#
# Debian ships liblua5.4.so.0 stripped and no debug package is reachable here, so callgrind and
# perf show the interpreter as bare addresses: a profile says "72% in liblua" and no more. This
# fetches the source of the installed lua5.4 package (apt-get source: the same version and
# Debian's patches), builds the library with -g -O2 under the same soname and symbol version
# into DIR (default build-lua-symbols/), and prints the LD_LIBRARY_PATH that makes etlua (and
# lua5.4) load it. Same ABI: nothing is rebuilt on etlua's side.
#   LD_LIBRARY_PATH=$(bench/lua_symbols.sh) valgrind --tool=callgrind build-bench/etlua ...
#   bench/profile.sh picks it up by itself when DIR exists.
# Found with it: `--input` spent a quarter of its instructions in string.gsub (str_gsub, match,
# classend) stripping line ends; see bench/README.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/build-lua-symbols}
if [ -f "$OUT/liblua5.4.so.0" ]; then echo "$OUT"; exit 0; fi
mkdir -p "$OUT/src"
cd "$OUT/src"
# a deb-src line for the configured suite, in a list of its own (the system's lists untouched)
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
echo "deb-src http://deb.debian.org/debian $suite main" >"$OUT/src/sources.list"
apt=(-o "Dir::Etc::sourcelist=$OUT/src/sources.list" -o "Dir::Etc::sourceparts=-"
     -o "Dir::State::Lists=$OUT/src/lists" -o "Dir::Cache=$OUT/src/cache")
mkdir -p lists/partial cache
apt-get "${apt[@]}" update >&2
version=$(dpkg-query -W -f '${source:Version}' liblua5.4-0)
apt-get "${apt[@]}" source --download-only "lua5.4=$version" >&2
tar xzf lua5.4_*.orig.tar.gz
tar xJf lua5.4_*.debian.tar.xz
cd lua-5.4.*/
while read -r p; do [ -n "$p" ] && patch -p1 -s <"../debian/patches/$p"; done <../debian/patches/series
cd src
printf 'LUA_5.4 { global: *; };\n' >"$OUT/src/ver.map"
mapfile -t files < <(ls ./*.c | grep -v -E '/(lua|luac|onelua)\.c$')
gcc -O2 -g -fPIC -shared -DLUA_COMPAT_5_3 -DLUA_USE_LINUX \
    -Wl,--version-script="$OUT/src/ver.map" -Wl,-soname,liblua5.4.so.0 \
    -o "$OUT/liblua5.4.so.0" "${files[@]}" -ldl -lm
echo "$OUT"
