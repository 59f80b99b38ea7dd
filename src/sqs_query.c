/* sqs_query.c: the SQS query protocol without the network. Builds form-encoded request bodies and
 * turns XML answers into struct etl_sqs_result with expat's streaming callbacks (no hand-written
 * XML parsing). The parser is a pure function of its input bytes, bounded in what it keeps
 * (ETL_SQS_MAX_FIELD per element text, ETL_SQS_MAX_ENTRIES per list) and refuses DTD entity
 * declarations, so it can be fed arbitrary bytes by tests and fuzzers. */
#include "etlua/sigv4.h"
#include "etlua/sqs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>

/* ---- form bodies --------------------------------------------------------------------------- */

static void form_addn(struct etl_sqs_form *f, const char *s, size_t n)
{
    if (!f->ok)
        return;
    if (f->len + n + 1 > f->cap) {
        size_t cap = f->cap ? f->cap : 512;
        while (cap < f->len + n + 1)
            cap *= 2;
        char *p = realloc(f->p, cap);
        if (!p) {
            f->ok = 0;
            return;
        }
        f->p = p;
        f->cap = cap;
    }
    memcpy(f->p + f->len, s, n);
    f->len += n;
    f->p[f->len] = '\0';
}

/* Appends the percent-encoding of s[0..n) (every byte but A-Z a-z 0-9 - _ . ~). */
static void form_add_encoded(struct etl_sqs_form *f, const char *s, size_t n)
{
    char chunk[3 * 256 + 1];
    while (n > 0 && f->ok) {
        size_t take = n < 256 ? n : 256;
        form_addn(f, chunk, etl_sigv4_uri_encode(chunk, s, take, 0));
        s += take;
        n -= take;
    }
}

void etl_sqs_query_begin(struct etl_sqs_form *f, const char *action)
{
    memset(f, 0, sizeof *f);
    f->ok = 1;
    form_addn(f, "Action=", 7);
    form_add_encoded(f, action, strlen(action));
    form_addn(f, "&Version=2012-11-05", 19);
}

void etl_sqs_query_add(struct etl_sqs_form *f, const char *name, const char *value, size_t vlen)
{
    form_addn(f, "&", 1);
    form_add_encoded(f, name, strlen(name));
    form_addn(f, "=", 1);
    form_add_encoded(f, value, vlen);
}

void etl_sqs_query_free(struct etl_sqs_form *f)
{
    free(f->p);
    memset(f, 0, sizeof *f);
}

/* ---- XML answers ----------------------------------------------------------------------------- */

#define MAX_DEPTH 32
#define NAME_LEN 48

struct parse {
    XML_Parser xp;
    struct etl_sqs_result *r;
    int depth;                       /* current element depth, 1 = root */
    char names[MAX_DEPTH][NAME_LEN]; /* local names of the open elements */
    char *text;                      /* text of the innermost element so far */
    size_t tlen, tcap;
    char *attr_name, *attr_value;    /* the Attribute element being read */
    const char *failure;             /* why a callback stopped the parser */
};

