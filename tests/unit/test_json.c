/*
 * Unit tests of eg_json_escape(), eg_log_format() and eg_log_size(): the
 * log line is one line of valid JSON and valid UTF-8 whatever bytes the
 * request holds, every attacker-controlled string is bounded, and
 * eg_log_size() is an upper bound of what eg_log_format() writes.
 *
 * The JSON and UTF-8 checks are written here, strictly: RFC 8259 grammar,
 * no raw control characters, no lone surrogate escapes, UTF-8 without
 * overlong forms, surrogates or code points above U+10FFFF.
 */

#include <stdint.h>

#include "eg_test.h"


#define ITERATIONS  10000

#define FFFD  "\xef\xbf\xbd"


typedef struct {
    const unsigned char  *p;
    const unsigned char  *end;
    unsigned              depth;
    char                  path[512];
    size_t                plen;
    const char           *want;     /* a path such as "url.original" */
    unsigned char        *got;      /* its decoded string */
    size_t                gotlen;
    int                   found;
} json_t;


static size_t utf8_seq(const unsigned char *s, size_t len);
static int utf8_valid(const unsigned char *s, size_t len);
static void json_ws(json_t *j);
static int json_hex4(json_t *j, uint32_t *cp);
static size_t put_utf8(unsigned char *d, uint32_t cp);
static int json_string(json_t *j, unsigned char *out, size_t *outlen,
    size_t outmax);
static int json_number(json_t *j);
static int json_literal(json_t *j, const char *lit);
static int json_value(json_t *j);
static int json_check(const unsigned char *s, size_t len, const char *want,
    unsigned char *got, size_t *gotlen);
static uint64_t rnd(void);
static size_t rnd_len(void);
static void rnd_bytes(unsigned char *buf, size_t len);
static size_t escape(eg_str_t src, size_t max, unsigned char **out,
    int *truncated);
static int escaped_is(eg_str_t src, size_t max, const char *expected,
    size_t explen);
static eg_ruleset_t *make_rules(void);
static size_t longest_run(const unsigned char *s, size_t len,
    unsigned char c);
static int check_line(const eg_log_event_t *ev, unsigned char **line,
    size_t *len, const char *file, int ln);
static void test_escape_basic(void);
static void test_escape_controls(void);
static void test_escape_invalid(void);
static void test_escape_valid(void);
static void test_escape_truncate(void);
static void test_escape_random(void);
static void test_json_checker(void);
static void test_log_hostile(void);
static void test_log_caps(void);
static void test_log_empty(void);
static void test_log_random(void);


static uint64_t  rnd_state = 0x9e3779b97f4a7c15ULL;


/* length of the valid UTF-8 sequence at s, 0 if invalid */

static size_t
utf8_seq(const unsigned char *s, size_t len)
{
    size_t    n, i;
    uint32_t  cp;

    if (s[0] < 0x80) {
        return 1;
    }

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
        cp = s[0] & 0x1f;

    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        cp = s[0] & 0x0f;

    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        cp = s[0] & 0x07;

    } else {
        return 0;
    }

    if (len < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }

    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)
        || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
    {
        return 0;
    }

    return n;
}


static int
utf8_valid(const unsigned char *s, size_t len)
{
    size_t  i, n;

    for (i = 0; i < len; i += n) {
        n = utf8_seq(s + i, len - i);
        if (n == 0) {
            return 0;
        }
    }

    return 1;
}


static void
json_ws(json_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n'
                             || *j->p == '\r'))
    {
        j->p++;
    }
}


static int
json_hex4(json_t *j, uint32_t *cp)
{
    int            i;
    unsigned char  c;

    if (j->end - j->p < 4) {
        return -1;
    }

    *cp = 0;

    for (i = 0; i < 4; i++) {
        c = *j->p++;
        *cp <<= 4;

        if (c >= '0' && c <= '9') {
            *cp |= c - '0';

        } else if (c >= 'a' && c <= 'f') {
            *cp |= c - 'a' + 10;

        } else if (c >= 'A' && c <= 'F') {
            *cp |= c - 'A' + 10;

        } else {
            return -1;
        }
    }

    return 0;
}


