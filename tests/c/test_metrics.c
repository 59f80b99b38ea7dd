/* test_metrics.c: etlua.metrics — the exact Prometheus text (0.0.4) of a small registry
 * (counters with and without a label, label-value and help escaping, gauges, histogram
 * buckets/sum/count, number formatting, the constant label on every series), the registry's
 * refusals, the process metrics (present, plausible, moving at scrape time while the main thread
 * is busy and updates nothing), address parsing and bind errors of the server, a real scrape of
 * /metrics, /healthz and /readyz over a socket, and the Lua binding. A plain program: prints each failure and exits non-zero when any check failed. */
#include "etlua/metrics.h"
#include "etlua/metrics_server.h"
#include "etlua/modules.h"

#include "check.h"

#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <time.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static void check_text(struct etl_metrics *m, const char *want, int line)
{
    size_t len = 0;
    char *got = etl_metrics_render(m, &len);
    if (got == NULL || strcmp(got, want) != 0 || len != strlen(want)) {
        check_fail_at(__FILE__, line, "rendered text differs\n--- want\n%s--- got\n%s---", want,
                      got ? got : "(null)");
    }
    free(got);
}

/* ---- exposition text ----------------------------------------------------------------------------- */

static void test_render(void)
{
    struct etl_metrics *m = etl_metrics_new();
    const char *err = NULL;
    check_text(m, "", __LINE__);

    int recv = etl_metrics_add(m, ETL_COUNTER, "etlua_messages_received_total",
                               "Messages received.", NULL, NULL, 0, &err);
    int rej = etl_metrics_add(m, ETL_COUNTER, "etlua_rejects_total",
                              "Rejects by reason.\nSecond \\ line", "reason", NULL, 0, &err);
    int fl = etl_metrics_add(m, ETL_GAUGE, "etlua_messages_in_flight", NULL, NULL, NULL, 0, &err);
    int info =
        etl_metrics_add(m, ETL_GAUGE, "etlua_build_info", "Build.", "version", NULL, 0, &err);
    double b[] = {0.005, 0.1, 1};
    int h = etl_metrics_add(m, ETL_HISTOGRAM, "etlua_batch_commit_seconds", "Commit.", NULL, b, 3,
                            &err);
    CHECK(recv == 0 && rej == 1 && fl == 2 && info == 3 && h == 4, "ids %d %d %d %d %d", recv, rej,
          fl, info, h);

    /* before any update: unlabelled families show 0, labelled ones no series, histograms zeros */
    check_text(m,
               "# HELP etlua_messages_received_total Messages received.\n"
               "# TYPE etlua_messages_received_total counter\n"
               "etlua_messages_received_total 0\n"
               "# HELP etlua_rejects_total Rejects by reason.\\nSecond \\\\ line\n"
               "# TYPE etlua_rejects_total counter\n"
               "# TYPE etlua_messages_in_flight gauge\n"
               "etlua_messages_in_flight 0\n"
               "# HELP etlua_build_info Build.\n"
               "# TYPE etlua_build_info gauge\n"
               "# HELP etlua_batch_commit_seconds Commit.\n"
               "# TYPE etlua_batch_commit_seconds histogram\n"
               "etlua_batch_commit_seconds_bucket{le=\"0.005\"} 0\n"
               "etlua_batch_commit_seconds_bucket{le=\"0.1\"} 0\n"
               "etlua_batch_commit_seconds_bucket{le=\"1\"} 0\n"
               "etlua_batch_commit_seconds_bucket{le=\"+Inf\"} 0\n"
               "etlua_batch_commit_seconds_sum 0\n"
               "etlua_batch_commit_seconds_count 0\n",
               __LINE__);

    CHECK(etl_metrics_inc(m, recv, NULL, 500) == 0, "inc");
    CHECK(etl_metrics_inc(m, recv, "ignored", 20000) == 0,
          "inc with a label on an unlabelled family");
    CHECK(etl_metrics_inc(m, rej, "invalid_ip", 3) == 0, "inc label");
    CHECK(etl_metrics_inc(m, rej, "rule:say \"hi\"\\\n", 1) == 0, "inc escaped label");
    CHECK(etl_metrics_inc(m, rej, "invalid_ip", 2) == 0, "inc label again");
    CHECK(etl_metrics_set(m, fl, NULL, 1234) == 0, "set");
    CHECK(etl_metrics_set(m, fl, NULL, 17) == 0, "set again");
    CHECK(etl_metrics_set(m, info, "0.1.0", 1) == 0, "set label");
    CHECK(etl_metrics_observe(m, h, 0.005) == 0, "observe on a bound (le is inclusive)");
    CHECK(etl_metrics_observe(m, h, 0.05) == 0, "observe");
    CHECK(etl_metrics_observe(m, h, 0.25) == 0, "observe");
    CHECK(etl_metrics_observe(m, h, 7) == 0, "observe past the last bound");

    check_text(m,
               "# HELP etlua_messages_received_total Messages received.\n"
               "# TYPE etlua_messages_received_total counter\n"
               "etlua_messages_received_total 20500\n"
               "# HELP etlua_rejects_total Rejects by reason.\\nSecond \\\\ line\n"
               "# TYPE etlua_rejects_total counter\n"
               "etlua_rejects_total{reason=\"invalid_ip\"} 5\n"
               "etlua_rejects_total{reason=\"rule:say \\\"hi\\\"\\\\\\n\"} 1\n"
               "# TYPE etlua_messages_in_flight gauge\n"
               "etlua_messages_in_flight 17\n"
               "# HELP etlua_build_info Build.\n"
               "# TYPE etlua_build_info gauge\n"
               "etlua_build_info{version=\"0.1.0\"} 1\n"
               "# HELP etlua_batch_commit_seconds Commit.\n"
               "# TYPE etlua_batch_commit_seconds histogram\n"
               "etlua_batch_commit_seconds_bucket{le=\"0.005\"} 1\n"
               "etlua_batch_commit_seconds_bucket{le=\"0.1\"} 2\n"
               "etlua_batch_commit_seconds_bucket{le=\"1\"} 3\n"
               "etlua_batch_commit_seconds_bucket{le=\"+Inf\"} 4\n"
               "etlua_batch_commit_seconds_sum 7.305\n"
               "etlua_batch_commit_seconds_count 4\n",
               __LINE__);
    etl_metrics_free(m);
}

