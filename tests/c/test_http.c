/* test_http.c: the transport (src/http.c) against a small HTTP/1.1 listener of this test, served
 * in the same thread between etl_http_run calls (the listener never blocks). Shows:
 *  - many requests in flight at once on their own connections, each answer matched to its id,
 *    and the connections kept for the next round (one poll for every socket: curl is told which
 *    are ready, it never polls a transfer's socket itself);
 *  - a request never answered ends as ETL_HTTP_TIMEOUT at its total timeout (curl's timers are
 *    run while the others are answered);
 *  - a connection the server closed while it sat idle is closed by the next request, whichever
 *    slot carries it (nothing left in CLOSE_WAIT for a service's lifetime);
 *  - the proxy taken from the environment once, by curl's own rules: http_proxy is used (the
 *    request line carries the absolute URL), no_proxy bypasses it, HTTP_PROXY is never read for
 *    an http:// URL, an empty variable counts as unset. */
#include "etlua/http.h"

#include "check.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64

struct conn {
    int fd;
    char buf[8192];
    size_t len;
};

/* The listener: accepts, reads whole requests (headers + Content-Length body), answers each with
 * 200 and the request line as body, except a request whose body is "hold" (never answered),
 * "qerr" (400 with an x-amzn-query-error header) or "cont" (a 100 Continue carrying that header,
 * then 200 without it). */
struct server {
    int fd, port;
    struct conn conns[MAX_CONNS];
    int nconns, accepted, requests;
    int expect_lines; /* requests seen with an Expect header */
    char last_line[512];
};

