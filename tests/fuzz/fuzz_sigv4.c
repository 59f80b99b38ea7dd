/* fuzz_sigv4.c: libFuzzer target for src/sigv4.c: the URL parser, the canonical request
 * (path normalisation, query sorting, header canonicalisation) and the signature, with arbitrary
 * URLs, methods, headers, credentials and bodies; and etl_sigv4_uri_encode on arbitrary bytes.
 * Input layout: one flag byte (bit 0: a session token; bits 1-3: number of extra headers;
 * bit 4: no body pointer), eight bytes of signing time (little-endian, signed), then
 * NUL-separated strings: url, method, region, service, access key, secret key, token, header
 * names and values; whatever follows the last of them (NULs included) is the body. A missing
 * string is passed as NULL. */
#include "etlua/sigv4.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEADERS 7

/* Next NUL-terminated string of [*p, end), or NULL when the input has run out. */
static const char *next_str(const char **p, const char *end)
{
    if (*p >= end)
        return NULL;
    const char *s = *p, *nul = memchr(s, '\0', (size_t)(end - s));
    if (!nul)
        return NULL; /* the rest is unterminated: leave it to the body */
    *p = nul + 1;
    return s;
}

static void check_encode(const char *s, size_t len, int keep_slash)
{
    char *dst = malloc(3 * len + 1);
    if (!dst)
        return;
    size_t n = etl_sigv4_uri_encode(dst, s, len, keep_slash);
    if (n < len || n > 3 * len || dst[n] != '\0' || strlen(dst) != n)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)dst[i];
        int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~' || c == '%' ||
                    (keep_slash && c == '/');
        if (!plain)
            abort();
    }
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 9)
        return 0;
    unsigned flags = data[0];
    uint64_t t = 0;
    for (int i = 0; i < 8; i++)
        t |= (uint64_t)data[1 + i] << (8 * i);
    /* the library owns the input bytes as const; keep a copy so strings end inside it */
    size_t len = size - 9;
    char *copy = malloc(len + 1);
    if (!copy)
        return 0;
    if (len)
        memcpy(copy, data + 9, len);
    copy[len] = '\0'; /* not part of the input: only a guard for the last string */
    const char *p = copy, *end = copy + len;

    struct etl_sigv4_header headers[MAX_HEADERS];
    struct etl_sigv4_input in;
    memset(&in, 0, sizeof in);
    in.url = next_str(&p, end);
    in.method = next_str(&p, end);
    in.region = next_str(&p, end);
    in.service = next_str(&p, end);
    in.access_key = next_str(&p, end);
    in.secret_key = next_str(&p, end);
    const char *token = next_str(&p, end);
    in.session_token = (flags & 1) ? token : NULL;
    size_t nh = (flags >> 1) & 7;
    for (size_t i = 0; i < nh; i++) {
        headers[i].name = next_str(&p, end);
        headers[i].value = next_str(&p, end);
    }
    in.headers = headers;
    in.nheaders = nh;
    in.body = (flags & 16) ? NULL : p;
    in.body_len = (size_t)(end - p);
    in.now = (time_t)(int64_t)t;

    struct etl_sigv4_output out;
    int rc = etl_sigv4_sign(&in, &out);
    if (rc == 0) {
        if (!out.authorization || strncmp(out.authorization, "AWS4-HMAC-SHA256 Credential=", 28))
            abort();
        if (memchr(out.host, '\0', sizeof out.host) == NULL || out.host[0] == '\0')
            abort();
        if (strlen(out.amz_date) != 16)
            abort();
        /* it ends in ", Signature=" and 64 lowercase hex characters */
        size_t alen = strlen(out.authorization);
        if (alen < 12 + 64 || memcmp(out.authorization + alen - 76, ", Signature=", 12) != 0)
            abort();
        const char *sig = out.authorization + alen - 64;
        for (int i = 0; i < 64; i++)
            if (!((sig[i] >= '0' && sig[i] <= '9') || (sig[i] >= 'a' && sig[i] <= 'f')))
                abort();
        /* signing is a pure function: the same input gives the same header */
        struct etl_sigv4_output again;
        if (etl_sigv4_sign(&in, &again) != 0 ||
            strcmp(again.authorization, out.authorization) != 0 || strcmp(again.host, out.host))
            abort();
        etl_sigv4_output_free(&again);
    } else if (rc != -1 || out.authorization) {
        abort();
    }
    etl_sigv4_output_free(&out);
    etl_sigv4_output_free(&out); /* safe twice */

    /* the URI encoder on the raw input bytes (NULs included) */
    check_encode((const char *)data, size, (int)(flags & 32));

    free(copy);
    return 0;
}