static void test_numbers(void)
{
    struct etl_metrics *m = etl_metrics_new();
    int g = etl_metrics_add(m, ETL_GAUGE, "g", NULL, "k", NULL, 0, NULL);
    etl_metrics_set(m, g, "a", 0.1);
    etl_metrics_set(m, g, "b", -2.5);
    etl_metrics_set(m, g, "c", 1.0 / 3.0);
    etl_metrics_set(m, g, "d", 1e300);
    etl_metrics_set(m, g, "e", -0.0);
    etl_metrics_set(m, g, "f", 1.0 / 0.0);
    check_text(m,
               "# TYPE g gauge\n"
               "g{k=\"a\"} 0.1\n"
               "g{k=\"b\"} -2.5\n"
               "g{k=\"c\"} 0.33333333333333331\n"
               "g{k=\"d\"} 1e+300\n"
               "g{k=\"e\"} 0\n"
               "g{k=\"f\"} +Inf\n",
               __LINE__);
    etl_metrics_free(m);
}

static void test_refusals(void)
{
    struct etl_metrics *m = etl_metrics_new();
    const char *err = NULL;
    double up[] = {1, 0.5}, one[] = {1};
    CHECK(etl_metrics_add(m, ETL_COUNTER, "9bad", NULL, NULL, NULL, 0, &err) == -1 &&
              strcmp(err, "invalid metric name") == 0,
          "digit first: %s", err);
    CHECK(etl_metrics_add(m, ETL_COUNTER, "a-b", NULL, NULL, NULL, 0, &err) == -1, "dash accepted");
    CHECK(etl_metrics_add(m, ETL_COUNTER, "a", NULL, "__x", NULL, 0, &err) == -1 &&
              strcmp(err, "invalid label name") == 0,
          "reserved label: %s", err);
    CHECK(etl_metrics_add(m, ETL_COUNTER, "a", NULL, "a:b", NULL, 0, &err) == -1, "colon in label");
    CHECK(etl_metrics_add(m, ETL_HISTOGRAM, "h", NULL, NULL, up, 2, &err) == -1 &&
              strcmp(err, "bucket bounds must be finite and increasing") == 0,
          "decreasing: %s", err);
    CHECK(etl_metrics_add(m, ETL_HISTOGRAM, "h", NULL, "x", one, 1, &err) == -1,
          "labelled histogram");
    int c = etl_metrics_add(m, ETL_COUNTER, "ok:total", NULL, NULL, NULL, 0, &err);
    CHECK(c == 0, "colon in a metric name refused");
    CHECK(etl_metrics_add(m, ETL_GAUGE, "ok:total", NULL, NULL, NULL, 0, &err) == -1 &&
              strcmp(err, "duplicate metric name") == 0,
          "duplicate: %s", err);
    CHECK(etl_metrics_inc(m, c, NULL, -1) == -1, "a counter went down");
    CHECK(etl_metrics_set(m, c, NULL, 5) == -1, "a counter was set");
    CHECK(etl_metrics_observe(m, c, 1) == -1, "observe on a counter");
    CHECK(etl_metrics_inc(m, 42, NULL, 1) == -1, "unknown id");
    etl_metrics_free(m);
}