static size_t
put_utf8(unsigned char *d, uint32_t cp)
{
    if (cp < 0x80) {
        d[0] = (unsigned char) cp;
        return 1;
    }

    if (cp < 0x800) {
        d[0] = (unsigned char) (0xc0 | (cp >> 6));
        d[1] = (unsigned char) (0x80 | (cp & 0x3f));
        return 2;
    }

    if (cp < 0x10000) {
        d[0] = (unsigned char) (0xe0 | (cp >> 12));
        d[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
        d[2] = (unsigned char) (0x80 | (cp & 0x3f));
        return 3;
    }

    d[0] = (unsigned char) (0xf0 | (cp >> 18));
    d[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3f));
    d[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
    d[3] = (unsigned char) (0x80 | (cp & 0x3f));
    return 4;
}


/* a string at j->p (the opening quote); decoded into out if not NULL */

static int
json_string(json_t *j, unsigned char *out, size_t *outlen, size_t outmax)
{
    size_t         n, k;
    uint32_t       cp, lo;
    unsigned char  c, tmp[4];

    if (j->p == j->end || *j->p != '"') {
        return -1;
    }

    j->p++;
    n = 0;

    for ( ;; ) {
        if (j->p == j->end) {
            return -1;
        }

        c = *j->p;

        if (c == '"') {
            j->p++;
            break;
        }

        if (c < 0x20) {
            return -1;
        }

        if (c != '\\') {
            k = utf8_seq(j->p, j->end - j->p);
            if (k == 0) {
                return -1;
            }

            if (out && n + k <= outmax) {
                memcpy(out + n, j->p, k);
            }

            n += k;
            j->p += k;
            continue;
        }

        j->p++;
        if (j->p == j->end) {
            return -1;
        }

        c = *j->p++;

        switch (c) {
        case '"':  cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/':  cp = '/'; break;
        case 'b':  cp = '\b'; break;
        case 'f':  cp = '\f'; break;
        case 'n':  cp = '\n'; break;
        case 'r':  cp = '\r'; break;
        case 't':  cp = '\t'; break;

        case 'u':
            if (json_hex4(j, &cp) != 0) {
                return -1;
            }

            if (cp >= 0xdc00 && cp <= 0xdfff) {
                return -1;
            }

            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u') {
                    return -1;
                }
                j->p += 2;
                if (json_hex4(j, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff) {
                    return -1;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }

            break;

        default:
            return -1;
        }

        k = put_utf8(tmp, cp);

        if (out && n + k <= outmax) {
            memcpy(out + n, tmp, k);
        }

        n += k;
    }

    if (outlen) {
        *outlen = n;
    }

    return 0;
}


static int
json_number(json_t *j)
{
    const unsigned char  *start;

    if (j->p < j->end && *j->p == '-') {
        j->p++;
    }

    if (j->p == j->end) {
        return -1;
    }

    if (*j->p == '0') {
        j->p++;

    } else if (*j->p >= '1' && *j->p <= '9') {
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            j->p++;
        }

    } else {
        return -1;
    }

    if (j->p < j->end && *j->p == '.') {
        j->p++;
        start = j->p;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            j->p++;
        }
        if (j->p == start) {
            return -1;
        }
    }

    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) {
            j->p++;
        }
        start = j->p;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            j->p++;
        }
        if (j->p == start) {
            return -1;
        }
    }

    return 0;
}


static int
json_literal(json_t *j, const char *lit)
{
    size_t  len = strlen(lit);

    if ((size_t) (j->end - j->p) < len || memcmp(j->p, lit, len) != 0) {
        return -1;
    }

    j->p += len;
    return 0;
}


static int
json_value(json_t *j)
{
    int            rc;
    size_t         save, klen;
    unsigned char  key[128];

    json_ws(j);

    if (j->p == j->end) {
        return -1;
    }

    if (++j->depth > 64) {
        return -1;
    }

    rc = 0;

    switch (*j->p) {

    case '{':
        j->p++;
        json_ws(j);

        if (j->p < j->end && *j->p == '}') {
            j->p++;
            break;
        }

        for ( ;; ) {
            json_ws(j);

            if (json_string(j, key, &klen, sizeof(key)) != 0
                || klen >= sizeof(key))
            {
                return -1;
            }

            json_ws(j);
            if (j->p == j->end || *j->p++ != ':') {
                return -1;
            }

            save = j->plen;
            if (j->plen + klen + 2 >= sizeof(j->path)) {
                return -1;
            }
            if (j->plen) {
                j->path[j->plen++] = '.';
            }
            memcpy(j->path + j->plen, key, klen);
            j->plen += klen;
            j->path[j->plen] = '\0';

            if (json_value(j) != 0) {
                return -1;
            }

            j->plen = save;
            j->path[j->plen] = '\0';

            json_ws(j);
            if (j->p == j->end) {
                return -1;
            }
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (*j->p == '}') {
                j->p++;
                break;
            }
            return -1;
        }

        break;

    case '[':
        j->p++;
        json_ws(j);

        save = j->plen;
        if (j->plen + 3 >= sizeof(j->path)) {
            return -1;
        }
        memcpy(j->path + j->plen, "[]", 3);
        j->plen += 2;

        if (j->p < j->end && *j->p == ']') {
            j->p++;

        } else {
            for ( ;; ) {
                if (json_value(j) != 0) {
                    return -1;
                }
                json_ws(j);
                if (j->p == j->end) {
                    return -1;
                }
                if (*j->p == ',') {
                    j->p++;
                    continue;
                }
                if (*j->p == ']') {
                    j->p++;
                    break;
                }
                return -1;
            }
        }

        j->plen = save;
        j->path[j->plen] = '\0';
        break;

    case '"':
        if (j->want && !j->found && strcmp(j->path, j->want) == 0) {
            rc = json_string(j, j->got, &j->gotlen, (size_t) -1);
            j->found = 1;

        } else {
            rc = json_string(j, NULL, NULL, 0);
        }
        break;

    case 't':
        rc = json_literal(j, "true");
        break;

    case 'f':
        rc = json_literal(j, "false");
        break;

    case 'n':
        rc = json_literal(j, "null");
        break;

    default:
        rc = json_number(j);
    }

    j->depth--;
    return rc;
}


/*
 * 0 if s is exactly one JSON value, no white space around it.  If want
 * names a string member ("a.b", "a.list[].c"), its first occurrence is
 * decoded into got, which must hold len bytes.
 */

static int
json_check(const unsigned char *s, size_t len, const char *want,
    unsigned char *got, size_t *gotlen)
{
    json_t  j;

    memset(&j, 0, sizeof(json_t));
    j.p = s;
    j.end = s + len;
    j.want = want;
    j.got = got;

    if (len == 0 || s[0] != '{' || json_value(&j) != 0 || j.p != j.end) {
        return -1;
    }

    if (want) {
        if (!j.found) {
            return -1;
        }
        *gotlen = j.gotlen;
    }

    return 0;
}


