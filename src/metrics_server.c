/* metrics_server.c: the HTTP server of etlua.metrics (libmicrohttpd,
 * MHD_USE_INTERNAL_POLLING_THREAD) answering /metrics, /healthz and /readyz. The server thread
 * never touches the Lua state: it only reads the registry and the ready flag under its lock.
 *
 * Binding: the listening socket is made here (socket/bind/listen on exactly the address given)
 * and handed to libmicrohttpd with MHD_OPTION_LISTEN_SOCKET, so a bind failure reports the
 * system's reason ("Address already in use") instead of a bare NULL from MHD_start_daemon.
 * It reads the registry (metrics.c) through its rendering (metrics_text.c) and readiness; the
 * Lua binding (metrics_lua.c) starts and stops it. */
#include "etlua/metrics_internal.h"
#include "etlua/metrics_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the HTTP server ---------------------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *type,
                             char *body, size_t len, int must_free)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        if (must_free)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

#define TEXT "text/plain; charset=utf-8"

/* Runs on the server thread: reads the registry under its lock, never the Lua state. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req)
{
    struct etl_metrics *m = cls;
    (void)version;
    (void)upload;
    if (*req == NULL) { /* first call: headers only; answer on the second */
        *req = (void *)1;
        return MHD_YES;
    }
    if (*upload_size != 0) {
        *upload_size = 0; /* ignore any body */
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        static char msg[] = "method not allowed\n";
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, TEXT, msg, sizeof msg - 1, 0);
    }
    if (strcmp(url, "/metrics") == 0) {
        size_t len;
        char *text = etl_metrics_render(m, &len);
        if (text == NULL) {
            static char msg[] = "out of memory\n";
            return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, TEXT, msg, sizeof msg - 1, 0);
        }
        return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len, 1);
    }
    if (strcmp(url, "/healthz") == 0) {
        static char msg[] = "ok\n";
        return reply(c, MHD_HTTP_OK, TEXT, msg, sizeof msg - 1, 0);
    }
    if (strcmp(url, "/readyz") == 0) {
        static char yes[] = "ready\n", no[] = "not ready\n";
        if (etl_metrics_is_ready(m))
            return reply(c, MHD_HTTP_OK, TEXT, yes, sizeof yes - 1, 0);
        return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, TEXT, no, sizeof no - 1, 0);
    }
    static char msg[] = "not found: try /metrics, /healthz or /readyz\n";
    return reply(c, MHD_HTTP_NOT_FOUND, TEXT, msg, sizeof msg - 1, 0);
}

static void *fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return NULL;
}

/* "1.2.3.4:9108" or "[::1]:9108" -> sockaddr. Numeric only: the address bound is the one given. */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *sslen)
{
    char host[64];
    const char *port;
    memset(ss, 0, sizeof *ss);
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - addr - 1) >= sizeof host)
            return -1;
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
            return -1;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        port = colon + 1;
        if (strchr(host, ':'))
            return -1; /* IPv6 needs brackets */
    }
    if (*port == '\0' || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port))
        return -1;
    long p = strtol(port, NULL, 10);
    if (p > 65535)
        return -1;
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (addr[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((unsigned short)p);
        *sslen = sizeof *v4;
        return 0;
    }
    if (addr[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((unsigned short)p);
        *sslen = sizeof *v6;
        return 0;
    }
    return -1;
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
        snprintf(out, outlen, "[%s]:%u", host, (unsigned)ntohs(v6->sin6_port));
    } else {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
        snprintf(out, outlen, "%s:%u", host, (unsigned)ntohs(v4->sin_port));
    }
}

struct etl_metrics_server {
    struct MHD_Daemon *daemon;
};

struct etl_metrics_server *etl_metrics_server_start(struct etl_metrics *m, const char *addr,
                                                    char *bound, size_t boundlen, char *err,
                                                    size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (parse_addr(addr, &ss, &sslen) != 0) {
        return fail(err, errlen,
                    "'%s' is not a numeric address:port such as 127.0.0.1:9108, "
                    "0.0.0.0:9108 or [::1]:9108",
                    addr);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, 64) != 0) {
        int e = errno;
        close(fd);
        return fail(err, errlen, "cannot listen on %s: %s", addr, strerror(e));
    }
    sslen = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sslen);

    /* The server thread inherits this thread's signal mask: keep SIGTERM/SIGINT/SIGHUP for the
     * main thread, whose sleeps they cut short. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGPIPE);
    struct etl_metrics_server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        close(fd);
        return fail(err, errlen, "out of memory");
    }
    pthread_sigmask(SIG_BLOCK, &block, &old);
    s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, m,
                                 MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned int)32,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (s->daemon == NULL) {
        free(s);
        if (fcntl(fd, F_GETFD) != -1)
            close(fd);
        return fail(err, errlen, "cannot start the metrics server on %s (libmicrohttpd)", addr);
    }
    format_addr(&ss, bound, boundlen);
    return s;
}

void etl_metrics_server_stop(struct etl_metrics_server *s)
{
    if (s == NULL)
        return;
    MHD_stop_daemon(s->daemon); /* joins the server thread; closes the socket */
    free(s);
}
