/* json_lex.h: the pieces of JSON's grammar that both of etlua's JSON readers share (src/json_lex.c):
 *  - src/json_decode.c       message bodies -> Lua values (etlua.json);
 *  - src/sqs_json_answer.c   SQS JSON 1.0 answers -> the neutral result of the SQS codecs.
 * Each reader keeps its own rules on top (what it refuses, what it keeps, its messages); the
 * escapes, the number grammar and UTF-8 output are written once, here. */
#ifndef ETLUA_JSON_LEX_H
#define ETLUA_JSON_LEX_H

#include <stddef.h>

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
