/* sigv4.c: AWS Signature Version 4 (canonical request, string to sign, signing key, signature).
 * A function of its inputs: no clock, no network. Hashing and HMAC come from OpenSSL (EVP_MD and
 * EVP_MAC, neither deprecated in OpenSSL 3); we write no crypto of our own. The canonical forms
 * follow the AWS SigV4 documentation and are checked byte for byte against botocore
 * (tests/sigv4/compare_botocore.py).
 *
 * Speed (bench/README.md "Where the time goes"): OpenSSL 3's one-shot EVP_Digest() and HMAC()
 * look the algorithm up in the provider store on every call, which cost ~14 us per signature,
 * far more than the hashing itself. So each thread keeps, across calls, the fetched SHA-256, one
 * digest context and one HMAC context, and the signing key of the last (secret, date, region,
 * service): the four-HMAC key derivation runs once a day, not once a request. The key is
 * recognised by a SHA-256 fingerprint of the secret (no second copy of the secret is kept); the
 * cached key is the same value the chain would compute, so the output does not change. Buffers
 * start on the stack; only the returned Authorization value is allocated. When OpenSSL cannot
 * give the contexts, the one-shot calls are used as before. */
#include "etlua/sigv4.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

/* A growable string on a caller's buffer first, the heap past it; every append reports failure
 * by leaving ok = 0. */
struct sbuf {
    char *p;
    size_t len, cap;
    int ok, heap;
};

#define SBUF_ON(buf) {.p = (buf), .cap = sizeof(buf), .ok = 1}

static void sb_reserve(struct sbuf *b, size_t extra)
{
    if (!b->ok)
        return;
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = b->heap ? realloc(b->p, cap) : malloc(cap);
    if (!p) {
        b->ok = 0;
        return;
    }
    if (!b->heap && b->len)
        memcpy(p, b->p, b->len);
    b->p = p;
    b->cap = cap;
    b->heap = 1;
}

static void sb_free(struct sbuf *b)
{
    if (b->heap)
        free(b->p);
    b->p = NULL;
    b->heap = 0;
}

static void sb_addn(struct sbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    if (!b->ok)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_add(struct sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }

static const char hexdig[] = "0123456789abcdef";

static void to_hex(char *dst, const unsigned char *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = hexdig[src[i] >> 4];
        dst[2 * i + 1] = hexdig[src[i] & 15];
    }
    dst[2 * n] = '\0';
}

/* What a thread keeps between signatures (see the top of the file). */
struct sig_state {
    int tried;             /* contexts asked of OpenSSL once */
    EVP_MD *md;            /* fetched SHA-256 */
    EVP_MD_CTX *mdctx;
    EVP_MAC_CTX *mac;      /* HMAC with SHA-256 */
    int have_key;
    unsigned char secret_fp[32]; /* SHA-256 of the secret the key was derived from */
    char scope[128];       /* "date/region/service" of the key */
    unsigned char key[32]; /* the signing key */
};

static _Thread_local struct sig_state st;

static void state_init(void)
{
    if (st.tried)
        return;
    st.tried = 1;
    st.md = EVP_MD_fetch(NULL, "SHA256", NULL);
    st.mdctx = EVP_MD_CTX_new();
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac) {
        st.mac = EVP_MAC_CTX_new(mac); /* holds its own reference to mac */
        EVP_MAC_free(mac);
        OSSL_PARAM params[2] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
            OSSL_PARAM_construct_end()};
        if (st.mac && !EVP_MAC_CTX_set_params(st.mac, params)) {
            EVP_MAC_CTX_free(st.mac);
            st.mac = NULL;
        }
    }
}

static int sha256(const void *data, size_t len, unsigned char md[32])
{
    unsigned int mdlen = 0;
    state_init();
    if (st.md && st.mdctx) {
        if (!EVP_DigestInit_ex(st.mdctx, st.md, NULL) || !EVP_DigestUpdate(st.mdctx, data ? data : "", len) ||
            !EVP_DigestFinal_ex(st.mdctx, md, &mdlen))
            return -1;
    } else if (!EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(), NULL)) {
        return -1;
    }
    return mdlen == 32 ? 0 : -1;
}

static int sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    if (sha256(data, len, md) != 0)
        return -1;
    to_hex(out, md, 32);
    return 0;
}

static int hmac256(const void *key, size_t keylen, const char *msg, size_t msglen,
                   unsigned char out[32])
{
    state_init();
    if (st.mac) {
        size_t len = 0;
        if (!EVP_MAC_init(st.mac, key, keylen, NULL) ||
            !EVP_MAC_update(st.mac, (const unsigned char *)msg, msglen) ||
            !EVP_MAC_final(st.mac, out, &len, 32))
            return -1;
        return len == 32 ? 0 : -1;
    }
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, msglen, out, &len))
        return -1;
    return len == 32 ? 0 : -1;
}

/* The signing key of (secret, scope = "date/region/service"): HMAC chain from "AWS4" + secret
 * over date, region, service, "aws4_request"; the last one is reused while its inputs stay. */
