/*
 * fuzz_cookie: eg_cookie_parse() and eg_cookie_name_is().
 *
 * Input: one byte that picks a small "max", then Cookie header values
 * separated by '\n' (so "a=1; b=2\nX-BEResource=x~1" is two headers).
 * Every header is copied to a heap buffer of its exact size.
 *
 * Invariants:
 *   - the count does not depend on max; with a small max, the stored
 *     cookies are the first ones of the large-max parse, and nothing is
 *     written past out[max - 1] (out is exactly max entries of heap)
 *   - every name and value lies within one input header, the value after
 *     the name, in order
 *   - names and values have no leading or trailing ASCII white space
 *     (space, \t \n \v \f \r); names hold no ';' or '=', values no ';'
 *   - the result equals a straightforward reference parser written from
 *     the documented rules (split on ';', first '=' separates, trim, a
 *     part without '=' is a cookie with an empty name unless blank) when
 *     the headers are plain ASCII without 0x1C-0x1F: there the engine's
 *     String.Trim() white space (which also takes 0x1C-0x1F, Latin-1 and
 *     UTF-8 Unicode spaces) and ASCII white space agree
 *   - eg_cookie_name_is() is reflexive and ASCII case-insensitive
 *   - the evaluator's own parser, eg_cookie_parse_names() (eg_internal.h:
 *     it keeps only the cookies some rule names), agrees with the public
 *     one: same count, and it keeps exactly the cookies among the first
 *     max of eg_cookie_parse() that have an '=' and a wanted name, in
 *     order; checked with a rule set naming a few cookies (short, 63 and
 *     70 bytes long, via cookie: and param:) and one reading every name
 *
 * The values also go through the checks that read cookie values and
 * addresses, eg_backend_check() and eg_cidr_parse():
 *   - anything but EG_BACKEND_SYNTAX means "<host>~<integer>": a host of
 *     1-253 bytes of [A-Za-z0-9._-], 1-10 digits not above 2^31-1;
 *     EG_BACKEND_OK (no backends configured) means the first label is
 *     not "localhost" and the last is neither all digits nor 0x-hex;
 *     upper-casing the value changes nothing; with the value's own host
 *     as the only backend OK stays OK, with another one it is UNKNOWN;
 *     eg_backend_reason() always has a text
 *   - a parsed network has at most 128 bits, no host bits set, and
 *     prints (inet_ntop, "/bits") to text that parses to the same network
 */

#include <arpa/inet.h>
#include <sys/socket.h>

#include "fuzz_common.h"
#include "eg_internal.h"          /* eg_cookie_parse_names() */


static int same_str(eg_str_t a, eg_str_t b);

static eg_ruleset_t  *rs_named, *rs_all;

#define L10  "LLLLLLLLLL"
#define NAME63  L10 L10 L10 L10 L10 L10 "LLL"
#define NAME70  L10 L10 L10 L10 L10 L10 L10

static const char  *wanted[] = {
    "X-BEResource", "X-AnonResource-Backend", "a", "B", "Email", "~!",
    NAME63, NAME70, NULL
};


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int     i, n;
    char    err[1024], *text;
    size_t  len;

    (void) argc;
    (void) argv;

    text = malloc(16384);
    if (text == NULL) {
        abort();
    }

    len = 0;
    for (i = 0; wanted[i]; i++) {
        n = snprintf(text + len, 16384 - len,
                     "rule C-%d\n name \"n\"\n cve CVE-2021-26855\n"
                     " action log\n match %s:%s present\nend\n", i,
                     strcmp(wanted[i], "Email") == 0 ? "param" : "cookie",
                     wanted[i]);
        len += n;
    }

    rs_named = eg_ruleset_new();
    rs_all = eg_ruleset_new();

    if (rs_named == NULL || rs_all == NULL
        || eg_ruleset_load_buffer(rs_named, "named", (unsigned char *) text,
                                  len, err, sizeof(err)) != 0)
    {
        fprintf(stderr, "fuzz_cookie: %s\n", err);
        abort();
    }

    len = snprintf(text, 16384, "rule ALL\n name \"n\"\n cve "
                   "CVE-2021-26855\n action log\n match cookie-names "
                   "regex '^'\nend\n");

    if (eg_ruleset_load_buffer(rs_all, "all", (unsigned char *) text, len,
                               err, sizeof(err)) != 0)
    {
        fprintf(stderr, "fuzz_cookie: %s\n", err);
        abort();
    }

    free(text);
    return 0;
}


