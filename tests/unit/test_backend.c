/*
 * Unit tests of eg_backend_check(): the value of X-BEResource,
 * X-AnonResource-Backend and X-BackEndOverrideCookie must be
 * "<dns-hostname>~<integer>" (BackEndServer.FromString after the March 2021
 * patch), not localhost, not an IP literal, and, when the servers are
 * configured, one of them.
 */

#include <ctype.h>

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
static void test_reference(void);
static void test_blocks(void);
static eg_backend_e ref_check(eg_str_t value, const eg_str_t *list,
    size_t nlist);


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


/*
 * The rules read plainly, one step after the other: split at the first
 * '~'; the host is 1-253 bytes of labels of 1-63 letters, digits, '_' and
 * inner '-', joined by '.'; the version is 1-10 digits up to 2^31 - 1;
 * the first label "localhost" or a last label of digits or 0x-hex is
 * local; then the list (any case: eg_cookie_name_is(), the engine's
 * exported ASCII comparison).  eg_backend_check() walks it all in one
 * pass.
 */

static int
ref_label_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_' || c == '-';
}


static eg_backend_e
ref_check(eg_str_t value, const eg_str_t *list, size_t nlist)
{
    size_t                i, j, start, len;
    uint64_t              n;
    eg_str_t              host, first, last;
    const unsigned char  *tilde;

    tilde = value.len ? memchr(value.data, '~', value.len) : NULL;
    if (tilde == NULL) {
        return EG_BACKEND_SYNTAX;
    }

    host.data = value.data;
    host.len = tilde - value.data;

    if (host.len == 0 || host.len > 253) {
        return EG_BACKEND_SYNTAX;
    }

    /* each label */

    for (start = 0; start <= host.len; start = i + 1) {
        for (i = start; i < host.len && host.data[i] != '.'; i++) {
            if (!ref_label_byte(host.data[i])) {
                return EG_BACKEND_SYNTAX;
            }
        }

        len = i - start;

        if (len == 0 || len > 63 || host.data[start] == '-'
            || host.data[i - 1] == '-')
        {
            return EG_BACKEND_SYNTAX;
        }
    }

    /* the version */

    len = value.data + value.len - (tilde + 1);
    if (len == 0 || len > 10) {
        return EG_BACKEND_SYNTAX;
    }

    n = 0;
    for (i = 0; i < len; i++) {
        if (tilde[1 + i] < '0' || tilde[1 + i] > '9') {
            return EG_BACKEND_SYNTAX;
        }
        n = n * 10 + (tilde[1 + i] - '0');
    }

    if (n > 0x7fffffff) {
        return EG_BACKEND_SYNTAX;
    }

    /* local */

    for (i = 0; i < host.len && host.data[i] != '.'; i++) {
        /* void */
    }

    first.data = host.data;
    first.len = i;

    for (j = host.len; j > 0 && host.data[j - 1] != '.'; j--) {
        /* void */
    }

    last.data = host.data + j;
    last.len = host.len - j;

    if (eg_cookie_name_is(first, eg_test_s("localhost"))) {
        return EG_BACKEND_LOCAL;
    }

    if (last.len > 2 && last.data[0] == '0'
        && (last.data[1] == 'x' || last.data[1] == 'X'))
    {
        for (i = 2; i < last.len && isxdigit(last.data[i]); i++) {
            /* void */
        }

        if (i == last.len) {
            return EG_BACKEND_LOCAL;
        }

    } else {
        for (i = 0; i < last.len && isdigit(last.data[i]); i++) {
            /* void */
        }

        if (i == last.len) {
            return EG_BACKEND_LOCAL;
        }
    }

    if (nlist == 0) {
        return EG_BACKEND_OK;
    }

    for (i = 0; i < nlist; i++) {
        if (eg_cookie_name_is(host, list[i])) {
            return EG_BACKEND_OK;
        }
    }

    return EG_BACKEND_UNKNOWN;
}


/*
 * 200,000 values built from the bytes that matter (label bytes, '-', '.',
 * '~', digits, x, a few bad ones) and from pieces of real ones, each
 * checked with and without the server list against the plain reading.
 */

static void
test_reference(void)
{
    int             i, k, len, bad;
    unsigned        seed;
    eg_backend_e    got, want;
    unsigned char   v[320];
    unsigned        seen[EG_BACKEND_UNKNOWN + 1] = { 0 };
    static const char  *pieces[] = {
        "EX01", "contoso", "local", "localhost", "LOCALHOST", "0x7f",
        "0x7F000001", "127", "1", "2130706433", "2147483647", "2147483648",
        "9999999999", "99999999999", "-", ".", "~", "_", "ex02", "a-b",
        "0", "0x", "0xg", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    };
    static const char   bytes[] = "aZ09-.~_xX/\\:@ \t%\x80\xff";

    seed = 12345;
    bad = 0;

    for (i = 0; i < 200000; i++) {
        len = 0;

        while (len < 300) {
            seed = seed * 1103515245 + 12345;
            k = (seed >> 16) % 64;

            if (k < 24 && len + 64 < 300) {
                size_t n = strlen(pieces[k]);
                memcpy(v + len, pieces[k], n);
                len += n;

            } else if (k < 24 + (int) sizeof(bytes) - 1) {
                v[len++] = bytes[k - 24];

            } else {
                break;
            }
        }

        if ((seed >> 8) & 1) {
            /* most real values: a host, one '~', a version */
            v[len++] = '~';
            v[len++] = '1';
        }

        got = eg_backend_check((eg_str_t) { v, len }, NULL, 0);
        want = ref_check((eg_str_t) { v, len }, NULL, 0);

        if (got != want) {
            if (bad++ < 5) {
                eg_test_fail(__FILE__, __LINE__, "\"%.*s\": got %s, "
                             "the plain reading %s", len, v, be_name(got),
                             be_name(want));
            }
            continue;
        }

        seen[want]++;

        got = eg_backend_check((eg_str_t) { v, len }, backends, 2);
        want = ref_check((eg_str_t) { v, len }, backends, 2);
        seen[want]++;

        if (got != want) {
            if (bad++ < 5) {
                eg_test_fail(__FILE__, __LINE__, "\"%.*s\" (listed): got "
                             "%s, the plain reading %s", len, v,
                             be_name(got), be_name(want));
            }
            continue;
        }
    }

    CHECK(bad == 0);

    /* every verdict is met often: the values test something */

    for (k = EG_BACKEND_OK; k <= EG_BACKEND_UNKNOWN; k++) {
        if (seen[k] < 1000) {
            eg_test_fail(__FILE__, __LINE__, "%s only %u times",
                         be_name((eg_backend_e) k), seen[k]);
        }
    }
}


