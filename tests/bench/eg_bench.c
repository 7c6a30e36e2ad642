/*
 * eg-bench: engine-level micro-benchmark of exchange_guard.
 *
 *   eg-bench --rules GLOB [--rules GLOB ...] [--min-ms MS] [--repeat R]
 *            corpus FILE.http ...
 *       ns per request over every record of the files, evaluated as nginx
 *       does (headers first; the body only when a rule asks for it and
 *       nothing refused the request already).  Prints
 *       "corpus <records> <ns/request> <blocked>".
 *
 *   eg-bench --rules GLOB ... --passes N cgcorpus FILE.http ...
 *       N passes over the records and nothing else, for callgrind:
 *       valgrind --tool=callgrind --collect-atstart=no
 *                --toggle-collect=bench_pass eg-bench ... cgcorpus ...
 *       instructions per request = Ir / (N * records).  Prints
 *       "cgcorpus <records> <passes>".
 *
 *   eg-bench --rules GLOB ... growth KIND SIZE[,SIZE...]
 *       ns per evaluation of one synthetic benign request that grows with
 *       SIZE; KIND is
 *         cookie-bytes   a Cookie header of SIZE bytes (a real OWA cookie
 *                        jar repeated)
 *         cookie-count   a Cookie header of SIZE cookies (same jar)
 *         uri            a request-target of SIZE bytes, half path, half
 *                        query
 *         json           POST /ecp/DDI/DDIService.svc/SetObject?schema=
 *                        OABVirtualDirectory with a JSON body of SIZE
 *                        bytes, body already read
 *       Prints "growth <kind> <size> <ns> <action> <limit>" per size.
 *       max_cookies is 100000 and max_header_bytes 1 GB, so no limit cuts
 *       the work short (the line says so if one did).
 *
 *   eg-bench --rules GLOB ... --passes N cgrules KIND COUNT[,COUNT...]
 *            FILE.http ...
 *       under valgrind --tool=callgrind: for each COUNT, the --rules files
 *       and COUNT generated rules of KIND, none of which the records
 *       match, then N passes over the records between
 *       CALLGRIND_ZERO_STATS and CALLGRIND_DUMP_STATS_AT, one dump per
 *       count.  KIND is what a site adds (rule_text()): header, path,
 *       user-agent, user-agent-regex, query, cookie, client.  Prints "cgrules <kind> <count> <N>
 *       <records>".
 *
 *   eg-bench --rules GLOB ... --passes N cggrowth KIND SIZE[,SIZE...]
 *       under valgrind --tool=callgrind: for each size, N evaluations
 *       between CALLGRIND_ZERO_STATS and CALLGRIND_DUMP_STATS_AT, one
 *       dump per size, in order.  Prints "cggrowth <kind> <size> <N>".
 *
 * Timing: each figure is the fastest of R runs (default 5), each run as
 * many evaluations as fill MS milliseconds (default 20).  Memory comes
 * from a bump arena reset after each request, as nginx's request pool.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eg_corpus.h"

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_DUMP_STATS_AT
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_DUMP_STATS_AT(s)
#endif


#define BENCH_MAX_RECORDS  4096
#define BENCH_MAX_GLOBS    16


/* ------------------------------------------------------------ arena */

typedef struct chunk_s  chunk_t;

struct chunk_s {
    chunk_t   *next;
};

static unsigned char  *arena_base;
static size_t          arena_size = 8u << 20;
static size_t          arena_used;
static chunk_t        *arena_big;


static void *
arena_alloc(void *ctx, size_t size)
{
    chunk_t  *c;
    void     *p;

    (void) ctx;
    size = (size + 15) & ~(size_t) 15;

    if (arena_used + size <= arena_size) {
        p = arena_base + arena_used;
        arena_used += size;
        return p;
    }

    c = malloc(sizeof(chunk_t) + 16 + size);
    if (c == NULL) {
        return NULL;
    }
    c->next = arena_big;
    arena_big = c;
    return (unsigned char *) c + 16;
}


static void
arena_reset(void)
{
    chunk_t  *next;

    arena_used = 0;
    while (arena_big) {
        next = arena_big->next;
        free(arena_big);
        arena_big = next;
    }
}


static const eg_alloc_t  bench_alloc = { arena_alloc, NULL };


