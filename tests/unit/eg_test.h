/*
 * exchange_guard unit tests: a tiny test framework without dependencies.
 *
 *   CHECK(cond)                 cond is true
 *   CHECK_INT(a, b)             two integers are equal
 *   CHECK_STR(s, expected)      s (eg_str_t or char *) equals a C string
 *   CHECK_MEM(s, data, len)     an eg_str_t holds exactly these bytes
 *
 * A failing check prints "file:line: " and the values.  EG_RUN(fn) runs a
 * group of checks in a child process, so that a crash or a sanitizer
 * report fails that group instead of ending the program.  eg_test_done()
 * prints the one summary line "N passed, N failed" and returns the exit
 * status: non-zero if anything failed.
 *
 * The test arena is the "request pool" of the tests: every allocation is
 * a malloc() of its own, so AddressSanitizer sees an engine write past
 * the end of any buffer the engine asked for.
 */

#ifndef EG_TEST_H
#define EG_TEST_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eg_engine.h"


#define EG_UNUSED  __attribute__((unused))


static unsigned long  eg_test_passed EG_UNUSED;
static unsigned long  eg_test_failed EG_UNUSED;


#define CHECK(cond)                                                           \
    eg_test_check((cond) != 0, __FILE__, __LINE__, #cond)

#define CHECK_INT(a, b)                                                       \
    eg_test_check_int((long long) (a), (long long) (b), __FILE__, __LINE__, \
                      #a, #b)

#define CHECK_STR(s, expected)                                                \
    __extension__ _Generic((s),                                               \
                           eg_str_t: eg_test_check_str,                       \
                           default: eg_test_check_cstr)                       \
        ((s), (expected), __FILE__, __LINE__, #s)

#define CHECK_MEM(s, data, len)                                               \
    eg_test_check_mem((s), (const void *) (data), (len), __FILE__, __LINE__, \
                      #s)

#define EG_RUN(fn)  eg_test_run(#fn, fn, __FILE__, __LINE__)

/* an eg_str_t of a literal, embedded NUL bytes included */
#define EG_LIT(s)   eg_test_mem((s), sizeof(s) - 1)


typedef struct eg_test_chunk_s  eg_test_chunk_t;

struct eg_test_chunk_s {
    eg_test_chunk_t      *next;
    size_t                size;
};

/* keeps the memory after the header aligned as malloc() aligns it */
#define EG_TEST_CHUNK_HDR  32

typedef struct {
    eg_test_chunk_t      *chunks;
    size_t                nallocs;
    size_t                bytes;
    long                  fail_after;   /* allocations to grant; -1: all */
    eg_alloc_t            alloc;
} eg_test_arena_t;


static void eg_test_pass(void) EG_UNUSED;
static void eg_test_fail(const char *file, int line, const char *fmt, ...)
    EG_UNUSED __attribute__((format(printf, 3, 4)));
static int eg_test_check(int ok, const char *file, int line,
    const char *expr) EG_UNUSED;
static int eg_test_check_int(long long a, long long b, const char *file,
    int line, const char *ea, const char *eb) EG_UNUSED;
static int eg_test_check_str(eg_str_t s, const char *expected,
    const char *file, int line, const char *expr) EG_UNUSED;
static int eg_test_check_cstr(const char *s, const char *expected,
    const char *file, int line, const char *expr) EG_UNUSED;
static int eg_test_check_mem(eg_str_t s, const void *data, size_t len,
    const char *file, int line, const char *expr) EG_UNUSED;
static void eg_test_print(const void *data, size_t len) EG_UNUSED;
static eg_str_t eg_test_s(const char *s) EG_UNUSED;
static eg_str_t eg_test_mem(const void *data, size_t len) EG_UNUSED;
static void eg_test_run(const char *name, void (*fn)(void),
    const char *file, int line) EG_UNUSED;
static int eg_test_done(void) EG_UNUSED;
static void *eg_test_arena_alloc(void *ctx, size_t size) EG_UNUSED;
static eg_alloc_t *eg_test_arena_init(eg_test_arena_t *a) EG_UNUSED;
static void eg_test_arena_free(eg_test_arena_t *a) EG_UNUSED;


static void
eg_test_pass(void)
{
    eg_test_passed++;
}


static void
eg_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list  args;

    eg_test_failed++;

    printf("%s:%d: FAIL: ", file, line);
    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);
    printf("\n");
    fflush(stdout);
}


static int
eg_test_check(int ok, const char *file, int line, const char *expr)
{
    if (ok) {
        eg_test_pass();
        return 1;
    }

    eg_test_fail(file, line, "CHECK(%s)", expr);
    return 0;
}


static int
eg_test_check_int(long long a, long long b, const char *file, int line,
    const char *ea, const char *eb)
{
    if (a == b) {
        eg_test_pass();
        return 1;
    }

    eg_test_fail(file, line, "%s == %s: got %lld, expected %lld", ea, eb,
                 a, b);
    return 0;
}


/* the bytes, C-escaped, at most 300 of them */

static void
eg_test_print(const void *data, size_t len)
{
    size_t               i, n;
    const unsigned char  *p = data;

    if (p == NULL) {
        printf("(null)");
        return;
    }

    n = len > 300 ? 300 : len;

    putchar('"');

    for (i = 0; i < n; i++) {
        if (p[i] == '"' || p[i] == '\\') {
            printf("\\%c", p[i]);

        } else if (p[i] < 0x20 || p[i] >= 0x7f) {
            printf("\\x%02x", p[i]);

        } else {
            putchar(p[i]);
        }
    }

    putchar('"');

    if (n < len) {
        printf("... (%zu bytes)", len);
    }
}


static int
eg_test_check_mem(eg_str_t s, const void *data, size_t len,
    const char *file, int line, const char *expr)
{
    if (s.len == len && (len == 0 || (s.data != NULL
                                      && memcmp(s.data, data, len) == 0)))
    {
        eg_test_pass();
        return 1;
    }

    eg_test_failed++;

    printf("%s:%d: FAIL: %s: got ", file, line, expr);
    eg_test_print(s.data, s.len);
    printf(" (len %zu), expected ", s.len);
    eg_test_print(data, len);
    printf(" (len %zu)\n", len);
    fflush(stdout);

    return 0;
}


static int
eg_test_check_str(eg_str_t s, const char *expected, const char *file,
    int line, const char *expr)
{
    return eg_test_check_mem(s, expected, strlen(expected), file, line,
                             expr);
}


static int
eg_test_check_cstr(const char *s, const char *expected, const char *file,
    int line, const char *expr)
{
    eg_str_t  v;

    v.data = (const unsigned char *) s;
    v.len = s ? strlen(s) : 0;

    if (s == NULL) {
        eg_test_fail(file, line, "%s: got (null), expected \"%s\"", expr,
                     expected);
        return 0;
    }

    return eg_test_check_mem(v, expected, strlen(expected), file, line,
                             expr);
}


static eg_str_t
eg_test_s(const char *s)
{
    eg_str_t  r;

    r.data = (const unsigned char *) s;
    r.len = strlen(s);
    return r;
}


static eg_str_t
eg_test_mem(const void *data, size_t len)
{
    eg_str_t  r;

    r.data = data;
    r.len = len;
    return r;
}


/*
 * Runs fn in a child.  The child sends its counters back through a pipe
 * and exits normally, so LeakSanitizer still checks it; a child that dies,
 * or exits with a sanitizer's status, is one more failure.
 */

static void
eg_test_run(const char *name, void (*fn)(void), const char *file, int line)
{
    int            fd[2], status;
    pid_t          pid;
    size_t         got;
    ssize_t        n;
    unsigned long  counts[2];

    fflush(stdout);
    fflush(stderr);

    if (pipe(fd) != 0) {
        fn();
        return;
    }

    pid = fork();

    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        fn();
        return;
    }

    if (pid == 0) {
        close(fd[0]);
        eg_test_passed = 0;
        eg_test_failed = 0;

        fn();

        counts[0] = eg_test_passed;
        counts[1] = eg_test_failed;
        if (write(fd[1], counts, sizeof(counts)) != sizeof(counts)) {
            _exit(3);
        }
        close(fd[1]);
        fflush(stdout);
        exit(0);
    }

    close(fd[1]);

    got = 0;
    while (got < sizeof(counts)) {
        n = read(fd[0], (char *) counts + got, sizeof(counts) - got);
        if (n <= 0) {
            break;
        }
        got += n;
    }

    close(fd[0]);

    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            status = -1;
            break;
        }
    }

    if (got == sizeof(counts)) {
        eg_test_passed += counts[0];
        eg_test_failed += counts[1];
    }

    if (got != sizeof(counts) || !WIFEXITED(status)
        || WEXITSTATUS(status) != 0)
    {
        if (WIFSIGNALED(status)) {
            eg_test_fail(file, line, "%s: killed by signal %d", name,
                         WTERMSIG(status));

        } else {
            eg_test_fail(file, line, "%s: crashed or leaked (exit status "
                         "%d, sanitizer report above)", name,
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        }
    }
}


