/*
 * Unit tests of the rule loader when memory runs out: malloc(), calloc()
 * and realloc() are wrapped at link time (run.sh reads the ldflags line
 * below), and each allocation of a load is made to fail in turn.  A failed
 * load must return -1 and leave the set usable and unchanged: no crash, no
 * leak, no freed memory left behind in the set.
 *
 * ldflags: -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc
 */

#include "eg_test.h"


void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

static int fail_now(void);
static eg_ruleset_t *base_set(void);
static void eval_set(eg_ruleset_t *rs);
static void test_load_point(void);
static void test_new_point(void);


/* the allocation to fail, counted from 0; -1: none */
static long  oom_fail = -1;
static long  oom_count;

static long  point;


static const char  base_rules[] =
    "rule BASE\n"
    "    name \"base\"\n"
    "    cve CVE-2021-26855\n"
    "    action log\n"
    "    match cookie:X-BEResource backend\n"
    "    match path regex '^/ecp/'\n"
    "end\n";

static const char  more_rules[] =
    "rule M1\n"
    "    name \"m1\"\n"
    "    cve CVE-2021-26855\n"
    "    action block\n"
    "    match cookie:X-AnonResource-Backend backend\n"
    "    match path regex '\\.js$'\n"
    "end\n"
    "rule M2\n"
    "    name \"m2\"\n"
    "    cve CVE-2021-34473\n"
    "    action block\n"
    "    match param:Email regex '^autodiscover'\n"
    "    match cookie-names contains x-\n"
    "end\n";


static int
fail_now(void)
{
    if (oom_fail < 0) {
        return 0;
    }

    return oom_count++ == oom_fail;
}


void *
__wrap_malloc(size_t size)
{
    return fail_now() ? NULL : __real_malloc(size);
}


void *
__wrap_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : __real_calloc(n, size);
}


void *
__wrap_realloc(void *p, size_t size)
{
    return fail_now() ? NULL : __real_realloc(p, size);
}


static eg_ruleset_t *
base_set(void)
{
    char           err[512];
    eg_ruleset_t  *rs;

    rs = eg_ruleset_new();
    if (rs == NULL) {
        return NULL;
    }

    if (eg_ruleset_load_buffer(rs, "base.rules",
                               (const unsigned char *) base_rules,
                               sizeof(base_rules) - 1, err, sizeof(err))
        != 0)
    {
        printf("base.rules: %s\n", err);
        eg_ruleset_free(rs);
        return NULL;
    }

    return rs;
}


/* the set still works: every rule of it is evaluated */

static void
eval_set(eg_ruleset_t *rs)
{
    eg_header_t       h[2];
    eg_request_t      req;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_test_arena_t   arena;

    memset(&req, 0, sizeof(eg_request_t));
    memset(&opts, 0, sizeof(eg_options_t));

    h[0].name = eg_test_s("Cookie");
    h[0].value = eg_test_s("X-BEResource=localhost~1; "
                           "X-AnonResource-Backend=localhost~1; "
                           "Email=autodiscover/x");
    h[1].name = eg_test_s("User-Agent");
    h[1].value = eg_test_s("x");

    req.method = eg_test_s("GET");
    req.target = eg_test_s("/ecp/y.js?Email=autodiscover/x");
    req.headers = h;
    req.nheaders = 2;

    eg_eval(rs, &req, &opts, eg_test_arena_init(&arena), &v);
    CHECK(v.total >= 1);
    CHECK(v.action >= EG_LOG);

    eg_test_arena_free(&arena);
}


static void
test_load_point(void)
{
    int            rc;
    char           err[512];
    size_t         before;
    eg_ruleset_t  *rs;

    rs = base_set();
    if (rs == NULL) {
        CHECK(rs != NULL);
        return;
    }

    before = eg_ruleset_count(rs);

    oom_count = 0;
    oom_fail = point;
    rc = eg_ruleset_load_buffer(rs, "more.rules",
                                (const unsigned char *) more_rules,
                                sizeof(more_rules) - 1, err, sizeof(err));
    oom_fail = -1;

    if (rc == 0) {
        CHECK_INT(eg_ruleset_count(rs), before + 2);

    } else {
        CHECK_INT(rc, -1);
        CHECK(strstr(err, "out of memory") != NULL);
        CHECK_INT(eg_ruleset_count(rs), before);
    }

    eval_set(rs);
    eg_ruleset_free(rs);
}


static void
test_new_point(void)
{
    eg_ruleset_t  *rs;

    oom_count = 0;
    oom_fail = point;
    rs = eg_ruleset_new();
    oom_fail = -1;

    /* NULL or a working set, nothing leaked either way */
    if (rs) {
        eg_ruleset_free(rs);
    }

    CHECK(1);
}


int
main(void)
{
    long           n, k;
    char           err[512];
    eg_ruleset_t  *rs;

    /* how many allocations a successful load makes */

    rs = base_set();
    if (rs == NULL) {
        CHECK(rs != NULL);
        return eg_test_done();
    }

    oom_count = 0;
    oom_fail = 1L << 40;
    CHECK_INT(eg_ruleset_load_buffer(rs, "more.rules",
                                     (const unsigned char *) more_rules,
                                     sizeof(more_rules) - 1, err,
                                     sizeof(err)), 0);
    n = oom_count;
    oom_fail = -1;
    eg_ruleset_free(rs);

    CHECK(n > 0);

    for (k = 0; k < n; k++) {
        point = k;
        printf("-- failing allocation %ld of %ld of a load\n", k, n);
        EG_RUN(test_load_point);
    }

    for (k = 0; k < 8; k++) {
        point = k;
        EG_RUN(test_new_point);
    }

    return eg_test_done();
}