/* ------------------------------------------------------------ parsing
 * (the record format of tests/corpus/README.md, as module/tools/eg_check.c
 * reads it) */

static eg_record_t  *records[BENCH_MAX_RECORDS];
static size_t        nrecords;


/* keep a copy of every record; the file's text stays (keep = 1) */

static int
keep_record(eg_record_t *rec, const char *file, void *data)
{
    eg_record_t  *copy;

    (void) file;
    (void) data;

    if (nrecords == BENCH_MAX_RECORDS) {
        fprintf(stderr, "eg-bench: more than %d records\n", BENCH_MAX_RECORDS);
        return -1;
    }

    copy = malloc(sizeof(eg_record_t));
    if (copy == NULL) {
        return -1;
    }

    memcpy(copy, rec, sizeof(eg_record_t));
    eg_record_fix(copy);
    records[nrecords++] = copy;
    return 0;
}


static int
load_file(const char *path)
{
    return eg_corpus_read(path, 1, keep_record, NULL);
}


/* ------------------------------------------------------------ evaluation */

static eg_action_e
eval_like_nginx(const eg_ruleset_t *rs, const eg_options_t *opts,
    eg_record_t *rec)
{
    eg_verdict_t  v;

    eg_eval_like_nginx(rs, opts, &bench_alloc, rec, &v);

    if (v.action != EG_BLOCK && v.limit != EG_LIMIT_NONE) {
        return EG_BLOCK;                /* exchange_guard_limit_action block */
    }
    return v.action;
}


static volatile unsigned  sink;

__attribute__((noinline)) void
bench_pass(const eg_ruleset_t *rs, const eg_options_t *opts)
{
    size_t  i;

    for (i = 0; i < nrecords; i++) {
        sink += eval_like_nginx(rs, opts, records[i]);
        arena_reset();
    }
}


static double
now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}


static int
cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}


static double  min_ms = 20;
static int     repeat = 5;


/* median over "repeat" runs of ns per call of fn, each run >= min_ms */

typedef void (*bench_fn_t)(void *data);

static double
measure(bench_fn_t fn, void *data)
{
    int       r;
    long      n, i;
    double    t0, t, runs[64];

    /* calibrate */
    n = 1;
    for ( ;; ) {
        t0 = now_ns();
        for (i = 0; i < n; i++) {
            fn(data);
        }
        t = now_ns() - t0;
        if (t >= min_ms * 1e6 / 4 || n >= (1L << 30)) {
            break;
        }
        n *= 2;
    }
    n = (long) (n * (min_ms * 1e6) / (t > 0 ? t : 1)) + 1;

    if (repeat > 64) {
        repeat = 64;
    }
    for (r = 0; r < repeat; r++) {
        t0 = now_ns();
        for (i = 0; i < n; i++) {
            fn(data);
        }
        runs[r] = (now_ns() - t0) / n;
    }

    /* the fastest run: on a shared machine the others measure the
       neighbours as well */
    qsort(runs, repeat, sizeof(double), cmp_double);
    return runs[0];
}


typedef struct {
    const eg_ruleset_t  *rs;
    const eg_options_t  *opts;
    eg_request_t        *req;
    eg_verdict_t         v;
} one_t;


static void
corpus_fn(void *data)
{
    one_t  *o = data;

    bench_pass(o->rs, o->opts);
}


static void
one_fn(void *data)
{
    one_t  *o = data;

    eg_eval(o->rs, o->req, o->opts, &bench_alloc, &o->v);
    arena_reset();
}


/* ------------------------------------------------------------ growth */

