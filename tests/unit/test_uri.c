/*
 * Unit tests of eg_uri_normalize() and eg_url_decode(): the request-target
 * as IIS, ASP.NET and Exchange read it (mitigations.md section 5).
 */

#include "eg_test.h"
#include "eg_internal.h"          /* eg_path_plain() */


/* normalize target, expect rc, path and query */
#define CHECK_URI(target, rc, path, query)                                    \
    check_uri(EG_LIT(target), 3, rc, EG_LIT(path), EG_LIT(query),            \
              __FILE__, __LINE__)

#define CHECK_URI_R(target, rounds, rc, path, query)                          \
    check_uri(EG_LIT(target), rounds, rc, EG_LIT(path), EG_LIT(query),       \
              __FILE__, __LINE__)

#define CHECK_DEC(in, rounds, plus, rc, out)                                  \
    check_dec(EG_LIT(in), rounds, plus, rc, EG_LIT(out), __FILE__, __LINE__)


static void check_uri(eg_str_t target, unsigned rounds, int rc,
    eg_str_t path, eg_str_t query, const char *file, int line);
static void check_dec(eg_str_t in, unsigned rounds, int plus, int rc,
    eg_str_t out, const char *file, int line);
static void test_decode(void);
static void test_rounds(void);
static void test_iis_u(void);
static void test_plus(void);
static void test_slashes(void);
static void test_dots(void);
static void test_windows_names(void);
static void test_cookieless(void);
static void test_absolute_form(void);
static void test_overlong(void);
static void test_invalid_escapes(void);
static void test_nul(void);
static void test_no_query_out(void);
static void test_relative(void);
static void test_relative_segments(void);
static void test_alloc_failure(void);
static void test_random_paths(void);
static void test_null(void);
static void test_escape_blocks(void);
static void test_plain_blocks(void);
static void test_target_scan(void);
static int plain_check(const unsigned char *raw, size_t len);
static int each_path_byte(size_t len,
    int (*check)(const unsigned char *raw, size_t len));
static int scan_check(const unsigned char *t, size_t len);


static void
check_uri(eg_str_t target, unsigned rounds, int rc, eg_str_t path,
    eg_str_t query, const char *file, int line)
{
    int               got;
    eg_str_t          p, q;
    eg_alloc_t       *alloc;
    eg_test_arena_t   arena;

    alloc = eg_test_arena_init(&arena);

    got = eg_uri_normalize(target, rounds, alloc, &p, &q);

    if (got == rc && p.len == path.len && memcmp(p.data, path.data, p.len) == 0
        && q.len == query.len && memcmp(q.data, query.data, q.len) == 0)
    {
        eg_test_pass();

    } else {
        eg_test_fail(file, line, "eg_uri_normalize(rounds %u)", rounds);
        printf("    target ");
        eg_test_print(target.data, target.len);
        printf("\n    got rc %d, path ", got);
        eg_test_print(p.data, p.len);
        printf(", query ");
        eg_test_print(q.data, q.len);
        printf("\n    expected rc %d, path ", rc);
        eg_test_print(path.data, path.len);
        printf(", query ");
        eg_test_print(query.data, query.len);
        printf("\n");
        fflush(stdout);
    }

    eg_test_arena_free(&arena);
}


static void
check_dec(eg_str_t in, unsigned rounds, int plus, int rc, eg_str_t out,
    const char *file, int line)
{
    int               got;
    eg_str_t          o;
    eg_alloc_t       *alloc;
    eg_test_arena_t   arena;

    alloc = eg_test_arena_init(&arena);

    got = eg_url_decode(in, rounds, plus, alloc, &o);

    if (got == rc && o.data != NULL && o.len == out.len
        && memcmp(o.data, out.data, o.len) == 0)
    {
        eg_test_pass();

    } else {
        eg_test_fail(file, line, "eg_url_decode(rounds %u, plus %d)",
                     rounds, plus);
        printf("    in ");
        eg_test_print(in.data, in.len);
        printf("\n    got rc %d, ", got);
        eg_test_print(o.data, o.len);
        printf("\n    expected rc %d, ", rc);
        eg_test_print(out.data, out.len);
        printf("\n");
        fflush(stdout);
    }

    eg_test_arena_free(&arena);
}


