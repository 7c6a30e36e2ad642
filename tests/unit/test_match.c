/*
 * Unit tests of eg_eval(): small in-memory rule sets against request views.
 */

#include <time.h>

#include "eg_test.h"
#include "eg_internal.h"          /* test_gates: the plan's gates */


#define MAXH  80

typedef struct {
    eg_header_t           h[MAXH];
    eg_request_t          req;
} req_t;


static eg_ruleset_t *rules(const char *text, const char *file, int line);
static eg_request_t *req(req_t *r, const char *method, const char *target,
    ...);
static const char *ids(const eg_verdict_t *v, char *buf, size_t size);
static double now(void);
static void test_backend_cookie(void);
static void test_backend_list(void);
static void test_not(void);
static void test_headers(void);
static void test_cookie_names(void);
static void test_cookies_raw(void);
static void test_args(void);
static void test_param(void);
static void test_limit_cookies(void);
static void test_limit_header_bytes(void);
static void test_limit_decode(void);
static void test_limit_regex(void);
static void test_actions(void);
static void test_report(void);
static void test_notes(void);
static void test_cookie_filter(void);
static void test_alloc_failure(void);
static void test_probes(void);
static void test_long_lists(void);
static void test_gates(void);
static void test_regex_literals(void);
static void test_fold(void);
static void test_cookie_prefix(void);
static void test_cookie_prefix_edges(void);
static void test_pair_probes(void);
static void test_line_probes(void);
static void test_lack(void);
static void test_probes_scoped(void);
static void test_scope_select(void);
static void test_header_keys(void);
static void test_header_slots(void);

/* a request of up to three headers, how to mark each (check_slot_cases())
   and the verdict */
typedef struct {
    const char   *h[6];
    uint8_t       mark[3];
    const char   *ids;
} slot_case_t;

static void check_slot_cases(eg_ruleset_t *rs, const char *method,
    const char *target, const slot_case_t *t, size_t nt);
static void test_lack_bytes(void);
static void test_scan_anchors(void);
static void test_header_slots_gated(void);
static size_t gates_same(eg_ruleset_t *rs, const eg_request_t *rq,
    const eg_options_t *opts, const eg_alloc_t *alloc, const char *file,
    int line);


#define RULES(text)  rules(text, __FILE__, __LINE__)

/* the ids of v->matches[], comma-separated */
#define CHECK_IDS(v, expected)                                                \
    CHECK_STR(ids(v, idbuf, sizeof(idbuf)), expected)

#define RULE(id, action, match)                                               \
    "rule " id "\n"                                                           \
    "    name \"" id "\"\n"                                                   \
    "    cve CVE-2021-26855\n"                                                \
    "    action " action "\n"                                                 \
    match                                                                     \
    "end\n"


static eg_ruleset_t *
rules(const char *text, const char *file, int line)
{
    char           err[1024];
    eg_ruleset_t  *rs;

    rs = eg_ruleset_new();
    if (rs == NULL) {
        eg_test_fail(file, line, "eg_ruleset_new() failed");
        exit(2);
    }

    if (eg_ruleset_load_buffer(rs, "test.rules",
                               (const unsigned char *) text, strlen(text),
                               err, sizeof(err))
        != 0)
    {
        eg_test_fail(file, line, "rules: %s", err);
        exit(2);
    }

    return rs;
}


/* a request; the varargs are header name, value pairs ending with NULL */

static eg_request_t *
req(req_t *r, const char *method, const char *target, ...)
{
    size_t       n;
    va_list      args;
    const char  *name;

    memset(r, 0, sizeof(req_t));

    va_start(args, target);

    for (n = 0; n < MAXH; n++) {
        name = va_arg(args, const char *);
        if (name == NULL) {
            break;
        }
        r->h[n].name = eg_test_s(name);
        r->h[n].value = eg_test_s(va_arg(args, const char *));
    }

    va_end(args);

    r->req.method = eg_test_s(method);
    r->req.target = eg_test_s(target);
    r->req.headers = r->h;
    r->req.nheaders = n;
    r->req.client_addr = eg_test_s("192.0.2.1");
    r->req.body_state = EG_BODY_NONE;

    return &r->req;
}


static const char *
ids(const eg_verdict_t *v, char *buf, size_t size)
{
    size_t    i, n;
    eg_str_t  id;

    n = 0;
    buf[0] = '\0';

    for (i = 0; i < v->nmatches && i < EG_MAX_MATCHES; i++) {
        id = eg_rule_id(v->matches[i].rule);
        n += snprintf(buf + n, size - n, "%s%.*s", i ? "," : "",
                      (int) id.len, id.data);
        if (n >= size) {
            break;
        }
    }

    return buf;
}


/*
 * The verdict's rule ids against want: a pass, or a failure naming the
 * request and how the two verdicts were reached (the first five of a
 * test: *bad counts them).
 */