/* xorshift64*, a fixed seed: the same inputs on every run */

static uint64_t
rnd(void)
{
    rnd_state ^= rnd_state >> 12;
    rnd_state ^= rnd_state << 25;
    rnd_state ^= rnd_state >> 27;

    return rnd_state * 0x2545f4914f6cdd1dULL;
}


static size_t
rnd_len(void)
{
    unsigned  r = rnd() % 1000;

    if (r < 700) {
        return rnd() % 40;
    }

    if (r < 985) {
        return rnd() % 700;
    }

    return rnd() % 70000;
}


/* hostile bytes: quotes, backslashes, controls, broken and valid UTF-8 */

static void
rnd_bytes(unsigned char *buf, size_t len)
{
    size_t    i, k;
    uint32_t  cp;
    unsigned  r;
    unsigned char  tmp[4];
    static const unsigned char  special[] = {
        '"', '\\', '/', '\0', '\n', '\r', '\t', 0x7f, 0x1b, 0x08, 0x0c
    };

    for (i = 0; i < len; /* void */ ) {
        r = rnd() % 100;

        if (r < 40) {
            buf[i++] = (unsigned char) (0x20 + rnd() % 95);

        } else if (r < 55) {
            buf[i++] = special[rnd() % sizeof(special)];

        } else if (r < 65) {
            buf[i++] = (unsigned char) (rnd() % 0x20);

        } else if (r < 80) {
            buf[i++] = (unsigned char) (0x80 + rnd() % 0x80);

        } else {
            do {
                switch (rnd() % 3) {
                case 0:
                    cp = 0x80 + rnd() % 0x780;
                    break;
                case 1:
                    cp = 0x800 + rnd() % 0xf800;
                    break;
                default:
                    cp = 0x10000 + rnd() % 0x100000;
                }
            } while (cp >= 0xd800 && cp <= 0xdfff);

            k = put_utf8(tmp, cp);

            /* sometimes cut short: a truncated sequence */
            if (rnd() % 8 == 0) {
                k = 1 + rnd() % k;
            }

            if (i + k > len) {
                k = len - i;
            }

            memcpy(buf + i, tmp, k);
            i += k;
        }
    }
}


/* escape into a buffer of exactly 6 * max bytes, so ASan sees overruns */

static size_t
escape(eg_str_t src, size_t max, unsigned char **out, int *truncated)
{
    size_t  n;

    *out = malloc(6 * max + 1);
    if (*out == NULL) {
        return 0;
    }

    *truncated = -1;
    n = eg_json_escape(*out, src, max, truncated);
    (*out)[n] = '\0';

    return n;
}


static int
escaped_is(eg_str_t src, size_t max, const char *expected, size_t explen)
{
    int             t, ok;
    size_t          n;
    unsigned char  *out;

    n = escape(src, max, &out, &t);
    ok = out != NULL && n == explen && memcmp(out, expected, n) == 0;

    if (!ok && out) {
        printf("    escaped ");
        eg_test_print(src.data, src.len);
        printf(" to ");
        eg_test_print(out, n);
        printf(", expected ");
        eg_test_print(expected, explen);
        printf("\n");
    }

    free(out);
    return ok;
}


#define CHECK_ESC(src, expected)                                              \
    CHECK(escaped_is(EG_LIT(src), 1024, expected, sizeof(expected) - 1))

#define CHECK_ESC_MAX(src, max, expected)                                     \
    CHECK(escaped_is(EG_LIT(src), max, expected, sizeof(expected) - 1))


static void
test_escape_basic(void)
{
    CHECK_ESC("", "");
    CHECK_ESC("abc", "abc");
    CHECK_ESC("a\"b", "a\\\"b");
    CHECK_ESC("a\\b", "a\\\\b");
    CHECK_ESC("\"\\\"\\", "\\\"\\\\\\\"\\\\");
    CHECK_ESC("</script>", "</script>");
    CHECK_ESC("{\"k\":[1,2]}", "{\\\"k\\\":[1,2]}");
}


static void
test_escape_controls(void)
{
    int             t;
    size_t          n, dlen;
    json_t          j;
    unsigned        c;
    unsigned char   src[1], *out, quoted[16], dec[8];

    for (c = 0; c <= 0x7f; c++) {
        if (c >= 0x20 && c != 0x7f) {
            continue;
        }

        src[0] = (unsigned char) c;
        n = escape(eg_test_mem(src, 1), 1, &out, &t);

        if (out == NULL) {
            CHECK(out != NULL);
            return;
        }

        /* escaped, at most \u00XX, no raw control byte, decodes back */

        quoted[0] = '"';
        memcpy(quoted + 1, out, n);
        quoted[n + 1] = '"';

        memset(&j, 0, sizeof(json_t));
        j.p = quoted;
        j.end = quoted + n + 2;

        if (!(n >= 2 && n <= 6 && out[0] == '\\'
              && json_string(&j, dec, &dlen, sizeof(dec)) == 0
              && j.p == j.end && dlen == 1 && dec[0] == c && t == 0))
        {
            eg_test_fail(__FILE__, __LINE__, "byte 0x%02x escaped to "
                         "\"%.*s\"", c, (int) n, out);

        } else {
            eg_test_pass();
        }

        free(out);
    }

    CHECK_ESC("\x01", "\\u0001");
    CHECK_ESC("\x1f", "\\u001f");
    CHECK_ESC("\x7f", "\\u007f");
    CHECK_ESC("a\0b", "a\\u0000b");
}


