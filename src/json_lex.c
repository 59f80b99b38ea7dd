/* json_lex.c: the JSON grammar that etlua's two JSON readers share (include/etlua/json_lex.h):
 * escapes with surrogate pairs, UTF-8 output, the number grammar. RFC 8259, sections 6 and 7. */
#include "etlua/json_lex.h"

#include "etlua/buf.h"

/* The value of the 4 hex digits at p, or -1 (a NUL stops it: nothing past the end is read). */
static long hex4(const unsigned char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = etl_hex_digit(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

char *etl_json_put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

int etl_json_unescape(const unsigned char *bs, char **o)
{
    char c;
    switch (bs[1]) {
    case '"':
        c = '"';
        break;
    case '\\':
        c = '\\';
        break;
    case '/':
        c = '/';
        break;
    case 'b':
        c = '\b';
        break;
    case 'f':
        c = '\f';
        break;
    case 'n':
        c = '\n';
        break;
    case 'r':
        c = '\r';
        break;
    case 't':
        c = '\t';
        break;
    case 'u': {
        long cp = hex4(bs + 2);
        if (cp < 0)
            return ETL_JSON_ESC_BAD_U;
        int len = 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return ETL_JSON_ESC_SURROGATE;
        if (cp >= 0xD800 && cp <= 0xDBFF) { /* a high surrogate needs its low half */
            long lo = (bs[6] == '\\' && bs[7] == 'u') ? hex4(bs + 8) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF)
                return ETL_JSON_ESC_SURROGATE;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            len = 12;
        }
        *o = etl_json_put_utf8(*o, (unsigned long)cp);
        return len;
    }
    default:
        return ETL_JSON_ESC_BAD;
    }
    *(*o)++ = c;
    return 2;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

const unsigned char *etl_json_scan_number(const unsigned char *p, int *flags)
{
    *flags = 0;
    if (*p == '-')
        p++;
    if (*p == '0') {
        p++;
        if (is_digit(*p)) {
            *flags = ETL_JSON_NUM_BAD | ETL_JSON_NUM_LEADING_ZERO;
            return p;
        }
    } else if (is_digit(*p)) {
        while (is_digit(*p))
            p++;
    } else {
        *flags = ETL_JSON_NUM_BAD;
        return p;
    }
    if (*p == '.') {
        *flags |= ETL_JSON_NUM_FLOAT;
        if (!is_digit(*++p)) {
            *flags |= ETL_JSON_NUM_BAD;
            return p;
        }
        while (is_digit(*p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        *flags |= ETL_JSON_NUM_FLOAT;
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!is_digit(*p)) {
            *flags |= ETL_JSON_NUM_BAD;
            return p;
        }
        while (is_digit(*p))
            p++;
    }
    return p;
}
