/* metrics_process.c: the standard Prometheus process metrics of etlua.metrics (the names and
 * meanings the official client libraries export), read from the kernel when /metrics is
 * scraped, on the server thread: CPU time (getrusage, every thread of the process), resident and
 * virtual memory (/proc/self/statm), open file descriptors (/proc/self/fd) and their limit
 * (RLIMIT_NOFILE), the start time (/proc/self/stat + /proc/stat). Because they are read at scrape
 * time and not reported by the Lua loop, they move while the loop is busy in a long commit.
 * Without /proc (not Linux, or not mounted) the samples read from it are unknown (< 0) and the
 * exposition (metrics_text.c) leaves them out. These files are read with stdio: each is one line
 * of numbers in a format the kernel documents (proc(5)). */
#include "etlua/metrics_internal.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double seconds_of(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

static void read_statm(struct etl_process_stats *s)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return;
    unsigned long size, resident;
    long page = sysconf(_SC_PAGESIZE);
    if (fscanf(f, "%lu %lu", &size, &resident) == 2 && page > 0) {
        s->virtual_bytes = (double)size * (double)page;
        s->resident_bytes = (double)resident * (double)page;
    }
    fclose(f);
}

static void count_fds(struct etl_process_stats *s)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return;
    double n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    s->open_fds = n > 0 ? n - 1 : 0; /* not the directory's own descriptor */
}

void etl_process_read(struct etl_process_stats *s)
{
    s->cpu_seconds = s->resident_bytes = s->virtual_bytes = s->open_fds = s->max_fds = -1;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        s->cpu_seconds = seconds_of(ru.ru_utime) + seconds_of(ru.ru_stime);
    read_statm(s);
    count_fds(s);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        s->max_fds = (double)rl.rlim_cur;
}

/* Field 22 of /proc/self/stat (start time, clock ticks after boot). The second field, the
 * command name in parentheses, may itself hold blanks and parentheses: fields are counted from
 * the last ')'. Returns -1 when unknown. */
static double start_ticks(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL)
        return -1;
    char line[1024];
    double ticks = -1;
    if (fgets(line, sizeof line, f)) {
        char *p = strrchr(line, ')');
        unsigned long long v;
        /* after ')': field 3 (state) .. field 21 are skipped, field 22 is read */
        if (p &&
            sscanf(
                p + 1,
                "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
                &v) == 1)
            ticks = (double)v;
    }
    fclose(f);
    return ticks;
}

static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return -1;
    char line[256];
    double bt = -1;
    unsigned long long v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "btime %llu", &v) == 1) {
            bt = (double)v;
            break;
        }
    }
    fclose(f);
    return bt;
}

double etl_process_start_time(void)
{
    double ticks = start_ticks(), bt = boot_time();
    long hz = sysconf(_SC_CLK_TCK);
    if (ticks >= 0 && bt >= 0 && hz > 0)
        return bt + ticks / (double)hz;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
