/* sigv4_send.c: sends one POST through etlua's transport (src/http.c), which signs it
 * (src/sigv4.c), so compare_botocore.py can read the Authorization header it carried and compare it with
 * botocore's SigV4Auth for the same request.
 * usage: sigv4_send URL CONNECT_TO REGION ACCESS_KEY SECRET_KEY TOKEN|- [NAME: VALUE...]
 * CONNECT_TO ("host:port:127.0.0.1:listener_port") sends the request to the local listener
 * whatever the URL's host. The body is read from standard input. Exits 0 on an HTTP answer. */
#include "etlua/buf.h"
#include "etlua/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: %s URL CONNECT_TO REGION AK SK TOKEN|- [NAME: VALUE...]\n",
                argv[0]);
        return 2;
    }
    struct etl_buf body = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        etl_buf_add(&body, chunk, n);
    struct etl_http_config cfg = {.region = argv[3],
                                  .service = "sqs",
                                  .access_key = argv[4],
                                  .secret_key = argv[5],
                                  .session_token = strcmp(argv[6], "-") ? argv[6] : NULL,
                                  .connect_to = argv[2],
                                  .max_inflight = 1};
    struct etl_http *h = etl_http_open(&cfg);
    char err[256];
    unsigned long long id;
    if (!h || body.oom ||
        etl_http_add(h, argv[1], (const char *const *)argv + 7, (size_t)(argc - 7), body.p,
                     body.len, 5000, 5000, 0, 0, &id, err, sizeof err) != ETL_HTTP_OK) {
        fprintf(stderr, "sigv4_send: cannot send\n");
        return 1;
    }
    struct etl_http_done d;
    while (!etl_http_next(h, &d))
        etl_http_run(h, -1, NULL);
    if (d.status != ETL_HTTP_OK)
        fprintf(stderr, "sigv4_send: %s\n", d.err);
    int rc = d.status == ETL_HTTP_OK ? 0 : 1;
    free(d.body);
    etl_http_close(h);
    etl_buf_free(&body);
    return rc;
}
