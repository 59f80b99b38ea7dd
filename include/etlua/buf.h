/* buf.h: the one growable byte buffer of the C code (src/buf.c), after lua-cjson's strbuf: every
 * module that builds text of unknown length (request bodies, HTTP answers, XML element text,
 * the metrics exposition) appends to one of these instead of managing its own realloc. And the
 * one hex encoder.
 *
 * A buffer starts zeroed ({0}); appends grow it geometrically and keep p NUL-terminated (p is
 * NULL while nothing was appended). A failed allocation sets oom and turns every later append
 * into a no-op, so callers check once at the end. len never exceeds limit when limit is set
 * (non-zero): an append that would cross it sets over_limit and is dropped. */
#ifndef ETLUA_BUF_H
#define ETLUA_BUF_H

#include <stddef.h>

struct etl_buf {
    char *p;
    size_t len, cap;
    size_t limit; /* 0: no limit */
    int oom, over_limit;
};

/* Appends s[0..n). Returns 0, or -1 once the buffer is out of memory or over its limit. */
int etl_buf_add(struct etl_buf *b, const void *s, size_t n);

/* Makes room for n more bytes at once, exactly (a buffer whose final size is known, filled in
 * pieces, is then allocated once rather than grown by doubling). Returns 0, or -1 when the
 * room would pass the limit or memory runs out (nothing changes: a later add decides). */
int etl_buf_reserve(struct etl_buf *b, size_t n);

/* Appends a NUL-terminated string. Same return. */
int etl_buf_adds(struct etl_buf *b, const char *s);

/* Appends printf-style text. Same return. */
int etl_buf_addf(struct etl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Hands the bytes to the caller (NUL-terminated; "" when empty; NULL when out of memory or over
 * the limit) and leaves the buffer empty. *len gets the length when len is not NULL. */
char *etl_buf_take(struct etl_buf *b, size_t *len);

/* Empties the buffer, keeping its memory (and its limit). */
void etl_buf_reset(struct etl_buf *b);

/* Frees the memory; the buffer is zeroed (its limit too) and may be used again. */
void etl_buf_free(struct etl_buf *b);

/* Writes the hex of src[0..n) to dst (2n chars + NUL): lowercase, or uppercase when upper. */
void etl_hex(char *dst, const void *src, size_t n, int upper);

/* The value of one hex digit (either case), or -1 for any other byte. */
int etl_hex_digit(unsigned char c);

#endif