static void
test_decode(void)
{
    CHECK_DEC("", 3, 0, 0, "");
    CHECK_DEC("abc", 3, 0, 0, "abc");
    CHECK_DEC("%41%62%63", 3, 0, 0, "Abc");
    CHECK_DEC("%2f%2F%5c%5C", 3, 0, 0, "//\\\\");
    CHECK_DEC("%e2%82%ac", 3, 0, 0, "\xe2\x82\xac");
    CHECK_DEC("%ff%FE", 3, 0, 0, "\xff\xfe");

    CHECK_URI("/owa/%61uth/x.%61spx", 0, "/owa/auth/x.aspx", "");
    CHECK_URI("/%65cp/DDI/DDIService.svc/SetObject?schema=%4fAB", 0,
              "/ecp/DDI/DDIService.svc/SetObject", "schema=OAB");
    CHECK_URI("/autodiscover/autodiscover.json?%40x.com/%50owershell", 0,
              "/autodiscover/autodiscover.json", "@x.com/Powershell");
    CHECK_URI("/owa/u%40d.com/powershell", 0, "/owa/u@d.com/powershell", "");

    /* the case of the path is kept: rules compare case-insensitively */
    CHECK_URI("/OWA/Auth/X.ASPX", 0, "/OWA/Auth/X.ASPX", "");

    /* a '?' decoded from %3f stays in the path */
    CHECK_URI("/a%3fb?c", 0, "/a?b", "c");

    /* '#' is not special in a request-target */
    CHECK_URI("/a#b?c#d", 0, "/a#b", "c#d");
}


static void
test_rounds(void)
{
    /* double and triple encoding decode within 3 rounds */
    CHECK_DEC("%252e", 3, 0, 0, ".");
    CHECK_DEC("%25252e", 3, 0, 0, ".");
    CHECK_DEC("%2550owershell", 3, 0, 0, "Powershell");

    /* four layers are one too many: -1, three layers undone */
    CHECK_DEC("%2525252e", 3, 0, -1, "%2e");
    CHECK_DEC("%252e", 1, 0, -1, "%2e");
    CHECK_DEC("%252e", 2, 0, 0, ".");

    /* a '%' left that is no escape is not a reason for -1 */
    CHECK_DEC("%2525", 2, 0, 0, "%");
    CHECK_DEC("%25zz", 1, 0, 0, "%zz");
    CHECK_DEC("100%", 1, 0, 0, "100%");

    CHECK_URI("/owa/%252e%252e/ecp/auth/x.aspx", 0, "/ecp/auth/x.aspx", "");
    CHECK_URI("/owa/%25252e%25252e/ecp/auth/x.aspx", 0, "/ecp/auth/x.aspx",
              "");
    CHECK_URI("/ecp/%252561uth/x.aspx", 0, "/ecp/auth/x.aspx", "");
    CHECK_URI("/a?x=%25252e", 0, "/a", "x=.");

    /* four layers: -1, with the path as far as it was decoded */
    CHECK_URI("/ecp/%25252561uth/x.aspx", -1, "/ecp/%61uth/x.aspx", "");
    CHECK_URI("/a?x=%2525252e", -1, "/a", "x=%2e");
    CHECK_URI_R("/ecp/%2561uth", 1, -1, "/ecp/%61uth", "");
    CHECK_URI_R("/ecp/%2561uth", 2, 0, "/ecp/auth", "");
}


static void
test_iis_u(void)
{
    CHECK_DEC("%u002e", 3, 0, 0, ".");
    CHECK_DEC("%U002E", 3, 0, 0, ".");
    CHECK_DEC("%u0041%u0062", 3, 0, 0, "Ab");
    CHECK_DEC("%u00e9", 3, 0, 0, "\xc3\xa9");
    CHECK_DEC("%u20ac", 3, 0, 0, "\xe2\x82\xac");
    CHECK_DEC("%25u002e", 3, 0, 0, ".");

    CHECK_URI("/%u002e%u002e/ecp/auth/x.aspx", 0, "/ecp/auth/x.aspx", "");
    CHECK_URI("/ecp/auth/x%u002easpx", 0, "/ecp/auth/x.aspx", "");
    CHECK_URI("/owa%u005cauth%u002fx.aspx", 0, "/owa/auth/x.aspx", "");
    CHECK_URI("/a?%u0050owershell", 0, "/a", "Powershell");

    /* not enough hex digits: literal */
    CHECK_DEC("%u002", 3, 0, 0, "%u002");
    CHECK_DEC("%u00zz", 3, 0, 0, "%u00zz");
    CHECK_DEC("%u", 3, 0, 0, "%u");
}


