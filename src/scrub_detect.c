/* scrub_detect.c: two of the scrubber's detectors (include/etlua/scrub_internal.h), each one
 * left-to-right pass that never steps back:
 *
 * Addresses. The text is cut into maximal runs of [0-9A-Fa-f:.]. A run (without leading and
 * trailing dots, and a single leading or trailing colon) is IPv6-shaped when it has two colons
 * or more and a "::", or seven colons or more, or six and a dot (an IPv4 tail): the whole run is
 * masked (canonical form first, so it masks like the record's own ip). A time like 12:30:45 or a
 * MAC address is not. Otherwise every chain of four or more dot-separated digit groups inside
 * the run is masked (1.2.3.4; a version 1.2.3 is not).
 *
 * Keys. A key is a name in double quotes, single quotes, escaped quotes (\"ip\", JSON inside a
 * JSON string) or bare (ip=..., ip: ...), its characters possibly \u-escaped ("device\u005fid");
 * then blanks, ':' or '=' (or "=>"), blanks, and the value: a quoted string up to its closing
 * quote (or the end of a truncated text), or a bare token up to a delimiter. When the name is
 * one of the scrubber's keys (ASCII case-insensitive) the value is masked; null, None, true and
 * false are kept. A key attempt reads at most a bounded number of characters before giving up;
 * a quoted value's region (up to the next quote of its kind) is read by at most one value, and
 * a bare value is skipped whole, so the pass stays linear. */
#include "etlua/buf.h"
#include "etlua/scrub_internal.h"

#include <string.h>

/* ---- addresses -------------------------------------------------------------------------------- */

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int is_hex(unsigned char c) { return etl_hex_digit(c) >= 0; }

static int is_addr_char(unsigned char c) { return is_hex(c) || c == ':' || c == '.'; }

static int push_hash(struct etl_scrub_spans *out, size_t a, size_t b, size_t rs, size_t re,
                     int canonical)
{
    struct etl_scrub_span sp = {a, b, ETL_SCRUB_SPAN_HASH, canonical, rs, re, NULL};
    return etl_scrub_spans_push(out, &sp);
}

/* The dotted-quad chains of t[a..b) (a run with no IPv6 shape). */
static int ipv4_chains(const unsigned char *t, size_t a, size_t b, struct etl_scrub_spans *out)
{
    size_t k = a;
    while (k < b) {
        if (!is_digit(t[k])) {
            k++;
            continue;
        }
        size_t start = k, groups = 0;
        for (;;) {
            while (k < b && is_digit(t[k]))
                k++;
            groups++;
            if (k + 1 < b && t[k] == '.' && is_digit(t[k + 1])) {
                k++;
                continue;
            }
            break;
        }
        if (groups >= 4 && push_hash(out, start, k, start, k, ETL_SCRUB_CANON_IP) != 0)
            return -1;
    }
    return 0;
}

static int address_run(const unsigned char *t, size_t a, size_t b, struct etl_scrub_spans *out)
{
    while (a < b && t[a] == '.')
        a++;
    while (b > a && t[b - 1] == '.')
        b--;
    if (b - a >= 2 && t[a] == ':' && t[a + 1] != ':')
        a++;
    if (b - a >= 2 && t[b - 1] == ':' && t[b - 2] != ':')
        b--;
    size_t colons = 0;
    int dcolon = 0, dot = 0;
    for (size_t k = a; k < b; k++) {
        if (t[k] == ':') {
            colons++;
            if (k + 1 < b && t[k + 1] == ':')
                dcolon = 1;
        } else if (t[k] == '.') {
            dot = 1;
        }
    }
    if (colons >= 2 && (dcolon || colons >= 7 || (colons >= 6 && dot)))
        return push_hash(out, a, b, a, b, ETL_SCRUB_CANON_IP);
    return dot ? ipv4_chains(t, a, b, out) : 0;
}