static void
test_escape_invalid(void)
{
    size_t          i, n, k;
    int             t;
    unsigned char  *out;
    static const struct {
        const char  *s;
        size_t       len;
    } bad[] = {
        { "\x80", 1 },                  /* lone continuation */
        { "\xbf", 1 },
        { "\x80\x80\x80", 3 },
        { "\xc3", 1 },                  /* truncated sequences */
        { "\xe2\x82", 2 },
        { "\xf0\x9f\x98", 3 },
        { "\xc0\xaf", 2 },              /* overlong '/' */
        { "\xc1\xbf", 2 },
        { "\xe0\x80\xaf", 3 },
        { "\xf0\x80\x80\xaf", 4 },
        { "\xed\xa0\x80", 3 },          /* surrogates */
        { "\xed\xbf\xbf", 3 },
        { "\xf4\x90\x80\x80", 4 },      /* above U+10FFFF */
        { "\xf5\x80\x80\x80", 4 },
        { "\xff", 1 },
        { "\xfe", 1 },
        { "\xf8\x88\x80\x80\x80", 5 }
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = escape(eg_test_mem(bad[i].s, bad[i].len), 64, &out, &t);
        if (out == NULL) {
            CHECK(out != NULL);
            return;
        }

        /* one or more \ufffd, nothing else */

        for (k = 0; k + 6 <= n && memcmp(out + k, "\\ufffd", 6) == 0;
             k += 6)
        {
            /* void */
        }

        if (n == 0 || k != n || t != 0) {
            eg_test_fail(__FILE__, __LINE__, "invalid UTF-8 #%zu escaped to "
                         "\"%.*s\"", i, (int) n, out);

        } else {
            eg_test_pass();
        }

        free(out);
    }

    /* single bytes are one U+FFFD each */
    CHECK_ESC("\x80", "\\ufffd");
    CHECK_ESC("\xff", "\\ufffd");
    CHECK_ESC("a\xc0z", "a\\ufffdz");

    /* what follows a broken sequence is not swallowed */
    CHECK_ESC("\xe2\x82" "A", "\\ufffd\\ufffdA");
    CHECK_ESC("\xc3\"", "\\ufffd\\\"");
    CHECK_ESC("\xf0\x9f\x98" "\xc3\xa9", "\\ufffd\\ufffd\\ufffd\xc3\xa9");
}


static void
test_escape_valid(void)
{
    CHECK_ESC("caf\xc3\xa9", "caf\xc3\xa9");
    CHECK_ESC("\xc2\x80", "\xc2\x80");
    CHECK_ESC("\xdf\xbf", "\xdf\xbf");
    CHECK_ESC("\xe0\xa0\x80", "\xe0\xa0\x80");
    CHECK_ESC("\xe2\x82\xac", "\xe2\x82\xac");
    CHECK_ESC("\xed\x9f\xbf", "\xed\x9f\xbf");
    CHECK_ESC("\xee\x80\x80", "\xee\x80\x80");
    CHECK_ESC("\xef\xbf\xbd", "\xef\xbf\xbd");
    CHECK_ESC("\xe2\x80\xa8", "\xe2\x80\xa8");
    CHECK_ESC("\xf0\x90\x80\x80", "\xf0\x90\x80\x80");
    CHECK_ESC("\xf0\x9d\x84\x9e", "\xf0\x9d\x84\x9e");
    CHECK_ESC("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");
}


static void
test_escape_truncate(void)
{
    int             t;
    size_t          n;
    unsigned char  *out;

    CHECK_ESC_MAX("abc", 3, "abc");
    CHECK_ESC_MAX("abcd", 3, "abc");
    CHECK_ESC_MAX("abc", 0, "");

    /* never a part of a character */
    CHECK_ESC_MAX("a\xc3\xa9", 2, "a");
    CHECK_ESC_MAX("a\xc3\xa9", 3, "a\xc3\xa9");
    CHECK_ESC_MAX("a\xe2\x82\xac", 2, "a");
    CHECK_ESC_MAX("a\xe2\x82\xac", 3, "a");
    CHECK_ESC_MAX("a\xe2\x82\xac", 4, "a\xe2\x82\xac");
    CHECK_ESC_MAX("\xf0\x9d\x84\x9e", 3, "");
    CHECK_ESC_MAX("\xf0\x9d\x84\x9e" "b", 4, "\xf0\x9d\x84\x9e");

    /* the flag */

    n = escape(EG_LIT("abcd"), 3, &out, &t);
    CHECK(out != NULL && n == 3 && t == 1);
    free(out);

    n = escape(EG_LIT("abc"), 3, &out, &t);
    CHECK(out != NULL && n == 3 && t == 0);
    free(out);

    n = escape(EG_LIT("a\xe2\x82\xac"), 3, &out, &t);
    CHECK(out != NULL && n == 1 && t == 1);
    free(out);

    n = escape(EG_LIT("a\xe2\x82\xac"), 4, &out, &t);
    CHECK(out != NULL && n == 4 && t == 0);
    free(out);

    n = escape(EG_LIT("ab"), 0, &out, &t);
    CHECK(out != NULL && n == 0 && t == 1);
    free(out);

    n = escape(EG_LIT(""), 0, &out, &t);
    CHECK(out != NULL && n == 0 && t == 0);
    free(out);

    /* the worst case fills 6 * max exactly */
    n = escape(EG_LIT("\x01\xff\x02\xfe"), 4, &out, &t);
    CHECK(out != NULL && n == 24 && t == 0);
    free(out);
}


