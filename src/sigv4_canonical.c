/* sigv4_canonical.c: the parts of SigV4's canonical request: URI encoding, the URL split into
 * host, path and query, the canonical path and query string, the sorted canonical headers with
 * the signed-header list, and the Host value. Pure string work, no crypto (src/sigv4.c signs).
 * The forms follow the AWS SigV4 documentation and are checked byte for byte against botocore
 * (tests/sigv4/compare_botocore.py). */
#include "etlua/sigv4_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

size_t etl_sigv4_uri_encode(char *dst, const char *src, size_t len, int keep_slash)
{
    static const char HEX[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
            dst[o++] = (char)c;
        } else {
            dst[o++] = '%';
            dst[o++] = HEX[c >> 4];
            dst[o++] = HEX[c & 15];
        }
    }
    dst[o] = '\0';
    return o;
}


int etl_sigv4_url_split(const char *url, struct url_parts *u)
{
    memset(u, 0, sizeof *u);
    u->port = -1;
    const char *sep = strstr(url, "://");
    if (!sep)
        return -1;
    size_t slen = (size_t)(sep - url);
    if (slen == 5 && strncasecmp(url, "https", 5) == 0)
        u->https = 1;
    else if (!(slen == 4 && strncasecmp(url, "http", 4) == 0))
        return -1;
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', alen);
    while (at) { /* drop userinfo: everything up to the last '@' of the authority */
        alen -= (size_t)(at + 1 - auth);
        auth = at + 1;
        at = memchr(auth, '@', alen);
    }
    const char *end = auth + alen, *colon = NULL;
    if (alen && auth[0] == '[') {
        const char *rb = memchr(auth, ']', alen);
        if (!rb)
            return -1;
        if (rb + 1 < end && rb[1] == ':')
            colon = rb + 1;
        else if (rb + 1 != end)
            return -1;
    } else {
        colon = memchr(auth, ':', alen);
    }
    u->host = auth;
    u->host_len = colon ? (size_t)(colon - auth) : alen;
    if (u->host_len == 0)
        return -1;
    if (colon && colon + 1 < end) {
        long port = 0;
        for (const char *p = colon + 1; p < end; p++) {
            if (!isdigit((unsigned char)*p))
                return -1;
            port = port * 10 + (*p - '0');
            if (port > 65535)
                return -1;
        }
        u->port = port;
    }
    const char *rest = end;
    if (*rest == '/') {
        u->path = rest;
        u->path_len = strcspn(rest, "?#");
        rest += u->path_len;
    }
    if (*rest == '?') {
        u->query = rest + 1;
        u->query_len = strcspn(rest + 1, "#");
    }
    return 0;
}

/* RFC 3986 remove_dot_segments plus the collapse of empty segments AWS expects, then the URI
 * encoding with '/' kept. An empty path is "/". */
void etl_sigv4_canonical_path(struct sbuf *b, const char *path, size_t len)
{
    if (len == 0) {
        sb_add(b, "/");
        return;
    }
    /* segment tables and the encoding buffer on the stack for the usual short path ("/") */
    size_t st_starts[33], st_lens[33];
    char st_enc[3 * 32 + 1];
    int small = len <= 32;
    size_t nseg = 0, *starts = small ? st_starts : calloc(len + 1, sizeof *starts),
           *lens = small ? st_lens : calloc(len + 1, sizeof *lens);
    if (!starts || !lens) {
        if (!small) {
            free(starts);
            free(lens);
        }
        b->ok = 0;
        return;
    }
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        size_t sl = j - i;
        if (sl == 2 && path[i] == '.' && path[i + 1] == '.') {
            if (nseg)
                nseg--;
        } else if (sl && !(sl == 1 && path[i] == '.')) {
            starts[nseg] = i;
            lens[nseg++] = sl;
        }
        i = j + 1;
    }
    char *enc = small ? st_enc : malloc(3 * len + 1);
    if (!enc) {
        b->ok = 0;
    } else {
        if (path[0] == '/')
            sb_add(b, "/");
        for (size_t k = 0; k < nseg; k++) {
            if (k)
                sb_add(b, "/");
            sb_addn(b, enc, etl_sigv4_uri_encode(enc, path + starts[k], lens[k], 1));
        }
        if (path[len - 1] == '/' && nseg)
            sb_add(b, "/");
    }
    if (!small) {
        free(enc);
        free(starts);
        free(lens);
    }
}

struct kv {
    const char *k, *v;
    size_t klen, vlen;
};

static int cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int kv_cmp(const void *pa, const void *pb)
{
    const struct kv *a = pa, *b = pb;
    int c = cmp_bytes(a->k, a->klen, b->k, b->klen);
    return c ? c : cmp_bytes(a->v, a->vlen, b->v, b->vlen);
}

/* The query of the URL, its pairs sorted by name then value. The pairs are taken as the URL
 * already encodes them (as botocore does); etlua's own requests carry no query string. */