static void
test_plus(void)
{
    CHECK_DEC("a+b", 3, 1, 0, "a b");
    CHECK_DEC("a+b", 3, 0, 0, "a+b");
    CHECK_DEC("a%2bb", 3, 1, 0, "a+b");
    CHECK_DEC("a%2Bb+c%20d", 3, 1, 0, "a+b c d");
    CHECK_DEC("a%252bb", 3, 1, 0, "a+b");

    CHECK_URI("/a+b/c+d.aspx?x+y=1+2", 0, "/a+b/c+d.aspx", "x y=1 2");
    CHECK_URI("/a?x=%2b+", 0, "/a", "x=+ ");
}


static void
test_slashes(void)
{
    CHECK_URI("/owa\\auth\\x.aspx", 0, "/owa/auth/x.aspx", "");
    CHECK_URI("\\owa\\auth\\x.aspx", 0, "/owa/auth/x.aspx", "");
    CHECK_URI("/owa%5cauth%5Cx.aspx", 0, "/owa/auth/x.aspx", "");
    CHECK_URI("/owa%255cauth/x.aspx", 0, "/owa/auth/x.aspx", "");
    CHECK_URI("//owa///auth////x.aspx", 0, "/owa/auth/x.aspx", "");
    CHECK_URI("/owa/%2f/auth/x.aspx", 0, "/owa/auth/x.aspx", "");
    CHECK_URI("/\\/owa", 0, "/owa", "");

    /* a trailing slash is kept, and only one */
    CHECK_URI("/owa/", 0, "/owa/", "");
    CHECK_URI("/owa//", 0, "/owa/", "");
    CHECK_URI("/owa\\", 0, "/owa/", "");
    CHECK_URI("/owa/?a", 0, "/owa/", "a");
    CHECK_URI("/owa", 0, "/owa", "");

    /* an empty path is "/" */
    CHECK_URI("", 0, "/", "");
    CHECK_URI("/", 0, "/", "");
    CHECK_URI("//", 0, "/", "");
    CHECK_URI("?x=1", 0, "/", "x=1");
    CHECK_URI("/?", 0, "/", "");

    /* backslashes in the query are data */
    CHECK_URI("/a?x=\\\\127.0.0.1\\c$", 0, "/a", "x=\\\\127.0.0.1\\c$");
}


static void
test_dots(void)
{
    CHECK_URI("/a/./b", 0, "/a/b", "");
    CHECK_URI("/a/b/../c", 0, "/a/c", "");
    CHECK_URI("/a/b/../../c", 0, "/c", "");
    CHECK_URI("/owa/../ecp/auth/x.aspx", 0, "/ecp/auth/x.aspx", "");
    CHECK_URI("/owa/auth/..\\..\\aspnet_client\\x.aspx", 0,
              "/aspnet_client/x.aspx", "");
    CHECK_URI("/owa/%2e%2e/ecp/auth/x.aspx", 0, "/ecp/auth/x.aspx", "");
    CHECK_URI("/owa/.%2e/ecp", 0, "/ecp", "");

    /* never above the root */
    CHECK_URI("/..", 0, "/", "");
    CHECK_URI("/../../..", 0, "/", "");
    CHECK_URI("/../../etc/x", 0, "/etc/x", "");
    CHECK_URI("/a/../../../b", 0, "/b", "");

    /* a dot segment at the end leaves a directory */
    CHECK_URI("/a/b/.", 0, "/a/b/", "");
    CHECK_URI("/a/b/..", 0, "/a/", "");
    CHECK_URI("/a/..", 0, "/", "");
    CHECK_URI("/.", 0, "/", "");

    /* dots inside names are names */
    CHECK_URI("/a/..b/c", 0, "/a/..b/c", "");
    CHECK_URI("/a/.b", 0, "/a/.b", "");
    CHECK_URI("/a/b..c", 0, "/a/b..c", "");

    /* dot segments in the query are data */
    CHECK_URI("/a?/../b", 0, "/a", "/../b");
}


