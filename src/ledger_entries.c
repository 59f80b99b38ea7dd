/* ledger_entries.c: the etlua.ledger_entries module. Owns the ledger's entry rule (how one key
 * becomes one entry of src/lua/etlua/ledger.lua's claim: its `sent` from a send time, its seq and
 * its digest; ledger.lua's header states the rule in words) and the per-message step of the
 * claim in its common cases: each item's entry (sent, seq, digest, outcome), the entries in
 * (sent, seq, digest) order, and the four arrays the claim's statement takes, made straight in
 * the binary form etlua.pg sends (etl_pg_push_int_array): no Lua table per array, no array read
 * back element by element to be encoded.
 *
 * The rule is one C function (entry_make, with key_line for what an --input or stdin line's key
 * spells), used by build() for the common batch and by entry() for everything else: ledger.lua's
 * Lua loop over the other batches and l:entry_key. ledger.lua keeps the batch-level decisions
 * (which items are common, the file stamps, partitions known or made, expired items, the legacy
 * ledger, the order, the fresh set). key_line reads the key by hand: two fixed forms of the
 * --input source's ids (etlua.source_file: a file's line ids made by etlua.lines' lines.message,
 * stdin's by source_file itself), no format a library parses; it matches what the Lua patterns
 * ^input:(%x+):(%d+)$ and ^stdin:%d+:(%d+)$ did before it.
 *
 * Why C for the batch: in Lua the claim's loop read about a dozen fields per message, called the
 * digest's C function, filled five arrays and the fresh set, checked the order, and the statement
 * then read the four arrays back twice each to encode them: about 100 VM instructions a message,
 * a seventh of the Lua VM's work in an --input run. Here (callgrind, Release, the claim of 200
 * items a batch with its statement): 9,300 -> 5,100 instructions an --input line, 9,200 ->
 * 4,100 an SQS message, of which ~2,500 are the SHA-256 (overstated under valgrind, which has no
 * SHA-NI).
 *
 * The rule (entry_make), for a key, the queue's name, an optional send time and the key's
 * --input file and line:
 *   digest  the first 8 bytes of SHA-256(prefix NUL key), big-endian, as a signed integer; the
 *           prefix is "input" for an --input line (the key names its file), else the queue's name;
 *   sent    with a send time (ms since 1970): its seconds since 2024-01-01 (floored), clamped to
 *           int4; without one the caller's stamp (the file's, else the queue's);
 *   seq     with a send time: its milliseconds << 21 | the low 21 bits of the digest's next 4
 *           bytes (big-endian); else the line, when there is one and it fits in int4; else those
 *           4 bytes' low 31 bits.
 * The line and file: an --input line's message carries them (input_line, input_file) when its id
 * is the key; otherwise the key spells them (key_line): "input:<hex file>:<digits>" (a file and
 * a line; no line past 2^31-1), "stdin:<digits>:<digits>" (a line, no file), anything else
 * neither. spec/ledger_spec.lua holds the rule to fixed vectors and the two paths to the same
 * entries on every kind of batch.
 *
 * build() takes an item (a table without a metatable, as is its message: a raw get is then what
 * item.f gives) whose
 *   - key (item.key, else item.id) is a string;
 *   - send time item.sent_ms is an integer, or absent (nil or false);
 *   - message, when it is a table whose input_line is set and whose id is the key (an --input
 *     line as etlua.source_file makes it), has an integer input_line and an input_file string or
 *     nil; otherwise whose key does not start with "i" (an --input line id to parse), nor,
 *     without a send time, with "stdin:";
 *   - `sent`, from the send time, the file's stamp (stamps[file]) or the queue's (stamp), falls
 *     in a partition that is not expired (>= live) and is known (known[k]).
 * For anything else build returns nil and the caller runs the Lua loop over the whole batch
 * (an unknown partition, an expired one, a float send time, a key to parse, a misused item: the
 * Lua loop raises its own errors). An --input file whose stamp the caller has not read yet
 * comes back by name: the caller reads it (in item order, as the Lua loop would) and calls
 * again.
 *
 * Lua API:
 *   entries.EPOCH: 1704067200, the time (s since 1970) whose `sent` is 0
 *   entries.entry(queue, key [, sent_ms [, message]]) -> seq, digest, sent, file
 *     one key's entry by the rule. sent_ms: the send time (an integer), or nil/false for none;
 *     message: the key's message (a table without a metatable, or nil), whose input_line and
 *     input_file give the line and file when its id is the key, as build() reads them (one
 *     check: message_line); otherwise the key is read (key_line). sent: nil without a send
 *     time (the caller stamps the entry); file: the --input file (the message's or the key's),
 *     else nil. Misuse raises.
 *   entries.build(items, queue, width, live, stamp, stamps, known)
 *     -> fresh, m, S, Q, D, O, P   every item taken: fresh = true when no two items share a key
 *                                  (no two entries share a digest), else the set of every
 *                                  item's key (true); m
 *                                  the number of entries (one per item), S, Q, D, O the sent,
 *                                  seq, digest and outcome arrays in (sent, seq, digest) order
 *                                  (ties: item order) as etlua.pg array parameters (int4[],
 *                                  int4[], int8[], "char"[]), P[j] the index in items of entry j
 *      | nil, file                 stamps[file] missing for the --input file named file
 *      | nil                       an item for the Lua path
 *     queue: the ledger's queue name; width: partition seconds; live: the first partition not
 *     expired (both integers, else nil: the Lua loop); stamp: the queue's stamp (an integer, or
 *     nil when it has none); stamps: --input file digest -> its stamp; known: partition index
 *     -> true (both the ledger's plain tables, read raw). */