static void
test_escape_random(void)
{
    int             t, bad;
    size_t          i, len, max, n, dlen;
    json_t          j;
    unsigned char  *src, *out, *quoted, *dec;

    src = malloc(70000);
    quoted = malloc(6 * 70000 + 2);
    dec = malloc(6 * 70000);

    if (src == NULL || quoted == NULL || dec == NULL) {
        CHECK(src != NULL && quoted != NULL && dec != NULL);
        free(src);
        free(quoted);
        free(dec);
        return;
    }

    bad = 0;

    for (i = 0; i < ITERATIONS && bad < 5; i++) {
        len = rnd_len();
        rnd_bytes(src, len);
        max = (rnd() % 4 == 0) ? rnd() % (len + 1) : len + rnd() % 8;

        n = escape(eg_test_mem(src, len), max, &out, &t);
        if (out == NULL) {
            continue;
        }

        quoted[0] = '"';
        memcpy(quoted + 1, out, n);
        quoted[n + 1] = '"';

        memset(&j, 0, sizeof(json_t));
        j.p = quoted;
        j.end = quoted + n + 2;

        if (n > 6 * max || t != (len > max)
            || json_string(&j, dec, &dlen, 6 * 70000) != 0 || j.p != j.end
            || !utf8_valid(out, n))
        {
            bad++;
            eg_test_fail(__FILE__, __LINE__, "iteration %zu: input of %zu "
                         "bytes, max %zu: %zu bytes, truncated %d, not a "
                         "valid JSON string", i, len, max, n, t);
            eg_test_print(src, len);
            printf("\n");

        } else {
            eg_test_pass();
        }

        free(out);
    }

    free(src);
    free(quoted);
    free(dec);
}


/* the checker itself: it must refuse what it is there to refuse */

static void
test_json_checker(void)
{
    size_t         n;
    unsigned char  got[64];

#define VALID(s)    (json_check((const unsigned char *) (s), sizeof(s) - 1, \
                                NULL, NULL, NULL) == 0)

    CHECK(VALID("{}"));
    CHECK(VALID("{\"a\":[1,-2.5e+3,true,false,null,\"x\\u00e9\\ud83d\\ude00\"]"
                ",\"b\":{}}"));
    CHECK(!VALID("{\"a\":1,}"));
    CHECK(!VALID("{\"a\":01}"));
    CHECK(!VALID("{\"a\":\"\x01\"}"));
    CHECK(!VALID("{\"a\":\"\n\"}"));
    CHECK(!VALID("{\"a\":\"\\x\"}"));
    CHECK(!VALID("{\"a\":\"\\ud800\"}"));
    CHECK(!VALID("{\"a\":\"\\udc00\"}"));
    CHECK(!VALID("{\"a\":\"\xff\"}"));
    CHECK(!VALID("{\"a\":\"\xc0\xaf\"}"));
    CHECK(!VALID("{\"a\":\"abc}"));
    CHECK(!VALID("{\"a\":1}x"));
    CHECK(!VALID("{\"a\":1}\n"));
    CHECK(!VALID("{\"a\" 1}"));
    CHECK(!VALID("{\"a\":tru}"));

#undef VALID

    CHECK(json_check((const unsigned char *)
                     "{\"a\":{\"b\":[{\"c\":\"\\\"x\"}]}}", 25, "a.b[].c",
                     got, &n) == 0);
    CHECK_MEM(eg_test_mem(got, n), "\"x", 2);

    CHECK(utf8_valid((const unsigned char *) "\xf4\x8f\xbf\xbf", 4));
    CHECK(!utf8_valid((const unsigned char *) "\xed\xa0\x80", 3));
    CHECK(!utf8_valid((const unsigned char *) "\xe0\x80\xaf", 3));
}


static eg_ruleset_t *
make_rules(void)
{
    char           err[1024], *text, *p;
    int            i, r;
    eg_ruleset_t  *rs;

    rs = eg_ruleset_new();
    text = malloc(65536);

    if (rs == NULL || text == NULL) {
        free(text);
        eg_ruleset_free(rs);
        return NULL;
    }

    p = text;

    /* a hostile name, a long id, sixteen CVEs each */

    for (r = 0; r < 3; r++) {
        p += sprintf(p, "rule EG-HOSTILE-%d-%048d\n    name \"", r, 0);

        for (i = 0; i < 255; i++) {
            *p++ = (char) (0x80 + (i * 7 + r) % 0x80);
        }

        p += sprintf(p, "\\\"\"\n    cve");

        for (i = 0; i < 16; i++) {
            p += sprintf(p, " CVE-20%02d-%07d", 10 + r, 1000000 + i);
        }

        p += sprintf(p, "\n    action %s\n    match method is GET\nend\n",
                     r == 1 ? "block" : "log");
    }

    p += sprintf(p, "rule EG-PLAIN\n    name \"a \\\"quoted\\\" \\\\ name\\t"
                 "with\ttab '\"\n    cve CVE-2021-26855\n    action block\n"
                 "    match method is GET\nend\n");

    if (eg_ruleset_load_buffer(rs, "json.rules", (unsigned char *) text,
                               p - text, err, sizeof(err))
        != 0)
    {
        printf("json.rules: %s\n", err);
        free(text);
        eg_ruleset_free(rs);
        return NULL;
    }

    free(text);
    return rs;
}


static size_t
longest_run(const unsigned char *s, size_t len, unsigned char c)
{
    size_t  i, run, best;

    run = 0;
    best = 0;

    for (i = 0; i < len; i++) {
        run = (s[i] == c) ? run + 1 : 0;
        if (run > best) {
            best = run;
        }
    }

    return best;
}


