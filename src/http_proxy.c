/* http_proxy.c: the proxy for a URL of one scheme and the hosts that bypass it, read from the
 * environment by the rules libcurl itself applies when no proxy is set (lib/url.c, 7.88:
 * detect_proxy and the no_proxy lookup): <scheme>_proxy, then its uppercase form except
 * HTTP_PROXY (never read: in a CGI program it comes from a request's Proxy header), then
 * all_proxy, then ALL_PROXY; the bypass list from no_proxy, then NO_PROXY; an empty variable
 * counts as unset. "" when unset, which tells curl "no proxy" and "no bypass list" without
 * reading the environment again. src/http.c asks once per URL: left to curl, the five variables
 * were read (and copied) at every request. curl still matches the host against the bypass list
 * and parses the proxy (scheme, port, credentials) itself. */
#include "etlua/http_proxy.h"

#include <stdlib.h>
#include <string.h>

static const char *env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL; /* empty counts as unset, as in curl_getenv */
}

int etl_http_proxy_from_env(int https, char **proxy, char **noproxy)
{
    const char *p = https ? env_set("https_proxy") : env_set("http_proxy");
    if (!p && https)
        p = env_set("HTTPS_PROXY");
    if (!p)
        p = env_set("all_proxy");
    if (!p)
        p = env_set("ALL_PROXY");
    const char *n = env_set("no_proxy");
    if (!n)
        n = env_set("NO_PROXY");
    *proxy = strdup(p ? p : "");
    *noproxy = strdup(n ? n : "");
    if (*proxy && *noproxy)
        return 0;
    free(*proxy);
    free(*noproxy);
    *proxy = *noproxy = NULL;
    return -1;
}
