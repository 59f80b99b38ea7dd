/* sigv4_sign.c: prints the Authorization header etl_sigv4_sign computes for one request, so
 * compare_botocore.py can compare it with botocore's SigV4Auth byte for byte.
 * usage: sigv4_sign METHOD URL REGION SERVICE ACCESS_KEY SECRET_KEY TOKEN|- EPOCH [NAME:VALUE...]
 * The body is read from standard input. */
#include "etlua/sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 9) {
        fprintf(stderr, "usage: %s METHOD URL REGION SERVICE AK SK TOKEN|- EPOCH [NAME:VALUE...]\n",
                argv[0]);
        return 2;
    }
    size_t len = 0, cap = 4096;
    char *body = malloc(cap);
    size_t n;
    while (body && (n = fread(body + len, 1, cap - len, stdin)) > 0) {
        len += n;
        if (len == cap) {
            char *p = realloc(body, cap *= 2);
            if (!p)
                free(body);
            body = p;
        }
    }
    int nh = argc - 9;
    struct etl_sigv4_header *h = calloc((size_t)nh + 1, sizeof *h);
    if (!body || !h)
        return 2;
    for (int i = 0; i < nh; i++) {
        char *colon = strchr(argv[9 + i], ':');
        if (!colon)
            return 2;
        *colon = '\0';
        h[i].name = argv[9 + i];
        h[i].value = colon + 1;
    }
    struct etl_sigv4_input in = {
        .method = argv[1], .url = argv[2], .region = argv[3], .service = argv[4],
        .access_key = argv[5], .secret_key = argv[6],
        .session_token = strcmp(argv[7], "-") == 0 ? NULL : argv[7],
        .now = (time_t)strtoll(argv[8], NULL, 10), .headers = h, .nheaders = (size_t)nh,
        .body = body, .body_len = len};
    struct etl_sigv4_output out;
    if (etl_sigv4_sign(&in, &out) != 0) {
        fprintf(stderr, "sigv4_sign: cannot sign\n");
        return 1;
    }
    printf("%s\n", out.authorization);
    etl_sigv4_output_free(&out);
    free(body);
    free(h);
    return 0;
}