static void
test_windows_names(void)
{
    /* Win32 drops trailing dots and spaces of a name */
    CHECK_URI("/aspnet_client/shell.aspx.", 0, "/aspnet_client/shell.aspx",
              "");
    CHECK_URI("/aspnet_client/shell.aspx%20", 0,
              "/aspnet_client/shell.aspx", "");
    CHECK_URI("/aspnet_client/shell.aspx. .%20.", 0,
              "/aspnet_client/shell.aspx", "");
    CHECK_URI("/aspnet_client./shell.aspx", 0, "/aspnet_client/shell.aspx",
              "");
    CHECK_URI("/ecp%20/auth./x.aspx", 0, "/ecp/auth/x.aspx", "");
    CHECK_URI("/owa/auth/x.aspx./", 0, "/owa/auth/x.aspx/", "");

    /* NTFS alternate data streams */
    CHECK_URI("/aspnet_client/x.aspx::$DATA", 0, "/aspnet_client/x.aspx",
              "");
    CHECK_URI("/aspnet_client/x.aspx:$DATA", 0, "/aspnet_client/x.aspx", "");
    CHECK_URI("/aspnet_client/x.aspx%3a%3a$DATA", 0,
              "/aspnet_client/x.aspx", "");
    CHECK_URI("/aspnet_client/x.aspx::$DATA/y.js", 0,
              "/aspnet_client/x.aspx/y.js", "");

    /* a segment that is nothing but dots and spaces goes away */
    CHECK_URI("/a/%20/b", 0, "/a/b", "");

    /* a space inside a name stays */
    CHECK_URI("/a%20b/c", 0, "/a b/c", "");
}


static void
test_cookieless(void)
{
    CHECK_URI("/owa/(S(abc))/auth/x.aspx", 0, "/owa/auth/x.aspx", "");
    CHECK_URI("/(S(abcdefghijklmnopqrstuvwx))/ecp/auth/x.aspx", 0,
              "/ecp/auth/x.aspx", "");
    CHECK_URI("/(A(x))/(F(y))/aspnet_client/x.aspx", 0,
              "/aspnet_client/x.aspx", "");
    CHECK_URI("/owa/(s(abc))/x", 0, "/owa/x", "");
    CHECK_URI("/owa/%28S%28abc%29%29/x", 0, "/owa/x", "");
    CHECK_URI("/owa/(S(abc))", 0, "/owa/", "");

    /* not cookieless state: kept */
    CHECK_URI("/owa/(abc)/x", 0, "/owa/(abc)/x", "");
    CHECK_URI("/owa/(S(abc)/x", 0, "/owa/(S(abc)/x", "");
}


static void
test_absolute_form(void)
{
    CHECK_URI("http://host/owa/x?y", 0, "/owa/x", "y");
    CHECK_URI("https://mail.contoso.com/ecp/auth/x.aspx", 0,
              "/ecp/auth/x.aspx", "");
    CHECK_URI("HTTP://host:80/owa/../ecp/y.js", 0, "/ecp/y.js", "");
    CHECK_URI("http://host", 0, "/", "");
    CHECK_URI("http://host/", 0, "/", "");
    CHECK_URI("http://host?x=1", 0, "/", "x=1");
    CHECK_URI("http://user@host/a", 0, "/a", "");
}


static void
test_overlong(void)
{
    /* C0 AF is an overlong '/', C1 9C an overlong '\' */
    CHECK_URI("/a%c0%afb", 0, "/a/b", "");
    CHECK_URI("/owa/..%c0%af..%c0%afecp/auth/x.aspx", 0,
              "/ecp/auth/x.aspx", "");
    CHECK_URI("/owa/..%c1%9c..%c1%9cecp", 0, "/ecp", "");
    CHECK_URI("/owa/%c0%ae%c0%ae/ecp", 0, "/ecp", "");
    CHECK_URI("/a\xc0\xaf" "b", 0, "/a/b", "");

    /* a valid two-byte character is kept */
    CHECK_URI("/caf%c3%a9", 0, "/caf\xc3\xa9", "");
}


static void
test_invalid_escapes(void)
{
    CHECK_DEC("%zz", 3, 0, 0, "%zz");
    CHECK_DEC("%4", 3, 0, 0, "%4");
    CHECK_DEC("%", 3, 0, 0, "%");
    CHECK_DEC("%%41", 3, 0, 0, "%A");
    CHECK_DEC("%4g", 3, 0, 0, "%4g");

    CHECK_URI("/a%zz", 0, "/a%zz", "");
    CHECK_URI("/a%4", 0, "/a%4", "");
    CHECK_URI("/a%", 0, "/a%", "");
    CHECK_URI("/a?x=%zz&y=%4", 0, "/a", "x=%zz&y=%4");
}