static const char  jar[] =
    "ClientId=5A3F9E0C7B1D4E2A8C6B0F9D3E1A7C4B; PrivateComputer=true; "
    "PBack=0; X-AnonResource=true; "
    "X-AnonResource-Backend=EX01.contoso.local~1942062522; "
    "cadata=0RX8k4Ze1bQnv2/Z1HwTfM7bAyvH7oxYyAxzC+Cz0sCg2kX7u7oUm4uGZl6wqFGm"
    "Yw5FKN8tD8bVv3r0JoNmVQjQK3d+0eP5vQ==; cadataTTL=NfDhBjVVbnZ/b+hEJwjytg==; "
    "cadataKey=qUqP5cyxm6YcTAhz05Hph5gvu9M=; "
    "cadataIV=bTM88YL1Vb8rqEtB6hd0xxE5Mqr+uT6v/0lMkDfNRbq3SBjv2eY8eSNmyK5M+PyO; "
    "cadataSig=WL3hB+av7sO3bXAL+Axn2Pgld+HdPfzZ6oUvJwFkB1Q=; "
    "X-BackEndCookie=S-1-5-21-2614113441-2271441562-2548396483-500=u56Lnp2ejJq"
    "ByM/KmMzMm8jSz8zKx9LLzsfM0p6Zz57SyZnLz8qax5vOmsbPgYHNz83L0s/N0s3Lq83Ozc/"
    "Fzc/Fz8w=; X-OWA-CANARY=6Ym1sXKk3EW0Zk8e2HF3jYaJ6dUNz9gIOx7cUXtdCv1L_GYz"
    "L8iFuV4XjQw-K5Ab1OmUZ5c8lN0.; "
    "RoutingKeyCookie=v2:lQ0X4F7dR1pYcS9bNqK2mE8wH3zJ6uTaV5oGiBfCxDy=; "
    "exchangecookie=2b1d7f0c9e4a4f5d8c3b6a1e0f9d2c7b; X-OWA-JS-PSD=1";


/* the jar's cookies, one by one */

static size_t
jar_cookies(eg_str_t *out, size_t max)
{
    size_t          n = 0;
    const unsigned char  *p = (const unsigned char *) jar, *e, *end;

    end = p + sizeof(jar) - 1;
    while (p < end && n < max) {
        e = memchr(p, ';', end - p);
        if (e == NULL) {
            e = end;
        }
        out[n].data = p;
        out[n].len = e - p;
        n++;
        if (e == end) {
            break;
        }
        p = e + 1;
        while (p < end && *p == ' ') {
            p++;
        }
    }
    return n;
}


typedef struct {
    unsigned char  *buf;
    size_t          len, cap;
} sbuf_t;


static void
sb_add(sbuf_t *b, const void *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->buf = realloc(b->buf, b->cap);
        if (b->buf == NULL) {
            fprintf(stderr, "eg-bench: out of memory\n");
            exit(2);
        }
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}


static void
sb_str(sbuf_t *b, const char *s)
{
    sb_add(b, s, strlen(s));
}


#define H(n, v)  { eg_string(n), eg_string(v) }

static eg_header_t  owa_headers[] = {
    H("Host", "mail.contoso.com"),
    H("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
      "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 "
      "Safari/537.36"),
    H("Accept", "*/*"),
    H("Accept-Language", "en-US,en;q=0.9"),
    H("Referer", "https://mail.contoso.com/owa/"),
    H("Cookie", "")                     /* filled in */
};

static eg_header_t  ecp_headers[] = {
    H("Host", "mail.contoso.com"),
    H("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
      "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 "
      "Safari/537.36"),
    H("Accept", "application/json, text/javascript, */*"),
    H("Content-Type", "application/json; charset=UTF-8"),
    H("X-Requested-With", "XMLHttpRequest"),
    H("Origin", "https://mail.contoso.com"),
    H("Referer", "https://mail.contoso.com/ecp/VDirMgmt/"
      "EditOABVirtualDirectory.aspx"),
    H("Cookie", "ClientId=5A3F9E0C7B1D4E2A8C6B0F9D3E1A7C4B; PBack=0; "
      "msExchEcpCanary=x9Qm1Zp2T0KJ7cV8wL3eYb4RnF5sH6gA0uD1iO2kM3jN4lP5qR6"
      "tS7vW8xY9zA0bC1dE2fG3hI4jK5lM6nO7pQ8.; "
      "X-BackEndCookie=S-1-5-21-2614113441-2271441562-2548396483-500=u56Lnp2"
      "ejJqByM/KmMzMm8jSz8zKx9LLzsfM0p6Zz57SyZnLz8qax5vOmsbPgYHNz83L0s/N0s3L"
      "q83Ozc/Fzc/Fz8w=")
};


