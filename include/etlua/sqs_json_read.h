/* sqs_json_read.h: the one-pass reader of SQS JSON 1.0 answers' values (src/sqs_json_read.c),
 * for the answer codec (src/sqs_json_answer.c). Internal to the SQS client. Every function reads
 * the value at r->p (no leading space) and leaves r->p after it; 0, or -1 with r->failed set
 * (malformed JSON) or r->full set (out of memory). */
#ifndef ETLUA_SQS_JSON_READ_H
#define ETLUA_SQS_JSON_READ_H

#include <stddef.h>

#define ETL_SQS_JR_MAX_DEPTH 1000

/* Room for one decoded string, kept for the next one. */
struct scratch {
    char *p;
    size_t cap;
};

struct rd {
    const char *p, *end; /* *end == '\0' */
    int failed;          /* malformed JSON */
    int full;            /* too many entries or out of memory */
    struct scratch tmp;  /* a string value with escapes, decoded */
    struct scratch key;  /* a key with escapes, decoded */
    char *block;         /* the kept values (etl_sqs_jr_kept): NULL until the first */
    size_t block_used, block_cap;
    char **block_home; /* where the block is recorded once made: whoever frees it */
};

/* Called for each member of an object: must read the member's value. */
typedef int (*etl_sqs_jr_field)(struct rd *r, const char *key, size_t klen, void *ud, int depth);

/* Skips spaces, tabs and line ends. */
void etl_sqs_jr_ws(struct rd *r);
/* The string at r->p (its opening quote), checked and decoded: *s, *n get its bytes, in the
 * answer itself when it has no escapes, else in b. */
int etl_sqs_jr_decode(struct rd *r, struct scratch *b, const char **s, size_t *n);
/* A heap copy of s[0..n), or NULL with r->full set. */
char *etl_sqs_jr_copy(struct rd *r, const char *s, size_t n);
/* The string at r->p into *out (a heap copy, replacing what *out held). */
int etl_sqs_jr_str(struct rd *r, char **out);
/* Checks and skips any value. */
int etl_sqs_jr_value(struct rd *r, int depth);
/* Calls field for each member of the object at r->p (its '{'); a NULL field skips every value. */
int etl_sqs_jr_object(struct rd *r, int depth, etl_sqs_jr_field field, void *ud);
/* Calls each(r, ud, depth) for the elements of the array at r->p while they are objects (the
 * first one that is not ends the taking; the rest is still checked); skips anything but an
 * array. A NULL each checks and skips the whole array. */
int etl_sqs_jr_objects(struct rd *r, int depth, int (*each)(struct rd *, void *, int), void *ud);
/* A value that is not a string: an integer within 64 bits written into digits (its decimal
 * text, *n its length); any other value skipped (*n 0: absent). */
int etl_sqs_jr_int_digits(struct rd *r, char digits[32], int *n, int depth);
/* A field's value into *out when it is a string, or an integer written as one (its digits);
 * any other value is skipped and counts as absent (*out NULL). */
int etl_sqs_jr_text(struct rd *r, char **out, int depth);

/* As etl_sqs_jr_text, but the value is copied into the reader's block of kept values, not a heap
 * copy of its own, and what *out held is not freed (a repeated key's first copy stays in the
 * block). The block is made at the first kept value, as large as the rest of the answer (no
 * value's copy, NUL included, is longer than its text: a string loses its quotes, an escape is
 * longer than what it decodes to, an integer is followed by at least a '}'), so it never has to
 * grow or move; it is recorded at *r->block_home at once, for its owner to free. */
int etl_sqs_jr_kept(struct rd *r, char **out, int depth);

#endif
