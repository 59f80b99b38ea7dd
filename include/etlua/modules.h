/* modules.h: owns the declaration of every C module's entry point, luaopen_etlua_<name>, which
 * pushes the table `require "etlua.<name>"` returns, and of etlua.so's luaopen_etlua. Each is
 * declared here only: the .c that defines it includes this header (so a changed signature no
 * longer compiles), and src/host.c (etl_host_preload) and the tests call it through it. Where a
 * module's Lua API is described is named beside it; a module's C functions for other C code stay
 * in its own header. A new C module adds its line here (CONTRIBUTING.md "Adding a C module"). */
#ifndef ETLUA_MODULES_H
#define ETLUA_MODULES_H

struct lua_State;

/* etlua.host (src/host.c): signals, clocks, sleep, isatty, list_dir, version. */
int luaopen_etlua_host(struct lua_State *L);

/* etlua.mask (src/mask.c): mask.sha256_hex, mask.hmac_sha256_hex, mask.new(key) ->
 * "etlua.mask.hasher" with :hex(s) and :close(), mask.canonical_ip(s) -> text, 4|6 or nil. */
int luaopen_etlua_mask(struct lua_State *L);

/* etlua.sqs (src/sqs.c): sqs.client{...}; API: include/etlua/sqs.h. */
int luaopen_etlua_sqs(struct lua_State *L);

/* etlua.pg (src/pg.c): pushes the module table {connect = ...}. */
int luaopen_etlua_pg(struct lua_State *L);

/* etlua.metrics (src/metrics_lua.c): metrics.registry() -> "etlua.metrics.registry" with
 *   :counter(name, help [, label]) -> id     :gauge(name, help [, label]) -> id
 *   :histogram(name, help, {bounds}) -> id
 *   :inc(id [, n [, label_value]])   :set(id, v [, label_value])   :observe(id, v)
 *   :render() -> text                :ready(bool)
 *   :constant_label(name, value)     :process_metrics()
 *   :serve(addr) -> bound_addr | nil, msg
 *   :close() (also __gc and __close; twice is safe)
 * Misuse (bad names, unknown ids, a closed registry) raises. */
int luaopen_etlua_metrics(struct lua_State *L);

/* etlua.vault (src/vault.c, its API in that file's header): the PII vault's AES-256-GCM key. */
int luaopen_etlua_vault(struct lua_State *L);

/* etlua.json (src/json.c): json.decode(s), json.encode(v), json.number_text(n), json.array_mt,
 * json.null. */
int luaopen_etlua_json(struct lua_State *L);

/* etlua.scrub (src/scrub.c): scrub.new(masker, keys [, canonical]) -> scrubber;
 * scrubber:text(s [, patterns]); scrub.patterns(raws) -> patterns; scrub.clean(s). */
int luaopen_etlua_scrub(struct lua_State *L);

/* etlua.budget (src/budget.c, its API in that file's header): budget.call(ms, fn, ...), and
 * budget.patterns (src/pattern.c). */
int luaopen_etlua_budget(struct lua_State *L);

/* etlua.row (src/row.c, its API in that file's header): row.gather(t, columns). */
int luaopen_etlua_row(struct lua_State *L);

/* etlua.lines (src/lines.c, its API in that file's header): an --input file's lines. */
int luaopen_etlua_lines(struct lua_State *L);

/* etlua.ledger_entries (src/ledger_entries.c, its API in that file's header): the ledger's
 * entry rule and its per-message step. */
int luaopen_etlua_ledger_entries(struct lua_State *L);

/* etlua.so's entry point (src/main.c, built with ETLUA_AS_MODULE): `require "etlua"` preloads
 * all of the above and the embedded Lua modules (etl_host_preload). */
int luaopen_etlua(struct lua_State *L);

#endif