static void server_open(struct server *sv)
{
    memset(sv, 0, sizeof *sv);
    sv->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (sv->fd < 0 || bind(sv->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(sv->fd, 128) != 0 || getsockname(sv->fd, (struct sockaddr *)&a, &alen) != 0) {
        perror("test_http: listener");
        exit(2);
    }
    fcntl(sv->fd, F_SETFL, O_NONBLOCK);
    sv->port = ntohs(a.sin_port);
}

/* server_open, and the listener's URL in url */
static void server_open_url(struct server *sv, char *url, size_t n)
{
    server_open(sv);
    snprintf(url, n, "http://127.0.0.1:%d/", sv->port);
}

static void server_close(struct server *sv)
{
    for (int i = 0; i < sv->nconns; i++)
        close(sv->conns[i].fd);
    close(sv->fd);
}

/* needle in the first n bytes of hay, or NULL (memmem is not POSIX) */
static const char *find(const char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return hay + i;
    return NULL;
}

/* One request complete at the start of c->buf: its length, or 0. */
static size_t request_len(const struct conn *c)
{
    const char *end = find(c->buf, c->len, "\r\n\r\n");
    if (!end)
        return 0;
    size_t head = (size_t)(end - c->buf) + 4, body = 0;
    const char *cl = find(c->buf, head, "Content-Length: ");
    if (cl)
        body = strtoul(cl + 16, NULL, 10);
    return c->len >= head + body ? head + body : 0;
}

static void serve(struct server *sv)
{
    int fd;
    while (sv->nconns < MAX_CONNS && (fd = accept(sv->fd, NULL, NULL)) >= 0) {
        fcntl(fd, F_SETFL, O_NONBLOCK);
        sv->conns[sv->nconns++] = (struct conn){.fd = fd};
        sv->accepted++;
    }
    for (int i = 0; i < sv->nconns; i++) {
        struct conn *c = &sv->conns[i];
        ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
        if (n > 0)
            c->len += (size_t)n;
        size_t rl;
        while ((rl = request_len(c)) > 0) {
            size_t line = strcspn(c->buf, "\r");
            snprintf(sv->last_line, sizeof sv->last_line, "%.*s", (int)line, c->buf);
            sv->requests++;
            const char *tail = rl >= 4 ? c->buf + rl - 4 : "    ";
            int hold = memcmp(tail, "hold", 4) == 0;
            if (find(c->buf, rl, "\r\nExpect:"))
                sv->expect_lines++;
            if (!hold) {
                char answer[900];
                const char *qerr = "x-amzn-query-error:  AWS.SimpleQueueService.NonExistentQueue;"
                                   "Sender \r\n";
                int is_qerr = memcmp(tail, "qerr", 4) == 0, is_cont = memcmp(tail, "cont", 4) == 0;
                int k = snprintf(answer, sizeof answer,
                                 "%s%s%s"
                                 "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\n\r\n%s",
                                 is_cont ? "HTTP/1.1 100 Continue\r\n" : "", is_cont ? qerr : "",
                                 is_cont ? "\r\n" : "", is_qerr ? "400 Bad Request" : "200 OK",
                                 is_qerr ? qerr : "", strlen(sv->last_line), sv->last_line);
                if (write(c->fd, answer, (size_t)k) != k)
                    check_fail_at(__FILE__, __LINE__, "short write");
            }
            memmove(c->buf, c->buf + rl, c->len - rl);
            c->len -= rl;
        }
    }
}

static struct etl_http *open_transport(size_t inflight)
{
    struct etl_http_config cfg = {.region = "us-east-1",
                                  .service = "sqs",
                                  .access_key = "AKIDEXAMPLE",
                                  .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                  .max_inflight = inflight};
    return etl_http_open(&cfg);
}

static unsigned long long add(struct etl_http *h, const char *url, const char *body, long total_ms)
{
    static const char *const headers[] = {"Content-Type: application/x-amz-json-1.0"};
    unsigned long long id = 0;
    char err[256];
    enum etl_http_status st = etl_http_add(h, url, headers, 1, body, strlen(body), 1000, total_ms,
                                           0, 7, &id, err, sizeof err);
    CHECK(st == ETL_HTTP_OK, "etl_http_add: %d %s", (int)st, err);
    return id;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the transport and the listener until want requests are finished (or 5 s pass); the
 * finished ones are taken into done[] (bodies freed). Returns how many. */
static int run_until(struct etl_http *h, struct server *sv, int want, struct etl_http_done *done,
                     int cap)
{
    int n = 0;
    long long give_up = now_ms() + 5000;
    struct etl_http_done d;
    while (n < want && now_ms() < give_up) {
        etl_http_run(h, 5, NULL);
        serve(sv);
        while (n < cap && etl_http_next(h, &d)) {
            done[n++] = d;
            free(d.body);
            done[n - 1].body = NULL;
        }
    }
    return n;
}

static void test_many_in_flight(void)
{
    struct server sv;
    char url[64];
    server_open_url(&sv, url, sizeof url);
    struct etl_http *h = open_transport(32);
    CHECK(h != NULL);
    struct etl_http_done done[32];
    for (int round = 0; round < 2; round++) {
        unsigned long long ids[20];
        for (int i = 0; i < 20; i++)
            ids[i] = add(h, url, "{}", 5000);
        int n = run_until(h, &sv, 20, done, 32);
        CHECK(n == 20, "round %d: %d of 20 answered", round, n);
        for (int i = 0; i < n; i++) {
            int known = 0;
            for (int j = 0; j < 20; j++)
                known |= done[i].id == ids[j];
            CHECK(known && done[i].status == ETL_HTTP_OK && done[i].http_status == 200,
                  "answer %d: id %llu status %d http %ld", i, done[i].id, (int)done[i].status,
                  done[i].http_status);
        }
        CHECK(etl_http_pending(h) == 0);
    }
    /* the second round found the first round's connections open */
    CHECK(sv.accepted <= 20, "%d connections for 40 requests", sv.accepted);
    CHECK_STR_EQ(sv.last_line, "POST / HTTP/1.1");

    /* a request never answered times out, while one answered after it is not held up */
    unsigned long long held = add(h, url, "hold", 300);
    unsigned long long quick = add(h, url, "{}", 5000);
    long long t0 = now_ms();
    int n = run_until(h, &sv, 1, done, 32);
    CHECK(n == 1 && done[0].id == quick && done[0].status == ETL_HTTP_OK);
    CHECK(now_ms() - t0 < 250, "the quick one took %lld ms", now_ms() - t0);
    n = run_until(h, &sv, 1, done, 32);
    CHECK(n == 1 && done[0].id == held && done[0].status == ETL_HTTP_TIMEOUT,
          "held: %d answers, status %d", n, n ? (int)done[0].status : -1);
    long long took = now_ms() - t0;
    CHECK(took >= 290 && took < 1500, "timed out after %lld ms", took);

    /* a blocking run returns as soon as an answer is there, not at its time limit */
    int seen = sv.requests;
    add(h, url, "{}", 5000);
    for (int i = 0; i < 200 && sv.requests == seen; i++) {
        etl_http_run(h, 0, NULL);
        usleep(1000);
        serve(&sv); /* reads the request and answers it */
    }
    t0 = now_ms();
    size_t got = etl_http_run(h, 2000, NULL);
    CHECK(got == 1 && now_ms() - t0 < 500, "%zu answers after %lld ms", got, now_ms() - t0);
    if (got == 1 && etl_http_next(h, &done[0]))
        free(done[0].body);
    etl_http_close(h);
    server_close(&sv);
}

/* This process's TCP sockets in CLOSE_WAIT (the peer closed, this side did not yet): the socket
 * inodes of /proc/self/fd looked up in /proc/net/tcp (state 08). -1 when /proc cannot say. */
static int close_wait_sockets(void)
{
    unsigned long waiting[256];
    int nwaiting = 0, n = 0;
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f)
        return -1;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        unsigned st;
        unsigned long inode;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, " %*d: %*s %*s %x %*s %*s %*s %*u %*u %lu", &st, &inode) == 2 &&
            st == 0x08 && nwaiting < 256)
            waiting[nwaiting++] = inode;
    }
    fclose(f);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[300], target[64];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t k = readlink(path, target, sizeof target - 1);
        unsigned long inode;
        if (k <= 0)
            continue;
        target[k] = '\0';
        if (sscanf(target, "socket:[%lu]", &inode) != 1)
            continue;
        for (int i = 0; i < nwaiting; i++)
            n += waiting[i] == inode;
    }
    closedir(d);
    return n;
}