void etl_sigv4_canonical_query(struct sbuf *b, const char *q, size_t len)
{
    if (!q || len == 0)
        return;
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += q[i] == '&';
    struct kv *kv = calloc(n, sizeof *kv);
    if (!kv) {
        b->ok = 0;
        return;
    }
    size_t i = 0, k = 0;
    while (k < n) {
        size_t j = i;
        while (j < len && q[j] != '&')
            j++;
        const char *eq = memchr(q + i, '=', j - i);
        kv[k].k = q + i;
        kv[k].klen = eq ? (size_t)(eq - (q + i)) : j - i;
        kv[k].v = eq ? eq + 1 : q + j;
        kv[k].vlen = eq ? (size_t)(q + j - (eq + 1)) : 0;
        k++;
        i = j + 1;
    }
    qsort(kv, n, sizeof *kv, kv_cmp);
    for (k = 0; k < n; k++) {
        if (k)
            sb_add(b, "&");
        sb_addn(b, kv[k].k, kv[k].klen);
        sb_add(b, "=");
        sb_addn(b, kv[k].v, kv[k].vlen);
    }
    free(kv);
}

struct hdr {
    char *name;        /* lowercase, heap */
    const char *value; /* trimmed on output */
};

static int hdr_cmp(const void *pa, const void *pb)
{
    return strcmp(((const struct hdr *)pa)->name, ((const struct hdr *)pb)->name);
}

/* Trimall: no leading or trailing white space, inner runs of it as one space. */
static void add_trimmed(struct sbuf *b, const char *v)
{
    int any = 0;
    while (*v) {
        while (*v && isspace((unsigned char)*v))
            v++;
        if (!*v)
            break;
        const char *w = v; /* one run of non-space, appended at once */
        while (*w && !isspace((unsigned char)*w))
            w++;
        if (any)
            sb_addn(b, " ", 1);
        sb_addn(b, v, (size_t)(w - v));
        any = 1;
        v = w;
    }
}

static int reserved_header(const char *name)
{
    return strcasecmp(name, "host") == 0 || strcasecmp(name, "x-amz-date") == 0 ||
           strcasecmp(name, "x-amz-security-token") == 0 || strcasecmp(name, "authorization") == 0;
}

/* Writes the canonical headers block (each "name:value\n") to ch and the signed header list
 * to sh. Headers with the same name are joined with ','. */
void etl_sigv4_canonical_headers(struct sbuf *ch, struct sbuf *sh, const struct etl_sigv4_input *in,
                              const struct etl_sigv4_output *out)
{
    /* the table and the lowercase names live on the stack while they fit (SQS: 4 headers) */
    struct hdr st_h[8];
    char arena[512];
    size_t arena_used = 0;
    size_t n = 0, cap = in->nheaders + 3;
    struct hdr *h = cap <= 8 ? st_h : calloc(cap, sizeof *h);
    if (!h) {
        ch->ok = 0;
        return;
    }
    const char *names[3] = {"host", "x-amz-date", "x-amz-security-token"};
    const char *values[3] = {out->host, out->amz_date, in->session_token};
    for (int i = 0; i < 3; i++) {
        if (values[i]) {
            h[n].name = (char *)names[i]; /* static: never freed (see below) */
            h[n++].value = values[i];
        }
    }
    for (size_t i = 0; i < in->nheaders; i++) {
        if (!in->headers[i].name || !in->headers[i].value || reserved_header(in->headers[i].name))
            continue;
        size_t nl = strlen(in->headers[i].name);
        char *lname;
        if (arena_used + nl + 1 <= sizeof arena) {
            lname = arena + arena_used;
            arena_used += nl + 1;
            memcpy(lname, in->headers[i].name, nl + 1);
        } else {
            lname = malloc(nl + 1);
            if (lname)
                memcpy(lname, in->headers[i].name, nl + 1);
        }
        if (lname)
            for (char *p = lname; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        h[n].name = lname;
        h[n++].value = in->headers[i].value;
    }
    for (size_t i = 0; i < n; i++)
        if (!h[i].name)
            ch->ok = 0;
    if (ch->ok) {
        qsort(h, n, sizeof *h, hdr_cmp);
        for (size_t i = 0; i < n; i++) {
            int same_as_prev = i > 0 && strcmp(h[i].name, h[i - 1].name) == 0;
            if (same_as_prev) {
                ch->len--; /* drop the '\n' of the previous line, continue its value */
                sb_add(ch, ",");
            } else {
                sb_add(ch, h[i].name);
                sb_add(ch, ":");
                if (sh->len)
                    sb_add(sh, ";");
                sb_add(sh, h[i].name);
            }
            add_trimmed(ch, h[i].value);
            sb_add(ch, "\n");
        }
    }
    /* free what came from the heap: neither the static names nor the arena's */
    for (size_t i = 0; i < n; i++) {
        int is_static = h[i].name == names[0] || h[i].name == names[1] || h[i].name == names[2];
        int in_arena = h[i].name >= arena && h[i].name < arena + sizeof arena;
        if (!is_static && !in_arena)
            free(h[i].name);
    }
    if (h != st_h)
        free(h);
}

int etl_sigv4_set_host(struct etl_sigv4_output *out, const struct url_parts *u)
{
    if (u->host_len + 8 > sizeof out->host)
        return -1;
    for (size_t i = 0; i < u->host_len; i++)
        out->host[i] = (char)tolower((unsigned char)u->host[i]);
    out->host[u->host_len] = '\0';
    if (u->port >= 0 && u->port != (u->https ? 443 : 80))
        snprintf(out->host + u->host_len, sizeof out->host - u->host_len, ":%ld", u->port);
    return 0;
}