static int
ids_agree(const eg_verdict_t *v, const char *want, const char *request,
    const char *how, int *bad)
{
    char  got[256];

    if (strcmp(ids(v, got, sizeof(got)), want) == 0) {
        eg_test_pass();
        return 1;
    }

    if ((*bad)++ < 5) {
        eg_test_fail(__FILE__, __LINE__, "\"%s\": \"%s\" %s \"%s\"",
                     request, got, how, want);
    }

    return 0;
}


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static void
test_backend_cookie(void)
{
    char              idbuf[256];
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    rs = RULES(RULE("T-BE", "block",
                    "    match cookie:X-BEResource backend\n")
               RULE("T-ANON", "block",
                    "    match cookie:X-AnonResource-Backend backend\n")
               RULE("T-OVR", "block",
                    "    match cookie:X-BackEndOverrideCookie backend\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    /* legitimate traffic passes */

    eg_eval(rs, req(&r, "GET", "/ecp/", NULL), &opts, alloc, &v);
    CHECK_INT(v.action, EG_PASS);
    CHECK_INT(v.total, 0);

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie",
                    "X-BEResource=EX01.contoso.local~1942062522", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_PASS);
    CHECK_INT(v.nmatches, 0);

    eg_eval(rs, req(&r, "GET", "/owa/auth/x.js", "Cookie",
                    "X-AnonResource=true; X-AnonResource-Backend="
                    "EX01.contoso.local~1941962752; "
                    "X-BackEndOverrideCookie=ex02~1942062522", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_PASS);

    /* X-BackEndCookie holds SID=token values: never checked */
    eg_eval(rs, req(&r, "GET", "/owa/", "Cookie",
                    "X-BackEndCookie=S-1-5-21-2125-500=u56Lnp2ejJqBmZ3Gz8b"
                    "Jzs7GgZ3Gz8vJzZvHzsrL@/+=&a; X-BackEndCookie2="
                    "localhost~1942062522", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_PASS);
    CHECK_INT(v.total, 0);

    eg_eval(rs, req(&r, "GET", "/owa/", "Cookie",
                    "X-BackEndCookie=localhost~1; X-BEResource2=localhost~1; "
                    "XX-BEResource=localhost~1", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_PASS);

    /* ',' separates nothing for ASP.NET: this is one cookie, "a" */
    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie",
                    "a=1, X-BEResource=localhost~1942062522", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_PASS);

    /* a name alone is an empty name */
    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie", "X-BEResource", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_PASS);

    /* exploit values are refused, with the field and the value */

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie",
                    "X-BEResource=localhost~1942062522", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_BLOCK);
    CHECK_INT(v.nmatches, 1);
    CHECK_INT(v.total, 1);
    CHECK_IDS(&v, "T-BE");
    CHECK_STR(v.matches[0].field, "cookie:X-BEResource");
    CHECK_STR(v.matches[0].value, "localhost~1942062522");
    CHECK_INT(v.limit, EG_LIMIT_NONE);

    eg_eval(rs, req(&r, "POST", "/ecp/x.js", "Cookie",
                    "X-BEResource=Admin@ex.contoso.local:444/mapi/emsmdb?"
                    "MailboxId=x@y&a=~1942062522", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_BLOCK);
    CHECK_STR(v.matches[0].value, "Admin@ex.contoso.local:444/mapi/emsmdb?"
              "MailboxId=x@y&a=~1942062522");

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie",
                    "X-BEResource=localhost?x=~4711", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_BLOCK);

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie",
                    "X-BEResource=attacker.example#~1", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_BLOCK);

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie", "X-BEResource=",
                    NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_BLOCK);

    /* any case, white space, several headers, a second cookie */

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "cookie",
                    "  x-beresource =\tlocalhost~1942062522 ;", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_BLOCK);
    CHECK_STR(v.matches[0].value, "localhost~1942062522");

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie", "a=1",
                    "X-Other", "x", "COOKIE", "X-BEResource=127.0.0.1~1",
                    NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_BLOCK);

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie",
                    "X-BEResource=EX01.contoso.local~1942062522; "
                    "X-BEResource=localhost~1942062522", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_BLOCK);
    CHECK_STR(v.matches[0].value, "localhost~1942062522");

    /* the nmap script of CSS-Exchange */
    eg_eval(rs, req(&r, "GET", "/owa/auth/x.js", "Cookie",
                    "X-AnonResource=true; X-AnonResource-Backend=localhost/"
                    "ecp/default.flt?~3; X-BEResource=localhost/owa/auth/"
                    "logon.aspx?~3;", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_BLOCK);
    CHECK_IDS(&v, "T-BE,T-ANON");
    CHECK_INT(v.total, 2);

    eg_eval(rs, req(&r, "POST", "/EWS/Exchange.asmx", "Cookie",
                    "X-BackEndOverrideCookie=localhost~1942062522", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-OVR");

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


static void
test_backend_list(void)
{
    char              idbuf[256];
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;
    static const eg_str_t  backends[] = {
        eg_string("EX01.contoso.local"),
        eg_string("ex02.contoso.local")
    };

    rs = RULES(RULE("T-BE", "block",
                    "    match cookie:X-BEResource backend\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));
    opts.backends = backends;
    opts.nbackends = 2;

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie",
                    "X-BEResource=ex01.CONTOSO.local~1942062522", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_PASS);

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie",
                    "X-BEResource=ex03.contoso.local~1942062522", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_BLOCK);
    CHECK_IDS(&v, "T-BE");

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie",
                    "X-BEResource=EX01~1942062522", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_BLOCK);

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


/* "not" on a field with several values holds when no value matches */

static void
test_not(void)
{
    char              idbuf[256];
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    rs = RULES(RULE("T-NOT", "block",
                    "    match method is GET\n"
                    "    match header:X-Test not is good\n")
               RULE("T-NOTC", "log",
                    "    match cookie:X-A not prefix ok\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    eg_eval(rs, req(&r, "GET", "/", "X-Test", "bad", "X-Test", "GOOD",
                    "Cookie", "X-A=ok1", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.total, 0);

    eg_eval(rs, req(&r, "GET", "/", "X-Test", "bad", "X-Test", "worse",
                    "Cookie", "X-A=ok1; x-a=bad", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-NOT");
    /* the report names the last positive line */
    CHECK_STR(v.matches[0].field, "method");
    CHECK_STR(v.matches[0].value, "GET");

    /* no value at all: none matches */
    eg_eval(rs, req(&r, "GET", "/", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-NOT,T-NOTC");
    CHECK_STR(v.matches[1].field, "cookie:X-A");

    eg_eval(rs, req(&r, "GET", "/", "Cookie", "X-A=bad; X-A=worse",
                    "X-Test", "good", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-NOTC");
    CHECK_INT(v.action, EG_LOG);

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


static void
test_headers(void)
{
    char              idbuf[256];
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    rs = RULES(RULE("T-UA", "log",
                    "    match header:User-Agent prefix antSword/ "
                    "ExchangeServicesClient/0.0.0.0\n")
               RULE("T-HP", "log",
                    "    match header:X-OWA-ExplicitLogonUser present\n")
               RULE("T-HB", "block",
                    "    match header:X-AnchorMailbox backend\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    eg_eval(rs, req(&r, "POST", "/ecp/y.js", "user-agent", "AntSword/v2.1",
                    NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-UA");
    CHECK_STR(v.matches[0].field, "header:User-Agent");
    CHECK_STR(v.matches[0].value, "AntSword/v2.1");

    eg_eval(rs, req(&r, "POST", "/", "User-Agent", "Mozilla/5.0",
                    "USER-AGENT", "exchangeservicesclient/0.0.0.0", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-UA");
    CHECK_STR(v.matches[0].value, "exchangeservicesclient/0.0.0.0");

    eg_eval(rs, req(&r, "POST", "/", "X-User-Agent", "antSword/v2.1",
                    "User-Agent", "Mozilla/5.0 antSword/", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.total, 0);

    eg_eval(rs, req(&r, "POST", "/owa/u@d/powershell",
                    "x-owa-explicitlogonuser", "", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-HP");
    CHECK_STR(v.matches[0].value, "");

    eg_eval(rs, req(&r, "GET", "/", "X-AnchorMailbox", "localhost~1", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-HB");

    eg_eval(rs, req(&r, "GET", "/", "X-AnchorMailbox", "ex01~1", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.total, 0);

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


static void
test_cookie_names(void)
{
    char              idbuf[256];
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    rs = RULES(RULE("T-CN", "log",
                    "    match cookie-names is X-AnonResource-Backend\n")
               RULE("T-CN2", "log",
                    "    match cookie-names contains evil\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    eg_eval(rs, req(&r, "GET", "/", "Cookie",
                    "a=evil; x-anonresource-backend =x", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-CN");
    CHECK_STR(v.matches[0].field, "cookie-names");
    CHECK_STR(v.matches[0].value, "x-anonresource-backend");

    eg_eval(rs, req(&r, "GET", "/", "Cookie", "X-AnonResource-Backend2=x",
                    "Cookie", "myEVILcookie=1", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-CN2");
    CHECK_STR(v.matches[0].value, "myEVILcookie");

    eg_eval(rs, req(&r, "GET", "/", "Cookie", "evil", NULL), &opts, alloc,
            &v);
    CHECK_INT(v.total, 0);

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


/* "cookies" is the raw header; several headers are joined with "; " */

static void
test_cookies_raw(void)
{
    char              idbuf[256];
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    rs = RULES(RULE("T-RAW", "log",
                    "    match cookies contains \"A=1; b=2\"\n")
               RULE("T-RE", "log",
                    "    match cookies regex '^a=1; B=2$'\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    eg_eval(rs, req(&r, "GET", "/", "Cookie", "a=1", "Cookie", "b=2", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-RAW,T-RE");
    CHECK_STR(v.matches[0].field, "cookies");
    CHECK_STR(v.matches[0].value, "a=1; b=2");

    eg_eval(rs, req(&r, "GET", "/", "Cookie", "a=1; b=2", NULL), &opts,
            alloc, &v);
    CHECK_IDS(&v, "T-RAW,T-RE");

    eg_eval(rs, req(&r, "GET", "/", "Cookie", "a=1;b=2", NULL), &opts,
            alloc, &v);
    CHECK_INT(v.total, 0);

    eg_eval(rs, req(&r, "GET", "/", "Cookie", "x=0; a=1; b=2", "Cookie",
                    "c=3", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-RAW");
    CHECK_STR(v.matches[0].value, "x=0; a=1; b=2; c=3");

    eg_eval(rs, req(&r, "GET", "/", NULL), &opts, alloc, &v);
    CHECK_INT(v.total, 0);

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


static void
test_args(void)
{
    char              idbuf[256];
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    rs = RULES(RULE("T-EMAIL", "block",
                    "    match arg:Email prefix autodiscover/\n")
               RULE("T-Q", "log",
                    "    match arg:q is \"a b\"\n")
               RULE("T-P", "log",
                    "    match arg:flag present\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    /* ProxyShell */
    eg_eval(rs, req(&r, "GET", "/autodiscover/autodiscover.json?@x.com/mapi"
                    "/nspi/?&Email=autodiscover/autodiscover.json%3F@x.com",
                    NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-EMAIL");
    CHECK_INT(v.action, EG_BLOCK);
    CHECK_STR(v.matches[0].field, "arg:Email");
    CHECK_STR(v.matches[0].value, "autodiscover/autodiscover.json?@x.com");

    eg_eval(rs, req(&r, "GET", "/a?email=Autodiscover/x", NULL), &opts,
            alloc, &v);
    CHECK_IDS(&v, "T-EMAIL");

    eg_eval(rs, req(&r, "GET", "/a?x=1&%45mail=autodiscover/x", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-EMAIL");

    eg_eval(rs, req(&r, "GET", "/a?Email=%61utodiscover%2Fx", NULL), &opts,
            alloc, &v);
    CHECK_IDS(&v, "T-EMAIL");

    eg_eval(rs, req(&r, "GET", "/a?Email=%2561utodiscover/x", NULL), &opts,
            alloc, &v);
    CHECK_IDS(&v, "T-EMAIL");

    /* legitimate autodiscover */
    eg_eval(rs, req(&r, "GET", "/autodiscover/autodiscover.json?Email=u@d&"
                    "Protocol=ActiveSync&RedirectCount=3", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.total, 0);

    eg_eval(rs, req(&r, "GET", "/a?Emailx=autodiscover/&xEmail=autodiscover/"
                    "&autodiscover/", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.total, 0);

    eg_eval(rs, req(&r, "GET", "/autodiscover/", NULL), &opts, alloc, &v);
    CHECK_INT(v.total, 0);

    /* '+' is a space, %2B is a '+' */
    eg_eval(rs, req(&r, "GET", "/a?q=a+b", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-Q");
    CHECK_STR(v.matches[0].value, "a b");

    eg_eval(rs, req(&r, "GET", "/a?Q=A%20B", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-Q");

    eg_eval(rs, req(&r, "GET", "/a?q=a%2Bb&q=c", NULL), &opts, alloc, &v);
    CHECK_INT(v.total, 0);

    eg_eval(rs, req(&r, "GET", "/a?q=x&q=a+b", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-Q");

    eg_eval(rs, req(&r, "GET", "/a?fl%61g", NULL), &opts, alloc, &v);
    CHECK_INT(v.total, 0);

    eg_eval(rs, req(&r, "GET", "/a?flag=", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-P");

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


/* ASP.NET Request.Params["Email"] also reads cookies (mitigations.md 1) */

static void
test_param(void)
{
    char              idbuf[256];
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    rs = RULES(RULE("T-PARAM", "block",
                    "    match param:Email prefix autodiscover\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    eg_eval(rs, req(&r, "GET", "/autodiscover/autodiscover.json?a=1",
                    "Cookie", "Email=autodiscover/autodiscover.json?a=r@r.rr",
                    NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-PARAM");

    eg_eval(rs, req(&r, "GET", "/x?Email=Autodiscover/x", NULL), &opts,
            alloc, &v);
    CHECK_IDS(&v, "T-PARAM");

    eg_eval(rs, req(&r, "GET", "/x?Email=u@d", "Cookie", "Email=u@d", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.total, 0);

    /* the parameter probe (eg_plan_probe_param()) drops the rule for a
       request with no query, no cookie and no form: the form's
       Content-Type in any case, the first one only, a body to read */

    {
        size_t  k;
        const struct {
            const char  *target;
            const char  *ctype;
            const char  *ctype2;
            const char  *cookie;
            const char  *body;
            const char  *ids;
            unsigned     need_body;
        } t[] = {
            { "/autodiscover/autodiscover.xml", "text/xml", NULL, NULL,
              "Email=autodiscover/x", "", 0 },
            { "/autodiscover/autodiscover.xml",
              "Application/X-WWW-Form-Urlencoded; charset=utf-8", NULL, NULL,
              "Email=autodiscover/x", "T-PARAM", 0 },
            { "/autodiscover/autodiscover.xml",
              "MULTIPART/form-data; boundary=b", NULL, NULL,
              "--b\r\nContent-Disposition: form-data; name=\"Email\"\r\n"
              "\r\nautodiscover/x\r\n--b--\r\n", "T-PARAM", 0 },
            { "/autodiscover/autodiscover.xml", "text/xml",
              "application/x-www-form-urlencoded", NULL,
              "Email=autodiscover/x", "", 0 },
            { "/autodiscover/autodiscover.xml", NULL, NULL, NULL,
              "Email=autodiscover/x", "", 0 },
            { "/autodiscover/autodiscover.xml?", NULL, NULL,
              "Email=autodiscover/x", NULL, "T-PARAM", 0 },
            { "/autodiscover/autodiscover.xml?Email=autodiscover%2fx", NULL,
              NULL, NULL, NULL, "T-PARAM", 0 },
            { "/autodiscover/autodiscover.xml",
              "application/x-www-form-urlencoded", NULL, NULL, NULL, "", 1 },
            { "/autodiscover/autodiscover.xml", "text/xml", NULL, NULL, NULL,
              "", 0 }
        };

        for (k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
            req(&r, "POST", t[k].target,
                t[k].ctype ? "Content-Type" : "X-None",
                t[k].ctype ? t[k].ctype : "1",
                t[k].ctype2 ? "Content-Type" : "X-None",
                t[k].ctype2 ? t[k].ctype2 : "1",
                t[k].cookie ? "Cookie" : "X-None",
                t[k].cookie ? t[k].cookie : "1", NULL);

            /* a body read (or, without one, one still to read) */
            r.req.body_state = t[k].body ? EG_BODY_READ : EG_BODY_PENDING;
            r.req.body = eg_test_s(t[k].body ? t[k].body : "");

            eg_eval(rs, &r.req, &opts, alloc, &v);
            CHECK_IDS(&v, t[k].ids);
            CHECK_INT(v.need_body, t[k].need_body);
        }
    }

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


static void
test_limit_cookies(void)
{
    char              idbuf[256];
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    rs = RULES(RULE("T-BE", "block",
                    "    match cookie:X-BEResource backend\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));
    opts.max_cookies = 4;

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie",
                    "a=1; X-BEResource=localhost~1; c=3; d=4; e=5; f=6; "
                    "g=7; h=8; i=9; j=10", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.limit, EG_LIMIT_COOKIES);
    CHECK(v.limit_rule == eg_ruleset_rule(rs, 0));
    CHECK_IDS(&v, "T-BE");

    /* four cookies are within the limit */
    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie", "a=1; b=2",
                    "Cookie", "c=3; d=4", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.limit, EG_LIMIT_NONE);

    /* five across two headers are not */
    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie", "a=1; b=2",
                    "Cookie", "c=3; d=4; e=5", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.limit, EG_LIMIT_COOKIES);

    /* the default: 256 */
    opts.max_cookies = 0;
    {
        int    i, n;
        char  *h;

        h = malloc(300 * 16);
        if (h == NULL) {
            CHECK(h != NULL);

        } else {
            n = 0;
            for (i = 0; i < 257; i++) {
                n += sprintf(h + n, "c%d=%d; ", i, i);
            }

            eg_eval(rs, req(&r, "GET", "/", "Cookie", h, NULL), &opts,
                    alloc, &v);
            CHECK_INT(v.limit, EG_LIMIT_COOKIES);

            n = 0;
            for (i = 0; i < 256; i++) {
                n += sprintf(h + n, "c%d=%d; ", i, i);
            }

            eg_eval(rs, req(&r, "GET", "/", "Cookie", h, NULL), &opts,
                    alloc, &v);
            CHECK_INT(v.limit, EG_LIMIT_NONE);

            free(h);
        }
    }

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


static void
test_limit_header_bytes(void)
{
    char              idbuf[256], *big;
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    rs = RULES(RULE("T-BE", "block",
                    "    match cookie:X-BEResource backend\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));
    opts.max_header_bytes = 64;

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie",
                    "X-BEResource=EX01.contoso.local~1942062522; "
                    "padding=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.limit, EG_LIMIT_HEADER_BYTES);
    CHECK(v.limit_rule == eg_ruleset_rule(rs, 0));

    /* within the bound */
    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie",
                    "X-BEResource=EX01.contoso.local~1942062522", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.limit, EG_LIMIT_NONE);
    CHECK_INT(v.action, EG_PASS);

    /* the headers before the bound are still inspected */
    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie",
                    "X-BEResource=localhost~1", "Cookie",
                    "padding=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                    NULL),
            &opts, alloc, &v);
    CHECK_INT(v.limit, EG_LIMIT_HEADER_BYTES);
    CHECK_IDS(&v, "T-BE");

    /* the default: 65536 */
    opts.max_header_bytes = 0;
    big = malloc(70001);
    if (big) {
        memset(big, 'x', 70000);
        big[70000] = '\0';
        memcpy(big, "a=", 2);

        eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie", big, NULL), &opts,
                alloc, &v);
        CHECK_INT(v.limit, EG_LIMIT_HEADER_BYTES);

        big[65536] = '\0';
        eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie", big, NULL), &opts,
                alloc, &v);
        CHECK_INT(v.limit, EG_LIMIT_NONE);

        free(big);
    }

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


static void
test_limit_decode(void)
{
    char              idbuf[256];
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    rs = RULES(RULE("T-M", "log", "    match method is GET\n")
               RULE("T-AUTH", "block", "    match path prefix /ecp/auth/\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    /* three layers decode */
    eg_eval(rs, req(&r, "GET", "/ecp/%252561uth/x.aspx", NULL), &opts,
            alloc, &v);
    CHECK_INT(v.limit, EG_LIMIT_NONE);
    CHECK_IDS(&v, "T-M,T-AUTH");
    CHECK_STR(v.path, "/ecp/auth/x.aspx");

    /* four do not */
    eg_eval(rs, req(&r, "GET", "/ecp/%25252561uth/x.aspx", NULL), &opts,
            alloc, &v);
    CHECK_INT(v.limit, EG_LIMIT_DECODE_ROUNDS);

    /* the path is read before any rule (rules are picked by its first
       segment), so a decoding limit belongs to the request, not a rule */
    CHECK(v.limit_rule == NULL);

    eg_eval(rs, req(&r, "GET", "/ecp/x?a=%2525252e", NULL), &opts, alloc,
            &v);
    CHECK_INT(v.limit, EG_LIMIT_DECODE_ROUNDS);

    /* the bound is an option */
    opts.decode_rounds = 1;
    eg_eval(rs, req(&r, "GET", "/ecp/%2561uth/x.aspx", NULL), &opts, alloc,
            &v);
    CHECK_INT(v.limit, EG_LIMIT_DECODE_ROUNDS);

    eg_eval(rs, req(&r, "GET", "/ecp/%61uth/x.aspx", NULL), &opts, alloc,
            &v);
    CHECK_INT(v.limit, EG_LIMIT_NONE);
    CHECK_IDS(&v, "T-M,T-AUTH");

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


static void
test_limit_regex(void)
{
    char              idbuf[256];
    req_t             r;
    double            t;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;
    static const char  evil[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!";

    rs = RULES(RULE("T-M", "log", "    match method is GET\n")
               RULE("T-RE", "block",
                    "    match header:X-A regex '(a+)+$'\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    /* harmless input */
    eg_eval(rs, req(&r, "GET", "/", "X-A", "baaa", NULL), &opts, alloc, &v);
    CHECK_INT(v.limit, EG_LIMIT_NONE);
    CHECK_IDS(&v, "T-M,T-RE");

    /* with the default limits */
    t = now();
    eg_eval(rs, req(&r, "GET", "/", "X-A", evil, NULL), &opts, alloc, &v);
    t = now() - t;
    CHECK_INT(v.limit, EG_LIMIT_REGEX);
    CHECK(t < 2.0);

    /* with low limits */
    eg_ruleset_set_regex_limits(rs, 1000, 100);

    t = now();
    eg_eval(rs, req(&r, "GET", "/", "X-A", evil, NULL), &opts, alloc, &v);
    t = now() - t;
    CHECK_INT(v.limit, EG_LIMIT_REGEX);
    CHECK(v.limit_rule == eg_ruleset_rule(rs, 1));
    CHECK(t < 0.5);
    CHECK_IDS(&v, "T-M");
    CHECK_INT(v.action, EG_LOG);

    eg_eval(rs, req(&r, "GET", "/", "X-A", "baaa", NULL), &opts, alloc, &v);
    CHECK_INT(v.limit, EG_LIMIT_NONE);
    CHECK_IDS(&v, "T-M,T-RE");

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


static void
test_actions(void)
{
    int               i, n;
    char              idbuf[256], text[4096];
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    rs = RULES(RULE("T-LOG1", "log", "    match method is GET\n")
               RULE("T-BLOCK", "block", "    match method is GET\n")
               RULE("T-LOG2", "log", "    match path prefix /\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    eg_eval(rs, req(&r, "GET", "/", NULL), &opts, alloc, &v);
    CHECK_INT(v.action, EG_BLOCK);
    CHECK_INT(v.nmatches, 3);
    CHECK_INT(v.total, 3);
    CHECK_IDS(&v, "T-LOG1,T-BLOCK,T-LOG2");

    eg_eval(rs, req(&r, "POST", "/", NULL), &opts, alloc, &v);
    CHECK_INT(v.action, EG_LOG);
    CHECK_IDS(&v, "T-LOG2");

    /* a verdict is reset by every evaluation */
    eg_eval(rs, req(&r, "POST", "", NULL), &opts, alloc, &v);
    CHECK_INT(v.action, EG_LOG);
    eg_eval(rs, req(&r, "GET", "/", NULL), &opts, alloc, &v);
    eg_eval(rs, req(&r, "PUT", "/", NULL), &opts, alloc, &v);
    CHECK_INT(v.nmatches, 1);
    CHECK_INT(v.action, EG_LOG);

    eg_ruleset_free(rs);

    /* more matches than EG_MAX_MATCHES: the first ones listed, all counted */

    n = 0;
    for (i = 0; i < 10; i++) {
        n += snprintf(text + n, sizeof(text) - n,
                      "rule R%d\n name \"r\"\n cve CVE-2021-26855\n"
                      " action %s\n match method is GET\nend\n", i,
                      i == 9 ? "block" : "log");
    }

    rs = RULES(text);

    eg_eval(rs, req(&r, "GET", "/", NULL), &opts, alloc, &v);
    CHECK_INT(v.nmatches, EG_MAX_MATCHES);
    CHECK_INT(v.total, 10);
    CHECK_IDS(&v, "R0,R1,R2,R3,R4,R5,R6,R7");
    CHECK_INT(v.action, EG_BLOCK);

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


static void
test_report(void)
{
    char              idbuf[256];
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    rs = RULES(RULE("T-PL", "block",
                    "    match method not is GET HEAD\n"
                    "    match path suffix .js .css\n"
                    "    match cookie:X-BEResource backend\n")
               RULE("T-Q", "log",
                    "    match query contains powershell\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    eg_eval(rs, req(&r, "POST", "/ecp/%79.js?a=b+c%50owershell", "Cookie",
                    "X-BEResource=localhost~1942062522", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-PL,T-Q");
    CHECK_STR(v.matches[0].field, "cookie:X-BEResource");
    CHECK_STR(v.matches[0].value, "localhost~1942062522");
    CHECK_STR(v.matches[1].field, "query");
    CHECK_STR(v.matches[1].value, "a=b cPowershell");
    CHECK_STR(v.path, "/ecp/y.js");
    CHECK_STR(v.query, "a=b cPowershell");

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie",
                    "X-BEResource=localhost~1942062522", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.total, 0);

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


/* "note" rules never decide; they are listed when a request is logged */

static void
test_notes(void)
{
    char              idbuf[256];
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    rs = RULES(RULE("T-N", "note",
                    "    match cookies contains X-BEResource=\n")
               RULE("T-B", "block",
                    "    match cookie:X-BEResource backend\n")
               RULE("T-L", "log",
                    "    match header:User-Agent prefix antSword/\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie",
                    "X-BEResource=EX01.contoso.local~1942062522", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_PASS);
    CHECK_INT(v.total, 0);

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie",
                    "X-BEResource=localhost~1942062522", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_BLOCK);
    CHECK_IDS(&v, "T-B,T-N");
    CHECK_INT(v.total, 2);

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "User-Agent", "antSword/v2.1",
                    "Cookie", "X-BEResource=EX01~1", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.action, EG_LOG);
    CHECK_IDS(&v, "T-L,T-N");

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


/*
 * The engine keeps only the cookies some rule names: whatever it skips,
 * every named cookie is found, in any case, however long its name, from
 * every file of the set, and the limit still counts every cookie.
 */

static void
test_cookie_filter(void)
{
    int               i, n;
    char              idbuf[256], err[512], name[80], other[80], text[512];
    char              h[4096];
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    memset(name, 'N', 70);
    name[70] = '\0';
    memset(other, 'O', 70);
    other[70] = '\0';

    snprintf(text, sizeof(text), RULE("T-LONG", "log",
                                      "    match cookie:%s present\n"),
             name);

    rs = RULES(RULE("T-BE", "block",
                    "    match cookie:X-BEResource backend\n"));

    if (eg_ruleset_load_buffer(rs, "second.rules", (unsigned char *) text,
                               strlen(text), err, sizeof(err))
        != 0)
    {
        eg_test_fail(__FILE__, __LINE__, "%s", err);
        eg_ruleset_free(rs);
        return;
    }

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    n = 0;
    for (i = 0; i < 50; i++) {
        n += snprintf(h + n, sizeof(h) - n, "c%d=v; ", i);
    }
    n += snprintf(h + n, sizeof(h) - n, "X-BEResourcX=localhost~1; "
                  "%s=x; x-BeReSoUrCe=localhost~1", other);

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie", h, NULL), &opts,
            alloc, &v);
    CHECK_IDS(&v, "T-BE");
    CHECK_STR(v.matches[0].value, "localhost~1");

    for (i = 0; i < 70; i++) {
        name[i] = 'n';
    }

    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie", "a=1",
                    "Cookie", name, NULL),
            &opts, alloc, &v);
    CHECK_INT(v.total, 0);

    n = snprintf(h, sizeof(h), "%s=1", name);
    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie", other,
                    "Cookie", h, NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-LONG");

    /* unwanted cookies still count towards the limit */
    opts.max_cookies = 8;
    n = 0;
    for (i = 0; i < 9; i++) {
        n += snprintf(h + n, sizeof(h) - n, "c%d=v; ", i);
    }
    eg_eval(rs, req(&r, "GET", "/ecp/y.js", "Cookie", h, NULL), &opts,
            alloc, &v);
    CHECK_INT(v.limit, EG_LIMIT_COOKIES);

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


/* no memory: no crash, no verdict made up from nothing */

static void
test_alloc_failure(void)
{
    int               i;
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    rs = RULES(RULE("T-BE", "block",
                    "    match cookie:X-BEResource backend\n")
               RULE("T-P", "block", "    match path prefix /ecp/auth\n")
               RULE("T-A", "block", "    match arg:x is 1\n")
               RULE("T-C", "block", "    match cookies contains a\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    for (i = 0; i < 6; i++) {
        arena.fail_after = i;
        eg_eval(rs, req(&r, "GET", "/ecp/auth/?x=1", "Cookie", "a=1",
                        "Cookie", "X-BEResource=EX01~1", NULL),
                &opts, alloc, &v);
        CHECK(v.nmatches <= 3);
    }

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


/*
 * Probes (eg_plan_probes()) skip a rule only when it cannot match: a byte
 * at a fixed place of "is", "prefix", "suffix"; an anchor byte of
 * "contains"; the method; "untrusted" without trusted networks.  Each
 * case below is decided both ways, and a header sent twice is read in
 * full whatever its first copy says.
 */

static void
test_probes(void)
{
    char              idbuf[256];
    req_t             r;
    eg_cidr_t         net;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    rs = RULES(RULE("T-UA", "block",
                    "    match header:User-Agent prefix antSword/ "
                    "ExchangeServicesClient/0.0.0.0\n")
               RULE("T-M", "block",
                    "    match method not is GET HEAD OPTIONS\n"
                    "    match path prefix /owa/auth/\n")
               RULE("T-MI", "block",
                    "    match method is PROPFIND\n")
               RULE("T-AT", "block",
                    "    match path contains @ /x-\n"
                    "    match query contains X-Rps-CAT\n")
               RULE("T-U", "block",
                    "    match client untrusted\n"
                    "    match path is /ecp/\n")
               RULE("T-SX", "block",
                    "    match uri suffix .aspx\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    /* byte probes on a header, in either case; a second copy */

    eg_eval(rs, req(&r, "GET", "/", "User-Agent", "ANTSWORD/2.1", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-UA");
    eg_eval(rs, req(&r, "GET", "/", "User-Agent",
                    "ExchangeServicesClient/15.0", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");
    eg_eval(rs, req(&r, "GET", "/", "User-Agent", "Mozilla/5.0",
                    "user-agent", "antSword/x", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-UA");
    eg_eval(rs, req(&r, "GET", "/", "User-Agent", "antSwor", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "");

    /* the method, "not is" and "is", any case */

    eg_eval(rs, req(&r, "POST", "/OWA/Auth/x.js", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-M");
    eg_eval(rs, req(&r, "get", "/owa/auth/x.js", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");
    eg_eval(rs, req(&r, "POST", "/owa/authx/x.js", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");
    eg_eval(rs, req(&r, "PropFind", "/", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-MI");
    eg_eval(rs, req(&r, "PROPFINDX", "/", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");

    /* a name by its length and first byte first (eg_method_key()): the
       names in any case, and one of GET's key that is not GET */

    eg_eval(rs, req(&r, "options", "/owa/auth/x.js", NULL), &opts, alloc,
            &v);
    CHECK_IDS(&v, "");
    eg_eval(rs, req(&r, "hEAD", "/owa/auth/x.js", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");
    eg_eval(rs, req(&r, "GOT", "/owa/auth/x.js", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-M");
    eg_eval(rs, req(&r, "", "/owa/auth/x.js", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-M");

    /* anchors: any of the arguments' bytes; the query decoded */

    eg_eval(rs, req(&r, "GET", "/a/b@c?x-rps-cat=1", NULL), &opts, alloc,
            &v);
    CHECK_IDS(&v, "T-AT");
    eg_eval(rs, req(&r, "GET", "/a/X-b?%58%2dRps-Cat", NULL), &opts, alloc,
            &v);
    CHECK_IDS(&v, "T-AT");
    eg_eval(rs, req(&r, "GET", "/a/b?X-Rps-CAT", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");
    eg_eval(rs, req(&r, "GET", "/a/b@c?XRpsCAT", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");

    /* untrusted: nobody, until trusted networks are configured */

    eg_eval(rs, req(&r, "GET", "/ecp/", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");
    CHECK_INT(eg_cidr_parse(eg_test_s("10.0.0.0/8"), &net), 0);
    opts.trusted = &net;
    opts.ntrusted = 1;
    eg_eval(rs, req(&r, "GET", "/ECP/", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-U");
    opts.ntrusted = 0;

    /* a suffix of the raw target */

    eg_eval(rs, req(&r, "GET", "/owa/x.ASPX", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-SX");
    eg_eval(rs, req(&r, "GET", "/owa/x.aspx?", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


/* prefix and suffix lists long enough to be looked up by their edge byte */

static void
test_long_lists(void)
{
    char              idbuf[256];
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    rs = RULES(RULE("T-S", "block",
                    "    match path suffix .js .css .ico .gif .png .jpg "
                    ".jpeg .htm .html .eot .ttf .woff .woff2 .svg .dat "
                    ".manifest .t\n")
               RULE("T-P", "block",
                    "    match path prefix /a1/ /a2/ /a3/ /b/ /c/ /d/ /e/ "
                    "/f/ /g/ /h/ /aa\n")
               RULE("T-S1", "block",
                    "    match query suffix q .az .bz .cz .dz .ez .fz .gz .hz "
                    ".iz\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    eg_eval(rs, req(&r, "GET", "/x/y.WOFF2", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-S");
    eg_eval(rs, req(&r, "GET", "/x/app.Manifest", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-S");
    eg_eval(rs, req(&r, "GET", "/x/y.dat", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-S");
    eg_eval(rs, req(&r, "GET", "/x/GetList", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");
    eg_eval(rs, req(&r, "GET", "/x/y.t", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-S");
    eg_eval(rs, req(&r, "GET", "/t", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");
    eg_eval(rs, req(&r, "GET", "/x/y.woff3", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");

    eg_eval(rs, req(&r, "GET", "/A3/x", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-P");
    eg_eval(rs, req(&r, "GET", "/aaa", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-P");
    eg_eval(rs, req(&r, "GET", "/a4/x", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");

    /* by the last byte and the one before it: an argument of one byte
       whatever that byte is, a value of one byte */

    eg_eval(rs, req(&r, "GET", "/x?abcq", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-S1");
    eg_eval(rs, req(&r, "GET", "/x?a=1.GZ", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-S1");
    eg_eval(rs, req(&r, "GET", "/x?q", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-S1");
    eg_eval(rs, req(&r, "GET", "/x?z", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");
    eg_eval(rs, req(&r, "GET", "/x?qgZ", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");
    eg_eval(rs, req(&r, "GET", "/x?a.jz", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}



/*
 * Gates (eg_plan_gates()): many rules, each opened only by the headers,
 * grams and cookies a request sends; the same verdicts as without them.
 */

#define GATES_SAME(rq)  gates_same(rs, rq, &opts, alloc, __FILE__, __LINE__)

static void
test_gates(void)
{
    int               i, k;
    char              idbuf[256], want[64], ua[128];
    char              target[160], cookie[128], method[16], client[32];
    size_t            n;
    char             *text;
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;
    unsigned          seed;
    size_t            matched = 0;

    static const char  *kinds[] = {
        "header:User-Agent contains Scanner%d/",
        "header:X-Hdr-%d present",              /* past the 32 slots */
        "query contains param%d=",
        "uri suffix .ext%d",
        "path contains /dir%d/",
        "cookie:Cook%d present",
        "path prefix /seg%d/",                  /* many scope entries */
        "client is 198.51.100.%d",
        "method is BREW%d"
    };
    static const char  *ids_of[] = { "UA", "H", "Q", "U", "P", "C", "S",
                                     "CL", "M" };

    text = malloc(256 * 1024);     /* the rules below fit */
    if (text == NULL) {
        exit(2);
    }

    n = 0;
    for (k = 0; k < 9; k++) {
        for (i = 0; i < (k == 1 || k == 6 ? 40 : 10); i++) {
            n += snprintf(text + n, 256 * 1024 - n,
                          "rule T-%s%d\n    name \"x\"\n    cve CVE-2021-26855"
                          "\n    action block\n    match ", ids_of[k], i);
            n += snprintf(text + n, 256 * 1024 - n, kinds[k], i);
            n += snprintf(text + n, 256 * 1024 - n, "\nend\n");
        }
    }

    n += snprintf(text + n, 256 * 1024 - n, "%s",
                  RULE("T-PRE", "block", "    match path prefix /pre\n")
                  RULE("T-AB", "block", "    match query contains ab\n")
                  RULE("T-NEG", "block",
                       "    match header:X-Neg not present\n"
                       "    match method is BREW\n")
                  RULE("T-2", "block",
                       "    match query contains zz\n"
                       "    match uri contains /two/\n"));

    rs = RULES(text);
    free(text);

    /* the gates are there: names past the slots, six gram targets (the
       user agent, query, uri, unscoped path, client, method), the cookie
       names */

    CHECK(rs->ungated != NULL);
    CHECK(rs->nhdr_ovf > 0);
    CHECK_INT(rs->ngram_targets, 6);
    CHECK(rs->cookie_ungated != NULL);
    CHECK(rs->cookie_tab != NULL);

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    /* headers in a slot and past them, any case */

    eg_eval(rs, req(&r, "GET", "/", "X-HDR-39", "1", "x-hdr-3", "", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-H3,T-H39");
    GATES_SAME(&r.req);
    eg_eval(rs, req(&r, "GET", "/", "X-Hdr-399", "1", NULL), &opts, alloc,
            &v);
    CHECK_IDS(&v, "");

    /* a gram at every place of the value, the stride's every phase */

    for (i = 0; i < 12; i++) {
        snprintf(ua, sizeof(ua), "%.*sSCANNER7/1.0", i, "Mozilla/5.0 ");
        eg_eval(rs, req(&r, "GET", "/", "User-Agent", ua, NULL), &opts, alloc,
                &v);
        CHECK_IDS(&v, "T-UA7");
        GATES_SAME(&r.req);
    }

    eg_eval(rs, req(&r, "GET", "/", "User-Agent", "scanner7", NULL), &opts,
            alloc, &v);
    CHECK_IDS(&v, "");

    /* a second copy of the header; a copy over the byte bound opens every
       rule of the header, which reports the limit as without gates */

    eg_eval(rs, req(&r, "GET", "/", "User-Agent", "Mozilla/5.0",
                    "user-agent", "x Scanner2/", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-UA2");
    opts.max_header_bytes = 16;
    eg_eval(rs, req(&r, "GET", "/", "User-Agent", "Mozilla/5.0 (Windows)",
                    NULL), &opts, alloc, &v);
    CHECK_INT(v.limit, EG_LIMIT_HEADER_BYTES);
    GATES_SAME(&r.req);
    opts.max_header_bytes = 0;

    /* the query decoded, the raw uri, the normalized path */

    eg_eval(rs, req(&r, "GET", "/x?a=1&%50ARAM3=x", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-Q3");
    eg_eval(rs, req(&r, "GET", "/x/file.EXT4", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-U4");
    eg_eval(rs, req(&r, "GET", "/x/file.ext4?", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");
    eg_eval(rs, req(&r, "GET", "/a/./DIR2//b", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-P2");
    eg_eval(rs, req(&r, "GET", "/a/dir2", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");

    /* cookies: the names the header lacks drop their rules */

    eg_eval(rs, req(&r, "GET", "/", "Cookie", "a=1; COOK3=v; cook33=1",
                    NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-C3");
    GATES_SAME(&r.req);
    eg_eval(rs, req(&r, "GET", "/", "Cookie", "cook3x=1", NULL), &opts,
            alloc, &v);
    CHECK_IDS(&v, "");

    /* scope past 32 entries: exact by hash, a prefix entry */

    eg_eval(rs, req(&r, "GET", "/SEG35/x", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-S35");
    eg_eval(rs, req(&r, "GET", "/seg35", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");
    eg_eval(rs, req(&r, "GET", "/Prefix/x", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-PRE");

    /* the client and the method */

    req(&r, "GET", "/", NULL);
    r.req.client_addr = eg_test_s("198.51.100.7");
    eg_eval(rs, &r.req, &opts, alloc, &v);
    CHECK_IDS(&v, "T-CL7");
    r.req.client_addr = eg_test_s("198.51.100.77");
    eg_eval(rs, &r.req, &opts, alloc, &v);
    CHECK_IDS(&v, "");
    GATES_SAME(&r.req);
    eg_eval(rs, req(&r, "brew3", "/", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-M3");
    eg_eval(rs, req(&r, "BREW33", "/", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "");

    /* short arguments and "not" lines are no gates */

    eg_eval(rs, req(&r, "GET", "/?ab", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-AB");
    eg_eval(rs, req(&r, "BREW", "/", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-NEG");
    eg_eval(rs, req(&r, "GET", "/two/?zz", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-2");

    /* many requests of pieces of the rules, in and out of place */

    seed = 1;
    for (i = 0; i < 3000; i++) {
        seed = seed * 1103515245 + 12345;
        k = (seed >> 8) % 40;
        snprintf(want, sizeof(want), "%s%d%s",
                 (seed >> 20) & 1 ? "SCANNER" : "Scanner", k % 12,
                 (seed >> 3) & 1 ? "/" : "");
        snprintf(ua, sizeof(ua), "%.*s%s", (int) ((seed >> 4) % 9),
                 "abcdefghi", want);
        snprintf(target, sizeof(target), "/%s%d/%s?%s%d=%s",
                 (seed >> 12) & 1 ? "seg" : "dir", k,
                 (seed >> 14) & 1 ? "dir3/f.ext5" : "x",
                 (seed >> 16) & 1 ? "param" : "PARAM", k % 11,
                 (seed >> 18) & 1 ? "ab" : "zz");
        snprintf(cookie, sizeof(cookie), "cook%d=1; x=2; Cook%d=3", k % 13,
                 k / 3);
        snprintf(method, sizeof(method), "%s%d",
                 (seed >> 26) & 1 ? "Brew" : "BREW", k % 12);
        req(&r, (seed >> 22) & 1 ? method : "BREW", target, "User-Agent", ua,
            "Cookie", cookie, (seed >> 24) & 1 ? "X-Hdr-33" : "X-Neg", "1",
            NULL);
        snprintf(client, sizeof(client), "198.51.100.%d", k % 12);
        r.req.client_addr = eg_test_s(client);
        matched += GATES_SAME(&r.req);
    }

    /* most requests match some rules: the comparison means something */

    CHECK(matched > 3000);

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


/*
 * The literals of a regex (eg_regex_literals()): one of them is in every
 * value the regex matches, so a gram of it may open the rule; a regex
 * this reading does not follow has none.  Then the gates on such rules
 * against values made of their pieces: the same verdicts as without.
 */

static void
test_regex_literals(void)
{
    int               i, k;
    char              ua[128], idbuf[256];
    size_t            n, j;
    char             *text;
    req_t             r;
    eg_str_t          got;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;
    unsigned          seed;
    size_t            matched = 0;
    const eg_cond_t  *c;

    static const char  *cases[][2] = {
        { "BadScanner\\d+/", "badscanner" },
        { "sqlmap|nikto|nmap\\.", "sqlmap,nikto,nmap." },
        { "(?:foo|bar)baz\\.php", "baz.php" },
        { "abc", "" },
        { "abcde?fgh", "abcd" },
        { "ab+cdef", "cdef" },
        { "xy+zzzz", "zzzz" },
        { "(?i)scanner", "" },
        { "\\x41bcdef", "" },
        { "scan[a-z]ner", "scan" },
        { "x{2}yyyy", "yyyy" },
        { "abcd|ef", "" },
        { "a\\.b\\/cdef", "a.b/cdef" },
        { "\\Qabcd\\E", "" },
        { "(*UTF)abcdef", "" },
        { "wxyz\\z", "wxyz" },
        { "A(?=b)CDEF", "cdef" },
        { "[)|]qrst(u|v)", "qrst" },
        { "kl\\d{2,3}mnop", "mnop" },
        { "^/ab(cd|ef)*ghij$", "ghij" }
    };
    static const char  *pieces[] = {
        "BadScanner", "7", "/", "sqlmap", "nmap.", "foo", "bar", "baz.php",
        "abc", "abcd", "e", "fgh", "abbb", "cdef", "xyyy", "zzzz", "scan",
        "q", "ner", "xx", "yyyy", "a.b/", "wxyz", "A", "b", "CDEF", ")",
        "qrst", "u", "kl12", "mnop", "/ab", "cdef", "ghij", "ef"
    };

    text = malloc(64 * 1024);
    if (text == NULL) {
        exit(2);
    }

    n = 0;
    for (k = 0; k < (int) (sizeof(cases) / sizeof(cases[0])); k++) {
        n += snprintf(text + n, 64 * 1024 - n,
                      "rule T-R%d\n    name \"x\"\n    cve CVE-2021-26855\n"
                      "    action block\n    match header:User-Agent regex "
                      "'%s'\nend\n", k, cases[k][0]);
    }

    rs = RULES(text);
    free(text);

    for (k = 0; k < (int) (sizeof(cases) / sizeof(cases[0])); k++) {
        c = &rs->rules[k]->conds[0];
        n = 0;
        for (j = 0; j < c->nlits; j++) {
            n += snprintf(idbuf + n, sizeof(idbuf) - n, "%s%.*s",
                          j ? "," : "", (int) c->lits[j].len,
                          c->lits[j].data);
        }
        idbuf[n] = '\0';
        got.data = (const unsigned char *) idbuf;
        got.len = n;
        CHECK_STR(got, cases[k][1]);
    }

    CHECK(rs->ungated != NULL);
    CHECK_INT(rs->ngram_targets, 1);

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    eg_eval(rs, req(&r, "GET", "/", "User-Agent", "x NIKTO/2", NULL), &opts,
            alloc, &v);
    CHECK_IDS(&v, "T-R1");
    eg_eval(rs, req(&r, "GET", "/", "User-Agent", "BadScanner12/", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-R0,T-R7");         /* (?i)scanner: no gate, matches */

    /* values of the rules' pieces and of what is around them */

    seed = 7;
    for (i = 0; i < 4000; i++) {
        n = 0;
        for (k = 0; k < 5; k++) {
            seed = seed * 1103515245 + 12345;
            n += snprintf(ua + n, sizeof(ua) - n, "%s",
                          pieces[(seed >> 8) % (sizeof(pieces)
                                                / sizeof(pieces[0]))]);
        }
        req(&r, "GET", "/", "User-Agent", ua, NULL);
        matched += GATES_SAME(&r.req);
    }

    CHECK(matched > 1000);

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


/* the verdict with the gates and without them (every rule looked at);
   returns how many rules matched */

static size_t
gates_same(eg_ruleset_t *rs, const eg_request_t *rq, const eg_options_t *opts,
    const eg_alloc_t *alloc, const char *file, int line)
{
    char           a[512], b[512];
    uint64_t      *ungated, *cookie_ungated;
    eg_verdict_t   v, w;

    eg_eval(rs, rq, opts, alloc, &v);

    ungated = rs->ungated;
    cookie_ungated = rs->cookie_ungated;
    rs->ungated = NULL;
    rs->cookie_ungated = NULL;
    eg_eval(rs, rq, opts, alloc, &w);
    rs->ungated = ungated;
    rs->cookie_ungated = cookie_ungated;

    if (strcmp(ids(&v, a, sizeof(a)), ids(&w, b, sizeof(b))) != 0
        || v.action != w.action || v.limit != w.limit || v.total != w.total)
    {
        eg_test_fail(file, line, "with gates \"%s\" (limit %d), without "
                     "\"%s\" (limit %d)", a, (int) v.limit, b, (int) w.limit);
    }

    return v.nmatches;
}


/*
 * eg_ieq_fold() (header slots, path scope entries) against eg_ieq_lower()
 * and a byte-by-byte reading: names of 0-40 bytes (past EG_FOLD_MAX it
 * falls back) with letters, digits and the bytes one case bit away from
 * another ('-' and CR, '@' and '`', '[' and '{', '_' and DEL, 8-bit), and
 * for each the name in other cases, with one byte changed, one bit 0x20
 * flipped, or one byte shorter.
 */

/* the next number of the tests' pseudo-random sequence (an LCG) */

static unsigned
lcg(unsigned *seed)
{
    *seed = *seed * 1103515245 + 12345;
    return *seed;
}


/* n pieces drawn by seed, joined into buf (size bytes, NUL-terminated):
   a piece that does not fit is left out; returns the length */

static size_t
join_pieces(char *buf, size_t size, const char *const *pieces,
    size_t npieces, size_t n, unsigned *seed)
{
    size_t  i, k, len, plen;

    len = 0;

    for (i = 0; i < n; i++) {
        k = (lcg(seed) >> 16) % npieces;
        plen = strlen(pieces[k]);

        if (len + plen < size) {
            memcpy(buf + len, pieces[k], plen);
            len += plen;
        }
    }

    buf[len] = '\0';
    return len;
}


static int
fold_plain(eg_str_t a, eg_str_t lower)
{
    size_t         i;
    unsigned char  c;

    if (a.len != lower.len) {
        return 0;
    }

    for (i = 0; i < a.len; i++) {
        c = a.data[i];
        if (c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }
        if (c != lower.data[i]) {
            return 0;
        }
    }

    return 1;
}


static void
test_fold(void)
{
    int             k, t, bad, same, differ;
    size_t          i, len;
    unsigned        seed;
    eg_str_t        a, lower;
    eg_fold_t       f;
    unsigned char   lb[48], ab[48], c;
    static const unsigned char  alpha[] = "abcxyz019-_.@[/\r`{\x7f\x80\xe0";

    seed = 7;
    bad = 0;
    same = 0;
    differ = 0;

    for (k = 0; k < 20000; k++) {
        len = (lcg(&seed) >> 16) % 41;

        for (i = 0; i < len; i++) {
            lb[i] = alpha[(lcg(&seed) >> 16) % (sizeof(alpha) - 1)];
        }

        lower.data = lb;
        lower.len = len;
        eg_fold_make(lower, &f);

        for (t = 0; t < 8; t++) {
            memcpy(ab, lb, len);
            a.data = ab;
            a.len = len;

            /* each letter in either case */
            for (i = 0; i < len; i++) {
                if (ab[i] >= 'a' && ab[i] <= 'z' && ((lcg(&seed) >> 16) & 1)) {
                    ab[i] &= ~0x20;
                }
            }

            i = len ? (lcg(&seed) >> 8) % len : 0;

            switch (t) {
            case 1:
                if (len) {
                    ab[i] ^= 0x20;              /* one case bit */
                }
                break;
            case 2:
                if (len) {
                    c = alpha[(seed >> 16) % (sizeof(alpha) - 1)];
                    ab[i] = (seed >> 20) & 1 ? c & ~0x20 : c;
                }
                break;
            case 3:
                if (len) {
                    a.len--;                    /* shorter */
                }
                break;
            default:
                break;
            }

            if (eg_ieq_fold(a, lower, &f) != eg_ieq_lower(a, lower)
                || eg_ieq_lower(a, lower) != fold_plain(a, lower))
            {
                if (bad++ < 5) {
                    eg_test_fail(__FILE__, __LINE__, "fold %d, lower %d, "
                                 "plain %d: \"%.*s\" and \"%.*s\"",
                                 eg_ieq_fold(a, lower, &f),
                                 eg_ieq_lower(a, lower), fold_plain(a, lower),
                                 (int) a.len, a.data, (int) len, lb);
                }
                continue;
            }

            same += fold_plain(a, lower);
            differ += !fold_plain(a, lower);
        }
    }

    CHECK(bad == 0);

    /* both answers are common */
    CHECK(same > 40000);
    CHECK(differ > 40000);
}


/*
 * The pair probe of "contains" (eg_plan_probe_anchor(), eg_probe_pair())
 * drops a rule only when the value cannot hold the needle: random needles
 * of letters and the bytes that are not ('-', '/', '@', '.', '0', '='),
 * the byte chosen anywhere in them (its pair after it, or before it at
 * the needle's end), against random queries and whole targets of up to
 * 90 bytes that hold the needle in any case, or pieces of it, or neither,
 * each in a buffer of its length.  The rule matches exactly when a plain
 * search finds the needle, and no byte past the value is read.
 */

static void
test_pair_probes(void)
{
    int              k, t, bad, f;
    char             text[512], target[256], idbuf[256];
    size_t           i, j, n, nlen, qlen, at;
    unsigned         seed, want, got;
    eg_str_t         hay, needle, win;
    req_t            r;
    eg_alloc_t      *alloc;
    eg_options_t     opts;
    eg_verdict_t     v;
    eg_ruleset_t    *rs;
    eg_test_arena_t  arena;
    unsigned char    nd[8], q[128], *exact;
    int              hits, misses;
    static const char  nalpha[] = "abrx-/@.0=";
    static const char  halpha[] = "abrxABRX-/@.0=&";
    static const char  *fields[] = { "query", "uri" };

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    seed = 5;
    bad = 0;
    hits = 0;
    misses = 0;

    for (k = 0; k < 3000; k++) {
        nlen = 2 + (lcg(&seed) >> 16) % 6;

        for (i = 0; i < nlen; i++) {
            nd[i] = nalpha[(lcg(&seed) >> 16) % (sizeof(nalpha) - 1)];
        }

        f = (lcg(&seed) >> 16) % 2;

        snprintf(text, sizeof(text),
                 RULE("T-P", "block", "    match %s contains %.*s\n"),
                 fields[f], (int) nlen, nd);
        rs = RULES(text);

        needle.data = nd;
        needle.len = nlen;

        for (t = 0; t < 40; t++) {
            qlen = (lcg(&seed) >> 16) % 90;

            for (i = 0; i < qlen; i++) {
                q[i] = halpha[(lcg(&seed) >> 16) % (sizeof(halpha) - 1)];
            }

            /* the needle (or, one time in four, all but a byte of it) at
               a random place, its letters in either case */

            if (qlen >= nlen && (lcg(&seed) >> 16) % 3) {
                at = (lcg(&seed) >> 16) % (qlen - nlen + 1);

                for (i = 0; i < nlen; i++) {
                    q[at + i] = nd[i];
                    if (nd[i] >= 'a' && nd[i] <= 'z' && (lcg(&seed) >> 20) & 1)
                    {
                        q[at + i] &= ~0x20;
                    }
                }

                if ((lcg(&seed) >> 16) % 4 == 0) {
                    q[at + (lcg(&seed) >> 16) % nlen] = 'Q';
                }
            }

            n = snprintf(target, sizeof(target), "/p?%.*s", (int) qlen, q);

            hay.data = (const unsigned char *) target + (f == 0 ? 3 : 0);
            hay.len = n - (f == 0 ? 3 : 0);

            want = 0;
            for (j = 0; j + nlen <= hay.len; j++) {
                win.data = hay.data + j;
                win.len = nlen;
                if (fold_plain(win, needle)) {
                    want = 1;
                    break;
                }
            }

            /* the target in a buffer of its length, so that
               AddressSanitizer sees a byte read past the value */
            exact = malloc(n);
            if (exact == NULL) {
                eg_test_fail(__FILE__, __LINE__, "out of memory");
                exit(2);
            }
            memcpy(exact, target, n);

            req(&r, "GET", target, NULL);
            r.req.target.data = exact;
            eg_eval(rs, &r.req, &opts, alloc, &v);
            free(exact);
            got = v.nmatches != 0;

            if (got != want) {
                if (bad++ < 5) {
                    eg_test_fail(__FILE__, __LINE__, "%s contains %.*s: "
                                 "rule %u, plain %u, \"%s\" (%s)",
                                 fields[f], (int) nlen, nd, got, want, target,
                                 ids(&v, idbuf, sizeof(idbuf)));
                }
                continue;
            }

            hits += want;
            misses += !want;
        }

        eg_ruleset_free(rs);
    }

    CHECK(bad == 0);
    CHECK(hits > 20000);
    CHECK(misses > 20000);

    eg_test_arena_free(&arena);
}


/*
 * The first-bytes test (eg_cookie_pre_miss()) reads three bytes of a
 * part: never past the part, nor past the header, which is copied to a
 * heap buffer of its exact length so that AddressSanitizer sees a byte
 * read after it.  Short parts that start like a wanted name, after
 * cookies that put them anywhere in or after a 64-byte block, on each
 * path (SSE2, AVX2 where the CPU has it): none is a wanted cookie, and a
 * wanted one in the same places is found.
 */

static void
test_cookie_prefix_edges(void)
{
    int            k, nk, bad, checked;
    char           hdr[256], idbuf[256];
    size_t         t, e, pad, n;
    unsigned       want, got;
    req_t          r;
    eg_alloc_t    *alloc;
    eg_options_t   opts;
    eg_verdict_t   v;
    eg_ruleset_t  *rs;
    unsigned char *exact;
    eg_test_arena_t  arena;
    static const struct {
        const char  *text;
        unsigned     want;       /* bit 0: x-beresource, bit 1: email */
    } tails[] = {
        { "x", 0 }, { "X", 0 }, { "xb", 0 }, { "x-", 0 }, { " x", 0 },
        { " xb", 0 }, { " X-", 0 }, { "e", 0 }, { "em", 0 }, { " em", 0 },
        { "=", 0 }, { "x=", 0 }, { "x-=", 0 }, { "x-b", 0 }, { "ema", 0 },
        { " x-B", 0 }, { "x-beresourc", 0 }, { "emai=1", 0 },
        { "x-beresource=1", 1 }, { " X-BEResource=a~1", 1 },
        { "email=a", 2 }, { " EMAIL", 0 }, { "  email=b", 2 },
        { "email =c", 2 }
    };
    static const char  *ends[] = { "", ";", "; ", ";x", "; b=2" };

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    rs = RULES("rule T0\n    name \"T\"\n    cve CVE-2021-26855\n"
               "    action log\n    match cookie:X-BEResource present\nend\n"
               "rule T1\n    name \"T\"\n    cve CVE-2021-26855\n"
               "    action log\n    match cookie:email present\nend\n");

    bad = 0;
    checked = 0;

    for (k = 0, nk = 1 + eg_cpu_avx2(); k < nk; k++) {
        eg_avx2 = k;

        for (t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
            for (e = 0; e < sizeof(ends) / sizeof(ends[0]); e++) {
                for (pad = 0; pad < 140; pad++) {
                    /* a cookie of pad bytes, then the part */
                    n = 0;
                    if (pad >= 5) {
                        memcpy(hdr, "a=", 2);
                        memset(hdr + 2, 'v', pad - 4);
                        memcpy(hdr + pad - 2, "; ", 2);
                        n = pad;
                    }

                    n += snprintf(hdr + n, sizeof(hdr) - n, "%s%s",
                                  tails[t].text, ends[e]);

                    exact = malloc(n);
                    if (exact == NULL) {
                        eg_test_fail(__FILE__, __LINE__, "out of memory");
                        exit(2);
                    }
                    memcpy(exact, hdr, n);

                    req(&r, "GET", "/", "Cookie", "", NULL);
                    r.h[0].value.data = exact;
                    r.h[0].value.len = n;

                    eg_eval(rs, &r.req, &opts, alloc, &v);
                    free(exact);

                    want = tails[t].want;
                    got = 0;
                    for (n = 0; n < v.nmatches; n++) {
                        got |= 1u << (eg_rule_id(v.matches[n].rule).data[1]
                                      - '0');
                    }

                    checked++;

                    if (got != want && bad++ < 5) {
                        eg_test_fail(__FILE__, __LINE__, "avx2 %d: rules %x, "
                                     "want %x, \"%.*s%s%s\" (%s)", k, got,
                                     want, (int) pad, hdr, tails[t].text,
                                     ends[e], ids(&v, idbuf, sizeof(idbuf)));
                    }
                }
            }
        }
    }

    eg_avx2 = -1;

    CHECK(bad == 0);
    CHECK(checked > 10000);

    eg_ruleset_free(rs);
    eg_test_arena_free(&arena);
}


/*
 * The cookie parse's first test of a name (eg_cookie_part()): its first
 * three bytes against those of each wanted name, 0x20 bits set.  Rule
 * sets of 1-8 "cookie:NAME present" rules, names of bytes some of which
 * differ from another only by that bit ('@' and '`', '_' and DEL, '[' and
 * '{', ...), and Cookie headers of those names in other cases, with one
 * case bit flipped, one byte changed, or none of them.  A rule matches
 * exactly when a plain reading finds its name in the header.
 */

static void
test_cookie_prefix(void)
{
    int              k, t, i, j, nnames, nparts, bad, hits, misses;
    char             text[4096], hdr[1024], idbuf[256], id[16];
    size_t           n, len[8], plen;
    unsigned         seed, want, got;
    eg_str_t         lname, pname;
    req_t            r;
    eg_alloc_t      *alloc;
    eg_options_t     opts;
    eg_verdict_t     v;
    eg_ruleset_t    *rs;
    eg_test_arena_t  arena;
    unsigned char    names[8][12], part[16], c;
    static const unsigned char  alpha[] = "abxyz09-_.@[]^`{}~!$%&*+|";

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    seed = 11;
    bad = 0;
    hits = 0;
    misses = 0;

    for (k = 0; k < 1500; k++) {
        nnames = 1 + (lcg(&seed) >> 16) % 8;
        n = 0;

        for (i = 0; i < nnames; i++) {
            len[i] = 3 + (lcg(&seed) >> 16) % 8;

            for (j = 0; j < (int) len[i]; j++) {
                names[i][j] = alpha[(lcg(&seed) >> 16) % (sizeof(alpha) - 1)];
            }

            n += snprintf(text + n, sizeof(text) - n,
                          "rule T%d\n    name \"T\"\n    cve CVE-2021-26855\n"
                          "    action log\n"
                          "    match cookie:%.*s present\nend\n",
                          i, (int) len[i], names[i]);
        }

        rs = RULES(text);

        for (t = 0; t < 20; t++) {
            nparts = 1 + (lcg(&seed) >> 16) % 3;
            n = 0;
            want = 0;

            for (j = 0; j < nparts; j++) {
                i = (lcg(&seed) >> 16) % nnames;
                plen = len[i];
                memcpy(part, names[i], plen);

                /* letters in either case */
                for (c = 0; c < plen; c++) {
                    if (part[c] >= 'a' && part[c] <= 'z'
                        && ((lcg(&seed) >> 16) & 1))
                    {
                        part[c] &= ~0x20;
                    }
                }

                c = (lcg(&seed) >> 8) % 3;            /* in the first three */

                switch ((seed >> 16) % 4) {
                case 1:
                    /* one case bit, unless that makes ';', '=', white
                       space, a control byte or DEL */
                    if (part[c] != '=' - 0x20 && part[c] != ';' - 0x20
                        && (part[c] ^ 0x20) > 0x20 && (part[c] ^ 0x20) < 0x7f)
                    {
                        part[c] ^= 0x20;
                    }
                    break;
                case 2:
                    part[c] = alpha[(seed >> 20) % (sizeof(alpha) - 1)];
                    break;
                case 3:
                    /* another name of the same length */
                    for (c = 0; c < plen; c++) {
                        part[c] = alpha[(lcg(&seed) >> 16)
                                        % (sizeof(alpha) - 1)];
                    }
                    break;
                default:
                    break;
                }

                n += snprintf(hdr + n, sizeof(hdr) - n, "%s%.*s=v",
                              j ? ((seed >> 24) & 1 ? "; " : ";") : "",
                              (int) plen, part);

                pname.data = part;
                pname.len = plen;

                for (i = 0; i < nnames; i++) {
                    lname.data = names[i];
                    lname.len = len[i];
                    if (fold_plain(pname, lname)) {
                        want |= 1u << i;
                    }
                }
            }

            eg_eval(rs, req(&r, "GET", "/", "Cookie", hdr, NULL), &opts,
                    alloc, &v);

            got = 0;
            for (i = 0; i < (int) v.nmatches; i++) {
                snprintf(id, sizeof(id), "%.*s",
                         (int) eg_rule_id(v.matches[i].rule).len,
                         eg_rule_id(v.matches[i].rule).data);
                got |= 1u << atoi(id + 1);
            }

            if (got != want) {
                if (bad++ < 5) {
                    eg_test_fail(__FILE__, __LINE__, "rules %x, plain %x, "
                                 "\"%s\" (%s)", got, want, hdr,
                                 ids(&v, idbuf, sizeof(idbuf)));
                }
                continue;
            }

            hits += want != 0;
            misses += want == 0;
        }

        eg_ruleset_free(rs);
    }

    CHECK(bad == 0);

    /* both answers are common */
    CHECK(hits > 5000);
    CHECK(misses > 5000);

    eg_test_arena_free(&arena);
}


/*
 * Line probes (EG_PROBE_LINE): planned for a "not is", "not prefix" or
 * "not suffix" line on the path, query or uri, and for an "is", "prefix"
 * or "suffix" line with a list on those or a header, after the other
 * probes; with the line they test, one anchor slot for the rules that
 * have the same line.  A request that has the value a negative line
 * excludes, in any case, or none of a list's, skips the rule, and any
 * other is decided as without the probe.  Random targets and headers near
 * those values, each evaluated with the rules' probes and without them.
 */

static void
test_line_probes(void)
{
    int               t, bad, hits, misses, want;
    char              idbuf[256], want_ids[128], target[160], hv[2][64];
    size_t            i, j, n, k, nh;
    unsigned          seed, nprobes[16];
    uint64_t          mask, slots[16];
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_rule_t        *rule;
    eg_test_arena_t   arena;
    static const char  *pieces[] = {
        "/ecp/", "/ECP/", "DDI/", "ddi/", "DDIService.svc/", "ddiservice.SVC/",
        "Get", "GET", "Ge", "List", "Set", "x", "/", "%44", "%2f", "?",
        "a=1", "A=1", "a%3d1", ".js", ".JS", "&", "/q", "/s/", "/r/", "/x",
        "b=2", "2", "/l/", ".css", ".cs"
    };
    static const char  *hpieces[] = {
        "abc/", "ABC", "defghijklmnop/0.0", "DEFGHIJKLMNOP/", "0.0", "1", " "
    };
    static const struct {
        const char  *method, *target, *h1, *v1, *h2, *v2, *ids;
    } fixed[] = {
        { "POST", "/ecp/DDI/DDIService.svc/GetList", NULL, NULL, NULL, NULL,
          "" },
        { "POST", "/ECP/ddi/ddiservice.SVC/getobject", NULL, NULL, NULL,
          NULL, "" },
        { "POST", "/ecp/%44DI/DDIService.svc/GetList", NULL, NULL, NULL,
          NULL, "" },
        { "POST", "/ecp/DDI/DDIService.svc/SetObject", NULL, NULL, NULL,
          NULL, "T-NP" },
        { "POST", "/ecp/DDI/DDIService.svc/Ge", NULL, NULL, NULL, NULL,
          "T-NP" },
        { "POST", "/ecp/DDI/DDIService.svc/GetX/x", NULL, NULL, NULL, NULL,
          "" },
        { "POST", "/ecp/DDI/DDIService.svc/SetX/x", NULL, NULL, NULL, NULL,
          "T-NP,T-NP2" },
        { "GET", "/ecp/x/x", NULL, NULL, NULL, NULL, "T-NP2" },
        { "GET", "/q?A=1", NULL, NULL, NULL, NULL, "T-NU,T-NQP" },
        { "GET", "/q?a%3d1", NULL, NULL, NULL, NULL, "T-NU,T-NQP" },
        { "GET", "/q?a=12", NULL, NULL, NULL, NULL, "T-NQ,T-NU,T-NQ3,T-NQ4" },
        { "GET", "/q?b=1", NULL, NULL, NULL, NULL,
          "T-NQ,T-NQ2,T-NU,T-NQ3,T-NQ4" },
        { "GET", "/q?b=2", NULL, NULL, NULL, NULL, "T-NU,T-NQ3,T-NQP,T-NQ4" },
        { "GET", "/q", NULL, NULL, NULL, NULL,
          "T-NQ,T-NQ2,T-NU,T-NQ3,T-NQ4" },
        { "GET", "/s/x.JS", NULL, NULL, NULL, NULL, "" },
        { "GET", "/s/x.js?y", NULL, NULL, NULL, NULL, "T-NS" },
        { "POST", "/y", "X-L", "defghijklmnop/1.0", NULL, NULL, "" },
        { "POST", "/y", "X-L", "DEFGHIJKLMNOP/0.0.1", NULL, NULL,
          "T-LH,T-LH2" },
        { "GET", "/y", "x-l", "zzz", "X-L", "abc/1", "T-LH" },
        { "GET", "/y", "X-L", "zzz", "X-M", "abc/1", "T-LM" },
        { "POST", "/l/x.CSS", NULL, NULL, NULL, NULL, "T-LP" },
        { "POST", "/l/x.cs", NULL, NULL, NULL, NULL, "" }
    };
    /* rule, line: the lines with an EG_PROBE_LINE probe, and the line
       whose slot each shares: T-NP2's is T-NP's */
    static const size_t  planned[][4] = {
        { 1, 1, 1, 1 }, { 2, 0, 2, 0 }, { 3, 0, 3, 0 }, { 6, 0, 1, 1 },
        { 7, 0, 7, 0 }, { 8, 0, 8, 0 }, { 9, 0, 9, 0 }, { 10, 0, 10, 0 },
        { 11, 1, 11, 1 }, { 12, 0, 10, 0 }, { 13, 0, 13, 0 },
        { 14, 0, 14, 0 }, { 15, 0, 15, 0 }
    };

    rs = RULES(RULE("T-NC", "block",
                    "    match query contains -x\n"
                    "    match uri prefix /z\n")
               RULE("T-NP", "block",
                    "    match method not is GET HEAD\n"
                    "    match path not prefix /ecp/DDI/DDIService.svc/Get\n"
                    "    match path prefix /ecp/\n")
               RULE("T-NQ", "block",
                    "    match query not is a=1 b=2\n"
                    "    match uri prefix /q\n")
               RULE("T-NS", "block",
                    "    match uri not suffix .js .css\n"
                    "    match path prefix /s/\n")
               RULE("T-NR", "block",
                    "    match path not regex ^/r/x\n"
                    "    match path prefix /r/\n")
               RULE("T-NH", "block",
                    "    match header:X-T not prefix a\n"
                    "    match method is PUT\n")
               RULE("T-NP2", "log",
                    "    match path not prefix /ecp/DDI/DDIService.svc/Get\n"
                    "    match path suffix /x\n")
               RULE("T-NQ2", "log",
                    "    match query not prefix a=1 b=2\n"
                    "    match uri prefix /q\n")
               RULE("T-NU", "log",
                    "    match uri not is a=1 b=2\n"
                    "    match uri prefix /q\n")
               RULE("T-NQ3", "log",
                    "    match query not is a=1 b=\n"
                    "    match uri prefix /q\n")
               RULE("T-LH", "log",
                    "    match header:X-L prefix abc/ defghijklmnop/0.0\n")
               RULE("T-LP", "block",
                    "    match path prefix /l/\n"
                    "    match path suffix .js .css\n")
               RULE("T-LH2", "block",
                    "    match header:x-l prefix abc/ defghijklmnop/0.0\n"
                    "    match method is POST\n")
               RULE("T-NQP", "block",
                    "    match query is a=1 b=2\n"
                    "    match uri prefix /q\n")
               RULE("T-NQ4", "log",
                    "    match query not is a=1\n"
                    "    match uri prefix /q\n")
               RULE("T-LM", "log",
                    "    match header:X-M prefix abc/ defghijklmnop/0.0\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    /* the plan: one probe per such line, none for a regex, a header or
       the method (which has its own); the same line, one slot */

    n = 0;
    for (i = 0; i < 16; i++) {
        rule = rs->rules[i];
        nprobes[i] = (unsigned) rule->nprobes;
        slots[i] = 0;

        for (j = 0; j < rule->nprobes; j++) {
            mask = rule->probes[j].mask;

            if (rule->probes[j].kind != EG_PROBE_ANCHOR
                || (mask & EG_PROBE_LINE) != EG_PROBE_LINE)
            {
                continue;
            }

            mask &= ~EG_PROBE_LINE;
            CHECK(mask != 0 && (mask & (mask - 1)) == 0);
            slots[i] = mask;

            for (k = 0; k < sizeof(planned) / sizeof(planned[0]); k++) {
                if (planned[k][0] == i
                    && rs->anchor_field[eg_ctz64(mask)] == EG_ANCHOR_LINE
                    && rs->anchor_line[eg_ctz64(mask)]
                       == &rs->rules[planned[k][2]]->conds[planned[k][3]])
                {
                    break;
                }
            }

            CHECK(k < sizeof(planned) / sizeof(planned[0]));
            n++;
        }
    }
    CHECK_INT(n, 13);
    CHECK(slots[0] == 0 && slots[4] == 0 && slots[5] == 0);

    for (i = 1; i < 16; i++) {
        for (j = 1; j < i; j++) {
            if (slots[i] && slots[j]) {
                CHECK((slots[i] == slots[j])
                      == ((i == 6 && j == 1) || (i == 12 && j == 10)));
            }
        }
    }

    /* a list's line probe comes after the byte probes */

    rule = rs->rules[11];
    CHECK(rule->nprobes > 1
          && (rule->probes[rule->nprobes - 1].mask & EG_PROBE_LINE)
             == EG_PROBE_LINE);
    for (j = 0; j + 1 < rule->nprobes; j++) {
        CHECK(rule->probes[j].kind == EG_PROBE_BYTE);
    }

    /* the excluded values, in any case and as IIS reads them; the shared
       slot, the first rule's answer the second's; lists: none of their
       values, one in any case, two headers */

    for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        eg_eval(rs, req(&r, fixed[i].method, fixed[i].target, fixed[i].h1,
                        fixed[i].v1, fixed[i].h2, fixed[i].v2, NULL),
                &opts, alloc, &v);
        CHECK_IDS(&v, fixed[i].ids);
    }

    /* a header too long: the rule reports the limit */

    opts.max_header_bytes = 8;
    eg_eval(rs, req(&r, "POST", "/y", "X-L", "defghijklmnop/1.0", NULL),
            &opts, alloc, &v);
    CHECK_INT(v.limit, EG_LIMIT_HEADER_BYTES);
    opts.max_header_bytes = 0;

    /* random targets and X-L headers from the pieces: the same verdict
       with the probes and without */

    seed = 11;
    bad = 0;
    hits = 0;
    misses = 0;

    for (t = 0; t < 20000; t++) {
        n = 1 + (lcg(&seed) >> 16) % 7;
        join_pieces(target, sizeof(target), pieces,
                    sizeof(pieces) / sizeof(pieces[0]), n, &seed);

        /* no X-L, one or two */

        nh = (lcg(&seed) >> 16) % 3;

        for (j = 0; j < nh; j++) {
            n = 1 + (lcg(&seed) >> 16) % 3;
            join_pieces(hv[j], sizeof(hv[j]), hpieces,
                        sizeof(hpieces) / sizeof(hpieces[0]), n, &seed);
        }

        for (i = 0; i < 16; i++) {
            rs->rules[i]->nprobes = 0;
        }

        eg_eval(rs, req(&r, t % 3 ? "POST" : "GET", target,
                        nh ? "X-L" : NULL, hv[0], nh > 1 ? "x-l" : NULL,
                        hv[1], NULL),
                &opts, alloc, &v);
        want = (int) v.total;
        ids(&v, want_ids, sizeof(want_ids));

        for (i = 0; i < 16; i++) {
            rs->rules[i]->nprobes = nprobes[i];
        }

        eg_eval(rs, req(&r, t % 3 ? "POST" : "GET", target,
                        nh ? "X-L" : NULL, hv[0], nh > 1 ? "x-l" : NULL,
                        hv[1], NULL),
                &opts, alloc, &v);

        if (!ids_agree(&v, want_ids, target, "with the probes, without",
                       &bad))
        {
            continue;
        }

        CHECK_INT((int) v.total, want);

        if (want) {
            hits++;
        } else {
            misses++;
        }
    }

    CHECK_INT(bad, 0);
    CHECK(hits > 1000);
    CHECK(misses > 1000);

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


/*
 * The lack tables (up to 64 rules, eg_plan_lack()): a rule is dropped at
 * once when the request lacks a header of slots 0-7 or a cookie of the
 * wanted names 0-7 it needs, or has a shorter path or query than it needs
 * (under 63 bytes).  Nine header names and nine cookie names, so that the
 * ninth is tested one by one; paths and queries of lengths around 62-64
 * and 70, each just long enough, longer, and one byte short.
 */

static void
lack_text(char *buf, const char *head, int c, size_t n)
{
    size_t  len;

    len = strlen(head);
    memcpy(buf, head, len);
    memset(buf + len, c, n);
    buf[len + n] = '\0';
}


static void
test_lack(void)
{
    int               k;
    char              idbuf[256], want[16], name[16], cookie[64];
    char              text[8192], p62[80], p63[80], p70[80], q63[80];
    char              q64[80], p70x[96], q64q63[176], target[256];
    size_t            n;
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    /* "/e/" and 59 'f': 62 bytes; "/c/" and 60 'd': 63; "/a/" and 67 'b':
       70; "r=" and 61 'y': 63; "q=" and 62 'x': 64 */

    lack_text(p62, "/e/", 'f', 59);
    lack_text(p63, "/c/", 'd', 60);
    lack_text(p70, "/a/", 'b', 67);
    lack_text(q63, "r=", 'y', 61);
    lack_text(q64, "q=", 'x', 62);
    CHECK_INT((int) (strlen(p62) + strlen(p63) + strlen(p70)), 62 + 63 + 70);
    CHECK_INT((int) (strlen(q63) + strlen(q64)), 63 + 64);

    n = 0;
    for (k = 0; k < 9; k++) {
        n += snprintf(text + n, sizeof(text) - n,
                      RULE("T-H%d", "block", "    match header:X-H%d present\n"),
                      k, k, k);
    }
    for (k = 0; k < 9; k++) {
        n += snprintf(text + n, sizeof(text) - n,
                      RULE("T-C%d", "block", "    match cookie:c%d present\n"),
                      k, k, k);
    }
    n += snprintf(text + n, sizeof(text) - n,
                  RULE("T-P62", "block", "    match path prefix %s\n")
                  RULE("T-P63", "block", "    match path prefix %s\n")
                  RULE("T-P70", "block", "    match path prefix %s\n")
                  RULE("T-Q63", "block", "    match query contains %s\n")
                  RULE("T-Q64", "block", "    match query contains %s\n"),
                  p62, p63, p70, q63, q64);
    CHECK(n < sizeof(text));

    rs = RULES(text);
    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    /* each header and each cookie alone, two together, none */

    for (k = 0; k < 9; k++) {
        snprintf(name, sizeof(name), "x-h%d", k);
        snprintf(want, sizeof(want), "T-H%d", k);
        eg_eval(rs, req(&r, "GET", "/", name, "1", NULL), &opts, alloc, &v);
        CHECK_IDS(&v, want);

        snprintf(cookie, sizeof(cookie), "a=1; C%d=2; b=3", k);
        snprintf(want, sizeof(want), "T-C%d", k);
        eg_eval(rs, req(&r, "GET", "/", "Cookie", cookie, NULL), &opts, alloc,
                &v);
        CHECK_IDS(&v, want);
    }

    eg_eval(rs, req(&r, "GET", "/", "X-H8", "1", "X-H2", "", "Cookie",
                    "c8=1; c0=", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-H2,T-H8,T-C0,T-C8");
    eg_eval(rs, req(&r, "GET", "/", "X-H9", "1", "Cookie", "c9=1; c=2", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "");

    /* paths and queries just long enough, longer, one byte short: the
       first plen bytes of a path, then "?" and the first qlen of a query */

    snprintf(p70x, sizeof(p70x), "%s/x", p70);
    snprintf(q64q63, sizeof(q64q63), "%s&%s", q64, q63);

    {
        const struct {
            const char  *path;
            int          plen;
            const char  *query;
            int          qlen;
            const char  *ids;
        } t[] = {
            { p62, 62, NULL, 0, "T-P62" },
            { p63, 63, NULL, 0, "T-P63" },
            { p70, 70, NULL, 0, "T-P70" },
            { p70x, 73, q64, 64, "T-P70,T-Q64" },
            { p63, 63, q63, 63, "T-P63,T-Q63" },
            { "/", 1, q63, 63, "T-Q63" },
            { "/", 1, q64q63, 128, "T-Q63,T-Q64" },
            { p70, 69, NULL, 0, "" },
            { p63, 62, q63, 62, "" },
            { "/", 1, q64, 63, "" }
        };

        for (k = 0; k < (int) (sizeof(t) / sizeof(t[0])); k++) {
            snprintf(target, sizeof(target), "%.*s%s%.*s", t[k].plen,
                     t[k].path, t[k].query ? "?" : "", t[k].qlen,
                     t[k].query ? t[k].query : "");
            eg_eval(rs, req(&r, "GET", target, NULL), &opts, alloc, &v);
            CHECK_IDS(&v, t[k].ids);
        }
    }

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


/*
 * A rule scoped to first segments is only evaluated for a path whose
 * first segment starts with one of them (any case): the byte probes on
 * the path that every one of them passes are dropped when the plan is
 * built, the others kept; verdicts are those of the full tests.
 */

static size_t
path_probes(const eg_ruleset_t *rs, size_t i)
{
    size_t             j, n;
    const eg_rule_t   *r = rs->rules[i];

    for (j = 0, n = 0; j < r->nprobes; j++) {
        n += (r->probes[j].kind == EG_PROBE_BYTE
              && r->probes[j].field == EG_F_PATH);
    }

    return n;
}


static void
test_probes_scoped(void)
{
    char              idbuf[256];
    size_t            j;
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;
    static const struct {
        const char       *method;
        const char       *target;
        const char       *ids;
    } t[] = {
        { "GET", "/AutoDiscover/x", "T-AD,T-ANY" },
        { "GET", "/autodiscoverx", "T-AD,T-ANY" },
        { "GET", "/autodiscove", "T-ANY" },
        { "GET", "/autodiscovEr", "T-AD,T-ANY" },
        { "GET", "/x", "T-ANY" },
        { "POST", "/OWA/a.aspx", "T-TWO,T-SUF" },
        { "POST", "/owa/a.aspy", "T-TWO" },
        { "GET", "/Ecp/Auth/x", "T-TWO,T-AUTH" },
        { "GET", "/ecp/autx/x", "T-TWO" },
        { "GET", "/ecpx/auth/x", "" }
    };

    rs = RULES(RULE("T-AD", "block",
                    "    match path prefix /autodiscover\n")
               RULE("T-TWO", "block",
                    "    match path prefix /owa/ /ecp/\n")
               RULE("T-AUTH", "block",
                    "    match path prefix /ecp/auth/\n")
               RULE("T-SUF", "block",
                    "    match path prefix /owa/\n"
                    "    match path suffix .aspx\n")
               RULE("T-ANY", "block",
                    "    match path prefix /x /autod\n"));

    /* within every segment: dropped; past the segment, or from the end,
       or where one segment's byte is not in the set: kept */

    CHECK_INT((int) path_probes(rs, 0), 0);
    CHECK_INT((int) path_probes(rs, 1), 0);
    CHECK(path_probes(rs, 2) > 0);
    for (j = 0; j < rs->rules[2]->nprobes; j++) {
        CHECK(rs->rules[2]->probes[j].kind != EG_PROBE_BYTE
              || rs->rules[2]->probes[j].pos > 3);
    }
    CHECK(path_probes(rs, 3) > 0);
    for (j = 0; j < rs->rules[3]->nprobes; j++) {
        CHECK(rs->rules[3]->probes[j].kind != EG_PROBE_BYTE
              || rs->rules[3]->probes[j].tail);
    }

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    for (j = 0; j < sizeof(t) / sizeof(t[0]); j++) {
        eg_eval(rs, req(&r, t[j].method, t[j].target, NULL), &opts, alloc,
                &v);
        CHECK_IDS(&v, t[j].ids);
    }

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


/*
 * The first segment selects its rules by its first byte, its length and
 * (for an exact segment) its last byte, in any case, then by a compare:
 * random segments from the entries' bytes, in random case, get the
 * verdict of the same rules evaluated one by one without the table.
 */

static void
test_scope_select(void)
{
    int               t, bad;
    char              idbuf[256], want_ids[256], target[32];
    size_t            i, n, len;
    unsigned          seed;
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_scope_t       *scope;
    eg_test_arena_t   arena;
    static const char  alphabet[] = "owabsOWABSe";

    rs = RULES(RULE("T-OWA", "block", "    match path prefix /owa/\n")
               RULE("T-OAB", "block", "    match path prefix /oab/\n")
               RULE("T-OWS", "block", "    match path is /ows\n")
               RULE("T-OWB", "block", "    match path prefix /owb\n")
               RULE("T-O", "log", "    match path prefix /o\n")
               RULE("T-WA", "block", "    match path prefix /wa/ /wab/\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    CHECK(rs->scope != NULL);

    eg_eval(rs, req(&r, "GET", "/OwA/x", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-OWA,T-O");
    eg_eval(rs, req(&r, "GET", "/oaB/", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-OAB,T-O");
    eg_eval(rs, req(&r, "GET", "/OWS", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-OWS,T-O");
    eg_eval(rs, req(&r, "GET", "/owbx", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-OWB,T-O");
    eg_eval(rs, req(&r, "GET", "/owx/", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-O");
    eg_eval(rs, req(&r, "GET", "/WAB/", NULL), &opts, alloc, &v);
    CHECK_IDS(&v, "T-WA");

    seed = 17;
    bad = 0;

    for (t = 0; t < 20000; t++) {
        len = 0;
        target[len++] = '/';
        n = 1 + (lcg(&seed) >> 16) % 4;

        for (i = 0; i < n; i++) {
            target[len++] = alphabet[(lcg(&seed) >> 16)
                                     % (sizeof(alphabet) - 1)];
        }

        if ((lcg(&seed) >> 16) % 2) {
            target[len++] = '/';
        }
        target[len] = '\0';

        scope = rs->scope;
        rs->scope = NULL;
        eg_eval(rs, req(&r, "GET", target, NULL), &opts, alloc, &v);
        ids(&v, want_ids, sizeof(want_ids));
        rs->scope = scope;

        eg_eval(rs, req(&r, "GET", target, NULL), &opts, alloc, &v);

        (void) ids_agree(&v, want_ids, target, "with the table, without",
                         &bad);
    }

    CHECK_INT(bad, 0);

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


/*
 * Header names are found by their key, length and first byte with 5 bits
 * each (eg_hdr_key()), then compared: wanted names that share a key
 * ("x-a", "x-b", a 35-byte "x-..."; "m-ab", "--ab") and one of 68 bytes,
 * and request names from the same bytes in random case, some empty, some
 * of 64 bytes or more.  A rule holds exactly when a name equals its own
 * in any case.
 */

static void
test_header_keys(void)
{
    int               t, bad;
    char              idbuf[256], want[256], names[4][80];
    size_t            i, j, k, n, len, w;
    unsigned          seed;
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;
    unsigned char    *empty;
    static const char  *wanted[] = {
        "x-a", "x-b", "x-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "m-ab", "--ab",
        "x-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    };
    static const char  *ids_of[] = {
        "T-XA", "T-XB", "T-X35", "T-MAB", "T-DAB", "T-X68"
    };
    static const char  *pieces[] = {
        "x-a", "X-B", "-", "m", "M-", "ab", "AB",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "a", ""
    };

    rs = RULES(RULE("T-XA", "log", "    match header:X-A present\n")
               RULE("T-XB", "log", "    match header:x-b present\n")
               RULE("T-X35", "log",
                    "    match header:X-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
                    "present\n")
               RULE("T-MAB", "log", "    match header:M-Ab present\n")
               RULE("T-DAB", "log", "    match header:--ab present\n")
               RULE("T-X68", "log",
                    "    match header:x-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa present\n"));

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    eg_eval(rs, req(&r, "GET", "/", "X-b", "1", "--AB", "", "", "1", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-XB,T-DAB");
    eg_eval(rs, req(&r, "GET", "/", "X-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "1",
                    "X-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                    "AAAAAAAAAA", "1", NULL),
            &opts, alloc, &v);
    CHECK_IDS(&v, "T-X35,T-X68");

    /* an empty name is not read: it points past the end of a buffer
       (AddressSanitizer catches a read) */

    empty = malloc(4);
    if (empty != NULL) {
        memcpy(empty, "x-a:", 4);
        req(&r, "GET", "/", "", "v", "x-A", "v", NULL);
        r.h[0].name.data = empty + 4;
        eg_eval(rs, &r.req, &opts, alloc, &v);
        CHECK_IDS(&v, "T-XA");
        free(empty);
    }

    seed = 23;
    bad = 0;

    for (t = 0; t < 20000; t++) {
        n = 1 + (lcg(&seed) >> 16) % 4;

        for (i = 0; i < n; i++) {
            k = (lcg(&seed) >> 16) % 4;
            len = join_pieces(names[i], sizeof(names[i]), pieces,
                              sizeof(pieces) / sizeof(pieces[0]), k, &seed);

            /* now and then a wanted name itself, in random case */

            if ((lcg(&seed) >> 16) % 4 == 0) {
                w = (lcg(&seed) >> 16) % (sizeof(wanted) / sizeof(wanted[0]));
                len = strlen(wanted[w]);
                for (j = 0; j < len; j++) {
                    names[i][j] = wanted[w][j];
                    if ((lcg(&seed) >> 16) % 2 && names[i][j] >= 'a'
                        && names[i][j] <= 'z')
                    {
                        names[i][j] -= 0x20;
                    }
                }
            }

            names[i][len] = '\0';
        }

        /* what the rules should say: a name equal to a wanted one */

        want[0] = '\0';
        for (w = 0; w < sizeof(wanted) / sizeof(wanted[0]); w++) {
            for (i = 0; i < n; i++) {
                if (eg_str_ieq(eg_test_s(names[i]), eg_test_s(wanted[w]))) {
                    break;
                }
            }
            if (i < n) {
                if (want[0]) {
                    strcat(want, ",");
                }
                strcat(want, ids_of[w]);
            }
        }

        eg_eval(rs, req(&r, "GET", "/", names[0], "v",
                        n > 1 ? names[1] : NULL, "v",
                        n > 2 ? names[2] : NULL, "v",
                        n > 3 ? names[3] : NULL, "v", NULL),
                &opts, alloc, &v);

        (void) ids_agree(&v, want, names[0], "(names after it not shown), not",
                         &bad);
    }

    CHECK_INT(bad, 0);

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


int
main(void)
{
    EG_RUN(test_backend_cookie);
    EG_RUN(test_backend_list);
    EG_RUN(test_not);
    EG_RUN(test_headers);
    EG_RUN(test_cookie_names);
    EG_RUN(test_cookies_raw);
    EG_RUN(test_args);
    EG_RUN(test_param);
    EG_RUN(test_limit_cookies);
    EG_RUN(test_limit_header_bytes);
    EG_RUN(test_limit_decode);
    EG_RUN(test_limit_regex);
    EG_RUN(test_actions);
    EG_RUN(test_report);
    EG_RUN(test_notes);
    EG_RUN(test_cookie_filter);
    EG_RUN(test_alloc_failure);
    EG_RUN(test_probes);
    EG_RUN(test_long_lists);
    EG_RUN(test_gates);
    EG_RUN(test_regex_literals);
    EG_RUN(test_fold);
    EG_RUN(test_cookie_prefix);
    EG_RUN(test_cookie_prefix_edges);
    EG_RUN(test_pair_probes);
    EG_RUN(test_line_probes);
    EG_RUN(test_lack);
    EG_RUN(test_probes_scoped);
    EG_RUN(test_scope_select);
    EG_RUN(test_header_keys);
    EG_RUN(test_header_slots);
    EG_RUN(test_lack_bytes);
    EG_RUN(test_scan_anchors);
    EG_RUN(test_header_slots_gated);

    return eg_test_done();
}


/*
 * req->header_slots, as nginx passes them for the first header of each
 * name it knows: the same verdict as without them, a second header of
 * the name (not marked) still seen, and a mark past the rule set's names
 * ignored (the name is compared).
 */

static void
test_header_slots(void)
{
    eg_ruleset_t     *rs;
    const eg_str_t   *names;

    static const slot_case_t  t[] = {
        { { "User-Agent", "Mozilla/5.0", "user-agent", "antSword/v2.1",
            NULL }, { 1, 0 }, "T-UA" },
        { { "User-Agent", "antSword/v2.1", NULL }, { 1 }, "T-UA" },
        { { "User-Agent", "antSword/v2.1", NULL }, { 2 }, "T-UA" },
        { { "User-Agent", "Mozilla/5.0", NULL }, { 2 }, "" },
        { { "Cookie", "a=1", "Cookie", "X-BEResource=localhost/x?~1",
            NULL }, { 1, 0 }, "T-CK" },
        { { "Cookie", "X-BEResource=localhost/x?~1", "Content-Type",
            "text/xml", NULL }, { 1, 1 }, "T-CK,T-CT" },
        { { "Content-Type", "text/html", "User-Agent", "Mozilla/5.0",
            "Cookie", "X-BEResource=ex01.contoso.local~1" },
          { 1, 1, 1 }, "" },
        { { "X-OWA-ExplicitLogonUser", "a@b/powershell", "User-Agent",
            "antSword/1", NULL }, { 0, 1 }, "T-UA,T-HP" },

        /* a caller that marks a second copy with the same slot: both are
           copies of the name, the first first */
        { { "User-Agent", "antSword/v2.1", "user-agent", "Mozilla/5.0",
            NULL }, { 1, 1 }, "T-UA" },
        { { "User-Agent", "Mozilla/5.0", "user-agent", "antSword/v2.1",
            NULL }, { 1, 1 }, "T-UA" },
        { { "Cookie", "a=1", "User-Agent", "antSword/1", "Cookie",
            "X-BEResource=localhost/x?~1" }, { 1, 1, 1 }, "T-UA,T-CK" }
    };

    rs = RULES(RULE("T-UA", "log",
                    "    match header:User-Agent prefix antSword/\n")
               RULE("T-CK", "block",
                    "    match cookie:X-BEResource backend\n")
               RULE("T-CT", "log",
                    "    match header:Content-Type is text/xml\n")
               RULE("T-HP", "log",
                    "    match header:X-OWA-ExplicitLogonUser contains /\n"));

    CHECK(eg_ruleset_header_names(rs, &names) == 4);

    check_slot_cases(rs, "POST", "/ecp/y.js", t, sizeof(t) / sizeof(t[0]));

    eg_ruleset_free(rs);
}


/*
 * Each case evaluated without slots, then with each header marked as its
 * case says (1: the slot of its name, if a rule reads it; 2: 255, past
 * the names; 0: none): both give the verdict written.
 */

static void
check_slot_cases(eg_ruleset_t *rs, const char *method, const char *target,
    const slot_case_t *t, size_t nt)
{
    char              idbuf[256];
    size_t            i, k, n, nnames;
    uint8_t           slots[3];
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v;
    const eg_str_t   *names;
    eg_test_arena_t   arena;

    nnames = eg_ruleset_header_names(rs, &names);
    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    for (i = 0; i < nt; i++) {
        req(&r, method, target, t[i].h[0], t[i].h[1], t[i].h[2], t[i].h[3],
            t[i].h[4], t[i].h[5], NULL);

        eg_eval(rs, &r.req, &opts, alloc, &v);
        CHECK_IDS(&v, t[i].ids);

        for (k = 0; k < r.req.nheaders; k++) {
            slots[k] = t[i].mark[k] == 2 ? 255 : 0;

            for (n = 0; t[i].mark[k] == 1 && n < nnames; n++) {
                if (eg_str_ieq(r.h[k].name, names[n])) {
                    slots[k] = (uint8_t) (n + 1);
                }
            }
        }

        r.req.header_slots = slots;
        eg_eval(rs, &r.req, &opts, alloc, &v);
        CHECK_IDS(&v, t[i].ids);
    }

    eg_test_arena_free(&arena);
}


/* eg_eval() of the request without the plan's lack, byte and scan
   tables (rs->lack cleared) into off, and with them into on */

static void
eval_lack_both(eg_ruleset_t *rs, const eg_request_t *rq,
    const eg_options_t *opts, eg_alloc_t *alloc, eg_verdict_t *off,
    eg_verdict_t *on)
{
    unsigned  lack;

    lack = rs->lack;
    rs->lack = 0;
    eg_eval(rs, rq, opts, alloc, off);
    rs->lack = lack;
    eg_eval(rs, rq, opts, alloc, on);
}


/*
 * The byte tables (eg_plan_lack_bytes()): the rules whose first byte
 * probe reads one place (a header's value, the path from its end, the
 * query) are dropped by the request's byte there, as their probes would
 * drop them.  A header sent twice, or longer than the bound (30 bytes
 * here), drops none: the rule decides it, and reports the limit.  A value
 * too short for the place drops them all.  Each request gives the same
 * verdict and limit with the tables as without them (rs->lack cleared),
 * and the verdict written here.
 */

static void
test_lack_bytes(void)
{
    char              idbuf[256];
    size_t            i, k, keys;
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v, off;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    static const struct {
        const char  *target;
        const char  *ua;        /* NULL: none */
        const char  *ua2;       /* a second User-Agent header */
        const char  *ids;
        unsigned     limit;
    } t[] = {
        { "/", "antSword/2.1", NULL, "T-UA,T-UA2", EG_LIMIT_NONE },
        { "/", "ANTSWORD/2.1", NULL, "T-UA,T-UA2", EG_LIMIT_NONE },
        { "/", "ExchangeServicesClient/0.0.0.0", NULL, "T-UA",
          EG_LIMIT_NONE },
        { "/", "ExchangeServicesClient/15.00", NULL, "", EG_LIMIT_NONE },
        { "/", "Mozilla/5.0", NULL, "", EG_LIMIT_NONE },
        { "/", "antSwor", NULL, "", EG_LIMIT_NONE },
        { "/", "", NULL, "", EG_LIMIT_NONE },
        { "/", "Mozilla/5.0", "antSword/2.1", "T-UA,T-UA2", EG_LIMIT_NONE },
        { "/", "antSword/2.1", "Mozilla/5.0", "T-UA,T-UA2", EG_LIMIT_NONE },
        { "/", "Mozilla/5.0 (Windows NT 10.0; x64)", NULL, "",
          EG_LIMIT_HEADER_BYTES },
        { "/", "antSword/2.1 (Windows NT 10.0; x64)", NULL, "",
          EG_LIMIT_HEADER_BYTES },
        { "/aspnet_client/x.aspx", NULL, NULL, "T-SUF", EG_LIMIT_NONE },
        { "/aspnet_client/X.ASHX?a=1", NULL, NULL, "T-SUF", EG_LIMIT_NONE },
        { "/aspnet_client/x.asmx", NULL, NULL, "", EG_LIMIT_NONE },
        { "/x.aspx/", NULL, NULL, "", EG_LIMIT_NONE },
        { "/.aspx", NULL, NULL, "T-SUF", EG_LIMIT_NONE },
        { "/aspx", NULL, NULL, "", EG_LIMIT_NONE },
        { "/owa/?cmd=whoami", NULL, NULL, "T-Q", EG_LIMIT_NONE },
        { "/owa/?CMD=whoami", NULL, NULL, "T-Q", EG_LIMIT_NONE },
        { "/owa/?cm", NULL, NULL, "", EG_LIMIT_NONE },
        { "/owa/?c=1&cmd=x", NULL, NULL, "", EG_LIMIT_NONE },
        { "/x.aspx?cmd=1", "antSword/", NULL, "T-UA,T-UA2,T-SUF,T-Q",
          EG_LIMIT_NONE },
        { "/x.aspx?cmd=1", "antSword/", "x", "T-UA,T-UA2,T-SUF,T-Q",
          EG_LIMIT_NONE }
    };

    rs = RULES(RULE("T-UA", "block",
                    "    match header:User-Agent prefix antSword/ "
                    "ExchangeServicesClient/0.0.0.0\n")
               RULE("T-UA2", "block",
                    "    match header:User-Agent prefix antSword/\n")
               RULE("T-SUF", "block",
                    "    match path suffix .aspx .ashx\n")
               RULE("T-Q", "block",
                    "    match query prefix cmd=\n"));

    /* a place for each kind of field, every rule in one */

    keys = 0;
    for (k = 0; k < rs->nlack_byte; k++) {
        keys |= (size_t) rs->lack_byte[k].rules;
        CHECK(rs->lack_byte[k].rules != 0);
    }
    CHECK(rs->lack & EG_LACK_BYTE);
    CHECK_INT((int) keys, 0xf);

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));
    opts.max_header_bytes = 30;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        eval_lack_both(rs, req(&r, "GET", t[i].target,
                               t[i].ua ? "User-Agent" : NULL, t[i].ua,
                               t[i].ua2 ? "User-Agent" : NULL, t[i].ua2,
                               NULL),
                       &opts, alloc, &off, &v);

        CHECK_STR(ids(&off, idbuf, sizeof(idbuf)), t[i].ids);
        CHECK_IDS(&v, t[i].ids);
        CHECK_INT((int) off.limit, (int) t[i].limit);
        CHECK_INT((int) v.limit, (int) t[i].limit);
    }

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


/*
 * The anchors the target scan looks for (eg_plan_scan_anchors()): the
 * path's and the query's byte most rules probe first.  Where the scan
 * answers (AVX2, a plain path, a query with nothing to decode) no probe
 * looks again and the rules it rules out are not visited; elsewhere the
 * probes look in the decoded values, as before.  Each request gives the
 * same verdict with the scan's anchors as without them (rs->lack
 * cleared), with AVX2 and without, and the verdict written here.
 */

static void
test_scan_anchors(void)
{
    int               a, na;
    char              idbuf[256];
    size_t            i;
    req_t             r;
    eg_alloc_t       *alloc;
    eg_options_t      opts;
    eg_verdict_t      v, off;
    eg_ruleset_t     *rs;
    eg_test_arena_t   arena;

    static const struct {
        const char  *target;
        const char  *ids;
    } t[] = {
        { "/owa/a@b.c/x", "T-AT" },
        { "/owa/a%40b.c/x", "T-AT" },
        { "/owa/a@b.c/powershell", "T-AT,T-PS" },
        { "/owa/A@B/PowerShell?x=1", "T-AT,T-PS" },
        { "/owa/ab/powershell", "" },
        { "/owa/ab/x?u=a@b", "" },
        { "/owa/ab?a@b", "" },
        { "/owa/@", "T-AT" },
        { "/@?", "T-AT" },
        { "/owa/..%2F@x", "T-AT" },
        { "http://mail/owa/a@b/x", "T-AT" },
        { "http://mail/owa/ab/x?a=x-rps-cat", "T-Q" },
        { "/ews/x?a=1&X-Rps-CAT=y", "T-Q" },
        { "/ews/x?a=1&X%2DRps-CAT=y", "T-Q" },
        { "/ews/x?a=1+2&X-Rps-CAT=y", "T-Q" },
        { "/ews/x?a=1&XRpsCAT=y-", "" },
        { "/ews/x-rps-cat?a=1", "" },
        { "/ews/x-rps-cat?", "" },
        { "/ews/x?", "" },
        { "/owa/a@b/powershell?X-Rps-CAT=1", "T-AT,T-PS,T-Q" },
        { "/owa/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@b/x", "T-AT" },
        { "/owa/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa?aaaaaaaaaaaaaaaaaaaaa@", "" },
        { "/owa/x?aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaax-rps-cat", "T-Q" }
    };

    rs = RULES(RULE("T-AT", "block", "    match path contains @\n")
               RULE("T-PS", "block",
                    "    match path contains @\n"
                    "    match path contains /powershell\n")
               RULE("T-Q", "block",
                    "    match query contains x-rps-cat\n"));

    CHECK(rs->lack & EG_LACK_ANCHOR);
    CHECK(rs->scan_anchors[0] == '@' && rs->scan_anchors[1] == '-');

    alloc = eg_test_arena_init(&arena);
    memset(&opts, 0, sizeof(eg_options_t));

    for (a = 0, na = 1 + eg_cpu_avx2(); a < na; a++) {
        eg_avx2 = a;

        for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
            eval_lack_both(rs, req(&r, "GET", t[i].target, NULL), &opts,
                           alloc, &off, &v);

            CHECK_STR(ids(&off, idbuf, sizeof(idbuf)), t[i].ids);
            CHECK_IDS(&v, t[i].ids);
        }
    }

    eg_avx2 = -1;

    eg_test_arena_free(&arena);
    eg_ruleset_free(rs);
}


/*
 * req->header_slots with gates (eg_plan_gates(): here ten rules on the
 * User-Agent): the slots nginx marks open each slot's gate, as the names
 * compared do.  Each request gives the same verdict with the slots as
 * without them, and the verdict written here.
 */

static void
test_header_slots_gated(void)
{
    char              text[4096];
    size_t            k, n;
    eg_ruleset_t     *rs;

    static const slot_case_t  t[] = {
        { { "User-Agent", "Scanner3/1.0", NULL }, { 1 }, "T-UA3" },
        { { "Cookie", "X-BEResource=localhost/x?~1", "User-Agent",
            "Scanner7/2", NULL }, { 1, 1 }, "T-UA7,T-CK" },
        { { "Content-Type", "text/evil", "Cookie", "a=1", "User-Agent",
            "Mozilla/5.0" }, { 1, 1, 1 }, "T-CT" },
        { { "X-Other", "1", "User-Agent", "Scanner1/", "Content-Type",
            "text/evil" }, { 0, 1, 1 }, "T-UA1,T-CT" },

        /* a caller that marks a second copy with the same slot */
        { { "User-Agent", "Mozilla/5.0", "user-agent", "Scanner9/x",
            NULL }, { 1, 1 }, "T-UA9" },
        { { "User-Agent", "Scanner9/x", "user-agent", "Mozilla/5.0",
            NULL }, { 1, 1 }, "T-UA9" },
        { { "User-Agent", "Mozilla/5.0", "Cookie", "b=2", "Content-Type",
            "text/html" }, { 1, 1, 1 }, "" }
    };

    n = 0;
    for (k = 0; k < 10; k++) {
        n += snprintf(text + n, sizeof(text) - n,
                      RULE("T-UA%zu", "block",
                           "    match header:User-Agent contains "
                           "Scanner%zu/\n"), k, k, k);
    }
    n += snprintf(text + n, sizeof(text) - n, "%s",
                  RULE("T-CT", "block",
                       "    match header:Content-Type is text/evil\n")
                  RULE("T-CK", "block",
                       "    match cookie:X-BEResource backend\n"));
    CHECK(n < sizeof(text));

    rs = RULES(text);
    CHECK(rs->ungated != NULL);

    check_slot_cases(rs, "GET", "/owa/", t, sizeof(t) / sizeof(t[0]));

    eg_ruleset_free(rs);
}