static void
test_nul(void)
{
    CHECK_DEC("a%00b", 3, 0, 0, "a\0b");
    CHECK_DEC("%00%00", 3, 0, 0, "\0\0");
    CHECK_DEC("%u0000", 3, 0, 0, "\0");

    CHECK_URI("/a%00b", 0, "/a\0b", "");
    CHECK_URI("/x.aspx%00.js", 0, "/x.aspx\0.js", "");
    CHECK_URI("/a?x=%00y", 0, "/a", "x=\0y");
}


static void
test_no_query_out(void)
{
    int               rc;
    eg_str_t          p;
    eg_alloc_t       *alloc;
    eg_test_arena_t   arena;

    alloc = eg_test_arena_init(&arena);

    rc = eg_uri_normalize(eg_test_s("/a/../b?x=%2525252e"), 3, alloc, &p,
                          NULL);
    CHECK_INT(rc, 0);
    CHECK_STR(p, "/b");

    /* the engine takes its memory from the caller's allocator only */
    CHECK(arena.nallocs > 0);

    eg_test_arena_free(&arena);
}


/*
 * A request-target without a leading '/' ("*", a relative reference from
 * a tool or a fuzzer) is still a path from the root.  The second group
 * also checks that the engine writes only inside the memory it asked for.
 */

static void
test_relative(void)
{
    CHECK_URI("*", 0, "/*", "");
    CHECK_URI("owa", 0, "/owa", "");
    CHECK_URI("x?y", 0, "/x", "y");
    CHECK_URI("./a/b", 0, "/a/b", "");
}


static void
test_relative_segments(void)
{
    CHECK_URI("a/b", 0, "/a/b", "");
    CHECK_URI("owa/auth/x.aspx", 0, "/owa/auth/x.aspx", "");
}


static void
test_alloc_failure(void)
{
    int               rc;
    eg_str_t          p, q;
    eg_alloc_t       *alloc;
    eg_test_arena_t   arena;

    alloc = eg_test_arena_init(&arena);

    arena.fail_after = 0;
    rc = eg_url_decode(eg_test_s("%41"), 3, 0, alloc, &p);
    CHECK_INT(rc, -1);
    CHECK(p.data == NULL);

    /* the path's copy, then the query's */

    arena.fail_after = 0;
    rc = eg_uri_normalize(eg_test_s("/a%41/./b?b%42"), 3, alloc, &p, &q);
    CHECK_INT(rc, -1);

    arena.fail_after = 1;
    rc = eg_uri_normalize(eg_test_s("/a%41/./b?b%42"), 3, alloc, &p, &q);
    CHECK_INT(rc, -1);

    arena.fail_after = -1;
    rc = eg_uri_normalize(eg_test_s("/a%41/./b?b%42"), 3, alloc, &p, &q);
    CHECK_INT(rc, 0);
    CHECK_STR(p, "/aA/b");
    CHECK_STR(q, "bB");

    eg_test_arena_free(&arena);
}


/*
 * A property over random paths of the characters that matter: the path
 * sent plainly and the same path with every byte but '/' percent-encoded
 * normalize alike, so the plain fast path and the decoding path agree.
 * (Normalizing is not idempotent, and need not be: "(S(x))." is the
 * directory "(S(x))" for Windows, but not a cookieless segment for
 * ASP.NET, which looks at the URL before Windows drops the dot.)
 */

static void
test_random_paths(void)
{
    int               bad;
    size_t            i, k, len, elen;
    uint64_t          x;
    eg_str_t          p1, p2;
    eg_alloc_t       *alloc;
    unsigned char     raw[64], enc[256];
    eg_test_arena_t   arena;
    static const char  alphabet[] = "//////....  ::$()SsAa\\x~-_*,;=@!'";
    static const char  hex[] = "0123456789abcdef0123456789ABCDEF";

    x = 0x853c49e6748fea9bULL;
    bad = 0;

    for (i = 0; i < 10000 && bad < 5; i++) {
        alloc = eg_test_arena_init(&arena);

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        len = 1 + x % 24;

        raw[0] = '/';
        elen = 0;
        enc[elen++] = '/';

        for (k = 1; k < len; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            raw[k] = alphabet[x % (sizeof(alphabet) - 1)];

            if (raw[k] == '/') {
                enc[elen++] = '/';

            } else {
                enc[elen++] = '%';
                enc[elen++] = hex[(raw[k] >> 4) + (x & 16)];
                enc[elen++] = hex[(raw[k] & 0xf) + ((x >> 5) & 16)];
            }
        }

        if (eg_uri_normalize(eg_test_mem(raw, len), 3, alloc, &p1, NULL) != 0
            || eg_uri_normalize(eg_test_mem(enc, elen), 3, alloc, &p2, NULL)
               != 0
            || p1.len != p2.len || memcmp(p1.data, p2.data, p1.len) != 0)
        {
            bad++;
            eg_test_fail(__FILE__, __LINE__, "random path %zu", i);
            printf("    ");
            eg_test_print(raw, len);
            printf(" -> ");
            eg_test_print(p1.data, p1.len);
            printf("\n    encoded -> ");
            eg_test_print(p2.data, p2.len);
            printf("\n");
            fflush(stdout);

        } else {
            eg_test_pass();
        }

        eg_test_arena_free(&arena);
    }
}