/*
 * Formats ev into a buffer of exactly eg_log_size(ev) bytes and checks the
 * line: within the size, one '\n' at the end and none elsewhere, valid
 * UTF-8, valid JSON.  The caller frees *line.
 */

static int
check_line(const eg_log_event_t *ev, unsigned char **line, size_t *len,
    const char *file, int ln)
{
    size_t          size, n;
    unsigned char  *buf;

    size = eg_log_size(ev);
    buf = malloc(size);
    *line = buf;
    *len = 0;

    if (buf == NULL) {
        eg_test_fail(file, ln, "malloc(%zu)", size);
        return 0;
    }

    n = eg_log_format(buf, ev);
    *len = n;

    if (n > size) {
        eg_test_fail(file, ln, "eg_log_format wrote %zu bytes, eg_log_size "
                     "said %zu", n, size);
        return 0;
    }

    if (n == 0 || buf[n - 1] != '\n' || memchr(buf, '\n', n - 1) != NULL
        || memchr(buf, '\r', n) != NULL)
    {
        eg_test_fail(file, ln, "the line does not end with its only "
                     "newline");
        return 0;
    }

    if (!utf8_valid(buf, n)) {
        eg_test_fail(file, ln, "the line is not valid UTF-8");
        return 0;
    }

    if (json_check(buf, n - 1, NULL, NULL, NULL) != 0) {
        eg_test_fail(file, ln, "the line is not valid JSON: %.*s",
                     (int) (n > 2000 ? 2000 : n), buf);
        return 0;
    }

    eg_test_pass();
    return 1;
}


#define CHECK_LINE(ev, line, len)                                             \
    check_line(ev, line, len, __FILE__, __LINE__)

/* the decoded string at path in the line equals expected */
#define CHECK_MEMBER(line, len, path, expected)                               \
    do {                                                                      \
        size_t          n_;                                                   \
        unsigned char  *got_ = malloc(len);                                   \
        if (got_ == NULL                                                      \
            || json_check(line, (len) - 1, path, got_, &n_) != 0)             \
        {                                                                     \
            eg_test_fail(__FILE__, __LINE__, "no string at %s", path);       \
        } else {                                                              \
            CHECK_MEM(eg_test_mem(got_, n_), expected,                        \
                      sizeof(expected) - 1);                                  \
        }                                                                     \
        free(got_);                                                           \
    } while (0)


static void
test_log_hostile(void)
{
    size_t           len;
    eg_verdict_t     v;
    eg_ruleset_t    *rs;
    unsigned char   *line;
    eg_log_event_t   ev;

    rs = make_rules();
    if (rs == NULL) {
        CHECK(rs != NULL);
        return;
    }

    memset(&v, 0, sizeof(eg_verdict_t));
    v.action = EG_BLOCK;
    v.nmatches = 3;
    v.total = 5;
    v.matches[0].rule = eg_ruleset_rule(rs, 0);
    v.matches[0].field = EG_LIT("cookie:\"\\\n\x01\xff");
    v.matches[0].value = EG_LIT("\0\"}\n,\"x\":\"\xc0\xaf\xed\xa0\x80");
    v.matches[1].rule = eg_ruleset_rule(rs, 3);
    v.matches[1].field = EG_LIT("cookie:X-BEResource");
    v.matches[1].value = EG_LIT("localhost~1942062522\r\n\t\xe2\x80\xa8");
    v.matches[2].rule = eg_ruleset_rule(rs, 1);
    v.matches[2].field = EG_LIT("\xf4\x90\x80\x80");
    v.matches[2].value = EG_LIT("\xf0\x9f\x98");
    v.limit = EG_LIMIT_REGEX;
    v.limit_rule = eg_ruleset_rule(rs, 2);
    v.path = EG_LIT("/ecp/\0\"\\/x.js\x7f");
    v.query = EG_LIT("a=\x1b[31m\xff&b=\"}");

    memset(&ev, 0, sizeof(eg_log_event_t));
    ev.msec = 1700000000123ULL;
    ev.action = "blocked";
    ev.verdict = &v;
    ev.source_ip = EG_LIT("10.0.0.1\"\n");
    ev.source_port = 65535;
    ev.client_ip = EG_LIT("\xc3(\\");
    ev.method = EG_LIT("G\0ET\"");
    ev.url_original = EG_LIT("/ecp/%00\"\\\x01\x1f\x7f\x80\xfe\xff\xc3\xa9");
    ev.user_agent = EG_LIT("antSword/v2.1\"},\"evil\":{\"\n");
    ev.request_id = EG_LIT("\\u0000\\");
    ev.server_address = EG_LIT("\xed\xbf\xbf\xe0\x80\xaf");
    ev.status = 403;

    if (CHECK_LINE(&ev, &line, &len)) {
        CHECK_MEMBER(line, len, "url.original",
                     "/ecp/%00\"\\\x01\x1f\x7f" FFFD FFFD FFFD "\xc3\xa9");
        CHECK_MEMBER(line, len, "user_agent.original",
                     "antSword/v2.1\"},\"evil\":{\"\n");
        CHECK_MEMBER(line, len, "http.request.method", "G\0ET\"");
        CHECK_MEMBER(line, len, "http.request.id", "\\u0000\\");
        CHECK_MEMBER(line, len, "source.ip", "10.0.0.1\"\n");
        CHECK_MEMBER(line, len, "client.ip", FFFD "(\\");
        CHECK_MEMBER(line, len, "url.path", "/ecp/\0\"\\/x.js\x7f");
        CHECK_MEMBER(line, len, "url.query", "a=\x1b[31m" FFFD "&b=\"}");
        CHECK_MEMBER(line, len, "event.action", "blocked");

        /* the first blocking match is the decision */
        CHECK_MEMBER(line, len, "rule.id", "EG-PLAIN");
        /* a rule file knows only the escapes \" and \\ */
        CHECK_MEMBER(line, len, "rule.name",
                     "a \"quoted\" \\ name\\twith\ttab '");
        CHECK_MEMBER(line, len, "exchange_guard.field", "cookie:X-BEResource");
        CHECK_MEMBER(line, len, "exchange_guard.value",
                     "localhost~1942062522\r\n\t\xe2\x80\xa8");
        CHECK_MEMBER(line, len, "exchange_guard.limit", "regex");
        CHECK_MEMBER(line, len, "exchange_guard.matches[].field",
                     "cookie:\"\\\n\x01" FFFD);
        CHECK(strstr((char *) line, "\"matches_total\":5") != NULL);
        CHECK(strstr((char *) line, "\"status_code\":403") != NULL);
        CHECK(strstr((char *) line, "\"port\":65535") != NULL);
        CHECK(strstr((char *) line, "\"@timestamp\":\"2023-11-14T22:13:20."
                     "123Z\"") != NULL);
    }

    free(line);

    /* the same, detected only, with the client address missing */

    ev.action = "detected";
    ev.client_ip = EG_LIT("");
    ev.status = 0;
    v.matches[1].rule = eg_ruleset_rule(rs, 0);
    v.matches[2].rule = eg_ruleset_rule(rs, 2);

    if (CHECK_LINE(&ev, &line, &len)) {
        CHECK_MEMBER(line, len, "client.ip", "10.0.0.1\"\n");
        CHECK(strstr((char *) line, "status_code") == NULL);
        CHECK_MEMBER(line, len, "event.action", "detected");
    }

    free(line);
    eg_ruleset_free(rs);
}


