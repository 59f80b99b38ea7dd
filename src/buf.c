/* buf.c: the growable byte buffer, the hex encoder and the hex digit decoder (include/etlua/buf.h). */
#include "etlua/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static int grow(struct etl_buf *b, size_t n)
{
    if (b->oom || b->over_limit)
        return -1;
    if ((b->limit && n > b->limit - b->len) || n > ((size_t)-1) / 4 - b->len) {
        b->over_limit = 1;
        return -1;
    }
    if (b->len + n + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

int etl_buf_reserve(struct etl_buf *b, size_t n)
{
    if (b->oom || b->over_limit || (b->limit && n > b->limit - b->len) ||
        n > ((size_t)-1) / 4 - b->len)
        return -1;
    if (b->len + n + 1 <= b->cap)
        return 0;
    char *p = realloc(b->p, b->len + n + 1);
    if (!p)
        return -1;
    b->p = p;
    b->cap = b->len + n + 1;
    return 0;
}

int etl_buf_add(struct etl_buf *b, const void *s, size_t n)
{
    if (grow(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int etl_buf_adds(struct etl_buf *b, const char *s) { return etl_buf_add(b, s, strlen(s)); }

int etl_buf_addf(struct etl_buf *b, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return etl_buf_add(b, small, (size_t)n);
    if (grow(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *etl_buf_take(struct etl_buf *b, size_t *len)
{
    char *p = NULL;
    if (!b->oom && !b->over_limit)
        p = b->p ? b->p : calloc(1, 1);
    else
        free(b->p);
    if (len)
        *len = p ? b->len : 0;
    size_t limit = b->limit;
    memset(b, 0, sizeof *b);
    b->limit = limit;
    return p;
}

void etl_buf_reset(struct etl_buf *b)
{
    b->len = 0;
    b->oom = b->over_limit = 0;
    if (b->p)
        b->p[0] = '\0';
}

void etl_buf_free(struct etl_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* The 256 lowercase digit pairs, byte value b at [2b]: a mask or digest is hexed for every
 * message, a pair per byte costs a third of two table lookups and shifts. */
static const char HEX_PAIRS[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                                "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
                                "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
                                "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
                                "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
                                "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
                                "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
                                "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

/* The 8 lowercase digits of the 4 bytes w holds in memory order (little-endian: the first
 * byte lowest), in memory order too, all at once in a 64-bit word: each byte's two nibbles
 * spread to a byte each (the high one first), then '0' added to every nibble and 'a' - '0' - 10
 * more to those above 9 (a nibble + 6 carries into bit 4 exactly then; no byte overflows).
 * The masks' two digests a message were hexed a pair at a time: callgrind, 299 -> 174
 * instructions for 32 bytes. */
static uint64_t hex4(uint32_t w)
{
    uint64_t x = w;
    x = (x | x << 16) & 0x0000ffff0000ffffULL;
    x = (x | x << 8) & 0x00ff00ff00ff00ffULL; /* byte k at bits 16k */
    uint64_t v = (x >> 4 & 0x000f000f000f000fULL) | (x & 0x000f000f000f000fULL) << 8;
    uint64_t above9 = (v + 0x0606060606060606ULL) >> 4 & 0x0101010101010101ULL;
    return v + 0x3030303030303030ULL + above9 * ('a' - '0' - 10);
}

void etl_hex(char *dst, const void *src, size_t n, int upper)
{
    const unsigned char *s = src;
    if (upper) {
        static const char digits[] = "0123456789ABCDEF";
        for (size_t i = 0; i < n; i++) {
            dst[2 * i] = digits[s[i] >> 4];
            dst[2 * i + 1] = digits[s[i] & 15];
        }
    } else {
        size_t i = 0;
#if defined(__SSE2__)
        /* 16 bytes a step: the nibbles of each byte interleaved (the high one first), '0'
         * added to all and 'a' - '0' - 10 more to those above 9 (callgrind, 32 bytes: 174 ->
         * 52 instructions; a message's two masks are hexed) */
        const __m128i low4 = _mm_set1_epi8(0x0f), nine = _mm_set1_epi8(9),
                      zero = _mm_set1_epi8('0'), step = _mm_set1_epi8('a' - '0' - 10);
        for (; i + 16 <= n; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), low4), lo = _mm_and_si128(v, low4);
            __m128i a = _mm_unpacklo_epi8(hi, lo), b = _mm_unpackhi_epi8(hi, lo);
            a = _mm_add_epi8(_mm_add_epi8(a, zero), _mm_and_si128(_mm_cmpgt_epi8(a, nine), step));
            b = _mm_add_epi8(_mm_add_epi8(b, zero), _mm_and_si128(_mm_cmpgt_epi8(b, nine), step));
            _mm_storeu_si128((__m128i *)(void *)(dst + 2 * i), a);
            _mm_storeu_si128((__m128i *)(void *)(dst + 2 * i + 16), b);
        }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        for (; i + 4 <= n; i += 4) {
            uint32_t w;
            memcpy(&w, s + i, 4);
            uint64_t v = hex4(w);
            memcpy(dst + 2 * i, &v, 8);
        }
#endif
        for (; i < n; i++)
            memcpy(dst + 2 * i, HEX_PAIRS + 2 * s[i], 2);
    }
    dst[2 * n] = '\0';
}

int etl_hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
