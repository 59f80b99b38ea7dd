/* http_proxy.h: the proxy of an SQS endpoint, read from the environment once (src/http_proxy.c). */
#ifndef ETLUA_HTTP_PROXY_H
#define ETLUA_HTTP_PROXY_H

/* Sets *proxy and *noproxy (malloc'd; "" when unset) for a URL of the given scheme (https: 1),
 * by libcurl's own rules. Returns 0, or -1 without memory (both then NULL). */
int etl_http_proxy_from_env(int https, char **proxy, char **noproxy);

#endif