/* an empty eg_str_t may have no data at all (eg_rule_cve returns one) */

static void
test_null(void)
{
    eg_str_t          empty = { NULL, 0 }, p, q;
    eg_alloc_t       *alloc;
    eg_test_arena_t   arena;

    alloc = eg_test_arena_init(&arena);

    CHECK_INT(eg_url_decode(empty, 3, 1, alloc, &p), 0);
    CHECK_INT(p.len, 0);

    CHECK_INT(eg_uri_normalize(empty, 3, alloc, &p, &q), 0);
    CHECK_STR(p, "/");
    CHECK_STR(q, "");

    eg_test_arena_free(&arena);
}


int
main(void)
{
    EG_RUN(test_decode);
    EG_RUN(test_rounds);
    EG_RUN(test_iis_u);
    EG_RUN(test_plus);
    EG_RUN(test_slashes);
    EG_RUN(test_dots);
    EG_RUN(test_windows_names);
    EG_RUN(test_cookieless);
    EG_RUN(test_absolute_form);
    EG_RUN(test_overlong);
    EG_RUN(test_invalid_escapes);
    EG_RUN(test_nul);
    EG_RUN(test_no_query_out);
    EG_RUN(test_relative);
    EG_RUN(test_relative_segments);
    EG_RUN(test_alloc_failure);
    EG_RUN(test_random_paths);
    EG_RUN(test_null);

    /* the SSE2 path, and the AVX2 one where the CPU has it */

    eg_avx2 = 0;
    EG_RUN(test_plain_blocks);
    EG_RUN(test_escape_blocks);
    EG_RUN(test_target_scan);

    if (eg_cpu_avx2()) {
        eg_avx2 = 1;
        EG_RUN(test_escape_blocks);
        EG_RUN(test_target_scan);
    }

    return eg_test_done();
}


/* the bytes that decide whether a path is plain, and some that do not */

static const unsigned char  path_alphabet[] =
    "////..aZ09-_~%(:\\ \x7f\x80\xa0\xff;";


/* xorshift64: the same random targets on every run */

static uint64_t
next_random(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;

    return *x;
}


/* len bytes, mostly letters so that long plain paths occur, and now and
   then one of the n bytes of alphabet */

static void
random_path_bytes(uint64_t *x, unsigned char *raw, size_t len,
    const unsigned char *alphabet, size_t n)
{
    size_t    k;
    uint64_t  r;

    for (k = 0; k < len; k++) {
        r = next_random(x);
        raw[k] = (r & 7) ? (unsigned char) ('a' + (r >> 3) % 26)
                         : alphabet[(r >> 3) % n];
    }
}


/*
 * eg_path_plain() reads sixteen bytes at a time where SSE2 is (with AVX2
 * the engine tests the path in eg_target_scan(): test_target_scan): it
 * must agree with the byte-at-a-time rule on paths of every length
 * around the block size, with the telling byte anywhere.
 */

static void
test_plain_blocks(void)
{
    int               bad;
    size_t            i, j, len;
    uint64_t          x;
    unsigned char     raw[80];
    static const size_t  lens[] = { 15, 16, 17, 31, 32, 33, 40, 63, 64, 65,
                                    79 };

    x = 0x9e3779b97f4a7c15ULL;
    bad = 0;

    for (i = 0; i < 200000 && bad < 5; i++) {
        len = 1 + next_random(&x) % sizeof(raw);
        raw[0] = '/';
        random_path_bytes(&x, raw + 1, len - 1, path_alphabet,
                          sizeof(path_alphabet) - 1);

        bad += !plain_check(raw, len);
    }

    /* each special byte at each offset of paths of 15-17, 31-33, 40,
       63-65 and 79 bytes (the blocks' edges), alone and after a '/' */

    for (j = 0; j < sizeof(lens) / sizeof(lens[0]) && bad < 5; j++) {
        bad += each_path_byte(lens[j], plain_check);
    }

    CHECK(bad == 0);
}


