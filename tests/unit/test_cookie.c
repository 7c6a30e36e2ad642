/*
 * Unit tests of eg_cookie_parse() and eg_cookie_name_is(): the Cookie
 * header read the way ASP.NET reads it (mitigations.md section 1).
 */

#include "eg_test.h"
#include "eg_internal.h"          /* eg_avx2 */


#define MAXC  32


static size_t parse(const char *h1, const char *h2, eg_cookie_t *out,
    size_t max);
static void test_single(void);
static void test_several(void);
static void test_name_case(void);
static void test_white_space(void);
static void test_values(void);
static void test_separators(void);
static void test_empty(void);
static void test_max(void);
static void test_long(void);


/* one or two Cookie headers (h2 may be NULL) */

static size_t
parse(const char *h1, const char *h2, eg_cookie_t *out, size_t max)
{
    eg_str_t  h[2];

    h[0] = eg_test_s(h1);

    if (h2) {
        h[1] = eg_test_s(h2);
        return eg_cookie_parse(h, 2, out, max);
    }

    return eg_cookie_parse(h, 1, out, max);
}


static void
test_single(void)
{
    const char   *h;
    eg_cookie_t   c[MAXC];

    h = "X-BEResource=EX01.contoso.local~1942062522";

    CHECK_INT(parse(h, NULL, c, MAXC), 1);
    CHECK_STR(c[0].name, "X-BEResource");
    CHECK_STR(c[0].value, "EX01.contoso.local~1942062522");

    /* names and values point into the header: "as sent" */
    CHECK(c[0].name.data == (const unsigned char *) h);
    CHECK(c[0].value.data == (const unsigned char *) h + 13);

    /* only the first '=' separates: base64 values end in '=' */
    CHECK_INT(parse("X-BackEndCookie=S-1-5-21-1-500=u56Lnp2e==", NULL, c,
                    MAXC), 1);
    CHECK_STR(c[0].name, "X-BackEndCookie");
    CHECK_STR(c[0].value, "S-1-5-21-1-500=u56Lnp2e==");
}


static void
test_several(void)
{
    eg_cookie_t  c[MAXC];

    CHECK_INT(parse("a=1; b=2;c=3", NULL, c, MAXC), 3);
    CHECK_STR(c[0].name, "a");
    CHECK_STR(c[0].value, "1");
    CHECK_STR(c[1].name, "b");
    CHECK_STR(c[1].value, "2");
    CHECK_STR(c[2].name, "c");
    CHECK_STR(c[2].value, "3");

    /* several Cookie headers: all of them, in order */
    CHECK_INT(parse("a=1; b=2", "X-BEResource=localhost~1942062522", c,
                    MAXC), 3);
    CHECK_STR(c[0].name, "a");
    CHECK_STR(c[1].name, "b");
    CHECK_STR(c[2].name, "X-BEResource");
    CHECK_STR(c[2].value, "localhost~1942062522");

    /* a second header does not glue onto the last cookie of the first */
    CHECK_INT(parse("a=1", "b=2", c, MAXC), 2);
    CHECK_STR(c[0].value, "1");
    CHECK_STR(c[1].name, "b");
    CHECK_STR(c[1].value, "2");

    /* the same name twice: both are kept */
    CHECK_INT(parse("X-BEResource=EX01~1; x-beresource=localhost~1", NULL,
                    c, MAXC), 2);
    CHECK_STR(c[0].value, "EX01~1");
    CHECK_STR(c[1].name, "x-beresource");
    CHECK_STR(c[1].value, "localhost~1");
}


static void
test_name_case(void)
{
    eg_cookie_t  c[MAXC];

    CHECK(eg_cookie_name_is(eg_test_s("X-BEResource"),
                            eg_test_s("x-beresource")));
    CHECK(eg_cookie_name_is(eg_test_s("X-BERESOURCE"),
                            eg_test_s("X-BEResource")));
    CHECK(eg_cookie_name_is(eg_test_s("x-anonresource-backend"),
                            eg_test_s("X-AnonResource-Backend")));
    CHECK(eg_cookie_name_is(eg_test_s(""), eg_test_s("")));

    CHECK(!eg_cookie_name_is(eg_test_s("X-BEResourc"),
                             eg_test_s("X-BEResource")));
    CHECK(!eg_cookie_name_is(eg_test_s("X-BEResource2"),
                             eg_test_s("X-BEResource")));
    CHECK(!eg_cookie_name_is(eg_test_s("X-BackEndCookie"),
                             eg_test_s("X-BackEndCookie2")));
    CHECK(!eg_cookie_name_is(eg_test_s(""), eg_test_s("a")));

    /* ASCII letters only: '@' / '`' and '[' / '{' differ by 0x20 too */
    CHECK(!eg_cookie_name_is(eg_test_s("a@"), eg_test_s("a`")));
    CHECK(!eg_cookie_name_is(eg_test_s("a["), eg_test_s("a{")));
    CHECK(!eg_cookie_name_is(EG_LIT("\xc0"), EG_LIT("\xe0")));

    /* the parser keeps the case as sent */
    CHECK_INT(parse("x-BeReSoUrCe=v", NULL, c, MAXC), 1);
    CHECK_STR(c[0].name, "x-BeReSoUrCe");
    CHECK(eg_cookie_name_is(c[0].name, eg_test_s("X-BEResource")));
}