static int signing_key(const char *secret, const char *date, const char *region,
                       const char *service, const char *scope, unsigned char key[32])
{
    unsigned char fp[32];
    size_t slen = strlen(secret);
    if (sha256(secret, slen, fp) != 0)
        return -1;
    if (st.have_key && strcmp(st.scope, scope) == 0 && CRYPTO_memcmp(st.secret_fp, fp, 32) == 0) {
        memcpy(key, st.key, 32);
        return 0;
    }
    unsigned char k[32], k2[32];
    char *ksecret = malloc(slen + 5);
    if (!ksecret)
        return -1;
    memcpy(ksecret, "AWS4", 4);
    memcpy(ksecret + 4, secret, slen + 1);
    int bad = hmac256(ksecret, slen + 4, date, 8, k) != 0 ||
              hmac256(k, 32, region, strlen(region), k2) != 0 ||
              hmac256(k2, 32, service, strlen(service), k) != 0 ||
              hmac256(k, 32, "aws4_request", 12, key) != 0;
    OPENSSL_cleanse(ksecret, slen + 5);
    free(ksecret);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(k2, sizeof k2);
    if (bad)
        return -1;
    if (strlen(scope) < sizeof st.scope) {
        memcpy(st.key, key, 32);
        memcpy(st.secret_fp, fp, 32);
        strcpy(st.scope, scope);
        st.have_key = 1;
    }
    return 0;
}

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

/* The parts of a URL the signature needs. Pointers into the URL; lengths beside them. */
struct url_parts {
    const char *host, *path, *query;
    size_t host_len, path_len, query_len;
    long port; /* -1: none given */
    int https;
};

static int url_split(const char *url, struct url_parts *u)
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
static void canonical_path(struct sbuf *b, const char *path, size_t len)
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
static void canonical_query(struct sbuf *b, const char *q, size_t len)
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
static void canonical_headers(struct sbuf *ch, struct sbuf *sh, const struct etl_sigv4_input *in,
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

static int set_host(struct etl_sigv4_output *out, const struct url_parts *u)
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

int etl_sigv4_sign(const struct etl_sigv4_input *in, struct etl_sigv4_output *out)
{
    memset(out, 0, sizeof *out);
    if (!in->method || !in->url || !in->region || !in->service || !in->access_key ||
        !in->secret_key || (in->body_len && !in->body))
        return -1;
    struct url_parts u;
    struct tm tm;
    if (url_split(in->url, &u) != 0 || set_host(out, &u) != 0 || !gmtime_r(&in->now, &tm))
        return -1;
    if (strftime(out->amz_date, sizeof out->amz_date, "%Y%m%dT%H%M%SZ", &tm) != 16)
        return -1;
    char date[9];
    memcpy(date, out->amz_date, 8);
    date[8] = '\0';

    char cr_buf[1024], ch_buf[512], sh_buf[128], sts_buf[256], auth_buf[512];
    struct sbuf cr = SBUF_ON(cr_buf), ch = SBUF_ON(ch_buf), sh = SBUF_ON(sh_buf),
                sts = SBUF_ON(sts_buf), auth = SBUF_ON(auth_buf);
    char payload_hash[65], cr_hash[65], sig[65];
    int rc = -1;

    sb_add(&cr, in->method);
    sb_add(&cr, "\n");
    canonical_path(&cr, u.path, u.path_len);
    sb_add(&cr, "\n");
    canonical_query(&cr, u.query, u.query_len);
    sb_add(&cr, "\n");
    canonical_headers(&ch, &sh, in, out);
    if (!ch.ok || !sh.ok)
        goto done;
    sb_addn(&cr, ch.p, ch.len);
    sb_add(&cr, "\n");
    sb_addn(&cr, sh.p, sh.len);
    sb_add(&cr, "\n");
    if (sha256_hex(in->body, in->body_len, payload_hash) != 0)
        goto done;
    sb_add(&cr, payload_hash);
    if (!cr.ok || sha256_hex(cr.p, cr.len, cr_hash) != 0)
        goto done;

    /* scope: date/region/service/aws4_request */
    sb_add(&sts, "AWS4-HMAC-SHA256\n");
    sb_add(&sts, out->amz_date);
    sb_add(&sts, "\n");
    size_t scope_at = sts.len;
    sb_add(&sts, date);
    sb_add(&sts, "/");
    sb_add(&sts, in->region);
    sb_add(&sts, "/");
    sb_add(&sts, in->service);
    sb_add(&sts, "/aws4_request");
    size_t scope_end = sts.len;
    sb_add(&sts, "\n");
    sb_add(&sts, cr_hash);
    if (!sts.ok)
        goto done;

    /* signing key (derived once per secret, date, region, service), then the signature */
    unsigned char k[32], key[32];
    char scope[128];
    snprintf(scope, sizeof scope, "%s/%s/%s", date, in->region, in->service);
    int bad = signing_key(in->secret_key, date, in->region, in->service, scope, key) != 0 ||
              hmac256(key, 32, sts.p, sts.len, k) != 0;
    OPENSSL_cleanse(key, sizeof key);
    if (bad)
        goto done;
    to_hex(sig, k, 32);
    OPENSSL_cleanse(k, sizeof k);

    sb_add(&auth, "AWS4-HMAC-SHA256 Credential=");
    sb_add(&auth, in->access_key);
    sb_add(&auth, "/");
    sb_addn(&auth, sts.p + scope_at, scope_end - scope_at);
    sb_add(&auth, ", SignedHeaders=");
    sb_addn(&auth, sh.p, sh.len);
    sb_add(&auth, ", Signature=");
    sb_add(&auth, sig);
    if (!auth.ok || !(out->authorization = malloc(auth.len + 1)))
        goto done;
    memcpy(out->authorization, auth.p, auth.len + 1);
    rc = 0;
done:
    sb_free(&cr);
    sb_free(&ch);
    sb_free(&sh);
    sb_free(&sts);
    sb_free(&auth);
    return rc;
}

void etl_sigv4_output_free(struct etl_sigv4_output *out)
{
    free(out->authorization);
    out->authorization = NULL;
}