/* Eight requests at once leave eight idle connections; the server closes them all (as a server's
 * keep-alive timeout does); after a second (curl looks for dead connections at most once a
 * second) one request, on whichever slot, must close every one of them: the pool's connections
 * are one cache, not a cache per slot that only its own next request would look at. */
static void test_idle_connections_closed_by_server(void)
{
    struct server sv;
    char url[64];
    server_open_url(&sv, url, sizeof url);
    struct etl_http *h = open_transport(8);
    struct etl_http_done done[8];
    for (int i = 0; i < 8; i++)
        add(h, url, "{}", 5000);
    CHECK(run_until(h, &sv, 8, done, 8) == 8);
    CHECK(sv.accepted == 8, "%d connections for 8 requests at once", sv.accepted);
    for (int i = 0; i < sv.nconns; i++)
        close(sv.conns[i].fd);
    sv.nconns = 0;
    usleep(1100 * 1000);
    int before = close_wait_sockets();
    add(h, url, "{}", 5000);
    CHECK(run_until(h, &sv, 1, done, 8) == 1 && done[0].status == ETL_HTTP_OK);
    int after = close_wait_sockets();
    CHECK(before == 8 && after == 0,
          "sockets in CLOSE_WAIT: %d after the server closed them, %d after one request", before,
          after);
    etl_http_close(h);
    server_close(&sv);
}

/* One request to url with the environment as it is; returns the request line the listener saw
 * ("" when none reached it) and the transport's status. */
static enum etl_http_status one_request(struct server *sv, const char *url, char *line,
                                        size_t linelen)
{
    struct etl_http *h = open_transport(4);
    struct etl_http_done done[4];
    sv->last_line[0] = '\0';
    add(h, url, "{}", 3000);
    int n = run_until(h, sv, 1, done, 4);
    snprintf(line, linelen, "%s", sv->last_line);
    etl_http_close(h);
    return n == 1 ? done[0].status : ETL_HTTP_NOMEM;
}