static void
test_white_space(void)
{
    eg_cookie_t  c[MAXC];

    CHECK_INT(parse("  a  =  1  ;\tb\t=\t2\t;c=3   ", NULL, c, MAXC), 3);
    CHECK_STR(c[0].name, "a");
    CHECK_STR(c[0].value, "1");
    CHECK_STR(c[1].name, "b");
    CHECK_STR(c[1].value, "2");
    CHECK_STR(c[2].name, "c");
    CHECK_STR(c[2].value, "3");

    /* Char.IsWhiteSpace: \t \n \v \f \r and space */
    CHECK_INT(parse("\r\n\v\fX-BEResource\v\f=\r\nlocalhost~1\t ", NULL, c,
                    MAXC), 1);
    CHECK_STR(c[0].name, "X-BEResource");
    CHECK_STR(c[0].value, "localhost~1");

    /* white space inside a value stays */
    CHECK_INT(parse("a= x y ", NULL, c, MAXC), 1);
    CHECK_STR(c[0].value, "x y");

    /* a name of white space only is an empty name */
    CHECK_INT(parse("  =v", NULL, c, MAXC), 1);
    CHECK_STR(c[0].name, "");
    CHECK_STR(c[0].value, "v");
}


static void
test_values(void)
{
    eg_cookie_t  c[MAXC];

    /* quotes are part of the value */
    CHECK_INT(parse("a=\"x y\"; b=\"localhost~1\"", NULL, c, MAXC), 2);
    CHECK_STR(c[0].value, "\"x y\"");
    CHECK_STR(c[1].value, "\"localhost~1\"");

    /* empty values */
    CHECK_INT(parse("a=; b=  ;c=", NULL, c, MAXC), 3);
    CHECK_STR(c[0].name, "a");
    CHECK_STR(c[0].value, "");
    CHECK_STR(c[1].name, "b");
    CHECK_STR(c[1].value, "");
    CHECK_STR(c[2].name, "c");
    CHECK_STR(c[2].value, "");

    /* a part without '=' is a cookie with an empty name */
    CHECK_INT(parse("foo; a=1; bar baz ", NULL, c, MAXC), 3);
    CHECK_STR(c[0].name, "");
    CHECK_STR(c[0].value, "foo");
    CHECK_STR(c[1].name, "a");
    CHECK_STR(c[1].value, "1");
    CHECK_STR(c[2].name, "");
    CHECK_STR(c[2].value, "bar baz");

    /* "=" alone: empty name, empty value, still a cookie */
    CHECK_INT(parse("=", NULL, c, MAXC), 1);
    CHECK_STR(c[0].name, "");
    CHECK_STR(c[0].value, "");
}


static void
test_separators(void)
{
    eg_cookie_t  c[MAXC];

    /* ',' is not a separator for ASP.NET: it stays in the value */
    CHECK_INT(parse("a=1,b=2", NULL, c, MAXC), 1);
    CHECK_STR(c[0].name, "a");
    CHECK_STR(c[0].value, "1,b=2");

    CHECK_INT(parse("X-BEResource=EX01~1, X-AnonResource-Backend=x", NULL,
                    c, MAXC), 1);
    CHECK_STR(c[0].value, "EX01~1, X-AnonResource-Backend=x");

    /* trailing, leading and repeated ';' make no cookies */
    CHECK_INT(parse("a=1;", NULL, c, MAXC), 1);
    CHECK_STR(c[0].value, "1");
    CHECK_INT(parse(";;a=1;;", NULL, c, MAXC), 1);
    CHECK_STR(c[0].name, "a");
    CHECK_INT(parse(" ; ;\t; ", NULL, c, MAXC), 0);
    CHECK_INT(parse("a=1; ", "; b=2;", c, MAXC), 2);
    CHECK_STR(c[1].name, "b");
}


static void
test_empty(void)
{
    eg_str_t     h;
    eg_cookie_t  c[MAXC];

    CHECK_INT(parse("", NULL, c, MAXC), 0);
    CHECK_INT(parse("", "", c, MAXC), 0);
    CHECK_INT(parse("   ", NULL, c, MAXC), 0);
    CHECK_INT(eg_cookie_parse(NULL, 0, c, MAXC), 0);

    h = eg_test_s("a=1");
    CHECK_INT(eg_cookie_parse(&h, 0, c, MAXC), 0);
}