static int
is_wanted(eg_str_t name)
{
    int  i;

    for (i = 0; wanted[i]; i++) {
        if (eg_cookie_name_is(name, fuzz_cstr(wanted[i]))) {
            return 1;
        }
    }

    return 0;
}


/*
 * eg_cookie_parse_names(h, nh, out, cap, max, rs, &found) against the full
 * parse "big" of n cookies: of the first max cookies, those with an '='
 * and a wanted name are found; the first cap of them are stored.
 */

static void
check_names(const eg_str_t *h, size_t nh, const eg_cookie_t *big, size_t n,
    size_t cap, size_t max, const eg_ruleset_t *rs, int all)
{
    size_t        i, k, got, found;
    eg_cookie_t  *out;

    out = fuzz_arena_alloc(&fuzz_arena, cap * sizeof(eg_cookie_t));

    got = eg_cookie_parse_names(h, nh, out, cap, max, rs, &found);
    FUZZ_CHECK(got == n, "parse_names counts %zu cookies, parse %zu", got, n);

    k = 0;

    for (i = 0; i < n && i < max; i++) {
        /* only parts with an '=', which lies between name and value (a
           part without one is an empty name at its start, then the
           value, white space between) */
        if (memchr(big[i].name.data, '=',
                   big[i].value.data - big[i].name.data) == NULL)
        {
            continue;
        }

        if (!all && !is_wanted(big[i].name)) {
            continue;
        }

        FUZZ_CHECK(k < found, "parse_names (all %d, cap %zu, max %zu) "
                   "misses cookie %zu \"%.*s\"", all, cap, max, i,
                   (int) big[i].name.len, big[i].name.data);

        if (k < cap) {
            FUZZ_CHECK(same_str(out[k].name, big[i].name)
                       && same_str(out[k].value, big[i].value),
                       "parse_names (all %d) kept \"%.*s\"=\"%.*s\", parse "
                       "has \"%.*s\"=\"%.*s\"", all,
                       (int) out[k].name.len, out[k].name.data,
                       (int) out[k].value.len, out[k].value.data,
                       (int) big[i].name.len, big[i].name.data,
                       (int) big[i].value.len, big[i].value.data);
        }

        k++;
    }

    FUZZ_CHECK(k == found, "parse_names (all %d, cap %zu, max %zu) found %zu "
               "cookies, expected %zu", all, cap, max, found, k);
}


#define FUZZ_MAX_HEADERS  64


static int
all_digits(const unsigned char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }

    return len > 0;
}


