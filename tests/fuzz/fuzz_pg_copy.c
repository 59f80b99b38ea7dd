/* fuzz_pg_copy.c: libFuzzer target for the pure text helpers of src/pg.c.
 * etl_pg_copy_escape (one field of COPY text format, from message data): the output fits 2*len,
 * holds no raw tab, newline or carriage return, and unescapes back to the input; an input with a
 * NUL byte is refused with ETL_PG_ESCAPE_NUL and dst left untouched.
 * etl_pg_redact (libpq connection errors scrubbed of the password): the first byte of the input
 * picks the output capacity, the rest is "message\0secret"; the result is NUL-terminated within
 * cap and is the message with each occurrence of the secret replaced by "***", cut at cap. */
#include "etlua/pg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_escape(const char *src, size_t len)
{
    size_t cap = 2 * len;
    char *dst = malloc(cap ? cap : 1); /* exactly what the contract asks for */
    if (!dst)
        return;
    if (cap)
        memset(dst, 0x5a, cap);
    size_t n = etl_pg_copy_escape(dst, src, len);
    if (memchr(src, '\0', len) != NULL) {
        if (n != ETL_PG_ESCAPE_NUL)
            abort();
        for (size_t i = 0; i < cap; i++)
            if (dst[i] != 0x5a)
                abort();
        free(dst);
        return;
    }
    if (n == ETL_PG_ESCAPE_NUL || n < len || n > cap)
        abort();
    /* COPY's reading of the field: no raw separators; \\ \t \n \r decode back to the input */
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = dst[i];
        if (c == '\t' || c == '\n' || c == '\r')
            abort();
        if (c == '\\') {
            if (i + 1 >= n)
                abort();
            char e = dst[++i];
            c = e == '\\' ? '\\' : e == 't' ? '\t' : e == 'n' ? '\n' : e == 'r' ? '\r' : 0;
            if (c == 0)
                abort();
        }
        if (j >= len || src[j++] != c)
            abort();
    }
    if (j != len)
        abort();
    free(dst);
}

static void fuzz_redact(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    size_t cap = data[0];
    char *buf = malloc(size); /* message, NUL, secret, NUL */
    if (!buf)
        return;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    const char *msg = buf;
    size_t mlen = strlen(msg);
    const char *secret = mlen + 1 < size ? msg + mlen + 1 : NULL;
    char *out = malloc(cap ? cap : 1);
    if (!out) {
        free(buf);
        return;
    }
    if (etl_pg_redact(out, cap, msg, secret) != out)
        abort();
    if (cap > 0) {
        /* a prefix (cap - 1 bytes at most) of the message with each left-most, non-overlapping
         * occurrence of the secret replaced by "***" */
        size_t slen = secret ? strlen(secret) : 0, olen = strnlen(out, cap), k = 0;
        if (olen >= cap)
            abort(); /* not terminated within cap */
        for (const char *m = msg; *m && k < olen;) {
            const char *piece = m;
            size_t plen = 1;
            if (slen > 0 && strncmp(m, secret, slen) == 0) {
                piece = "***";
                plen = 3;
                m += slen;
            } else {
                m++;
            }
            for (size_t i = 0; i < plen && k < olen; i++)
                if (out[k++] != piece[i])
                    abort();
        }
        if (k != olen)
            abort(); /* output longer than the redacted message */
        size_t want = 0; /* length of the whole redacted message, to check the cut */
        for (const char *m = msg; *m;) {
            if (slen > 0 && strncmp(m, secret, slen) == 0) {
                want += 3;
                m += slen;
            } else {
                want++;
                m++;
            }
        }
        if (olen != (want < cap - 1 ? want : cap - 1))
            abort();
    }
    free(out);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *src = malloc(size ? size : 1); /* exact size: ASan catches reads past len */
    if (!src)
        return 0;
    if (size)
        memcpy(src, data, size);
    fuzz_escape(src, size);
    free(src);
    fuzz_redact(data, size);
    return 0;
}