static void test_constant_label(void)
{
    struct etl_metrics *m = etl_metrics_new();
    const char *err = NULL;
    int c = etl_metrics_add(m, ETL_COUNTER, "r_total", NULL, "reason", NULL, 0, &err);
    int g = etl_metrics_add(m, ETL_GAUGE, "g", NULL, NULL, NULL, 0, &err);
    double b[] = {1};
    int h = etl_metrics_add(m, ETL_HISTOGRAM, "h", NULL, NULL, b, 1, &err);
    CHECK(etl_metrics_set_constant_label(m, "reason", "x", &err) == -1 &&
              strcmp(err, "a family already uses that label") == 0,
          "clash accepted: %s", err);
    CHECK(etl_metrics_set_constant_label(m, "le", "x", &err) == -1, "le as the constant label");
    CHECK(etl_metrics_set_constant_label(m, "pipeline", "first", &err) == 0, "constant label: %s",
          err);
    CHECK(etl_metrics_set_constant_label(m, "pipeline", "lo\"gin", &err) == 0, "changed: %s", err);
    CHECK(etl_metrics_add(m, ETL_GAUGE, "q", NULL, "pipeline", NULL, 0, &err) == -1 &&
              strcmp(err, "the label is the registry's constant label") == 0,
          "later clash: %s", err);
    etl_metrics_inc(m, c, "invalid_json", 0);
    etl_metrics_inc(m, c, "rule:x", 2);
    etl_metrics_observe(m, h, 0.5);
    (void)g;
    check_text(m,
               "# TYPE r_total counter\n"
               "r_total{pipeline=\"lo\\\"gin\",reason=\"invalid_json\"} 0\n"
               "r_total{pipeline=\"lo\\\"gin\",reason=\"rule:x\"} 2\n"
               "# TYPE g gauge\n"
               "g{pipeline=\"lo\\\"gin\"} 0\n"
               "# TYPE h histogram\n"
               "h_bucket{pipeline=\"lo\\\"gin\",le=\"1\"} 1\n"
               "h_bucket{pipeline=\"lo\\\"gin\",le=\"+Inf\"} 1\n"
               "h_sum{pipeline=\"lo\\\"gin\"} 0.5\n"
               "h_count{pipeline=\"lo\\\"gin\"} 1\n",
               __LINE__);
    etl_metrics_free(m);
}

/* The value of the unlabelled sample `name` in text, or -1 when absent. */
static double sample(const char *text, const char *name)
{
    char want[128];
    snprintf(want, sizeof want, "\n%s ", name);
    const char *p = strstr(text, want);
    return p ? strtod(p + strlen(want), NULL) : -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile double sink_;

static double thread_cpu_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1000 + (double)t.tv_nsec / 1e6;
}

/* Burns about ms milliseconds of this thread's CPU time (not wall time: the machine may be
 * shared), or, when flag is not NULL, until *flag == value. */