static void
build_growth(const char *kind, size_t size, eg_request_t *req, sbuf_t *b)
{
    size_t     i, n, njar;
    eg_str_t   c[64];
    char       tmp[256];

    memset(req, 0, sizeof(eg_request_t));
    b->len = 0;
    req->method = (eg_str_t) eg_string("GET");
    req->target = (eg_str_t) eg_string("/owa/");
    req->headers = owa_headers;
    req->nheaders = sizeof(owa_headers) / sizeof(eg_header_t);
    req->client_addr = (eg_str_t) eg_string("192.0.2.10");
    req->body_state = EG_BODY_NONE;

    if (strcmp(kind, "cookie-bytes") == 0
        || strcmp(kind, "cookie-count") == 0)
    {
        njar = jar_cookies(c, 64);
        for (i = 0, n = 0; ; i++, n++) {
            if (kind[7] == 'b') {
                if (b->len + 2 + c[i % njar].len > size && b->len > 0) {
                    break;
                }
            } else if (n == size) {
                break;
            }
            if (b->len) {
                sb_str(b, "; ");
            }
            sb_add(b, c[i % njar].data, c[i % njar].len);
        }
        owa_headers[5].value.data = b->buf;
        owa_headers[5].value.len = b->len;
        return;
    }

    owa_headers[5].value = (eg_str_t) eg_string(
        "ClientId=5A3F9E0C7B1D4E2A8C6B0F9D3E1A7C4B; PrivateComputer=true; "
        "PBack=0; exchangecookie=2b1d7f0c9e4a4f5d8c3b6a1e0f9d2c7b");

    if (strcmp(kind, "uri") == 0) {
        /* /owa/ + "segments"... ? + "params"... : half path, half query */
        sb_str(b, "/owa/prem/15.2.1118.7/");
        for (i = 0; b->len < size / 2; i++) {
            snprintf(tmp, sizeof(tmp), "folder%%20%zu/", i);
            sb_str(b, tmp);
        }
        sb_str(b, "sprite1.mouse.png?");
        for (i = 0; b->len < size; i++) {
            snprintf(tmp, sizeof(tmp), "%sp%zu=v%%2F%zu%%2Bx+y",
                     i ? "&" : "", i, i);
            sb_str(b, tmp);
        }
        b->len = size;                  /* exact size; may cut a param */
        req->target.data = b->buf;
        req->target.len = b->len;
        return;
    }

    if (strcmp(kind, "json") == 0) {
        req->method = (eg_str_t) eg_string("POST");
        req->target = (eg_str_t) eg_string(
            "/ecp/DDI/DDIService.svc/SetObject?schema=OABVirtualDirectory"
            "&msExchEcpCanary=x9Qm1Zp2T0KJ7cV8wL3eYb4RnF5sH6gA0uD1iO2kM3j"
            "N4lP5qR6tS7vW8xY9zA0bC1dE2fG3hI4jK5lM6nO7pQ8.");
        req->headers = ecp_headers;
        req->nheaders = sizeof(ecp_headers) / sizeof(eg_header_t);
        sb_str(b, "{\"identity\":{\"__type\":\"Identity:ECP\","
               "\"DisplayName\":\"OAB (Default Web Site)\","
               "\"RawIdentity\":\"7e0b6e3c-1f2a-4d9e-b8c7-5a4f3e2d1c0b\"},"
               "\"properties\":{\"Parameters\":{\"__type\":"
               "\"JsonDictionaryOfanyType:#Microsoft.Exchange.Management."
               "ControlPanel\",\"ExternalUrl\":"
               "\"https:\\/\\/mail.contoso.com\\/OAB\","
               "\"InternalUrl\":\"https:\\/\\/ex01.contoso.local\\/OAB\"");
        for (i = 0; b->len + 120 < size; i++) {
            snprintf(tmp, sizeof(tmp), ",\"Property%zu\":\"https:\\/\\/"
                     "mail.contoso.com\\/OAB\\/%zu \\u00e9t\\u00e9 Default "
                     "Web Site\"", i, i);
            sb_str(b, tmp);
        }
        sb_str(b, "}}}");
        req->body.data = b->buf;
        req->body.len = b->len;
        req->body_state = EG_BODY_READ;
        return;
    }

    fprintf(stderr, "eg-bench: unknown growth kind %s\n", kind);
    exit(2);
}


