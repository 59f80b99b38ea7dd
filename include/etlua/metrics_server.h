/* metrics_server.h: the HTTP server of etlua.metrics (src/metrics_server.c, libmicrohttpd on
 * its own thread): /metrics (the registry's text exposition), /healthz, /readyz (503 until the
 * registry is ready). It reads the registry under the registry's lock and never a Lua state. */
#ifndef ETLUA_METRICS_SERVER_H
#define ETLUA_METRICS_SERVER_H

#include "etlua/metrics.h"

#include <stddef.h>

struct etl_metrics_server;

/* Starts a server for registry m on addr: "IPv4:port" or "[IPv6]:port", numeric, port 0..65535
 * (0: the kernel picks one). Binds exactly that address. Returns the server and writes the bound
 * address to bound[boundlen]; or NULL with a message in err[errlen] (unparsable address, bind
 * failure with the system's reason, libmicrohttpd failure). m must outlive the server. */
struct etl_metrics_server *etl_metrics_server_start(struct etl_metrics *m, const char *addr,
                                                    char *bound, size_t boundlen, char *err,
                                                    size_t errlen);

/* Stops the server (waits for its thread, closes the socket) and frees it. NULL is a no-op. */
void etl_metrics_server_stop(struct etl_metrics_server *s);

#endif
