/*
 * Unit tests of eg_backend_check(): the value of X-BEResource,
 * X-AnonResource-Backend and X-BackEndOverrideCookie must be
 * "<dns-hostname>~<integer>" (BackEndServer.FromString after the March 2021
 * patch), not localhost, not an IP literal, and, when the servers are
 * configured, one of them.
 */

#include "eg_test.h"


#define CHECK_BE(value, expected)                                             \
    check_be(value, NULL, 0, expected, __FILE__, __LINE__)

#define CHECK_BE_LIST(value, expected)                                        \
    check_be(value, backends, 2, expected, __FILE__, __LINE__)


static void check_be(const char *value, const eg_str_t *backends,
    size_t nbackends, eg_backend_e expected, const char *file, int line);
static const char *be_name(eg_backend_e rc);
static void test_valid(void);
static void test_local(void);
static void test_poc(void);
static void test_syntax(void);
static void test_lengths(void);
static void test_backends(void);
static void test_reason(void);
static void test_null(void);


static const eg_str_t  backends[] = {
    eg_string("EX01.contoso.local"),
    eg_string("ex02.contoso.local")
};


static const char *
be_name(eg_backend_e rc)
{
    switch (rc) {
    case EG_BACKEND_OK:
        return "EG_BACKEND_OK";
    case EG_BACKEND_SYNTAX:
        return "EG_BACKEND_SYNTAX";
    case EG_BACKEND_LOCAL:
        return "EG_BACKEND_LOCAL";
    case EG_BACKEND_UNKNOWN:
        return "EG_BACKEND_UNKNOWN";
    }

    return "(invalid)";
}


static void
check_be(const char *value, const eg_str_t *list, size_t nlist,
    eg_backend_e expected, const char *file, int line)
{
    eg_backend_e  rc;

    rc = eg_backend_check(eg_test_s(value), list, nlist);

    if (rc == expected) {
        eg_test_pass();
        return;
    }

    eg_test_fail(file, line, "eg_backend_check(\"%.200s\"): got %s, "
                 "expected %s", value, be_name(rc), be_name(expected));
}


static void
test_valid(void)
{
    CHECK_BE("EX01.contoso.local~1942062522", EG_BACKEND_OK);
    CHECK_BE("ex01.contoso.local~1942062522", EG_BACKEND_OK);
    CHECK_BE("EX01~1942062522", EG_BACKEND_OK);
    CHECK_BE("EX_01.contoso.local~1", EG_BACKEND_OK);
    CHECK_BE("_ex01~1", EG_BACKEND_OK);
    CHECK_BE("ex-01.contoso-2.local~0", EG_BACKEND_OK);
    CHECK_BE("1ex.contoso.local~1941962752", EG_BACKEND_OK);
    CHECK_BE("a~2147483647", EG_BACKEND_OK);
    CHECK_BE("a~0000000001", EG_BACKEND_OK);

    /* names that merely start like "localhost" are host names */
    CHECK_BE("localhostx.contoso.local~1", EG_BACKEND_OK);
    CHECK_BE("localhost-ex01~1", EG_BACKEND_OK);
    CHECK_BE("ex01.localhost-x~1", EG_BACKEND_OK);
    CHECK_BE("ex01.0x~1", EG_BACKEND_OK);
}


static void
test_local(void)
{
    CHECK_BE("localhost~1942062522", EG_BACKEND_LOCAL);
    CHECK_BE("LocalHost~1942062522", EG_BACKEND_LOCAL);
    CHECK_BE("LOCALHOST.localdomain~1", EG_BACKEND_LOCAL);
    CHECK_BE("localhost.contoso.local~1", EG_BACKEND_LOCAL);

    /* every IPv4 form inet_addr accepts */
    CHECK_BE("127.0.0.1~1", EG_BACKEND_LOCAL);
    CHECK_BE("127.1~1", EG_BACKEND_LOCAL);
    CHECK_BE("2130706433~1", EG_BACKEND_LOCAL);
    CHECK_BE("0x7f000001~1", EG_BACKEND_LOCAL);
    CHECK_BE("0X7F000001~1", EG_BACKEND_LOCAL);
    CHECK_BE("0177.0.0.1~1", EG_BACKEND_LOCAL);
    CHECK_BE("10.0.0.5~1942062522", EG_BACKEND_LOCAL);
    CHECK_BE("0~1", EG_BACKEND_LOCAL);
    CHECK_BE("127.0.0.0x1~1", EG_BACKEND_LOCAL);

    /* IPv6 literals are not host names at all */
    CHECK_BE("[::1]~1", EG_BACKEND_SYNTAX);
    CHECK_BE("::1~1", EG_BACKEND_SYNTAX);
    CHECK_BE("[::ffff:127.0.0.1]~1", EG_BACKEND_SYNTAX);
}