static const char *
action_name(eg_action_e a)
{
    switch (a) {
    case EG_PASS: return "pass";
    case EG_NOTE: return "note";
    case EG_LOG: return "log";
    default: return "block";
    }
}


/* ------------------------------------------------------------ rules */

static const char  *globs[BENCH_MAX_GLOBS];
static int          nglobs;


/* the match line of generated rule i of a kind; NULL: no such kind */

static const char *
rule_text(const char *kind, size_t i, char *buf, size_t size)
{
    static const char  *kinds[][2] = {
        { "header", "header:X-Block-%zu present" },
        { "path", "path prefix /block%zu/" },
        { "user-agent", "header:User-Agent contains BadScanner%zu/" },
        { "user-agent-regex", "header:User-Agent regex 'BadScanner%zu/'" },
        { "query", "query contains blockparam%zu=" },
        { "cookie", "cookie:BlockCookie%zu present" },
        { "client", "client is 203.0.%zu.%zu" }
    };
    size_t  k;

    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        if (strcmp(kind, kinds[k][0]) == 0) {
            if (strcmp(kind, "client") == 0) {
                snprintf(buf, size, kinds[k][1], i / 250, i % 250 + 1);
            } else {
                snprintf(buf, size, kinds[k][1], i);
            }
            return buf;
        }
    }

    return NULL;
}


/* a rule set of the --rules files and count rules of a kind */

static eg_ruleset_t *
rules_plus(const char *kind, size_t count)
{
    int            g;
    char           err[1024], line[256];
    size_t         i, k;
    glob_t         gl;
    sbuf_t         t;
    eg_ruleset_t  *rs;

    rs = eg_ruleset_new();
    if (rs == NULL) {
        return NULL;
    }

    for (g = 0; g < nglobs; g++) {
        if (glob(globs[g], 0, NULL, &gl) != 0) {
            eg_ruleset_free(rs);
            return NULL;
        }
        for (k = 0; k < gl.gl_pathc; k++) {
            if (eg_ruleset_load_file(rs, gl.gl_pathv[k], err, sizeof(err))
                != 0)
            {
                fprintf(stderr, "eg-bench: %s\n", err);
                eg_ruleset_free(rs);
                globfree(&gl);
                return NULL;
            }
        }
        globfree(&gl);
    }

    memset(&t, 0, sizeof(sbuf_t));

    for (i = 0; i < count; i++) {
        if (rule_text(kind, i, line, sizeof(line)) == NULL) {
            fprintf(stderr, "eg-bench: unknown rule kind %s\n", kind);
            eg_ruleset_free(rs);
            return NULL;
        }
        snprintf(err, sizeof(err), "rule SITE-%zu\n    name \"site rule\"\n"
                 "    cve CVE-2021-26855\n    action block\n    match %s\n"
                 "end\n", i, line);
        sb_str(&t, err);
    }

    if (count
        && eg_ruleset_load_buffer(rs, "site.rules", t.buf, t.len, err,
                                  sizeof(err))
           != 0)
    {
        fprintf(stderr, "eg-bench: %s\n", err);
        eg_ruleset_free(rs);
        rs = NULL;
    }

    free(t.buf);
    return rs;
}


/* ------------------------------------------------------------ main */

