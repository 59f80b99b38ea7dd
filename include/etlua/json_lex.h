/* json_lex.h: the pieces of JSON's grammar that both of etlua's JSON readers share (src/json_lex.c):
 *  - src/json_decode.c       message bodies -> Lua values (etlua.json);
 *  - src/sqs_json_answer.c   SQS JSON 1.0 answers -> the neutral result of the SQS codecs.
 * Each reader keeps its own rules on top (what it refuses, what it keeps, its messages); the
 * escapes, the number grammar and UTF-8 output are written once, here. So is the UTF-8 rule
 * (etl_json_utf8_seq), which src/json_encode.c and the scrubber's hygiene (src/scrub_text.c)
 * apply too. */
#ifndef ETLUA_JSON_LEX_H
#define ETLUA_JSON_LEX_H

#include <stddef.h>

/* The UTF-8 sequence at p[0..n) (n >= 1), by the table of well-formed byte sequences of the
 * Unicode standard (no overlongs, no surrogates, nothing past U+10FFFF). Returns its length and
 * sets *valid to 1; for an ill-formed sequence sets *valid to 0 and returns the length of its
 * maximal subpart (at least 1), the bytes one U+FFFD replaces. Inline: the scrubber's hygiene
 * checks every sequence of a text with it, and called out of line that pass took 1.5x as long
 * on non-ASCII text. */
static inline size_t etl_json_utf8_seq(const unsigned char *p, size_t n, int *valid)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t need;
    *valid = 0;
    if (c < 0x80) {
        *valid = 1;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90; /* no overlong forms */
        if (c == 0xF4)
            hi = 0x8F; /* nothing past U+10FFFF */
    } else {
        return 1; /* 80..C1, F5..FF never start a sequence */
    }
    if (n < 2 || p[1] < lo || p[1] > hi)
        return 1;
    for (size_t i = 2; i <= need; i++)
        if (i >= n || p[i] < 0x80 || p[i] > 0xBF)
            return i;
    *valid = 1;
    return need + 1;
}

/* Writes code point cp (at most U+10FFFF) as UTF-8 at o; returns the end (1 to 4 bytes). */
char *etl_json_put_utf8(char *o, unsigned long cp);

/* Escape errors (negative results of etl_json_unescape). */
enum {
    ETL_JSON_ESC_BAD = -1,      /* not one of \" \\ \/ \b \f \n \r \t \uXXXX (or the text ended) */
    ETL_JSON_ESC_BAD_U = -2,    /* \u not followed by 4 hex digits */
    ETL_JSON_ESC_SURROGATE = -3 /* a lone surrogate: a low one, or a high one without its low */
};

/* Decodes the escape whose backslash is at bs (the text must end with a NUL, so nothing is read
 * past it) and writes what it stands for at *o, advancing *o: never more bytes than the escape
 * is long. A surrogate pair (\uD83D\uDE00) is joined into one code point. Returns the length of
 * the escape read (2, 6 or 12), or an ETL_JSON_ESC_* error. */
int etl_json_unescape(const unsigned char *bs, char **o);

/* Number grammar flags. */
enum {
    ETL_JSON_NUM_FLOAT = 1,       /* has a fraction or an exponent */
    ETL_JSON_NUM_BAD = 2,         /* does not match the grammar */
    ETL_JSON_NUM_LEADING_ZERO = 4 /* with BAD: because a 0 is followed by a digit */
};

/* Checks the number at p against -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? (p's text ends
 * with a NUL) and sets *flags. Returns its end, or with ETL_JSON_NUM_BAD where it stopped
 * matching. */
const unsigned char *etl_json_scan_number(const unsigned char *p, int *flags);

#endif