static int
eg_test_done(void)
{
    printf("%lu passed, %lu failed\n", eg_test_passed, eg_test_failed);
    fflush(stdout);

    return eg_test_failed ? 1 : 0;
}


static void *
eg_test_arena_alloc(void *ctx, size_t size)
{
    unsigned char    *p;
    eg_test_chunk_t  *c;
    eg_test_arena_t  *a = ctx;

    if (a->fail_after >= 0) {
        if (a->fail_after == 0) {
            return NULL;
        }
        a->fail_after--;
    }

    p = malloc(EG_TEST_CHUNK_HDR + size);
    if (p == NULL) {
        return NULL;
    }

    c = (eg_test_chunk_t *) p;
    c->next = a->chunks;
    c->size = size;
    a->chunks = c;
    a->nallocs++;
    a->bytes += size;

    return p + EG_TEST_CHUNK_HDR;
}


static eg_alloc_t *
eg_test_arena_init(eg_test_arena_t *a)
{
    memset(a, 0, sizeof(eg_test_arena_t));
    a->fail_after = -1;
    a->alloc.alloc = eg_test_arena_alloc;
    a->alloc.ctx = a;

    return &a->alloc;
}


static void
eg_test_arena_free(eg_test_arena_t *a)
{
    eg_test_chunk_t  *c, *next;

    for (c = a->chunks; c; c = next) {
        next = c->next;
        free(c);
    }

    a->chunks = NULL;
    a->nallocs = 0;
    a->bytes = 0;
}

#endif /* EG_TEST_H */