static void burn(int ms, const int *flag, int value)
{
    double t0 = thread_cpu_ms(), x = 0;
    while (flag ? __atomic_load_n(flag, __ATOMIC_ACQUIRE) != value : thread_cpu_ms() - t0 < ms) {
        for (int i = 0; i < 10000; i++)
            x += sqrt((double)i);
    }
    sink_ = x;
}

static void test_process(void)
{
    struct etl_metrics *m = etl_metrics_new();
    int c = etl_metrics_add(m, ETL_COUNTER, "etlua_x_total", NULL, NULL, NULL, 0, NULL);
    etl_metrics_set_constant_label(m, "pipeline", "p", NULL);
    char *before = etl_metrics_render(m, NULL);
    CHECK(before && strstr(before, "process_") == NULL, "process metrics before they are enabled");
    free(before);
    etl_metrics_enable_process(m);
    char *t1 = etl_metrics_render(m, NULL);
    burn(100, NULL, 0);
    char *t2 = etl_metrics_render(m, NULL);
    CHECK(t1 && t2, "render");
    if (t1 && t2) {
        CHECK(strstr(t1, "etlua_x_total{pipeline=\"p\"} 0\n# HELP process_cpu_seconds_total ") !=
                  NULL,
              "process metrics after the families: %s", t1);
        CHECK(strstr(t1, "# TYPE process_cpu_seconds_total counter\n") &&
                  strstr(t1, "# TYPE process_resident_memory_bytes gauge\n") &&
                  strstr(t1, "# TYPE process_start_time_seconds gauge\n"),
              "types: %s", t1);
        CHECK(strstr(t1, "process_cpu_seconds_total{") == NULL,
              "process metrics carry the constant label");
        double cpu1 = sample(t1, "process_cpu_seconds_total"),
               cpu2 = sample(t2, "process_cpu_seconds_total");
        CHECK(cpu1 >= 0 && cpu2 >= cpu1 + 0.09, "CPU did not move over 100 ms of work: %f -> %f",
              cpu1, cpu2);
        double rss = sample(t1, "process_resident_memory_bytes"),
               vms = sample(t1, "process_virtual_memory_bytes");
        CHECK(rss > 100000 && rss < 1e11 && vms >= rss, "rss %f vms %f", rss, vms);
        double start = sample(t1, "process_start_time_seconds"), now = now_s();
        CHECK(start > now - 3600 && start <= now + 1, "start time %f, now %f", start, now);
        CHECK(sample(t1, "process_open_fds") >= 3 &&
                  sample(t1, "process_max_fds") >= sample(t1, "process_open_fds"),
              "fds %f of %f", sample(t1, "process_open_fds"), sample(t1, "process_max_fds"));
    }
    free(t1);
    free(t2);
    (void)c;
    etl_metrics_free(m);
}

static void test_series_cap(void)
{
    struct etl_metrics *m = etl_metrics_new();
    int c = etl_metrics_add(m, ETL_COUNTER, "c_total", NULL, "k", NULL, 0, NULL);
    char lv[16];
    for (int i = 0; i < ETL_METRICS_MAX_SERIES + 10; i++) {
        snprintf(lv, sizeof lv, "v%d", i);
        etl_metrics_inc(m, c, lv, 1);
    }
    char *text = etl_metrics_render(m, NULL);
    CHECK(text && strstr(text, "c_total{k=\"_other\"} 10\n") != NULL,
          "label values past the cap fold into _other");
    free(text);
    etl_metrics_free(m);
}

/* ---- the server ---------------------------------------------------------------------------------- */

/* GET path from 127.0.0.1:port; returns the status code and copies the body into body. */
static int http_get(int port, const char *path, char *body, size_t bodylen)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n =
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    static char resp[65536];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof resp - 1 && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
        got += (size_t)r;
    resp[got] = '\0';
    close(fd);
    int status = -1;
    sscanf(resp, "HTTP/1.%*d %d", &status);
    const char *b = strstr(resp, "\r\n\r\n");
    snprintf(body, bodylen, "%s", b ? b + 4 : "");
    return status;
}

