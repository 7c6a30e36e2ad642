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
#include "eg_internal.h"          /* the gates are there */


void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

static int fail_now(void);
static eg_ruleset_t *base_set(void);
static long load_allocs(const char *name, const char *text, size_t len,
    int gates);
static void eval_request(eg_ruleset_t *rs, const char *target,
    const char *cookie, const char *ua, eg_verdict_t *v);
static void eval_set(eg_ruleset_t *rs);
static void test_load_point(void);
static void test_new_point(void);
static void test_gate_point(void);


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

/* rules that make gates (eg_plan_gates()) and a cookie name table:
   ten on the User-Agent, ten on cookie names */
static char  gate_rules[4096];
static size_t  gate_len;


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


/* how many allocations a successful load of text into the base set
   makes; gates: the load must make gates and a cookie name table */

static long
load_allocs(const char *name, const char *text, size_t len, int gates)
{
    long           n;
    char           err[512];
    eg_ruleset_t  *rs;

    rs = base_set();
    if (rs == NULL) {
        CHECK(rs != NULL);
        return 0;
    }

    oom_count = 0;
    oom_fail = 1L << 40;
    CHECK_INT(eg_ruleset_load_buffer(rs, name, (const unsigned char *) text,
                                     len, err, sizeof(err)), 0);
    n = oom_count;
    oom_fail = -1;

    if (gates) {
        CHECK(rs->ungated != NULL && rs->cookie_ungated != NULL);
        CHECK(rs->cookie_tab != NULL);
    }

    eg_ruleset_free(rs);
    CHECK(n > 0);

    return n;
}


/* the verdict on GET target with a Cookie and a User-Agent header */

static void
eval_request(eg_ruleset_t *rs, const char *target, const char *cookie,
    const char *ua, eg_verdict_t *v)
{
    eg_header_t       h[2];
    eg_request_t      req;
    eg_options_t      opts;
    eg_test_arena_t   arena;

    memset(&req, 0, sizeof(eg_request_t));
    memset(&opts, 0, sizeof(eg_options_t));

    h[0].name = eg_test_s("Cookie");
    h[0].value = eg_test_s(cookie);
    h[1].name = eg_test_s("User-Agent");
    h[1].value = eg_test_s(ua);

    req.method = eg_test_s("GET");
    req.target = eg_test_s(target);
    req.headers = h;
    req.nheaders = 2;

    eg_eval(rs, &req, &opts, eg_test_arena_init(&arena), v);
    eg_test_arena_free(&arena);
}


/* the set still works: every rule of it is evaluated */

static void
eval_set(eg_ruleset_t *rs)
{
    eg_verdict_t  v;

    eval_request(rs, "/ecp/y.js?Email=autodiscover/x",
                 "X-BEResource=localhost~1; "
                 "X-AnonResource-Backend=localhost~1; Email=autodiscover/x",
                 "x", &v);
    CHECK(v.total >= 1);
    CHECK(v.action >= EG_LOG);
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


/* a load that makes gates, an allocation failing: with or without the
   gates (or the cookie name table), the same verdict */

static void
test_gate_point(void)
{
    int            rc;
    char           err[512];
    eg_verdict_t   v;
    eg_ruleset_t  *rs;

    rs = base_set();
    if (rs == NULL) {
        CHECK(rs != NULL);
        return;
    }

    oom_count = 0;
    oom_fail = point;
    rc = eg_ruleset_load_buffer(rs, "gates.rules",
                                (const unsigned char *) gate_rules, gate_len,
                                err, sizeof(err));
    oom_fail = -1;

    eval_request(rs, "/", "a=1; g7=x", "Mozilla/5.0 Scanner3/1", &v);
    CHECK_INT(v.total, rc == 0 ? 2 : 0);

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
    long  n, k;

    /* how many allocations a successful load makes */

    n = load_allocs("more.rules", more_rules, sizeof(more_rules) - 1, 0);

    for (k = 0; k < n; k++) {
        point = k;
        printf("-- failing allocation %ld of %ld of a load\n", k, n);
        EG_RUN(test_load_point);
    }

    for (k = 0; k < 8; k++) {
        point = k;
        EG_RUN(test_new_point);
    }

    for (k = 0; k < 20; k++) {
        gate_len += snprintf(gate_rules + gate_len,
                             sizeof(gate_rules) - gate_len,
                             "rule G%ld\n    name \"g\"\n    cve "
                             "CVE-2021-26855\n    action log\n    match %s"
                             "%ld%s\nend\n", k,
                             k < 10 ? "header:User-Agent contains Scanner"
                                    : "cookie:g",
                             k % 10, k < 10 ? "/" : " present");
    }

    n = load_allocs("gates.rules", gate_rules, gate_len, 1);

    for (k = 0; k < n; k++) {
        point = k;
        printf("-- failing allocation %ld of %ld of a load with gates\n", k,
               n);
        EG_RUN(test_gate_point);
    }

    return eg_test_done();
}