static void
test_poc(void)
{
    /* value shapes of the public ProxyLogon PoCs (mitigations.md 2) */

    CHECK_BE("Admin@ex.contoso.local:444/mapi/emsmdb?MailboxId=x@y&a="
             "~1942062522", EG_BACKEND_SYNTAX);
    CHECK_BE("[x]@h:444/path#~1", EG_BACKEND_SYNTAX);
    CHECK_BE("a]@h:444/path?x#~1", EG_BACKEND_SYNTAX);
    CHECK_BE("@h:444/path?#~1", EG_BACKEND_SYNTAX);
    CHECK_BE("h/path?&a~1", EG_BACKEND_SYNTAX);
    CHECK_BE("h#~1", EG_BACKEND_SYNTAX);
    CHECK_BE("localhost#~1", EG_BACKEND_SYNTAX);
    CHECK_BE("localhost?x=~4711", EG_BACKEND_SYNTAX);
    CHECK_BE("attacker.example#~1", EG_BACKEND_SYNTAX);
    CHECK_BE("ex.contoso.local/autodiscover/autodiscover.xml?a=~1942062522",
             EG_BACKEND_SYNTAX);
    CHECK_BE("localhost/ecp/default.flt?~3", EG_BACKEND_SYNTAX);
    CHECK_BE("localhost/owa/auth/logon.aspx?~3", EG_BACKEND_SYNTAX);
    CHECK_BE("ex01:444~1", EG_BACKEND_SYNTAX);
    CHECK_BE("ex01.contoso.local~1942062522/x", EG_BACKEND_SYNTAX);
}