static void test_server(void)
{
    struct etl_metrics *m = etl_metrics_new();
    char bound[80], err[256], body[4096];
    int c =
        etl_metrics_add(m, ETL_COUNTER, "etlua_rows_written_total", "Rows.", NULL, NULL, 0, NULL);
    etl_metrics_inc(m, c, NULL, 42);

    CHECK(etl_metrics_server_start(m, "localhost:9108", bound, sizeof bound, err, sizeof err) ==
                  NULL &&
              strstr(err, "not a numeric address:port"),
          "hostname accepted: %s", err);
    CHECK(etl_metrics_server_start(m, "::1:9108", bound, sizeof bound, err, sizeof err) == NULL,
          "v6 without brackets");
    CHECK(etl_metrics_server_start(m, "127.0.0.1:99999", bound, sizeof bound, err, sizeof err) ==
              NULL,
          "port > 65535");
    CHECK(etl_metrics_server_start(m, "127.0.0.1:", bound, sizeof bound, err, sizeof err) == NULL,
          "no port");

    struct etl_metrics_server *srv =
        etl_metrics_server_start(m, "127.0.0.1:0", bound, sizeof bound, err, sizeof err);
    CHECK(srv != NULL, "serve: %s", err);
    int port = 0;
    CHECK(sscanf(bound, "127.0.0.1:%d", &port) == 1 && port > 0, "bound %s", bound);

    /* a second registry on the same address: the system's reason, one line */
    struct etl_metrics *m2 = etl_metrics_new();
    char addr[40];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    CHECK(etl_metrics_server_start(m2, addr, bound, sizeof bound, err, sizeof err) == NULL &&
              strstr(err, "Address already in use") && strstr(err, addr),
          "bind twice: %s", err);
    etl_metrics_free(m2);

    CHECK(http_get(port, "/metrics", body, sizeof body) == 200, "/metrics status");
    CHECK(strcmp(body,
                 "# HELP etlua_rows_written_total Rows.\n# TYPE etlua_rows_written_total counter\n"
                 "etlua_rows_written_total 42\n") == 0,
          "/metrics body: %s", body);
    CHECK(http_get(port, "/healthz", body, sizeof body) == 200, "/healthz status");
    CHECK(http_get(port, "/readyz", body, sizeof body) == 503, "/readyz before ready");
    etl_metrics_set_ready(m, 1);
    CHECK(http_get(port, "/readyz", body, sizeof body) == 200, "/readyz when ready");
    CHECK(http_get(port, "/nope", body, sizeof body) == 404, "unknown path");
    etl_metrics_server_stop(srv);
    etl_metrics_free(m);
    CHECK(http_get(port, "/healthz", body, sizeof body) == -1, "still listening after stop");

    struct etl_metrics *m6 = etl_metrics_new();
    struct etl_metrics_server *srv6 =
        etl_metrics_server_start(m6, "[::1]:0", bound, sizeof bound, err, sizeof err);
    if (srv6 != NULL) {
        CHECK(strncmp(bound, "[::1]:", 6) == 0, "v6 bound %s", bound);
        etl_metrics_server_stop(srv6);
    } else {
        fprintf(stderr, "note: no IPv6 loopback here (%s)\n", err);
    }
    etl_metrics_free(m6);
}

/* While the main thread is busy and updates nothing, two scrapes from another thread see the
 * process's CPU time move: it is read at scrape time, not reported by the loop. */
struct scraper {
    int port;
    int phase; /* 1: first scrape done; 2: main burnt 100 ms; 3: second scrape done */
    double cpu[2];
};

static void *scrape_twice(void *arg)
{
    struct scraper *s = arg;
    static char body[16384];
    s->cpu[0] = http_get(s->port, "/metrics", body, sizeof body) == 200
                    ? sample(body, "process_cpu_seconds_total")
                    : -1;
    __atomic_store_n(&s->phase, 1, __ATOMIC_RELEASE);
    while (__atomic_load_n(&s->phase, __ATOMIC_ACQUIRE) != 2) {
        struct timespec d = {0, 1000000L};
        nanosleep(&d, NULL);
    }
    s->cpu[1] = http_get(s->port, "/metrics", body, sizeof body) == 200
                    ? sample(body, "process_cpu_seconds_total")
                    : -1;
    __atomic_store_n(&s->phase, 3, __ATOMIC_RELEASE);
    return NULL;
}

