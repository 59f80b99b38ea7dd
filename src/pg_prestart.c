/* pg_prestart.c: a Postgres connection started early, in a thread of its own, while the main
 * thread goes on loading modules and the script (pg.prestart); the first pg.connect with the
 * same connection string takes it instead of connecting (etl_pg_prestarted). A connection is
 * three round trips and SCRAM's key derivation on both sides (~10-15 ms on a local server); the
 * modules, the script and the configuration take about as long before the runner connects, and
 * the host has a second CPU, so every run starts that much sooner. The connection is made by the
 * very call pg.connect makes (etl_pg_connectdb): the same keywords, connect_timeout and every
 * libpq rule; its outcome (a failure included) is what pg.connect reports, by the same code.
 *
 * Only in the executable (the registry's ETL_HOST_EXECUTABLE_KEY, set by src/host.c): etlua.so
 * under plain lua5.4 may be unloaded at lua_close while a thread runs its code. One at a time.
 * A connection nobody took (a run that stopped on a user error before connecting) is closed at
 * lua_close; one still connecting then is waited for up to ABANDON_WAIT_MS, then left to finish
 * and close itself (an unreachable host: the exit does not wait for libpq's timeout). The
 * thread blocks every signal: SIGTERM and the rest go to the main thread as before. The
 * connection string (it may hold a password) is wiped before it is freed. */
#include "etlua/pg_internal.h"

#include "etlua/host.h"

#include <errno.h>
#include <lauxlib.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ABANDON_WAIT_MS 100

enum { PRE_NONE, PRE_RUNNING, PRE_DONE, PRE_ABANDONED };

static pthread_mutex_t pre_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pre_cv = PTHREAD_COND_INITIALIZER; /* signalled when the thread is done */
static int pre_state;                                    /* under pre_mu */
static pthread_t pre_thread;
static char *pre_conninfo; /* malloc'd copy, wiped before free */
static PGconn *pre_conn;   /* the thread's result, once PRE_DONE */

static void etl_pg_prestart_free_conninfo(void)
{
    if (pre_conninfo != NULL) {
        volatile char *p = pre_conninfo;
        while (*p)
            *p++ = 0;
        free(pre_conninfo);
        pre_conninfo = NULL;
    }
}

static void *etl_pg_prestart_run(void *arg)
{
    (void)arg;
    PGconn *conn = etl_pg_connectdb(pre_conninfo); /* pre_conninfo is not touched meanwhile */
    pthread_mutex_lock(&pre_mu);
    if (pre_state == PRE_ABANDONED) { /* detached: nobody will take it */
        PQfinish(conn);
        etl_pg_prestart_free_conninfo();
        pre_state = PRE_NONE;
    } else {
        pre_conn = conn;
        pre_state = PRE_DONE;
        pthread_cond_broadcast(&pre_cv);
    }
    pthread_mutex_unlock(&pre_mu);
    return NULL;
}

/* Waits for the thread (pre_mu held, state PRE_RUNNING) up to ms milliseconds; returns whether
 * it is done. ms < 0: without limit. */
static int etl_pg_prestart_wait(int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc = 0;
    while (pre_state == PRE_RUNNING && rc != ETIMEDOUT)
        rc = ms < 0 ? pthread_cond_wait(&pre_cv, &pre_mu)
                    : pthread_cond_timedwait(&pre_cv, &pre_mu, &until);
    return pre_state == PRE_DONE;
}

/* Gives up the prestarted connection, if any (pre_mu held): closed once done, waited for up to
 * wait_ms, else left to close itself. */
static void etl_pg_prestart_drop(int wait_ms)
{
    if (pre_state == PRE_NONE)
        return;
    if (pre_state == PRE_RUNNING && !etl_pg_prestart_wait(wait_ms)) {
        pre_state = PRE_ABANDONED;
        pthread_detach(pre_thread);
        return;
    }
    pthread_join(pre_thread, NULL); /* done: returns at once */
    PQfinish(pre_conn);
    pre_conn = NULL;
    etl_pg_prestart_free_conninfo();
    pre_state = PRE_NONE;
}

PGconn *etl_pg_prestarted(const char *conninfo, int *taken)
{
    PGconn *conn = NULL;
    *taken = 0;
    pthread_mutex_lock(&pre_mu);
    if (pre_state == PRE_RUNNING || pre_state == PRE_DONE) {
        if (strcmp(pre_conninfo, conninfo) == 0) {
            etl_pg_prestart_wait(-1);
            pthread_join(pre_thread, NULL);
            conn = pre_conn;
            pre_conn = NULL;
            etl_pg_prestart_free_conninfo();
            pre_state = PRE_NONE;
            *taken = 1;
        } else {
            etl_pg_prestart_drop(ABANDON_WAIT_MS); /* another server: not this call's */
        }
    }
    pthread_mutex_unlock(&pre_mu);
    return conn;
}

/* __gc of the registry's sentinel: a prestarted connection nobody took is given up. */
static int etl_pg_prestart_gc(lua_State *L)
{
    (void)L;
    pthread_mutex_lock(&pre_mu);
    etl_pg_prestart_drop(ABANDON_WAIT_MS);
    pthread_mutex_unlock(&pre_mu);
    return 0;
}

/* OpenSSL's one-time set-up, done by this (main) thread while the connection's thread waits on
 * the server's first answers: libpq's SCRAM asks RAND_status for its nonce (the library's
 * initialisation, its configuration file, the default provider, the random generator's seeding)
 * and fetches SHA-256 for its HMACs, each the first time in the process; in the connection's
 * thread that was ~26% of its CPU samples (perf), between the authentication request and the
 * client's first message. The main thread waits for the connection later anyway (its masks use
 * libcrypto): the same work, off the connection's path. Either thread may come first: OpenSSL's
 * initialisation runs once, under its own lock. */
static void etl_pg_prestart_warm_crypto(void)
{
    (void)RAND_status();
    EVP_MD_free(EVP_MD_fetch(NULL, "SHA256", NULL));
}

/* pg.prestart(conninfo) -> true (the connection is being made) | false (not in the executable,
 * or one is started already, or no thread) */
int etl_pg_prestart(lua_State *L)
{
    const char *conninfo = luaL_checkstring(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, ETL_HOST_EXECUTABLE_KEY);
    int executable = lua_toboolean(L, -1);
    lua_pop(L, 1);
    pthread_mutex_lock(&pre_mu);
    int started = 0;
    if (executable && pre_state == PRE_NONE && (pre_conninfo = strdup(conninfo)) != NULL) {
        started = etl_host_thread_start(&pre_thread, etl_pg_prestart_run, NULL) == 0;
        if (started)
            pre_state = PRE_RUNNING;
        else
            etl_pg_prestart_free_conninfo();
    }
    pthread_mutex_unlock(&pre_mu);
    if (started) {
        etl_pg_prestart_warm_crypto();
        etl_host_at_close(L, "etlua.pg.prestart", etl_pg_prestart_gc);
    }
    lua_pushboolean(L, started);
    return 1;
}