/* 64 KB in every string: values are capped at 256 bytes, strings at 4096 */

static void
test_log_caps(void)
{
    size_t           i, len;
    eg_verdict_t     v;
    eg_ruleset_t    *rs;
    unsigned char   *line, *big[12];
    eg_log_event_t   ev;
    static const char  letters[] = "VFPQUASMRIC";

    rs = make_rules();

    for (i = 0; i < 11; i++) {
        big[i] = malloc(65536);
        if (big[i]) {
            memset(big[i], letters[i], 65536);
        }
    }

    if (rs == NULL || big[0] == NULL || big[1] == NULL || big[2] == NULL
        || big[3] == NULL || big[4] == NULL || big[5] == NULL
        || big[6] == NULL || big[7] == NULL || big[8] == NULL
        || big[9] == NULL || big[10] == NULL)
    {
        CHECK(!"out of memory");
        goto done;
    }

    memset(&v, 0, sizeof(eg_verdict_t));
    v.action = EG_BLOCK;
    v.nmatches = EG_MAX_MATCHES;
    v.total = 1000;

    for (i = 0; i < EG_MAX_MATCHES; i++) {
        v.matches[i].rule = eg_ruleset_rule(rs, i % 4);
        v.matches[i].field = eg_test_mem(big[1], 65536);
        v.matches[i].value = eg_test_mem(big[0], 65536);
    }

    v.path = eg_test_mem(big[2], 65536);
    v.query = eg_test_mem(big[3], 65536);

    memset(&ev, 0, sizeof(eg_log_event_t));
    ev.msec = UINT64_MAX;
    ev.action = "blocked";
    ev.verdict = &v;
    ev.url_original = eg_test_mem(big[4], 65536);
    ev.user_agent = eg_test_mem(big[5], 65536);
    ev.server_address = eg_test_mem(big[6], 65536);
    ev.method = eg_test_mem(big[7], 65536);
    ev.request_id = eg_test_mem(big[8], 65536);
    ev.source_ip = eg_test_mem(big[9], 65536);
    ev.client_ip = eg_test_mem(big[10], 65536);
    ev.source_port = UINT32_MAX;
    ev.status = UINT32_MAX;

    if (CHECK_LINE(&ev, &line, &len)) {
        CHECK_INT(longest_run(line, len, 'V'), EG_LOG_VALUE_MAX);
        CHECK_INT(longest_run(line, len, 'F'), EG_LOG_VALUE_MAX);
        CHECK_INT(longest_run(line, len, 'P'), EG_LOG_STRING_MAX);
        CHECK_INT(longest_run(line, len, 'Q'), EG_LOG_STRING_MAX);
        CHECK_INT(longest_run(line, len, 'U'), EG_LOG_STRING_MAX);
        CHECK_INT(longest_run(line, len, 'A'), EG_LOG_STRING_MAX);
        CHECK(longest_run(line, len, 'S') <= 256);
        CHECK(longest_run(line, len, 'M') <= 64);
        CHECK(longest_run(line, len, 'R') <= 64);
        CHECK(longest_run(line, len, 'I') <= 64);
        CHECK(longest_run(line, len, 'C') <= 64);
        CHECK(strstr((char *) line, "\"value_truncated\":true") != NULL);

        /* bounded whatever the request: well under 64 KB */
        CHECK(len < 65536);
    }

    free(line);

    /* the worst case for the escaping: every byte becomes six */

    for (i = 0; i < 11; i++) {
        memset(big[i], i % 2 ? 0x01 : 0xff, 65536);
    }

    if (CHECK_LINE(&ev, &line, &len)) {
        CHECK(len <= eg_log_size(&ev));
        CHECK(strstr((char *) line, "\"value_truncated\":true") != NULL);
    }

    free(line);

done:

    for (i = 0; i < 11; i++) {
        free(big[i]);
    }

    eg_ruleset_free(rs);
}