static void test_scrape_while_busy(void)
{
    struct etl_metrics *m = etl_metrics_new();
    char bound[80], err[256];
    etl_metrics_enable_process(m);
    struct etl_metrics_server *srv =
        etl_metrics_server_start(m, "127.0.0.1:0", bound, sizeof bound, err, sizeof err);
    CHECK(srv != NULL, "serve: %s", err);
    struct scraper s = {0, 0, {-1, -1}};
    sscanf(bound, "127.0.0.1:%d", &s.port);
    pthread_t t;
    pthread_create(&t, NULL, scrape_twice, &s);
    while (__atomic_load_n(&s.phase, __ATOMIC_ACQUIRE) != 1) {
        struct timespec d = {0, 1000000L};
        nanosleep(&d, NULL);
    }
    burn(100, NULL, 0);
    __atomic_store_n(&s.phase, 2, __ATOMIC_RELEASE);
    burn(0, &s.phase, 3); /* still busy while the second scrape runs */
    pthread_join(t, NULL);
    CHECK(s.cpu[0] >= 0 && s.cpu[1] >= s.cpu[0] + 0.09, "CPU seen by scrapes while busy: %f -> %f",
          s.cpu[0], s.cpu[1]);
    etl_metrics_server_stop(srv);
    etl_metrics_free(m);
}

/* ---- Lua binding --------------------------------------------------------------------------------- */

static void test_lua(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "etlua.metrics", luaopen_etlua_metrics, 0);
    lua_pop(L, 1);
    const char *code =
        "local metrics = require 'etlua.metrics'\n"
        "local r = metrics.registry()\n"
        "local c = r:counter('x_total', 'X.', 'kind')\n"
        "local h = r:histogram('y_seconds', 'Y.', {0.5, 1})\n"
        "r:inc(c, 2, 'a'); r:inc(c, nil, 'a'); r:observe(h, 0.75)\n"
        "local want = '# HELP x_total X.\\n# TYPE x_total counter\\nx_total{kind=\"a\"} 3\\n'\n"
        "  .. '# HELP y_seconds Y.\\n# TYPE y_seconds histogram\\n'\n"
        "  .. 'y_seconds_bucket{le=\"0.5\"} 0\\ny_seconds_bucket{le=\"1\"} 1\\n'\n"
        "  .. 'y_seconds_bucket{le=\"+Inf\"} 1\\ny_seconds_sum 0.75\\ny_seconds_count 1\\n'\n"
        "assert(r:render() == want, r:render())\n"
        "assert(not pcall(r.counter, r, 'bad name'))\n"
        "assert(not pcall(r.inc, r, h))\n"
        "local ok, err = r:serve('nonsense')\n"
        "assert(ok == nil and err:find('not a numeric address'), err)\n"
        "local q = metrics.registry(); q:constant_label('pipeline', 'login_etl'); "
        "q:process_metrics()\n"
        "local g = q:gauge('etlua_q', nil, 'state'); q:set(g, 3, 'visible')\n"
        "local text = q:render()\n"
        "assert(text:find('etlua_q{pipeline=\"login_etl\",state=\"visible\"} 3\\n', 1, true), "
        "text)\n"
        "assert(text:find('\\nprocess_resident_memory_bytes %d+\\n'), text)\n"
        "assert(not pcall(q.constant_label, q, 'state', 'x'))\n"
        "q:close()\n"
        "r:close(); r:close()\n"
        "assert(not pcall(r.render, r))\n";
    int rc = luaL_dostring(L, code);
    CHECK(rc == LUA_OK, "lua: %s", rc ? lua_tostring(L, -1) : "");
    lua_close(L);
}

int main(void)
{
    test_render();
    test_numbers();
    test_refusals();
    test_series_cap();
    test_constant_label();
    test_process();
    test_server();
    test_scrape_while_busy();
    test_lua();
    return CHECK_DONE("test_metrics");
}
