/* http_sockets.c: the sockets the SQS transport (src/http.c) waits on, through libcurl's socket
 * interface on Linux's epoll (Linux is the only target: epoll is Linux's own). curl names the
 * sockets to watch (on_socket) and they are registered with the kernel once, changed only when
 * curl's wish changes (a connection's socket stays registered between its requests: struct
 * sock); one epoll_wait hands back only the sockets that are ready and curl is told of those
 * (etl_http_sockets_watch), so a wake-up costs what is ready, not the 64-80 sockets in flight
 * that poll() would look at every time. Knows nothing of requests. */
#include "etlua/http_sockets.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* A socket as the epoll set knows it. A connection's socket (opened and closed through
 * open_socket / close_socket) stays in the set while curl keeps the connection idle between two
 * requests ("parked": not watched); the next request on it, which wants the same events, then
 * costs no system call, where deleting and adding it again would cost two a request. A parked
 * socket that turns ready (the server closed the idle connection) leaves the set then. Other
 * sockets curl may name (a resolver's) leave the set when curl stops watching them, as curl
 * closes them without telling. */
struct sock {
    unsigned char ours;    /* opened by open_socket: its close goes through close_socket */
    unsigned char in_set;  /* registered in the epoll set, for events */
    unsigned char watched; /* curl wants it watched (not parked) */
    unsigned char what;    /* curl's CURL_POLL_* wish while watched */
    uint32_t events;
};

struct etl_http_sockets {
    CURLM *multi;
    int epfd;           /* the epoll set of the sockets curl wants watched (on_socket) */
    struct sock *socks; /* what the set holds for each socket number, socks[fd] */
    size_t nsocks;
};

/* The entry of socket fd, the table grown to hold it; NULL when memory runs out. */
static struct sock *sock_of(struct etl_http_sockets *h, curl_socket_t fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= h->nsocks) {
        size_t n = h->nsocks ? h->nsocks : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct sock *p = realloc(h->socks, n * sizeof *p);
        if (!p)
            return NULL;
        memset(p + h->nsocks, 0, (n - h->nsocks) * sizeof *p);
        h->socks = p;
        h->nsocks = n;
    }
    return &h->socks[fd];
}

/* CURLMOPT_SOCKETFUNCTION: curl says which sockets to watch for what (etl_http_sockets_watch waits
 * on them all in one epoll_wait and tells curl which are ready, so curl never polls a transfer's socket
 * itself). The set changes only when the events wanted do (see struct sock). */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *ud, void *socketp)
{
    (void)easy;
    (void)socketp;
    struct etl_http_sockets *h = ud;
    struct sock *k = sock_of(h, fd);
    if (!k)
        return -1;
    if (what == CURL_POLL_REMOVE) {
        k->watched = 0;
        if (!k->ours && k->in_set) {
            epoll_ctl(h->epfd, EPOLL_CTL_DEL, fd, NULL); /* fails only for a socket gone */
            k->in_set = 0;
        }
        return 0;
    }
    uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    k->watched = 1;
    k->what = (unsigned char)what;
    if (k->in_set && k->events == events)
        return 0;
    struct epoll_event ev = {.events = events, .data.fd = fd};
    int op = k->in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(h->epfd, op, fd, &ev) != 0) {
        /* a socket closed behind the set's back and its number given to a new one, or one the
         * kernel dropped from the set as it closed: the other operation */
        op = errno == EEXIST ? EPOLL_CTL_MOD : errno == ENOENT ? EPOLL_CTL_ADD : -1;
        if (op < 0 || epoll_ctl(h->epfd, op, fd, &ev) != 0)
            return -1;
    }
    k->in_set = 1;
    k->events = events;
    return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION: a connection's socket, as curl would open it (close-on-exec
 * added), marked as one whose close comes through close_socket. */
static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)purpose;
    struct etl_http_sockets *h = ud;
    curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    struct sock *k = fd >= 0 ? sock_of(h, fd) : NULL;
    if (fd >= 0 && !k) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    if (k)
        *k = (struct sock){.ours = 1};
    return fd;
}

/* CURLOPT_CLOSESOCKETFUNCTION: the socket leaves the epoll set, then closes. */
static int close_socket(void *ud, curl_socket_t fd)
{
    struct etl_http_sockets *h = ud;
    if (fd >= 0 && (size_t)fd < h->nsocks) {
        if (h->socks[fd].in_set)
            epoll_ctl(h->epfd, EPOLL_CTL_DEL, fd, NULL);
        h->socks[fd] = (struct sock){0};
    }
    return close(fd);
}

/* Waits up to wait_ms for any socket curl watches to be ready (one epoll_wait for them all,
 * which returns only the ready ones), tells curl which are ready and runs its due timers (a
 * request just added is due at once). curl_multi_perform would instead poll each transfer's
 * socket on its own, every call: with 64 long polls in flight, 64 system calls a round. The
 * events are copied out of the kernel before curl acts on any, so curl may change the set
 * meanwhile: an event of a socket that left the set since is dropped, one of a parked socket
 * takes it out of the set. */
void etl_http_sockets_watch(struct etl_http_sockets *h, long wait_ms)
{
    int running;
    struct epoll_event ev[64];
    int n = epoll_wait(h->epfd, ev, 64, (int)wait_ms);
    for (int i = 0; i < n; i++) {
        uint32_t e = ev[i].events;
        curl_socket_t fd = ev[i].data.fd;
        struct sock *k = (size_t)fd < h->nsocks ? &h->socks[fd] : NULL;
        if (!k || !k->in_set)
            continue;      /* left the set after this wait returned */
        if (!k->watched) { /* parked and ready: the server closed it, or said what it should not */
            epoll_ctl(h->epfd, EPOLL_CTL_DEL, fd, NULL);
            k->in_set = 0;
            continue;
        }
        int what = k->what;
        int act = (e & EPOLLIN ? CURL_CSELECT_IN : 0) | (e & EPOLLOUT ? CURL_CSELECT_OUT : 0);
        if (e & (EPOLLERR | EPOLLHUP)) /* curl tries what it wanted and says why */
            act |= CURL_CSELECT_ERR | (what & CURL_POLL_IN ? CURL_CSELECT_IN : 0) |
                   (what & CURL_POLL_OUT ? CURL_CSELECT_OUT : 0);
        curl_multi_socket_action(h->multi, fd, act, &running);
    }
    long t = -1;
    for (int round = 0; round < 4 && curl_multi_timeout(h->multi, &t) == CURLM_OK && t == 0;
         round++)
        curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

struct etl_http_sockets *etl_http_sockets_new(CURLM *multi)
{
    struct etl_http_sockets *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->multi = multi;
    h->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (h->epfd < 0) {
        free(h);
        return NULL;
    }
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, h);
    return h;
}

void etl_http_sockets_adopt(struct etl_http_sockets *h, CURL *easy)
{
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, h);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, h);
}

void etl_http_sockets_free(struct etl_http_sockets *h)
{
    if (!h)
        return;
    close(h->epfd);
    free(h->socks);
    free(h);
}