static void
test_log_empty(void)
{
    size_t           len;
    eg_verdict_t     v;
    unsigned char   *line;
    eg_log_event_t   ev;

    memset(&v, 0, sizeof(eg_verdict_t));
    memset(&ev, 0, sizeof(eg_log_event_t));
    ev.action = "detected";
    ev.verdict = &v;

    /* nothing at all: NULL strings are empty strings */
    if (CHECK_LINE(&ev, &line, &len)) {
        CHECK_MEMBER(line, len, "url.path", "");
        CHECK_MEMBER(line, len, "source.ip", "");
        CHECK(strstr((char *) line, "\"@timestamp\":\"1970-01-01T00:00:00."
                     "000Z\"") != NULL);
        CHECK(strstr((char *) line, "\"matches\":[]") != NULL);
    }

    free(line);

    /* a limit without a match */
    v.limit = EG_LIMIT_COOKIES;
    ev.action = "blocked";

    if (CHECK_LINE(&ev, &line, &len)) {
        CHECK_MEMBER(line, len, "rule.id", "EG-LIMIT");
        CHECK_MEMBER(line, len, "exchange_guard.limit", "cookies");
    }

    free(line);
}


static void
test_log_random(void)
{
    int              bad;
    size_t           i, k, len, nbuf, fmax, vmax;
    eg_verdict_t     v;
    eg_ruleset_t    *rs;
    unsigned char   *line, *buf[12];
    eg_log_event_t   ev;
    eg_str_t        *strs[12];

    rs = make_rules();
    if (rs == NULL) {
        CHECK(rs != NULL);
        return;
    }

    nbuf = sizeof(buf) / sizeof(buf[0]);
    for (k = 0; k < nbuf; k++) {
        buf[k] = malloc(70000);
        if (buf[k] == NULL) {
            CHECK(!"out of memory");
            goto done;
        }
    }

    strs[0] = &ev.source_ip;
    strs[1] = &ev.client_ip;
    strs[2] = &ev.method;
    strs[3] = &ev.url_original;
    strs[4] = &ev.user_agent;
    strs[5] = &ev.request_id;
    strs[6] = &ev.server_address;
    strs[7] = &v.path;
    strs[8] = &v.query;

    bad = 0;

    for (i = 0; i < ITERATIONS && bad < 5; i++) {
        memset(&v, 0, sizeof(eg_verdict_t));
        memset(&ev, 0, sizeof(eg_log_event_t));

        for (k = 0; k < 9; k++) {
            if (rnd() % 16 == 0) {
                strs[k]->data = NULL;
                strs[k]->len = 0;
                continue;
            }

            strs[k]->data = buf[k];
            strs[k]->len = rnd_len();
            rnd_bytes(buf[k], strs[k]->len);
        }

        v.nmatches = rnd() % (EG_MAX_MATCHES + 1);
        v.total = v.nmatches + ((rnd() % 4 == 0) ? (unsigned) rnd() : 0);
        v.action = (eg_action_e) (rnd() % 3);
        v.limit = (eg_limit_e) (rnd() % (EG_LIMIT_BODY + 1));
        v.limit_rule = (rnd() % 2) ? eg_ruleset_rule(rs, rnd() % 4) : NULL;

        /* two buffers shared by the matches, cut differently */

        fmax = 0;
        vmax = 0;

        for (k = 0; k < v.nmatches; k++) {
            v.matches[k].rule = eg_ruleset_rule(rs, rnd() % 4);
            v.matches[k].field.data = buf[9];
            v.matches[k].field.len = rnd_len();
            v.matches[k].value.data = buf[10];
            v.matches[k].value.len = rnd_len();

            if (v.matches[k].field.len > fmax) {
                fmax = v.matches[k].field.len;
            }
            if (v.matches[k].value.len > vmax) {
                vmax = v.matches[k].value.len;
            }
        }

        rnd_bytes(buf[9], fmax);
        rnd_bytes(buf[10], vmax);

        ev.msec = (rnd() % 2) ? rnd() : rnd() % 4102444800000ULL;
        ev.action = (rnd() % 2) ? "blocked" : "detected";
        ev.verdict = &v;
        ev.source_port = (unsigned) rnd();
        ev.status = (rnd() % 2) ? 0 : (unsigned) rnd();

        if (!CHECK_LINE(&ev, &line, &len)) {
            bad++;
            printf("    iteration %zu\n", i);
        }

        free(line);
    }

done:

    for (k = 0; k < nbuf; k++) {
        free(buf[k]);
    }

    eg_ruleset_free(rs);
}


int
main(void)
{
    EG_RUN(test_escape_basic);
    EG_RUN(test_escape_controls);
    EG_RUN(test_escape_invalid);
    EG_RUN(test_escape_valid);
    EG_RUN(test_escape_truncate);
    EG_RUN(test_escape_random);
    EG_RUN(test_json_checker);
    EG_RUN(test_log_hostile);
    EG_RUN(test_log_caps);
    EG_RUN(test_log_empty);
    EG_RUN(test_log_random);

    return eg_test_done();
}