/* eg_path_plain() against the byte-at-a-time rule; 0 if they differ */

static int
plain_check(const unsigned char *raw, size_t len)
{
    int     want;
    size_t  k;

    want = 1;
    for (k = 1; k < len; k++) {
        want &= eg_path_byte_ok(raw, k, len);
    }

    if (eg_path_plain(eg_test_mem(raw, len)) == want) {
        eg_test_pass();
        return 1;
    }

    eg_test_fail(__FILE__, __LINE__, "eg_path_plain() is not %d for", want);
    printf("    ");
    eg_test_print(raw, len);
    printf("\n");
    fflush(stdout);

    return 0;
}


/* check() of each byte of path_alphabet at each place (but the first) of a
   path of len bytes, alone and after a '/' (which may be the last byte of
   the block before); the number of them that failed */

static int
each_path_byte(size_t len, int (*check)(const unsigned char *raw,
    size_t len))
{
    int            bad;
    size_t         i, k;
    unsigned char  raw[128];

    bad = 0;

    for (k = 1; k < len && len <= sizeof(raw); k++) {
        for (i = 0; i < 2 * (sizeof(path_alphabet) - 1); i++) {
            memset(raw, 'a', len);
            raw[0] = '/';
            raw[k] = path_alphabet[i % (sizeof(path_alphabet) - 1)];

            if (i >= sizeof(path_alphabet) - 1 && k > 1) {
                raw[k - 1] = '/';
            }

            bad += !check(raw, len);
        }
    }

    return bad;
}


/*
 * eg_url_decode() returns its input when it has nothing to decode: no
 * '%', and with plus no '+'.  That test reads 32 bytes at a time with
 * AVX2 (main() runs this on each path): queries of 0-100 bytes with one
 * '%' or '+' at each place, or none, with plus and without.
 */

static void
test_escape_blocks(void)
{
    int               plus, want, bad;
    size_t            len, k, c;
    eg_str_t          in, out;
    unsigned char     raw[100];
    eg_test_arena_t   arena;
    const eg_alloc_t *alloc;
    static const unsigned char  put[] = "%+";

    alloc = eg_test_arena_init(&arena);
    bad = 0;

    for (len = 0; len <= sizeof(raw); len++) {
        for (k = 0; k <= len; k++) {
            for (c = 0; c < 2; c++) {
                for (plus = 0; plus < 2; plus++) {
                    /* a '=' and a '&' about; k == len: no escape */

                    memset(raw, 'a', len);
                    if (len > 3) {
                        raw[len / 3] = '=';
                        raw[len / 2] = '&';
                    }
                    if (k < len) {
                        raw[k] = put[c];
                    }

                    in.data = raw;
                    in.len = len;
                    want = k < len && (c == 0 || plus);

                    (void) eg_url_decode(in, 1, plus, alloc, &out);

                    if ((out.data != in.data) != want) {
                        if (bad++ < 5) {
                            eg_test_fail(__FILE__, __LINE__, "len %zu, '%c' "
                                         "at %zu, plus %d: decoded %d",
                                         len, put[c], k, plus,
                                         out.data != in.data);
                        }
                    } else {
                        eg_test_pass();
                    }
                }
            }
        }
    }

    CHECK(bad == 0);

    eg_test_arena_free(&arena);
}


/*
 * eg_target_scan() against the rule it stands for, byte by byte: the
 * first '?' ends the path; the path is plain by eg_path_byte_ok(); the
 * query has something to decode if it holds a '%' or a '+'.  With AVX2
 * it is one pass of 32-byte blocks (main() runs this on each path):
 * random targets, then at the blocks' edges a '?' at each place (or none)
 * with a special byte at each other place.  eg_target_scan_anchors() of
 * the same, with pairs of anchor bytes, against memchr() (scan_check()).
 */

static unsigned
scan_want(const unsigned char *t, size_t len, size_t *qpos)
{
    size_t    i, q;
    unsigned  want;

    for (q = 0; q < len && t[q] != '?'; q++) {
        /* void */
    }

    *qpos = q;
    want = 0;

    if (q > 0 && t[0] == '/') {
        want = EG_SCAN_PLAIN;

        for (i = 1; i < q; i++) {
            if (!eg_path_byte_ok(t, i, q)) {
                want = 0;
                break;
            }
        }
    }

    for (i = q + 1; i < len; i++) {
        if (t[i] == '%' || t[i] == '+') {
            want |= EG_SCAN_ESCAPE;
            break;
        }
    }

    return want;
}