/*
 * eg_backend_check() reads a value of up to 64 bytes sixteen bytes at a
 * time where the CPU allows (a shorter one from a padded copy, the last
 * block overlapping the one before).  Every length from 1 to 70, around
 * each block edge, and the telling byte anywhere: a well-formed
 * "host~version" of that length, then one, two or three bytes of it
 * replaced by a byte that matters ('-', '.', '~', '_', a digit, a letter,
 * 0x80, 0, '/', ' ') or the version lengthened to ten digits near
 * 2^31 - 1.  Each verdict is compared with the plain reading, with and
 * without the server list.
 */

static void
test_blocks(void)
{
    int             i, j, k, bad, n, hostlen, vlen;
    size_t          len, pos;
    unsigned        seed;
    eg_str_t        value;
    eg_backend_e    got, want;
    unsigned char   v[80];
    unsigned        seen[EG_BACKEND_UNKNOWN + 1] = { 0 };
    static const char   label[] = "abcxyzABCXYZ0189_-";
    static const char   swap[] = "-.~_09aZ\x80\0/ x.-";
    static const char  *versions[] = {
        "2147483647", "2147483648", "2147483650", "2147483599", "2147484647",
        "2157483647", "3147483647", "1999999999", "9999999999", "0000000000"
    };

    seed = 4242;
    bad = 0;

    for (len = 1; len <= 70; len++) {
        for (i = 0; i < 6000; i++) {

            /* a host of labels of 1-9 bytes, a '~', a version of 1-10
               digits: about len bytes in all */

            seed = seed * 1103515245 + 12345;
            vlen = 1 + (int) ((seed >> 16) % 10);
            hostlen = (int) len - 1 - vlen;
            n = 0;

            if (hostlen < 1) {
                hostlen = 1;
            }

            while (n < hostlen) {
                seed = seed * 1103515245 + 12345;
                k = 1 + (int) ((seed >> 16) % 9);

                if (n) {
                    v[n++] = '.';
                }

                for (j = 0; j < k && n < hostlen; j++) {
                    seed = seed * 1103515245 + 12345;
                    v[n++] = label[(seed >> 16) % 16];  /* no '_', '-' */
                }
            }

            if (v[n - 1] == '.') {
                v[n - 1] = 'a';
            }

            v[n++] = '~';

            seed = seed * 1103515245 + 12345;

            if (vlen == 10 && ((seed >> 12) & 1)) {
                memcpy(v + n, versions[(seed >> 16) % 10], 10);
                n += 10;

            } else {
                for (j = 0; j < vlen; j++) {
                    seed = seed * 1103515245 + 12345;
                    v[n++] = '0' + (seed >> 16) % 10;
                }
            }

            /* then up to three bytes replaced (none in a quarter) */

            seed = seed * 1103515245 + 12345;
            k = (int) ((seed >> 16) % 4);

            for (j = 0; j < k; j++) {
                seed = seed * 1103515245 + 12345;
                pos = (seed >> 16) % n;
                seed = seed * 1103515245 + 12345;
                v[pos] = (unsigned char) swap[(seed >> 16) % (sizeof(swap) - 1)];
            }

            value.data = v;
            value.len = n;

            got = eg_backend_check(value, NULL, 0);
            want = ref_check(value, NULL, 0);
            seen[want]++;

            if (got == want) {
                got = eg_backend_check(value, backends, 2);
                want = ref_check(value, backends, 2);
                seen[want]++;
            }

            if (got != want && bad++ < 5) {
                eg_test_fail(__FILE__, __LINE__, "\"%.*s\" (%d bytes): got "
                             "%s, the plain reading %s", n, v, n,
                             be_name(got), be_name(want));
            }
        }
    }

    CHECK(bad == 0);

    for (k = EG_BACKEND_OK; k <= EG_BACKEND_UNKNOWN; k++) {
        if (seen[k] < 5000) {
            eg_test_fail(__FILE__, __LINE__, "%s only %u times",
                         be_name((eg_backend_e) k), seen[k]);
        }
    }
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
    EG_RUN(test_reference);
    EG_RUN(test_blocks);

    return eg_test_done();
}