static const char *name_at(const struct parse *ps, int depth)
{
    return depth >= 1 && depth <= MAX_DEPTH ? ps->names[depth - 1] : "";
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void stop(struct parse *ps, const char *why)
{
    if (!ps->failure)
        ps->failure = why;
    XML_StopParser(ps->xp, XML_FALSE);
}

/* Grows *arr (of *n elements of size sz) by one zeroed element; NULL when full or out of memory. */
static void *append(struct parse *ps, void **arr, size_t *n, size_t sz)
{
    if (*n >= ETL_SQS_MAX_ENTRIES) {
        stop(ps, "too many entries");
        return NULL;
    }
    char *p = realloc(*arr, (*n + 1) * sz);
    if (!p) {
        stop(ps, "out of memory");
        return NULL;
    }
    *arr = p;
    memset(p + *n * sz, 0, sz);
    return p + (*n)++ * sz;
}

static char *take_text(struct parse *ps)
{
    char *s = malloc(ps->tlen + 1);
    if (!s) {
        stop(ps, "out of memory");
        return NULL;
    }
    if (ps->tlen)
        memcpy(s, ps->text, ps->tlen);
    s[ps->tlen] = '\0';
    return s;
}

static void set_field(struct parse *ps, char **field)
{
    char *s = take_text(ps);
    if (s) {
        free(*field);
        *field = s;
    }
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    (void)attrs;
    struct parse *ps = ud;
    const char *local = strrchr(name, ':');
    local = local ? local + 1 : name;
    ps->depth++;
    ps->tlen = 0;
    if (ps->depth <= MAX_DEPTH)
        snprintf(ps->names[ps->depth - 1], NAME_LEN, "%s", local);
    if (ps->depth == 1)
        snprintf(ps->r->root, sizeof ps->r->root, "%s", local);
    const char *parent = name_at(ps, ps->depth - 1);
    struct etl_sqs_result *r = ps->r;
    if (strcmp(local, "Message") == 0 && strcmp(parent, "ReceiveMessageResult") == 0) {
        struct etl_sqs_message *m =
            append(ps, (void **)&r->messages, &r->nmessages, sizeof *r->messages);
        if (m)
            m->sent_ms = -1;
    } else if (strcmp(local, "BatchResultErrorEntry") == 0) {
        append(ps, (void **)&r->failures, &r->nfailures, sizeof *r->failures);
    } else if (ends_with(local, "BatchResultEntry")) {
        append(ps, (void **)&r->succeeded, &r->nsucceeded, sizeof *r->succeeded);
    } else if (strcmp(local, "Attribute") == 0) {
        free(ps->attr_name);
        free(ps->attr_value);
        ps->attr_name = ps->attr_value = NULL;
    }
}

static void on_text(void *ud, const XML_Char *s, int len)
{
    struct parse *ps = ud;
    size_t n = (size_t)len;
    if (n > ETL_SQS_MAX_FIELD - ps->tlen) {
        stop(ps, "element text too long");
        return;
    }
    if (ps->tlen + n > ps->tcap) {
        size_t cap = ps->tcap ? ps->tcap : 256;
        while (cap < ps->tlen + n)
            cap *= 2;
        char *p = realloc(ps->text, cap);
        if (!p) {
            stop(ps, "out of memory");
            return;
        }
        ps->text = p;
        ps->tcap = cap;
    }
    memcpy(ps->text + ps->tlen, s, n);
    ps->tlen += n;
}

static long long parse_ms(const char *s)
{
    long long v = 0;
    if (!*s)
        return -1;
    for (int i = 0; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 18)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* The end of an Attribute: SentTimestamp of a message, or one queue attribute. */
static void end_attribute(struct parse *ps, const char *parent)
{
    struct etl_sqs_result *r = ps->r;
    if (!ps->attr_name)
        return;
    if (strcmp(parent, "Message") == 0 && r->nmessages) {
        if (strcmp(ps->attr_name, "SentTimestamp") == 0 && ps->attr_value)
            r->messages[r->nmessages - 1].sent_ms = parse_ms(ps->attr_value);
    } else if (strcmp(parent, "GetQueueAttributesResult") == 0) {
        struct etl_sqs_attribute *a =
            append(ps, (void **)&r->attributes, &r->nattributes, sizeof *r->attributes);
        if (!a)
            return;
        a->name = ps->attr_name;
        a->value = ps->attr_value ? ps->attr_value : take_text(ps);
        ps->attr_name = ps->attr_value = NULL;
        if (!a->value)
            stop(ps, "out of memory");
    }
}

static void on_end(void *ud, const XML_Char *name)
{
    (void)name;
    struct parse *ps = ud;
    struct etl_sqs_result *r = ps->r;
    const char *local = name_at(ps, ps->depth), *parent = name_at(ps, ps->depth - 1);
    const char *grand = name_at(ps, ps->depth - 2);

    if (strcmp(parent, "Error") == 0) {
        if (strcmp(local, "Code") == 0)
            set_field(ps, &r->error_code);
        else if (strcmp(local, "Message") == 0)
            set_field(ps, &r->error_message);
    } else if (strcmp(parent, "GetQueueUrlResult") == 0 && strcmp(local, "QueueUrl") == 0) {
        set_field(ps, &r->queue_url);
    } else if (strcmp(parent, "Message") == 0 && strcmp(grand, "ReceiveMessageResult") == 0 &&
               r->nmessages) {
        struct etl_sqs_message *m = &r->messages[r->nmessages - 1];
        if (strcmp(local, "MessageId") == 0)
            set_field(ps, &m->id);
        else if (strcmp(local, "ReceiptHandle") == 0)
            set_field(ps, &m->receipt);
        else if (strcmp(local, "Body") == 0)
            set_field(ps, &m->body);
        else if (strcmp(local, "Attribute") == 0)
            end_attribute(ps, parent);
    } else if (strcmp(parent, "Attribute") == 0) {
        if (strcmp(local, "Name") == 0)
            set_field(ps, &ps->attr_name);
        else if (strcmp(local, "Value") == 0)
            set_field(ps, &ps->attr_value);
    } else if (strcmp(local, "Attribute") == 0) {
        end_attribute(ps, parent);
    } else if (strcmp(parent, "BatchResultErrorEntry") == 0 && r->nfailures) {
        struct etl_sqs_batch_failure *f = &r->failures[r->nfailures - 1];
        if (strcmp(local, "Id") == 0)
            set_field(ps, &f->id);
        else if (strcmp(local, "Code") == 0)
            set_field(ps, &f->code);
        else if (strcmp(local, "Message") == 0)
            set_field(ps, &f->message);
    } else if (ends_with(parent, "BatchResultEntry") && strcmp(local, "Id") == 0 &&
               r->nsucceeded) {
        set_field(ps, &r->succeeded[r->nsucceeded - 1]);
    }
    ps->tlen = 0;
    ps->depth--;
}

/* A DTD declaring entities is how "billion laughs" inputs start; SQS never sends one. */
static void on_entity_decl(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
                           int value_len, const XML_Char *base, const XML_Char *system_id,
                           const XML_Char *public_id, const XML_Char *notation)
{
    (void)name, (void)is_param, (void)value, (void)value_len, (void)base, (void)system_id;
    (void)public_id, (void)notation;
    stop(ud, "entity declarations are not accepted");
}

int etl_sqs_query_parse(const char *xml, size_t len, struct etl_sqs_result *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct parse ps = {.r = out};
    ps.xp = XML_ParserCreate(NULL);
    if (!ps.xp) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    XML_SetUserData(ps.xp, &ps);
    XML_SetElementHandler(ps.xp, on_start, on_end);
    XML_SetCharacterDataHandler(ps.xp, on_text);
    XML_SetEntityDeclHandler(ps.xp, on_entity_decl);

    int rc = 0;
    const size_t chunk = 1u << 20;
    do { /* XML_Parse takes an int length: feed at most 1 MiB at a time */
        size_t n = len < chunk ? len : chunk;
        if (XML_Parse(ps.xp, xml, (int)n, n == len) != XML_STATUS_OK) {
            if (ps.failure)
                snprintf(err, errlen, "bad XML answer: %s", ps.failure);
            else
                snprintf(err, errlen, "bad XML answer: %s at line %lu",
                         XML_ErrorString(XML_GetErrorCode(ps.xp)),
                         (unsigned long)XML_GetCurrentLineNumber(ps.xp));
            rc = -1;
            break;
        }
        xml += n;
        len -= n;
    } while (len > 0);
    XML_ParserFree(ps.xp);
    free(ps.text);
    free(ps.attr_name);
    free(ps.attr_value);
    return rc;
}

void etl_sqs_result_free(struct etl_sqs_result *r)
{
    free(r->error_code);
    free(r->error_message);
    free(r->queue_url);
    for (size_t i = 0; i < r->nmessages; i++) {
        free(r->messages[i].id);
        free(r->messages[i].receipt);
        free(r->messages[i].body);
    }
    free(r->messages);
    for (size_t i = 0; i < r->nfailures; i++) {
        free(r->failures[i].id);
        free(r->failures[i].code);
        free(r->failures[i].message);
    }
    free(r->failures);
    for (size_t i = 0; i < r->nsucceeded; i++)
        free(r->succeeded[i]);
    free(r->succeeded);
    for (size_t i = 0; i < r->nattributes; i++) {
        free(r->attributes[i].name);
        free(r->attributes[i].value);
    }
    free(r->attributes);
    memset(r, 0, sizeof *r);
}