static int
all_hex(const unsigned char *s, size_t len)
{
    size_t         i;
    unsigned char  c;

    for (i = 0; i < len; i++) {
        c = s[i] | 0x20;
        if (!((s[i] >= '0' && s[i] <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }

    return len > 0;
}


static void
check_backend(eg_str_t value)
{
    size_t                i, hlen, vlen;
    uint64_t              ver;
    eg_str_t              up, host, other;
    eg_backend_e          rc, rc2;
    unsigned char        *u, c;
    const char           *reason;
    const unsigned char  *tilde, *dot, *last;

    rc = eg_backend_check(value, NULL, 0);
    FUZZ_CHECK(rc == EG_BACKEND_OK || rc == EG_BACKEND_SYNTAX
               || rc == EG_BACKEND_LOCAL || rc == EG_BACKEND_UNKNOWN,
               "eg_backend_check returned %d", (int) rc);
    FUZZ_CHECK(rc != EG_BACKEND_UNKNOWN, "UNKNOWN without backends");

    reason = eg_backend_reason(rc);
    FUZZ_CHECK(reason != NULL && reason[0] != '\0', "no reason for %d",
               (int) rc);

    /* case does not matter */
    u = fuzz_arena_alloc(&fuzz_arena, value.len);
    for (i = 0; i < value.len; i++) {
        c = value.data[i];
        u[i] = (c >= 'a' && c <= 'z') ? (unsigned char) (c - 32) : c;
    }
    up.data = u;
    up.len = value.len;
    rc2 = eg_backend_check(up, NULL, 0);
    FUZZ_CHECK(rc2 == rc, "\"%.*s\" is %d, upper case %d", (int) value.len,
               value.data, (int) rc, (int) rc2);

    if (rc == EG_BACKEND_SYNTAX) {
        return;
    }

    tilde = memchr(value.data, '~', value.len);
    FUZZ_CHECK(tilde != NULL, "no '~' in \"%.*s\" (rc %d)", (int) value.len,
               value.data, (int) rc);

    hlen = tilde - value.data;
    vlen = value.len - hlen - 1;

    FUZZ_CHECK(hlen >= 1 && hlen <= 253, "host of %zu bytes", hlen);
    for (i = 0; i < hlen; i++) {
        c = value.data[i];
        FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                   || (c >= '0' && c <= '9') || c == '.' || c == '-'
                   || c == '_', "byte 0x%02x in host \"%.*s\"", c,
                   (int) hlen, value.data);
    }

    FUZZ_CHECK(vlen >= 1 && vlen <= 10 && all_digits(tilde + 1, vlen),
               "version \"%.*s\"", (int) vlen, tilde + 1);
    ver = 0;
    for (i = 0; i < vlen; i++) {
        ver = ver * 10 + (tilde[1 + i] - '0');
    }
    FUZZ_CHECK(ver <= 0x7fffffff, "version %llu", (unsigned long long) ver);

    host.data = value.data;
    host.len = hlen;

    if (rc == EG_BACKEND_OK) {
        dot = memchr(host.data, '.', host.len);
        FUZZ_CHECK(!eg_cookie_name_is((eg_str_t) { host.data,
                                          dot ? (size_t) (dot - host.data)
                                              : host.len },
                                      fuzz_cstr("localhost")),
                   "localhost passes: \"%.*s\"", (int) value.len,
                   value.data);

        for (last = host.data + host.len;
             last > host.data && last[-1] != '.'; last--)
        { /* void */ }

        FUZZ_CHECK(!all_digits(last, host.data + host.len - last),
                   "IPv4 literal passes: \"%.*s\"", (int) value.len,
                   value.data);
        FUZZ_CHECK(!(host.data + host.len - last > 2 && last[0] == '0'
                     && (last[1] == 'x' || last[1] == 'X')
                     && all_hex(last + 2, host.data + host.len - last - 2)),
                   "hex IPv4 literal passes: \"%.*s\"", (int) value.len,
                   value.data);

        /* its own host as the only backend; another one */
        FUZZ_CHECK(eg_backend_check(value, &host, 1) == EG_BACKEND_OK,
                   "\"%.*s\" refused with its own host as the backend",
                   (int) value.len, value.data);
        other = fuzz_cstr("zz-not-this.invalid");
        if (!eg_cookie_name_is(host, other)) {
            FUZZ_CHECK(eg_backend_check(value, &other, 1)
                       == EG_BACKEND_UNKNOWN,
                       "\"%.*s\" not UNKNOWN with another backend",
                       (int) value.len, value.data);
        }
    }
}


static void
check_cidr(eg_str_t text)
{
    int        bits;
    char       buf[INET6_ADDRSTRLEN + 8];
    size_t     i;
    eg_cidr_t  c, c2;

    if (eg_cidr_parse(text, &c) != 0) {
        return;
    }

    FUZZ_CHECK(c.bits <= 128, "%u bits", c.bits);

    for (i = c.bits; i < 128; i++) {
        FUZZ_CHECK(!(c.addr[i / 8] & (0x80 >> (i % 8))), "host bit %zu set "
                   "in \"%.*s\"", i, (int) text.len, text.data);
    }

    if (inet_ntop(AF_INET6, c.addr, buf, INET6_ADDRSTRLEN) == NULL) {
        abort();
    }

    bits = (int) c.bits;
    snprintf(buf + strlen(buf), 8, "/%d", bits);

    FUZZ_CHECK(eg_cidr_parse(fuzz_cstr(buf), &c2) == 0
               && memcmp(c.addr, c2.addr, 16) == 0 && c.bits == c2.bits,
               "\"%.*s\" parses to %s, which does not parse back the same",
               (int) text.len, text.data, buf);
}


static int
is_ws(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}


static eg_str_t
ref_trim(const unsigned char *s, const unsigned char *e)
{
    eg_str_t  r;

    while (s < e && is_ws(*s)) {
        s++;
    }

    while (e > s && is_ws(e[-1])) {
        e--;
    }

    r.data = s;
    r.len = e - s;
    return r;
}


/* the reference: returns the count, stores up to max */

static size_t
ref_parse(const eg_str_t *h, size_t nh, eg_cookie_t *out, size_t max)
{
    size_t                i, n;
    eg_str_t              part;
    const unsigned char  *s, *end, *semi, *eq;

    n = 0;

    for (i = 0; i < nh; i++) {
        s = h[i].data;
        end = s + h[i].len;

        while (s < end) {
            for (semi = s; semi < end && *semi != ';'; semi++) { /* void */ }
            for (eq = s; eq < semi && *eq != '='; eq++) { /* void */ }

            if (eq == semi) {
                part = ref_trim(s, semi);
                if (part.len) {
                    if (n < max) {
                        out[n].name.data = s;
                        out[n].name.len = 0;
                        out[n].value = part;
                    }
                    n++;
                }

            } else {
                if (n < max) {
                    out[n].name = ref_trim(s, eq);
                    out[n].value = ref_trim(eq + 1, semi);
                }
                n++;
            }

            s = semi + 1;
        }
    }

    return n;
}


static int
same_str(eg_str_t a, eg_str_t b)
{
    return a.len == b.len && (a.len == 0 || a.data == b.data);
}


static void
check_cookie(const eg_cookie_t *c, size_t idx, const eg_str_t *h, size_t nh,
    size_t *hdr, const unsigned char **last)
{
    size_t  i, k;

    /* which header: the same as the previous cookie's or a later one */

    for (k = *hdr; k < nh; k++) {
        if (fuzz_within(c->name.data, c->name.len, h[k].data, h[k].len)
            && fuzz_within(c->value.data, c->value.len, h[k].data, h[k].len))
        {
            break;
        }
    }

    FUZZ_CHECK(k < nh, "cookie %zu does not lie within one header at or "
               "after header %zu", idx, *hdr);

    if (k != *hdr) {
        *last = NULL;
    }
    *hdr = k;

    FUZZ_CHECK(*last == NULL || c->name.data >= *last,
               "cookie %zu is out of order", idx);
    FUZZ_CHECK(c->value.data >= c->name.data + c->name.len,
               "cookie %zu: value before the end of the name", idx);
    *last = c->value.data + c->value.len;

    if (c->name.len) {
        FUZZ_CHECK(!is_ws(c->name.data[0])
                   && !is_ws(c->name.data[c->name.len - 1]),
                   "cookie %zu: name \"%.*s\" is not trimmed", idx,
                   (int) c->name.len, c->name.data);
    }

    if (c->value.len) {
        FUZZ_CHECK(!is_ws(c->value.data[0])
                   && !is_ws(c->value.data[c->value.len - 1]),
                   "cookie %zu: value \"%.*s\" is not trimmed", idx,
                   (int) c->value.len, c->value.data);
    }

    for (i = 0; i < c->name.len; i++) {
        FUZZ_CHECK(c->name.data[i] != ';' && c->name.data[i] != '=',
                   "cookie %zu: name holds ';' or '='", idx);
    }

    for (i = 0; i < c->value.len; i++) {
        FUZZ_CHECK(c->value.data[i] != ';', "cookie %zu: value holds ';'",
                   idx);
    }
}


static void
check_name_is(eg_str_t name)
{
    size_t          i;
    unsigned char  *up;
    eg_str_t        u, shorter;

    FUZZ_CHECK(eg_cookie_name_is(name, name), "name_is not reflexive");

    up = fuzz_arena_alloc(&fuzz_arena, name.len);

    for (i = 0; i < name.len; i++) {
        up[i] = (name.data[i] >= 'a' && name.data[i] <= 'z')
                ? (unsigned char) (name.data[i] - 32) : name.data[i];
    }

    u.data = up;
    u.len = name.len;

    FUZZ_CHECK(eg_cookie_name_is(name, u) && eg_cookie_name_is(u, name),
               "name_is not case-insensitive for \"%.*s\"", (int) name.len,
               name.data);

    if (name.len) {
        shorter = name;
        shorter.len--;
        FUZZ_CHECK(!eg_cookie_name_is(name, shorter),
                   "name_is ignores length");
    }
}


static int one_input(const uint8_t *data, size_t size);


/* every invariant twice where the CPU has AVX2: the parse with it, and
   with SSE2 only (eg_avx2) */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int         k, n;
    static int  avx2 = -1;

    if (avx2 < 0) {
        avx2 = eg_cpu_avx2();
    }

    for (k = 0, n = 1 + avx2; k < n; k++) {
        eg_avx2 = k;
        one_input(data, size);
    }

    return 0;
}


static int
one_input(const uint8_t *data, size_t size)
{
    int           plain;
    size_t        i, nh, n, nsmall, nref, max_small, cap, hdr;
    eg_str_t      h[FUZZ_MAX_HEADERS];
    eg_cookie_t  *big, *small, *ref;
    const uint8_t  *s, *end, *nl;
    const unsigned char  *last;

    if (size < 1) {
        return 0;
    }

    fuzz_arena_init();

    max_small = data[0] % 8;
    s = data + 1;
    end = data + size;
    nh = 0;

    /* split on '\n'; an empty input after the byte is no header */

    while (s < end && nh < FUZZ_MAX_HEADERS) {
        nl = memchr(s, '\n', end - s);
        if (nl == NULL) {
            nl = end;
        }
        h[nh++] = fuzz_dup(s, nl - s);
        s = nl + 1;
    }

    /* each cookie takes at least one byte: an upper bound of the count */
    cap = size + 1;

    big = fuzz_arena_alloc(&fuzz_arena, cap * sizeof(eg_cookie_t));
    small = fuzz_arena_alloc(&fuzz_arena, max_small * sizeof(eg_cookie_t));
    ref = fuzz_arena_alloc(&fuzz_arena, cap * sizeof(eg_cookie_t));

    n = eg_cookie_parse(h, nh, big, cap);
    FUZZ_CHECK(n <= cap, "%zu cookies from %zu bytes", n, size);

    nsmall = eg_cookie_parse(h, nh, small, max_small);
    FUZZ_CHECK(nsmall == n, "count %zu with max %zu, %zu with max %zu",
               nsmall, max_small, n, cap);

    /* max 0 stores nothing: out may be any pointer, even NULL */
    FUZZ_CHECK(eg_cookie_parse(h, nh, NULL, 0) == n, "count with max 0");

    nref = ref_parse(h, nh, ref, cap);
    plain = 1;
    for (i = 1; i < size; i++) {
        if (data[i] >= 0x80 || (data[i] >= 0x1c && data[i] <= 0x1f)) {
            plain = 0;
            break;
        }
    }

    FUZZ_CHECK(!plain || nref == n, "%zu cookies, the reference finds %zu",
               n, nref);

    hdr = 0;
    last = NULL;

    for (i = 0; i < n; i++) {
        check_cookie(&big[i], i, h, nh, &hdr, &last);

        FUZZ_CHECK(!plain || (same_str(big[i].name, ref[i].name)
                   && same_str(big[i].value, ref[i].value)),
                   "cookie %zu: \"%.*s\"=\"%.*s\", the reference says "
                   "\"%.*s\"=\"%.*s\"", i,
                   (int) big[i].name.len, big[i].name.data,
                   (int) big[i].value.len, big[i].value.data,
                   (int) ref[i].name.len, ref[i].name.data,
                   (int) ref[i].value.len, ref[i].value.data);

        if (i < max_small) {
            FUZZ_CHECK(same_str(small[i].name, big[i].name)
                       && same_str(small[i].value, big[i].value),
                       "cookie %zu differs between max %zu and max %zu", i,
                       max_small, cap);
        }

        check_name_is(big[i].name);

        if (i < 16) {
            check_backend(big[i].value);
            check_cidr(big[i].value);
        }
    }

    /* cap and max: small, large, and each way round */
    check_names(h, nh, big, n, max_small, cap, rs_named, 0);
    check_names(h, nh, big, n, cap, max_small, rs_named, 0);
    check_names(h, nh, big, n, cap, cap, rs_named, 0);
    check_names(h, nh, big, n, max_small, cap, rs_all, 1);
    check_names(h, nh, big, n, cap, max_small, rs_all, 1);
    check_names(h, nh, big, n, 2, 3, rs_all, 1);

    fuzz_arena_reset();
    return 0;
}