int
main(int argc, char **argv)
{
    int            i, passes, blocked;
    char           err[1024], *sizes, *tok, *save;
    size_t         k, size;
    glob_t         gl;
    double         ns;
    eg_options_t   opts, gopts;
    eg_ruleset_t  *rs, *rs2;
    eg_request_t   req;
    sbuf_t         b;
    one_t          o;

    rs = eg_ruleset_new();
    arena_base = malloc(arena_size);
    if (rs == NULL || arena_base == NULL) {
        return 2;
    }

    memset(&opts, 0, sizeof(eg_options_t));
    passes = 10;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rules") == 0 && i + 1 < argc) {
            if (nglobs < BENCH_MAX_GLOBS) {
                globs[nglobs++] = argv[i + 1];
            }
            if (glob(argv[++i], 0, NULL, &gl) != 0) {
                fprintf(stderr, "eg-bench: no rule file matches %s\n",
                        argv[i]);
                return 2;
            }
            for (k = 0; k < gl.gl_pathc; k++) {
                if (eg_ruleset_load_file(rs, gl.gl_pathv[k], err,
                                         sizeof(err)) != 0)
                {
                    fprintf(stderr, "eg-bench: %s\n", err);
                    return 2;
                }
            }
            globfree(&gl);

        } else if (strcmp(argv[i], "--min-ms") == 0 && i + 1 < argc) {
            min_ms = atof(argv[++i]);
        } else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
            repeat = atoi(argv[++i]);
            if (repeat < 1) {
                repeat = 1;
            }
        } else if (strcmp(argv[i], "--passes") == 0 && i + 1 < argc) {
            passes = atoi(argv[++i]);
        } else {
            break;
        }
    }

    if (eg_ruleset_count(rs) == 0 || i >= argc) {
        fprintf(stderr, "usage: eg-bench --rules GLOB [--min-ms MS] "
                "[--repeat R] [--passes N] corpus|cgcorpus FILE... | "
                "growth KIND SIZES\n");
        return 2;
    }

    o.rs = rs;
    o.opts = &opts;

    if (strcmp(argv[i], "corpus") == 0 || strcmp(argv[i], "cgcorpus") == 0) {
        for (k = i + 1; k < (size_t) argc; k++) {
            if (load_file(argv[k]) != 0) {
                return 2;
            }
        }
        if (nrecords == 0) {
            fprintf(stderr, "eg-bench: no records\n");
            return 2;
        }

        if (argv[i][0] == 'c' && argv[i][1] == 'g') {
            for (k = 0; k < (size_t) passes; k++) {
                bench_pass(rs, &opts);
            }
            printf("cgcorpus %zu %d\n", nrecords, passes);
            return 0;
        }

        blocked = 0;
        for (k = 0; k < nrecords; k++) {
            blocked += eval_like_nginx(rs, &opts, records[k]) == EG_BLOCK;
            arena_reset();
        }

        ns = measure(corpus_fn, &o);
        printf("corpus %zu %.1f %d\n", nrecords, ns / nrecords, blocked);
        return 0;
    }

    if (strcmp(argv[i], "cgrules") == 0 && i + 2 < argc) {
        for (k = i + 3; k < (size_t) argc; k++) {
            if (load_file(argv[k]) != 0) {
                return 2;
            }
        }

        sizes = argv[i + 2];

        for (tok = strtok_r(sizes, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save))
        {
            size = strtoul(tok, NULL, 10);
            rs2 = rules_plus(argv[i + 1], size);
            if (rs2 == NULL) {
                return 2;
            }

            bench_pass(rs2, &opts);
            CALLGRIND_ZERO_STATS;
            for (k = 0; k < (size_t) passes; k++) {
                bench_pass(rs2, &opts);
            }
            CALLGRIND_DUMP_STATS_AT(tok);
            printf("cgrules %s %zu %d %zu\n", argv[i + 1], size, passes,
                   nrecords);
            fflush(stdout);
            eg_ruleset_free(rs2);
        }
        return 0;
    }

    if ((strcmp(argv[i], "growth") == 0 || strcmp(argv[i], "cggrowth") == 0)
        && i + 2 < argc)
    {
        gopts = opts;
        gopts.max_cookies = 100000;
        gopts.max_header_bytes = (size_t) 1 << 30;
        o.opts = &gopts;
        o.req = &req;
        memset(&b, 0, sizeof(sbuf_t));
        sizes = argv[i + 2];

        for (tok = strtok_r(sizes, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save))
        {
            size = strtoul(tok, NULL, 10);
            build_growth(argv[i + 1], size, &req, &b);
            one_fn(&o);
            if (argv[i][0] == 'c') {
                CALLGRIND_ZERO_STATS;
                for (k = 0; k < (size_t) passes; k++) {
                    one_fn(&o);
                }
                CALLGRIND_DUMP_STATS_AT(tok);
                printf("cggrowth %s %zu %d\n", argv[i + 1], size, passes);
                fflush(stdout);
                continue;
            }
            printf("growth %s %zu %.1f %s %d\n", argv[i + 1], size,
                   measure(one_fn, &o), action_name(o.v.action),
                   (int) o.v.limit);
            fflush(stdout);
        }
        return 0;
    }

    fprintf(stderr, "eg-bench: unknown command %s\n", argv[i]);
    return 2;
}
