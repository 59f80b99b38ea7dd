/* http_sockets.h: the set of sockets the SQS transport (src/http.c) waits on: libcurl's socket
 * interface on Linux's epoll (src/http_sockets.c). Internal to the transport. */
#ifndef ETLUA_HTTP_SOCKETS_H
#define ETLUA_HTTP_SOCKETS_H

#include <curl/curl.h>

struct etl_http_sockets;

/* A set for the multi handle, registered as its CURLMOPT_SOCKETFUNCTION; NULL when memory or
 * epoll_create1 fails. */
struct etl_http_sockets *etl_http_sockets_new(CURLM *multi);

/* Makes the easy handle's connections open and close through the set
 * (CURLOPT_OPENSOCKETFUNCTION / CLOSESOCKETFUNCTION), so a connection's socket stays registered
 * between its requests and leaves the set before it closes. */
void etl_http_sockets_adopt(struct etl_http_sockets *set, CURL *easy);

/* Waits up to wait_ms (0: not at all) for any socket curl watches to be ready, tells curl which
 * are, and runs its due timers (a request just added is due at once). */
void etl_http_sockets_watch(struct etl_http_sockets *set, long wait_ms);

/* Frees the set (NULL is fine): after curl_multi_cleanup and every easy handle's cleanup, which
 * may still tell it of closed sockets. */
void etl_http_sockets_free(struct etl_http_sockets *set);

#endif