static void
test_syntax(void)
{
    CHECK_BE("", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01.contoso.local", EG_BACKEND_SYNTAX);
    CHECK_BE("~", EG_BACKEND_SYNTAX);
    CHECK_BE("~1942062522", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01.contoso.local~", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01~1~2", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01~~1", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01~1a", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01~a1", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01~-1", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01~+1", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01~ 1", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01~1 ", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01 ~1", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01~0x10", EG_BACKEND_SYNTAX);

    /* Int32: 2147483647 is the largest, and no more than 10 digits */
    CHECK_BE("EX01~2147483648", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01~4294967296", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01~9999999999", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01~19420625220", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01~00000000001", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01~99999999999999999999999", EG_BACKEND_SYNTAX);

    /* DNS labels */
    CHECK_BE("EX01.contoso.local.~1", EG_BACKEND_SYNTAX);
    CHECK_BE(".EX01~1", EG_BACKEND_SYNTAX);
    CHECK_BE("EX01..local~1", EG_BACKEND_SYNTAX);
    CHECK_BE(".~1", EG_BACKEND_SYNTAX);
    CHECK_BE("-ex01.contoso.local~1", EG_BACKEND_SYNTAX);
    CHECK_BE("ex01-.contoso.local~1", EG_BACKEND_SYNTAX);
    CHECK_BE("ex01.-contoso.local~1", EG_BACKEND_SYNTAX);
    CHECK_BE("ex01.contoso.local-~1", EG_BACKEND_SYNTAX);
    CHECK_BE("-~1", EG_BACKEND_SYNTAX);
    CHECK_BE("ex 01~1", EG_BACKEND_SYNTAX);
    CHECK_BE("ex\\01~1", EG_BACKEND_SYNTAX);
    CHECK_BE("ex%2e01~1", EG_BACKEND_SYNTAX);
    CHECK_BE("\"ex01\"~1", EG_BACKEND_SYNTAX);
    CHECK_BE("ex01\xc3\xa9~1", EG_BACKEND_SYNTAX);

    /* a NUL byte inside the value */
    CHECK(eg_backend_check(EG_LIT("ex01\0.evil~1"), NULL, 0)
          == EG_BACKEND_SYNTAX);
    CHECK(eg_backend_check(EG_LIT("ex01~1\0"), NULL, 0)
          == EG_BACKEND_SYNTAX);
}


static void
test_lengths(void)
{
    char  v[600];

    /* a label of 63 is fine, 64 is not */

    memset(v, 'a', 63);
    strcpy(v + 63, ".contoso.local~1");
    CHECK_BE(v, EG_BACKEND_OK);

    memset(v, 'a', 64);
    strcpy(v + 64, ".contoso.local~1");
    CHECK_BE(v, EG_BACKEND_SYNTAX);

    memset(v, 'a', 64);
    strcpy(v + 64, "~1");
    CHECK_BE(v, EG_BACKEND_SYNTAX);

    strcpy(v, "ex01.");
    memset(v + 5, 'b', 64);
    strcpy(v + 69, "~1");
    CHECK_BE(v, EG_BACKEND_SYNTAX);

    /* a host of 253 is fine, 254 is not: 63.63.63.61 = 253 */

    memset(v, 'a', 253);
    v[63] = '.';
    v[127] = '.';
    v[191] = '.';
    strcpy(v + 253, "~1");
    CHECK_BE(v, EG_BACKEND_OK);

    memset(v, 'a', 254);
    v[63] = '.';
    v[127] = '.';
    v[191] = '.';
    v[240] = '.';
    strcpy(v + 254, "~1");
    CHECK_BE(v, EG_BACKEND_SYNTAX);

    memset(v, 'a', 500);
    strcpy(v + 500, "~1");
    CHECK_BE(v, EG_BACKEND_SYNTAX);
}


static void
test_backends(void)
{
    CHECK_BE_LIST("EX01.contoso.local~1942062522", EG_BACKEND_OK);
    CHECK_BE_LIST("ex01.CONTOSO.LOCAL~1942062522", EG_BACKEND_OK);
    CHECK_BE_LIST("EX02.contoso.local~1", EG_BACKEND_OK);

    CHECK_BE_LIST("ex03.contoso.local~1942062522", EG_BACKEND_UNKNOWN);
    CHECK_BE_LIST("EX01~1942062522", EG_BACKEND_UNKNOWN);
    CHECK_BE_LIST("EX01.contoso.local.evil~1", EG_BACKEND_UNKNOWN);
    CHECK_BE_LIST("attacker.example~1", EG_BACKEND_UNKNOWN);
    CHECK_BE_LIST("contoso.local~1", EG_BACKEND_UNKNOWN);

    /* syntax and locality come first, whatever the list */
    CHECK_BE_LIST("localhost~1", EG_BACKEND_LOCAL);
    CHECK_BE_LIST("127.0.0.1~1", EG_BACKEND_LOCAL);
    CHECK_BE_LIST("EX01.contoso.local", EG_BACKEND_SYNTAX);
    CHECK_BE_LIST("EX01.contoso.local~x", EG_BACKEND_SYNTAX);
    CHECK_BE_LIST("EX01.contoso.local/ecp~1", EG_BACKEND_SYNTAX);
}


static void
test_reason(void)
{
    int          i;
    const char  *r;

    for (i = EG_BACKEND_OK; i <= EG_BACKEND_UNKNOWN; i++) {
        r = eg_backend_reason((eg_backend_e) i);
        CHECK(r != NULL && r[0] != '\0');
    }

    CHECK(strcmp(eg_backend_reason(EG_BACKEND_SYNTAX),
                 eg_backend_reason(EG_BACKEND_LOCAL)) != 0);
    CHECK(strcmp(eg_backend_reason(EG_BACKEND_LOCAL),
                 eg_backend_reason(EG_BACKEND_UNKNOWN)) != 0);
    CHECK(strcmp(eg_backend_reason(EG_BACKEND_OK),
                 eg_backend_reason(EG_BACKEND_SYNTAX)) != 0);
}


/* an empty eg_str_t may have no data at all (eg_rule_cve returns one) */

static void
test_null(void)
{
    eg_str_t  empty = { NULL, 0 };

    CHECK(eg_backend_check(empty, NULL, 0) == EG_BACKEND_SYNTAX);
}


int
main(void)
{
    EG_RUN(test_valid);
    EG_RUN(test_local);
    EG_RUN(test_poc);
    EG_RUN(test_syntax);
    EG_RUN(test_lengths);
    EG_RUN(test_backends);
    EG_RUN(test_reason);
    EG_RUN(test_null);

    return eg_test_done();
}