#include "etlua/mask.h"
#include "etlua/modules.h"
#include "etlua/pg.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EPOCH 1704067200 /* 2024-01-01T00:00:00Z is sent 0 (entries.EPOCH: ledger.lua's M.EPOCH) */

#define OID_INT4_ARRAY 1007
#define OID_INT8_ARRAY 1016

struct etl_ledger_entry {
    int64_t digest;
    int32_t sent, seq;
    int32_t pos; /* the item's index in items (1-based) */
    char outcome;
    char input_digest; /* the digest is of "input" and the key, not of the queue's name */
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

#define NO_LINE INT64_MIN /* an entry without a line: its seq from the digest */

/* What an --input or stdin line's key spells (see the header): returns its line (NO_LINE when
 * none, or past 2^31-1) and sets *file, *flen to the --input file's hex digest in k (NULL when
 * none: a stdin line's key, or any other). */
static int64_t key_line(const char *k, size_t klen, const char **file, size_t *flen)
{
    *file = NULL;
    *flen = 0;
    int input = klen > 6 && memcmp(k, "input:", 6) == 0;
    if (!input && !(klen > 6 && memcmp(k, "stdin:", 6) == 0))
        return NO_LINE;
    size_t i = 6;
    for (; i < klen; i++) { /* input: hex digits; stdin: decimal ones */
        unsigned char c = (unsigned char)k[i];
        int hex = (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!((c >= '0' && c <= '9') || (input && hex)))
            break;
    }
    if (i == 6 || i + 1 >= klen || k[i] != ':')
        return NO_LINE;
    size_t colon = i;
    int64_t line = 0;
    for (i = colon + 1; i < klen; i++) {
        if (k[i] < '0' || k[i] > '9')
            return NO_LINE;
        if (line <= INT32_MAX) /* past it, it only has to stay past it */
            line = line * 10 + (k[i] - '0');
    }
    if (input) {
        *file = k + 6;
        *flen = colon - 6;
    }
    return line > INT32_MAX ? NO_LINE : line;
}

/* The rule (see the header): e's digest and seq, and its sent when there is a send time
 * (has_ms: sent_ms), from the key k, the queue's name, whether the key is an --input line's
 * (input: the digest's prefix is "input") and its line (NO_LINE: none). Returns 0, or -1 when
 * OpenSSL fails. */
static int entry_make(struct etl_ledger_entry *e, const char *queue, size_t qlen, const char *k,
                      size_t klen, int has_ms, lua_Integer sent_ms, int input, int64_t line)
{
    uint32_t bits;
    if (etl_mask_sha256_int64(input ? "input" : queue, input ? 5 : qlen, k, klen, &e->digest,
                              &bits) != 0)
        return -1;
    if (has_ms) {
        int64_t ms = sent_ms % 1000;
        if (ms < 0)
            ms += 1000;
        int64_t s = floor_div(sent_ms, 1000) - EPOCH;
        e->sent = s < INT32_MIN ? INT32_MIN : s > INT32_MAX ? INT32_MAX : (int32_t)s;
        e->seq = (int32_t)(ms << 21 | (bits & 0x1FFFFF));
    } else if (line >= INT32_MIN && line <= INT32_MAX) {
        e->seq = (int32_t)line;
    } else {
        e->seq = (int32_t)(bits & 0x7FFFFFFF);
    }
    e->input_digest = (char)input;
    return 0;
}

static int before(const struct etl_ledger_entry *a, const struct etl_ledger_entry *b)
{
    if (a->sent != b->sent)
        return a->sent < b->sent;
    if (a->seq != b->seq)
        return a->seq < b->seq;
    if (a->digest != b->digest)
        return a->digest < b->digest;
    return a->pos < b->pos;
}

static int by_entry(const void *x, const void *y)
{
    const struct etl_ledger_entry *a = x, *b = y;
    return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

/* The fields read, as the build function's upvalues (strings made once: a field read is then a
 * raw get, without lua_getfield's lookup of its C string among Lua's strings). */
enum { F_KEY = 1, F_ID, F_MESSAGE, F_INPUT_LINE, F_INPUT_FILE, F_SENT_MS, F_DROP, F_REJECT };
static const char *const FIELDS[] = {NULL,         "key",     "id",   "message", "input_line",
                                     "input_file", "sent_ms", "drop", "reject"};

/* Pushes t[f] of the table at idx (which has no metatable: a raw get is what t.f would give) and
 * returns its type. */
static int field(lua_State *L, int idx, int f)
{
    lua_pushvalue(L, lua_upvalueindex(f));
    return lua_rawget(L, idx);
}

/* t[f] of the table at idx is truthy. */
static int truthy_field(lua_State *L, int idx, int f)
{
    field(L, idx, f);
    int t = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return t;
}

/* The rule's "an --input line's message carries its line and file when its id is the key", for
 * the message at msg (a table) and the key at key: 1 with its input_line and input_file pushed
 * (two values; the file a string or nil), 0 with nothing pushed when it does not say (no
 * input_line, or another id), -1 with nothing pushed when it breaks the rule (a metatable: its
 * fields would not be raw gets; a line that is not an integer; a file neither a string nor nil).
 * Both entry() and build() read a message's line here. */
static int message_line(lua_State *L, int msg, int key, int64_t *line)
{
    if (lua_getmetatable(L, msg)) {
        lua_pop(L, 1);
        return -1;
    }
    if (field(L, msg, F_INPUT_LINE) == LUA_TNIL || !lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    field(L, msg, F_ID);
    int same = lua_rawequal(L, -1, key);
    lua_pop(L, 1);
    if (!same) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_isinteger(L, -1)) {
        lua_pop(L, 1);
        return -1;
    }
    *line = lua_tointeger(L, -1);
    int ft = field(L, msg, F_INPUT_FILE);
    if (ft != LUA_TSTRING && ft != LUA_TNIL) {
        lua_pop(L, 2);
        return -1;
    }
    return 1;
}

/* Fills *e from items[i] (a table at stack index item). Returns 1 when taken, 0 for the Lua path,
 * -1 when the stamp of the --input file now on top of the stack is missing. The key is left on
 * the stack (one value pushed) when it returns 1. */
static int entry_of(lua_State *L, int item, lua_Integer i, size_t qlen, const char *queue,
                    lua_Integer width, lua_Integer live, lua_Integer *lastk,
                    struct etl_ledger_entry *e)
{
    if (lua_getmetatable(L, item)) /* t.f would not be a raw get */
        return 0;
    if (field(L, item, F_KEY) == LUA_TNIL || !lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        field(L, item, F_ID);
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        return 0;
    int key = lua_gettop(L);
    size_t klen;
    const char *k = lua_tolstring(L, key, &klen);
    /* the --input line the message spells, when its id is the key */
    int from_msg = 0, has_file = 0;
    int64_t line = NO_LINE;
    int mt = field(L, item, F_MESSAGE); /* key + 1 */
    if (mt == LUA_TTABLE) {
        int r = message_line(L, key + 1, key, &line); /* 1: line, file at key + 2, key + 3 */
        if (r < 0)
            return 0;
        from_msg = r;
        has_file = r && lua_type(L, key + 3) == LUA_TSTRING;
    } else if (mt != LUA_TNIL && lua_toboolean(L, -1)) {
        return 0;
    }
    if (!from_msg && klen > 0 && k[0] == 'i')
        return 0;
    int st = field(L, item, F_SENT_MS);
    int has_ms = st != LUA_TNIL && lua_toboolean(L, -1);
    lua_Integer sent_ms = 0;
    if (has_ms) {
        if (!lua_isinteger(L, -1))
            return 0;
        sent_ms = lua_tointeger(L, -1);
    } else if (!from_msg && klen >= 6 && memcmp(k, "stdin:", 6) == 0) {
        return 0;
    }
    lua_pop(L, 1);
    /* without a send time, sent is a stamp: the file's, else the queue's */
    int64_t s = 0;
    if (!has_ms && has_file) {
        lua_pushvalue(L, key + 3);
        int t = lua_rawget(L, 6); /* stamps[file] */
        if (t == LUA_TNIL) {
            lua_pop(L, 1);
            lua_pushvalue(L, key + 3);
            return -1;
        }
        if (!lua_isinteger(L, -1))
            return 0;
        s = lua_tointeger(L, -1);
        lua_pop(L, 1);
    } else if (!has_ms) {
        if (!lua_isinteger(L, 5))
            return 0;
        s = lua_tointeger(L, 5);
    }
    /* the entry, by the rule (a key not read: no --input line unless its message says so) */
    if (entry_make(e, queue, qlen, k, klen, has_ms, sent_ms, has_file, line) != 0)
        return luaL_error(L, "etlua.ledger_entries: SHA-256 failed in OpenSSL");
    if (has_ms)
        s = e->sent;
    /* its partition */
    if (s < INT32_MIN || s > INT32_MAX)
        return 0;
    lua_Integer part = floor_div(s, width);
    if (part < live)
        return 0;
    if (part != *lastk) {
        int known = lua_rawgeti(L, 7, part) != LUA_TNIL && lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (!known)
            return 0;
        *lastk = part;
    }
    e->sent = (int32_t)s;
    e->pos = (int32_t)i;
    e->outcome = truthy_field(L, item, F_DROP) ? 'd' : truthy_field(L, item, F_REJECT) ? 'j' : 'r';
    lua_settop(L, key);
    return 1;
}

/* Whether two of the n entries share a digest (an open-addressing set of the digests, in the
 * scratch slots, 2^bits of them >= 2n). Two items with one key and one digest prefix have one
 * digest; two keys with one digest (beyond odds) only cost the set the caller then builds. */
static int any_digest_twice(const struct etl_ledger_entry *e, lua_Integer n, uint64_t *slot,
                            unsigned char *used, int bits)
{
    const uint64_t mask = ((uint64_t)1 << bits) - 1;
    memset(used, 0, (size_t)mask + 1);
    for (lua_Integer i = 0; i < n; i++) {
        uint64_t d = (uint64_t)e[i].digest, h = d & mask; /* SHA-256 bits: spread already */
        while (used[h]) {
            if (slot[h] == d)
                return 1;
            h = (h + 1) & mask;
        }
        used[h] = 1;
        slot[h] = d;
    }
    return 0;
}

/* Pushes the set of the n items' keys (each item's key, else its id: entry_of's choice). */
static void push_key_set(lua_State *L, lua_Integer n)
{
    lua_createtable(L, 0, n > 0 ? (int)n : 0);
    int set = lua_gettop(L);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        int item = lua_gettop(L);
        if (field(L, item, F_KEY) == LUA_TNIL || !lua_toboolean(L, -1)) {
            lua_pop(L, 1);
            field(L, item, F_ID);
        }
        lua_pushboolean(L, 1);
        lua_rawset(L, set);
        lua_pop(L, 1);
    }
}

static int etl_ledger_entries_build(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    size_t qlen;
    const char *queue = luaL_checklstring(L, 2, &qlen);
    luaL_checktype(L, 6, LUA_TTABLE);
    luaL_checktype(L, 7, LUA_TTABLE);
    lua_settop(L, 7);
    lua_Integer width = lua_isinteger(L, 3) ? lua_tointeger(L, 3) : 0;
    lua_Integer live = lua_isinteger(L, 4) ? lua_tointeger(L, 4) : LUA_MAXINTEGER;
    if (width <= 0 || live == LUA_MAXINTEGER) {
        lua_pushnil(L);
        return 1;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    if (n > INT32_MAX / (lua_Integer)sizeof(struct etl_ledger_entry)) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushboolean(L, 1); /* 8: fresh (true, or the set of the keys: below) */
    struct etl_ledger_entry *e =
        lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *e, 0);          /* 9 */
    int64_t *v = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *v, 0); /* 10 */
    lua_Integer lastk = LUA_MININTEGER;
    int sorted = 1, prefixes = 0; /* 1: a digest of "input", 2: of the queue */
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 1, i) != LUA_TTABLE) {
            lua_pushnil(L);
            return 1;
        }
        int r = entry_of(L, 11, i, qlen, queue, width, live, &lastk, &e[i - 1]);
        if (r <= 0) {
            lua_pushnil(L);
            if (r < 0)
                lua_pushvalue(L, -2); /* the file */
            return r < 0 ? 2 : 1;
        }
        prefixes |= e[i - 1].input_digest ? 1 : 2;
        lua_pop(L, 2); /* the key, the item */
        if (i > 1 && sorted && before(&e[i - 1], &e[i - 2]))
            sorted = 0;
    }
    /* Every key once (one digest each, all under one prefix): fresh stays true and the sink
     * looks no key up. Else the set of the keys, which the sink empties as it lands them. */
    int bits = 1;
    while (((lua_Integer)1 << bits) < 2 * n)
        bits++;
    if (n > 1 &&
        (prefixes == 3 || bits > 30 ||
         any_digest_twice(e, n, lua_newuserdatauv(L, ((size_t)1 << bits) * sizeof(uint64_t), 0),
                          lua_newuserdatauv(L, (size_t)1 << bits, 0), bits))) {
        lua_settop(L, 10);
        push_key_set(L, n);
        lua_replace(L, 8);
    }
    lua_settop(L, 10);
    if (!sorted)
        qsort(e, (size_t)n, sizeof *e, by_entry);
    lua_pushinteger(L, n); /* 11: m */
    for (lua_Integer j = 0; j < n; j++)
        v[j] = e[j].sent;
    etl_pg_push_int_array(L, OID_INT4_ARRAY, v, (size_t)n);
    for (lua_Integer j = 0; j < n; j++)
        v[j] = e[j].seq;
    etl_pg_push_int_array(L, OID_INT4_ARRAY, v, (size_t)n);
    for (lua_Integer j = 0; j < n; j++)
        v[j] = e[j].digest;
    etl_pg_push_int_array(L, OID_INT8_ARRAY, v, (size_t)n);
    char *o = (char *)(void *)v; /* v is free again: the outcomes, one byte each */
    for (lua_Integer j = 0; j < n; j++)
        o[j] = e[j].outcome;
    etl_pg_push_char_array(L, o, (size_t)n);
    lua_createtable(L, n > 0 ? (int)n : 0, 0); /* P */
    for (lua_Integer j = 0; j < n; j++) {
        lua_pushinteger(L, e[j].pos);
        lua_rawseti(L, -2, j + 1);
    }
    lua_pushvalue(L, 8);
    lua_replace(L, 10); /* fresh, m, S, Q, D, O, P at 10.. */
    return 7;
}

