/* scrub_match.c: the raw values of one message as an Aho-Corasick automaton (etl_scrub_patterns,
 * include/etlua/scrub.h), and its pass over a text (etl_scrub_match, scrub_internal.h).
 *
 * The trie keeps its children as sibling lists (a node costs a few words whatever the alphabet),
 * so building is linear in the patterns' total length and matching is linear in the text: each
 * byte moves one edge down or follows failure links, which never climb more than they went
 * down. At each position the longest pattern ending there is the state itself when it ends a
 * pattern, else its dictionary link; overlapping occurrences are merged into one span with a
 * stack, each occurrence pushed and popped at most once. */
#include "etlua/scrub_internal.h"

#include <stdlib.h>
#include <string.h>

struct ac_node {
    int child;       /* first child, -1 none */
    int sibling;     /* next child of the same parent, -1 none */
    int fail;        /* longest proper suffix that is a trie node */
    int dict;        /* nearest node on the fail chain that ends a pattern, -1 none */
    int pat;         /* pattern ending exactly here, -1 none */
    unsigned depth;  /* length of the text this node spells */
    unsigned char c; /* label of the edge from the parent */
};

struct etl_scrub_patterns {
    struct ac_node *nodes;
    int nnodes;
    char (*hex)[ETL_MASK_HEX_LEN]; /* replacement of each pattern */
    size_t npat;
    int root[256]; /* the root's transitions, dense: most bytes of a text start nothing */
};

static int ac_child(const struct etl_scrub_patterns *p, int node, unsigned char c)
{
    for (int k = p->nodes[node].child; k >= 0; k = p->nodes[k].sibling)
        if (p->nodes[k].c == c)
            return k;
    return -1;
}

void etl_scrub_patterns_free(struct etl_scrub_patterns *p)
{
    if (p == NULL)
        return;
    free(p->nodes);
    free(p->hex);
    free(p);
}

/* Adds text[0..len) as pattern i. */
static void ac_insert(struct etl_scrub_patterns *p, int i, const char *text, size_t len)
{
    int node = 0;
    for (size_t j = 0; j < len; j++) {
        unsigned char c = (unsigned char)text[j];
        int next = ac_child(p, node, c);
        if (next < 0) {
            next = p->nnodes++;
            p->nodes[next] =
                (struct ac_node){-1, p->nodes[node].child, 0, -1, -1, p->nodes[node].depth + 1, c};
            p->nodes[node].child = next;
        }
        node = next;
    }
    if (len > 0 && p->nodes[node].pat < 0)
        p->nodes[node].pat = i;
}

struct etl_scrub_patterns *etl_scrub_patterns_new(size_t n, const char *const *text,
                                                  const size_t *len, const char *const *hex)
{
    /* Patterns get the text's hygiene too (a value with invalid UTF-8 is looked for as it reads
     * once cleaned, and a match always starts on a character): up to 3 bytes per byte. */
    size_t total = 1;
    for (size_t i = 0; i < n; i++) {
        if (len[i] > ((size_t)0x3fffffff - total) / 3)
            return NULL; /* node indexes are ints */
        total += 3 * len[i];
    }
    struct etl_scrub_patterns *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->nodes = malloc(total * sizeof *p->nodes);
    p->hex = malloc((n ? n : 1) * sizeof *p->hex);
    if (p->nodes == NULL || p->hex == NULL) {
        etl_scrub_patterns_free(p);
        return NULL;
    }
    p->npat = n;
    p->nnodes = 1;
    p->nodes[0] = (struct ac_node){-1, -1, 0, -1, -1, 0, 0};
    for (size_t i = 0; i < n; i++) {
        memcpy(p->hex[i], hex[i], ETL_MASK_HEX_LEN);
        char *clean = NULL;
        size_t clen = len[i];
        int rc = etl_scrub_clean(text[i], len[i], &clean, &clen);
        if (rc < 0) {
            etl_scrub_patterns_free(p);
            return NULL;
        }
        ac_insert(p, (int)i, clean ? clean : text[i], clen);
        free(clean);
    }
    for (int c = 0; c < 256; c++)
        p->root[c] = 0;
    for (int k = p->nodes[0].child; k >= 0; k = p->nodes[k].sibling)
        p->root[p->nodes[k].c] = k;
    /* Breadth-first: fail and dict links of each node from its parent's. */
    int *queue = malloc((size_t)p->nnodes * sizeof *queue);
    if (queue == NULL) {
        etl_scrub_patterns_free(p);
        return NULL;
    }
    int head = 0, tail = 0;
    for (int k = p->nodes[0].child; k >= 0; k = p->nodes[k].sibling) {
        p->nodes[k].fail = 0;
        queue[tail++] = k;
    }
    while (head < tail) {
        int u = queue[head++];
        for (int v = p->nodes[u].child; v >= 0; v = p->nodes[v].sibling) {
            int f = p->nodes[u].fail, to;
            while ((to = ac_child(p, f, p->nodes[v].c)) < 0 && f != 0)
                f = p->nodes[f].fail;
            p->nodes[v].fail = to >= 0 ? to : 0;
            int fv = p->nodes[v].fail;
            p->nodes[v].dict = p->nodes[fv].pat >= 0 ? fv : p->nodes[fv].dict;
            queue[tail++] = v;
        }
    }
    free(queue);
    return p;
}

int etl_scrub_match(const struct etl_scrub_patterns *p, const char *t, size_t n,
                    struct etl_scrub_spans *out)
{
    if (p == NULL || p->nnodes <= 1)
        return 0;
    size_t base = out->n; /* the stack of merged occurrences lives at the end of out */
    int s = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        int to = -1;
        while (s != 0 && (to = ac_child(p, s, c)) < 0)
            s = p->nodes[s].fail;
        s = s == 0 ? p->root[c] : to;
        int m = p->nodes[s].pat >= 0 ? s : p->nodes[s].dict;
        if (m < 0)
            continue;
        struct etl_scrub_span sp = {i + 1 - p->nodes[m].depth, i + 1, ETL_SCRUB_SPAN_HEX,
                                    ETL_SCRUB_CANON_NONE,      0,     0,
                                    p->hex[p->nodes[m].pat]};
        sp.rs = sp.start;
        sp.re = sp.end;
        /* merge with the occurrences it overlaps; the longest one names the replacement */
        while (out->n > base && sp.start < out->v[out->n - 1].end) {
            struct etl_scrub_span *top = &out->v[out->n - 1];
            if (top->re - top->rs > sp.re - sp.rs) {
                sp.rs = top->rs;
                sp.re = top->re;
                sp.hex = top->hex;
            }
            if (top->start < sp.start)
                sp.start = top->start;
            out->n--;
        }
        if (etl_scrub_spans_push(out, &sp) != 0)
            return -1;
    }
    return 0;
}