static void
test_max(void)
{
    size_t        i;
    eg_cookie_t   c[MAXC];
    const char   *h;

    h = "c0=0; c1=1; c2=2; c3=3; c4=4; c5=5; c6=6; c7=7; c8=8; c9=9";

    for (i = 0; i < MAXC; i++) {
        c[i].name = eg_test_s("sentinel");
        c[i].value = eg_test_s("sentinel");
    }

    /* all are counted, only max stored, nothing written past max */
    CHECK_INT(parse(h, NULL, c, 4), 10);
    CHECK_STR(c[0].name, "c0");
    CHECK_STR(c[3].name, "c3");
    CHECK_STR(c[3].value, "3");
    CHECK_STR(c[4].name, "sentinel");
    CHECK_STR(c[4].value, "sentinel");

    /* across headers too */
    CHECK_INT(parse(h, "x=1; y", c, 10), 12);
    CHECK_STR(c[9].name, "c9");
    CHECK_STR(c[10].name, "sentinel");

    /* max 0: a count only, out is never touched */
    CHECK_INT(parse(h, NULL, NULL, 0), 10);
    CHECK_INT(parse(h, NULL, c, 10), 10);
    CHECK_STR(c[9].value, "9");
}


/*
 * Headers of 1-300 bytes, whose ';' fall on every place of the 64-byte
 * blocks the separators are looked for in, and at the end of the last
 * (shorter) one: parts "nK=value" with values of 0-70 bytes, joined by
 * ";", "; " or ";;".  Each cookie is where the header has it.
 */

static void
test_long(void)
{
    int            k, bad, at_edge;
    char           h[400];
    size_t         i, len, n, want, nv, pos;
    unsigned       seed;
    eg_str_t       hs;
    eg_cookie_t    c[128];
    size_t         name_at[128], value_at[128], value_len[128];

    seed = 11;
    bad = 0;
    at_edge = 0;

    for (k = 0; k < 20000; k++) {
        len = 0;
        want = 0;

        while (want < 128) {
            seed = seed * 1103515245 + 12345;
            nv = (seed >> 16) % 71;

            if (len + 12 + nv > 300) {
                break;
            }

            name_at[want] = len;
            len += sprintf(h + len, "n%zu=", want);
            value_at[want] = len;
            value_len[want] = nv;

            for (i = 0; i < nv; i++) {
                h[len++] = 'a' + (char) ((seed >> (i % 20)) % 26);
            }

            want++;

            switch ((seed >> 28) % 4) {
            case 0:
                break;                          /* the header's end */
            case 1:
                h[len++] = ';';
                break;
            case 2:
                h[len++] = ';';
                h[len++] = ' ';
                break;
            default:
                h[len++] = ';';
                h[len++] = ';';
                break;
            }

            if (len % 64 == 0 || len % 64 == 63) {
                at_edge++;
            }

            if (h[len - 1] != ';' && h[len - 1] != ' ') {
                break;
            }
        }

        hs.data = (const unsigned char *) h;
        hs.len = len;
        n = eg_cookie_parse(&hs, 1, c, 128);

        if (n != want) {
            if (bad++ < 5) {
                eg_test_fail(__FILE__, __LINE__, "%zu cookies, want %zu, "
                             "in \"%.*s\"", n, want, (int) len, h);
            }
            continue;
        }

        for (i = 0; i < n; i++) {
            pos = (size_t) (c[i].name.data - hs.data);

            if (pos != name_at[i]
                || c[i].value.data - hs.data != (ptrdiff_t) value_at[i]
                || c[i].value.len != value_len[i])
            {
                if (bad++ < 5) {
                    eg_test_fail(__FILE__, __LINE__, "cookie %zu at %zu, "
                                 "want %zu, in \"%.*s\"", i, pos,
                                 name_at[i], (int) len, h);
                }
                break;
            }
        }
    }

    CHECK(bad == 0);
    CHECK(at_edge > 1000);
}


int
main(void)
{
    int  k, n;

    /* each test with the parse's SSE2 path, and its AVX2 path where the
       CPU has one */

    for (k = 0, n = 1 + eg_cpu_avx2(); k < n; k++) {
        eg_avx2 = k;

        EG_RUN(test_single);
        EG_RUN(test_several);
        EG_RUN(test_name_case);
        EG_RUN(test_white_space);
        EG_RUN(test_values);
        EG_RUN(test_separators);
        EG_RUN(test_empty);
        EG_RUN(test_max);
        EG_RUN(test_long);
    }

    return eg_test_done();
}