/* entries.entry(queue, key [, sent_ms [, message]]) -> seq, digest, sent, file: one key's entry
 * by the rule (the header). */
static int etl_ledger_entries_entry(lua_State *L)
{
    size_t qlen, klen;
    const char *queue = luaL_checklstring(L, 1, &qlen);
    const char *k = luaL_checklstring(L, 2, &klen);
    int has_ms = lua_toboolean(L, 3);
    lua_Integer sent_ms = has_ms ? luaL_checkinteger(L, 3) : 0;
    lua_settop(L, 4);
    int64_t line = NO_LINE;
    int input = 0, from_msg = 0;
    if (lua_type(L, 4) == LUA_TTABLE) {
        from_msg = message_line(L, 4, 2, &line); /* 1: line, file at 5, 6 */
        if (from_msg < 0)
            return luaL_argerror(L, 4,
                                 "a message with a metatable, a line not an integer or a "
                                 "file neither a string nor nil");
        input = from_msg && lua_type(L, 6) == LUA_TSTRING;
    } else if (!lua_isnil(L, 4)) {
        return luaL_typeerror(L, 4, "table or nil");
    }
    if (!from_msg) { /* the key says */
        lua_settop(L, 5);
        const char *file;
        size_t flen;
        line = key_line(k, klen, &file, &flen);
        input = file != NULL;
        if (input)
            lua_pushlstring(L, file, flen);
        else
            lua_pushnil(L);
    } /* the file (or nil) is at 6 */
    struct etl_ledger_entry e;
    if (entry_make(&e, queue, qlen, k, klen, has_ms, sent_ms, input, line) != 0)
        return luaL_error(L, "etlua.ledger_entries: SHA-256 failed in OpenSSL");
    lua_pushinteger(L, e.seq);
    lua_pushinteger(L, (lua_Integer)e.digest);
    if (has_ms)
        lua_pushinteger(L, e.sent);
    else
        lua_pushnil(L);
    lua_pushvalue(L, 6);
    return 4;
}

int luaopen_etlua_ledger_entries(lua_State *L)
{
    lua_createtable(L, 0, 3);
    for (int f = F_KEY; f <= F_REJECT; f++)
        lua_pushstring(L, FIELDS[f]);
    lua_pushcclosure(L, etl_ledger_entries_entry, F_REJECT);
    lua_setfield(L, -2, "entry");
    lua_pushinteger(L, EPOCH);
    lua_setfield(L, -2, "EPOCH");
    for (int f = F_KEY; f <= F_REJECT; f++)
        lua_pushstring(L, FIELDS[f]);
    lua_pushcclosure(L, etl_ledger_entries_build, F_REJECT);
    lua_setfield(L, -2, "build");
    return 1;
}