static void test_proxy_from_environment(void)
{
    struct server sv;
    server_open(&sv);
    char direct[64], proxy[64], line[512];
    snprintf(direct, sizeof direct, "http://127.0.0.1:%d/", sv.port);
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", sv.port);
    const char *dead = "http://127.0.0.1:1"; /* nothing listens there: refused */
    static const char *const vars[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                       "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);

    /* http_proxy: the request goes to the proxy, with the absolute URL in its request line */
    setenv("http_proxy", proxy, 1);
    CHECK(one_request(&sv, "http://sqs.example.invalid:4566/", line, sizeof line) == ETL_HTTP_OK);
    CHECK_STR_EQ(line, "POST http://sqs.example.invalid:4566/ HTTP/1.1");

    /* all_proxy when there is no http_proxy; an empty http_proxy counts as unset */
    setenv("http_proxy", "", 1);
    setenv("all_proxy", proxy, 1);
    CHECK(one_request(&sv, "http://sqs.example.invalid:4566/", line, sizeof line) == ETL_HTTP_OK);
    CHECK_STR_EQ(line, "POST http://sqs.example.invalid:4566/ HTTP/1.1");
    unsetenv("all_proxy");

    /* no_proxy: the listed host is reached directly, though the proxy would refuse */
    setenv("http_proxy", dead, 1);
    setenv("NO_PROXY", "127.0.0.1", 1);
    CHECK(one_request(&sv, direct, line, sizeof line) == ETL_HTTP_OK);
    CHECK_STR_EQ(line, "POST / HTTP/1.1");
    unsetenv("NO_PROXY");

    /* without no_proxy the same request goes to the (dead) proxy */
    CHECK(one_request(&sv, direct, line, sizeof line) == ETL_HTTP_NETWORK);
    unsetenv("http_proxy");

    /* HTTP_PROXY is never read for http:// (curl's rule): the request goes directly */
    setenv("HTTP_PROXY", dead, 1);
    CHECK(one_request(&sv, direct, line, sizeof line) == ETL_HTTP_OK);
    CHECK_STR_EQ(line, "POST / HTTP/1.1");
    unsetenv("HTTP_PROXY");
    server_close(&sv);
}

/* x-amzn-query-error (the query protocol's error code on a JSON answer) read from the final
 * answer's headers, trimmed; a 100 Continue's headers are not the answer's. No request carries
 * an Expect header: libcurl adds 100-continue only for bodies over 1 MiB. */
static void test_query_error_header(void)
{
    struct server sv;
    char url[64];
    server_open_url(&sv, url, sizeof url);
    struct etl_http *h = open_transport(4);
    CHECK(h != NULL);
    struct etl_http_done done[4];
    static const char *const bodies[] = {"qerr", "cont", "{}"};
    static const long want_status[] = {400, 200, 200};
    static const char *const want_error[] = {"AWS.SimpleQueueService.NonExistentQueue;Sender", "",
                                             ""};
    for (int i = 0; i < 3; i++) {
        unsigned long long id = add(h, url, bodies[i], 3000);
        int n = run_until(h, &sv, 1, done, 4);
        CHECK(n == 1 && done[0].id == id && done[0].status == ETL_HTTP_OK, "%s: %d answers",
              bodies[i], n);
        CHECK(done[0].http_status == want_status[i], "%s: HTTP %ld", bodies[i],
              done[0].http_status);
        CHECK_STR_EQ(done[0].query_error, want_error[i]);
    }
    CHECK(sv.expect_lines == 0, "%d requests with an Expect header", sv.expect_lines);
    etl_http_close(h);
    server_close(&sv);
}

int main(void)
{
    test_query_error_header();
    test_many_in_flight();
    test_idle_connections_closed_by_server();
    test_proxy_from_environment();
    return CHECK_DONE("test_http");
}