static int
scan_check(const unsigned char *t, size_t len)
{
    size_t    k, qpos, want_qpos;
    unsigned  got, want, found, want_found;
    static const unsigned char  anchors[][2] = {
        { '/', '-' }, { '-', '-' }, { '.', '&' }, { '~', '=' }, { '?', '?' }
    };

    want = scan_want(t, len, &want_qpos);
    qpos = (size_t) -1;
    got = eg_target_scan(eg_test_mem(t, len), &qpos);

    /*
     * eg_target_scan_anchors(), the same and, where AVX2 scans (a target
     * that starts with '/'): whether the path has anchors[0] if it is
     * plain, and the query anchors[1] if it has nothing to decode
     */

    for (k = 0; k < sizeof(anchors) / sizeof(anchors[0]) && got == want
                && qpos == want_qpos; k++)
    {
        want_found = 0;

        if (eg_avx2 > 0 && len && t[0] == '/') {
            if (want & EG_SCAN_PLAIN) {
                want_found |= EG_FOUND_PATH
                              | (memchr(t, anchors[k][0], want_qpos)
                                 ? EG_FOUND_P : 0);
            }

            if (!(want & EG_SCAN_ESCAPE)) {
                want_found |= EG_FOUND_QUERY
                              | (want_qpos + 1 < len
                                 && memchr(t + want_qpos + 1, anchors[k][1],
                                           len - want_qpos - 1)
                                 ? EG_FOUND_Q : 0);
            }
        }

        found = 0xff;
        qpos = (size_t) -1;
        got = eg_target_scan_anchors(eg_test_mem(t, len), &qpos, anchors[k],
                                     &found);

        if (found != want_found) {
            eg_test_fail(__FILE__, __LINE__, "eg_target_scan_anchors() "
                         "(AVX2 %d) found %#x, not %#x, of '%c' '%c' in",
                         eg_avx2, found, want_found, anchors[k][0],
                         anchors[k][1]);
            printf("    ");
            eg_test_print(t, len);
            printf("\n");
            fflush(stdout);
            return 0;
        }
    }

    if (got == want && qpos == want_qpos) {
        eg_test_pass();
        return 1;
    }

    eg_test_fail(__FILE__, __LINE__, "eg_target_scan() (AVX2 %d) is %u, "
                 "'?' at %zu, not %u at %zu for", eg_avx2, got, qpos, want,
                 want_qpos);
    printf("    ");
    eg_test_print(t, len);
    printf("\n");
    fflush(stdout);

    return 0;
}


static void
test_target_scan(void)
{
    int               bad;
    size_t            i, j, k, q, len;
    uint64_t          x;
    unsigned char     raw[140];
    static const size_t  lens[] = { 1, 2, 3, 15, 16, 17, 31, 32, 33, 40,
                                    63, 64, 65, 96, 97, 100 };
    static const unsigned char  alphabet[] =
        "??%%++//..aZ09-_~=&(:\\ \x7f\x80\xa0\xff;";
    static const unsigned char  special[] = "?%+./\\ (:\x80";

    x = 0x2545f4914f6cdd1dULL;
    bad = 0;

    for (i = 0; i < 200000 && bad < 5; i++) {
        len = next_random(&x) % (sizeof(raw) + 1);
        random_path_bytes(&x, raw, len, alphabet, sizeof(alphabet) - 1);

        /* mostly origin-form, the targets AVX2 reads */
        if (len && (x >> 40) % 8) {
            raw[0] = '/';
        }

        bad += !scan_check(raw, len);
    }

    for (j = 0; j < sizeof(lens) / sizeof(lens[0]) && bad < 5; j++) {
        len = lens[j];

        for (q = 1; q <= len; q++) {
            for (k = 1; k < len; k++) {
                for (i = 0; i < sizeof(special) - 1; i++) {
                    memset(raw, 'a', len);
                    raw[0] = '/';
                    if (q < len) {
                        raw[q] = '?';
                    }
                    if (k != q) {
                        raw[k] = special[i];
                    }

                    bad += !scan_check(raw, len);
                }
            }
        }
    }

    /* a path alone: the bytes test_plain_blocks tries */

    for (j = 0; j < sizeof(lens) / sizeof(lens[0]) && bad < 5; j++) {
        bad += each_path_byte(lens[j], scan_check);
    }

    CHECK(bad == 0);
}
