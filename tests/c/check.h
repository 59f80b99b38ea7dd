/* check.h: the checks shared by the C unit tests (tests/c/test_*.c). Header only: each test is
 * one program, so the failure counter and the helpers are static to it.
 *
 *   CHECK(cond)                  on failure prints "file:line: cond"
 *   CHECK(cond, fmt, ...)        on failure prints "file:line: <printf message>"
 *   CHECK_STR_EQ(got, want)      strcmp equality (a NULL got fails), both strings printed
 *   check_fail_at(file, line, fmt, ...)  a failure found by a helper of the test itself
 *   return CHECK_DONE("test_x"); prints "test_x: ok" (stdout) or "test_x: N failure(s)"
 *                                (stderr) and gives main's exit status (0 or 1)
 *
 * A failed check counts and reports, then the test goes on: every failure is seen in one run.
 * Failure reports go to stderr. */
#ifndef ETLUA_TESTS_CHECK_H
#define ETLUA_TESTS_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int check_failures;

__attribute__((format(printf, 3, 0))) static inline void check_vfail(const char *file, int line,
                                                                     const char *fmt, va_list ap)
{
    check_failures++;
    fprintf(stderr, "%s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

/* Count one failure and print "file:line: message" (a newline is added). */
__attribute__((format(printf, 3, 4))) static inline void check_fail_at(const char *file, int line,
                                                                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    check_vfail(file, line, fmt, ap);
    va_end(ap);
}

/* CHECK's reporter. fmt is " " followed by the caller's message, or only " " when CHECK was
 * given none, and then the condition's text is the message. (The space keeps the format string
 * of a bare CHECK(cond) from being empty, which -Wformat-zero-length refuses.) */
__attribute__((format(printf, 4, 5))) static inline void
check_fail_cond_(const char *file, int line, const char *cond, const char *fmt, ...)
{
    if (fmt[1] == '\0') {
        check_fail_at(file, line, "%s", cond);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    check_vfail(file, line, fmt + 1, ap);
    va_end(ap);
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            check_fail_cond_(__FILE__, __LINE__, #cond, " " __VA_ARGS__);                          \
    } while (0)

#define CHECK_STR_EQ(got, want)                                                                    \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if (!g_ || strcmp(g_, w_) != 0)                                                            \
            check_fail_at(__FILE__, __LINE__, "%s differs\n  got:  %s\n  want: %s", #got,          \
                          g_ ? g_ : "(null)", w_);                                                 \
    } while (0)

static inline int check_done(const char *name)
{
    if (check_failures) {
        fprintf(stderr, "%s: %d failure(s)\n", name, check_failures);
        return 1;
    }
    printf("%s: ok\n", name);
    return 0;
}

#define CHECK_DONE(name) check_done(name)

#endif