int etl_scrub_addresses(const char *text, size_t n, struct etl_scrub_spans *out)
{
    const unsigned char *t = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        if (!is_addr_char(t[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && is_addr_char(t[j]))
            j++;
        if (address_run(t, i, j, out) != 0)
            return -1;
        i = j;
    }
    return 0;
}

/* ---- keys ------------------------------------------------------------------------------------- */

static int is_alpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_ident(unsigned char c) { return is_alpha(c) || is_digit(c) || c == '_'; }
static int is_name_char(unsigned char c)
{
    return is_ident(c) || c == '-' || c == '.' || c == '$' || c == '@';
}
static int is_blank(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* Length of a quote opener at t[p] (1: " or ', 2: \" or \'), 0 when none; *q = the quote. */
static size_t opener(const unsigned char *t, size_t n, size_t p, unsigned char *q)
{
    if (t[p] == '"' || t[p] == '\'') {
        *q = t[p];
        return 1;
    }
    if (t[p] == '\\' && p + 1 < n && (t[p + 1] == '"' || t[p + 1] == '\'')) {
        *q = t[p + 1];
        return 2;
    }
    return 0;
}

/* The key whose name equals name[0..len) (already lowercase), or -1. */
static int find_key(const struct etl_scrub_key *keys, size_t nkeys, const unsigned char *name,
                    size_t len)
{
    for (size_t k = 0; k < nkeys; k++) {
        if (keys[k].len != len)
            continue;
        size_t i = 0;
        while (i < len && lower((unsigned char)keys[k].name[i]) == name[i])
            i++;
        if (i == len)
            return (int)k;
    }
    return -1;
}

/* An escape \uXXXX (or \\uXXXX, inside a JSON string) at t[i] for an ASCII character: the
 * character and *next after it, or -1. */
static int escaped_char(const unsigned char *t, size_t n, size_t i, size_t *next)
{
    size_t u = i + 1;
    if (u < n && t[u] == '\\')
        u++;
    if (u + 4 >= n || t[u] != 'u' || etl_hex_digit(t[u + 1]) != 0 || etl_hex_digit(t[u + 2]) != 0)
        return -1;
    int h2 = etl_hex_digit(t[u + 3]), h3 = etl_hex_digit(t[u + 4]);
    if (h2 < 0 || h3 < 0)
        return -1;
    *next = u + 5;
    return h2 << 4 | h3;
}

/* A bare key at t[p] (a word of [A-Za-z0-9_] and escapes of them): its index in keys or -1, and
 * *end just past the word (read whole, however long). */
static int bare_key(const struct etl_scrub_key *keys, size_t nkeys, const unsigned char *t,
                    size_t n, size_t p, size_t *end)
{
    unsigned char name[ETL_SCRUB_KEY_MAX];
    size_t i = p, len = 0, next;
    int c;
    while (i < n) {
        if (is_ident(t[i])) {
            c = t[i];
            next = i + 1;
        } else if (t[i] == '\\' && (c = escaped_char(t, n, i, &next)) >= 0 &&
                   is_ident((unsigned char)c)) {
            /* an escaped word character */
        } else {
            break;
        }
        if (len <= ETL_SCRUB_KEY_MAX) {
            if (len < ETL_SCRUB_KEY_MAX)
                name[len] = lower((unsigned char)c);
            len++;
        }
        i = next;
    }
    *end = i > p ? i : p + 1;
    return len <= ETL_SCRUB_KEY_MAX ? find_key(keys, nkeys, name, len) : -1;
}

/* A quoted key at t[p]: its index in keys and *end just past the closing quote, or -1. Reads at
 * most 7 * ETL_SCRUB_KEY_MAX + 4 characters. */
static int quoted_key(const struct etl_scrub_key *keys, size_t nkeys, const unsigned char *t,
                      size_t n, size_t p, size_t *end)
{
    unsigned char q, name[ETL_SCRUB_KEY_MAX];
    size_t ol = opener(t, n, p, &q), i = p + ol, len = 0;
    if (ol == 0)
        return -1;
    while (i < n) {
        int c = t[i];
        if (ol == 1 && c == q) {
            *end = i + 1;
            return find_key(keys, nkeys, name, len);
        }
        if (ol == 2 && c == '\\' && i + 1 < n && t[i + 1] == q) {
            *end = i + 2;
            return find_key(keys, nkeys, name, len);
        }
        if (c == '\\') {
            if ((c = escaped_char(t, n, i, &i)) < 0)
                return -1;
        } else {
            i++;
        }
        if (!is_name_char((unsigned char)c) || len == ETL_SCRUB_KEY_MAX)
            return -1;
        name[len++] = lower((unsigned char)c);
    }
    return -1;
}

/* After a key ending at i: blanks, ':' '=' or "=>", blanks. The value's start, or n + 1. */
static size_t separator(const unsigned char *t, size_t n, size_t i)
{
    while (i < n && is_blank(t[i]))
        i++;
    if (i >= n || (t[i] != ':' && t[i] != '='))
        return n + 1;
    i++;
    if (t[i - 1] == '=' && i < n && t[i] == '>')
        i++;
    while (i < n && is_blank(t[i]))
        i++;
    return i;
}

static int is_delim(unsigned char c)
{
    return is_blank(c) || c == ',' || c == '}' || c == ']' || c == ')' || c == ';' || c == '&' ||
           c == '"' || c == '\'' || c == '<' || c == '>' || c == '\\' || c == '{' || c == '[' ||
           c == '=';
}

static int kept_literal(const unsigned char *s, size_t len)
{
    static const char *const lit[] = {"null", "None", "true", "false", "True", "False", "nil"};
    for (size_t k = 0; k < sizeof lit / sizeof lit[0]; k++)
        if (strlen(lit[k]) == len && memcmp(lit[k], s, len) == 0)
            return 1;
    return 0;
}

/* The value starting at t[v] of a key with canonical form canon: its span appended; returns
 * where scanning goes on, or (size_t)-1 out of memory. */
static size_t value_at(const unsigned char *t, size_t n, size_t v, int canon,
                       struct etl_scrub_spans *out)
{
    unsigned char q;
    size_t ol = v < n ? opener(t, n, v, &q) : 0;
    size_t s = v + ol, e = s, next;
    if (ol == 1) {
        while (e < n && t[e] != q)
            e += t[e] == '\\' ? 2 : 1;
        if (e > n)
            e = n;
    } else if (ol == 2) {
        while (e < n && !(t[e] == '\\' && e + 1 < n && t[e + 1] == q && t[e - 1] != '\\'))
            e++;
    } else {
        while (e < n && !is_delim(t[e]))
            e++;
        if (kept_literal(t + s, e - s))
            return e;
    }
    /* A value is read again from its start: in a body with a quote missing or extra, what
     * looked like a value may be a key. Still linear: a quoted value's region (up to the next
     * quote of its kind) holds no other value of its kind, and a bare value's region ends at
     * the first '=' or delimiter, so it holds no other bare value either, except after a ':'
     * (ip:ip:ip:...): a bare value with a colon is skipped whole. */
    next = (ol == 0 && memchr(t + s, ':', e - s) != NULL) ? e : v;
    if (e > s && push_hash(out, s, e, s, e, canon) != 0)
        return (size_t)-1;
    return next; /* > the key's start: the caller always moves on */
}

int etl_scrub_keyed(const struct etl_scrub_key *keys, size_t nkeys, const char *text, size_t n,
                    struct etl_scrub_spans *out)
{
    const unsigned char *t = (const unsigned char *)text;
    size_t p = 0;
    if (nkeys == 0)
        return 0;
    while (p < n) {
        unsigned char c = t[p];
        int k = -1;
        size_t end = p + 1;
        if (c == '"' || c == '\'' || c == '\\') {
            k = quoted_key(keys, nkeys, t, n, p, &end);
        } else if ((is_alpha(c) || c == '_') && (p == 0 || !is_ident(t[p - 1]))) {
            k = bare_key(keys, nkeys, t, n, p, &end);
            if (k < 0) {
                p = end; /* the whole word is not a key */
                continue;
            }
        }
        if (k < 0) {
            p++;
            continue;
        }
        size_t v = separator(t, n, end);
        if (v > n) {
            p++;
            continue;
        }
        size_t next = value_at(t, n, v, keys[k].canonical, out);
        if (next == (size_t)-1)
            return -1;
        p = next;
    }
    return 0;
}
