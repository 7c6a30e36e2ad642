/*
 * exchange_guard: Cookie header parsing, the way ASP.NET reads it.
 *
 * HttpRequest.Cookies splits on ';' only (a ',' belongs to the value),
 * trims white space around names and values (String.Trim: Unicode white
 * space, not only ASCII), and a part without '=' is a
 * cookie with an empty name whose value is the part.  Names are looked up
 * case-insensitively, so two cookies whose names differ only in case are
 * both candidates and both are inspected.
 */

#include <string.h>

#include "eg_internal.h"

#if defined(__SSE2__) && !defined(EG_NO_SIMD)
#include <emmintrin.h>
#define EG_COOKIE_SSE2  1
#else
#define EG_COOKIE_SSE2  0
#endif


static size_t eg_space(const unsigned char *s, const unsigned char *e,
    int back);
static eg_str_t eg_trim(const unsigned char *s, const unsigned char *e);
static EG_INLINE int eg_cookie_index(const eg_ruleset_t *rs, eg_str_t name);


size_t
eg_cookie_parse(const eg_str_t *headers, size_t nheaders, eg_cookie_t *out,
    size_t max)
{
    size_t  found;

    /* one parser for the engine and its callers: every cookie kept */

    return eg_cookie_parse_names(headers, nheaders, out, max, (size_t) -1,
                                 NULL, &found);
}


/*
 * The parse, keeping only cookies the rule set names (all when rs is NULL
 * or a rule reads every name), at most cap of them: a request pays for
 * the cookies the rules ask about, not for the dozen others a browser
 * sends.  Returns every cookie counted.
 */

size_t
eg_cookie_parse_names(const eg_str_t *headers, size_t nheaders,
    eg_cookie_t *out, size_t cap, size_t max, const eg_ruleset_t *rs,
    size_t *found)
{
    uint32_t  present;

    return eg_cookie_parse_wanted(headers, nheaders, out, cap, max, rs, found,
                                  &present);
}


/* the parse's running state, for one part at a time */

typedef struct {
    eg_cookie_t         *out;
    size_t               cap;
    size_t               max;
    size_t               n;         /* cookies counted */
    size_t               kept;      /* wanted ones */
    uint32_t             present;
    int                  all;
    uint64_t             lens;
    const eg_ruleset_t  *rs;
    size_t               npre;      /* rs->ncookie_pre; 0: no prefix test */
} eg_cookie_scan_t;


static EG_NOINLINE void eg_cookie_part(eg_cookie_scan_t *cs,
    const unsigned char *s, const unsigned char *semi);


/* when every cookie is kept: none skipped */
static const uint8_t  eg_cookie_keep[256];


/*
 * The same, and *present: bit j for each wanted name j (of the rule set's
 * list, j < 32) that some examined cookie has; every bit when all cookies
 * are kept.
 *
 * The ';' are found 64 bytes at a time where SSE2 is, by AVX2 where the
 * CPU has it (eg_cpu_avx2()).  A part whose name starts ("; name=") with
 * a printable byte that no wanted name starts with is counted and left
 * there: no '=' or white space can change that byte.  Every other part
 * takes eg_cookie_part().  For a part that ends
 * at a ';' (semi) the ';' may be read, and is never skipped, so an empty
 * part or a lone space needs no test (eg_cookie_next()).
 */

#define eg_cookie_next(cs, skip, part, semi)                                  \
    do {                                                                      \
        p = (part) + ((part)[0] == ' ');                                      \
        if (__builtin_expect((skip)[*p], 1)                                   \
            || eg_cookie_pre_miss(&(cs), p, (semi)))                          \
        {                                                                     \
            (cs).n++;                                                         \
            break;                                                            \
        }                                                                     \
        eg_cookie_part(&(cs), (part), (semi));                                \
    } while (0)


/*
 * 1: the name at p (up to e) cannot be a wanted one by its first three
 * bytes, compared with their 0x20 bits set, which equal bytes of any case
 * keep equal (a name this lets through is compared in full).  It applies
 * to a name that starts with a printable byte other than '=': neither an
 * '=' nor white space can come before it.  Tested before the call, so
 * that most parts a wanted first byte lets through cost no call.
 */

static EG_INLINE int
eg_cookie_pre_miss(const eg_cookie_scan_t *cs, const unsigned char *p,
    const unsigned char *e)
{
    size_t    j;
    uint32_t  pre;

    if (cs->npre == 0 || e - p < 3
        || (unsigned char) (p[0] - 0x21) > 0x7e - 0x21 || p[0] == '=')
    {
        return 0;
    }

    pre = (p[0] | (p[1] << 8) | ((uint32_t) p[2] << 16)) | 0x202020;

    for (j = 0; j < cs->npre; j++) {
        if (pre == cs->rs->cookie_pre[j]) {
            return 0;
        }
    }

    return 1;
}


/* each part that ends at a ';' of mask m (bit i: base[i]) */

#define eg_cookie_each_semi(cs, skip, part, base, m)                          \
    while (m) {                                                               \
        semi = (base) + eg_ctz64(m);                                          \
        (m) &= (m) - 1;                                                       \
        eg_cookie_next(cs, skip, part, semi);                                 \
        (part) = semi + 1;                                                    \
    }


#if (EG_COOKIE_SSE2)

/* bit i: s[i] is ';', for the 64 bytes at s */

static EG_INLINE uint64_t
eg_cookie_semis(const unsigned char *s)
{
    __m128i  semis;

    semis = _mm_set1_epi8(';');

    return (uint64_t) (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi8(
               _mm_loadu_si128((const __m128i *) s), semis))
           | (uint64_t) (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi8(
               _mm_loadu_si128((const __m128i *) s + 1), semis)) << 16
           | (uint64_t) (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi8(
               _mm_loadu_si128((const __m128i *) s + 2), semis)) << 32
           | (uint64_t) (unsigned) _mm_movemask_epi8(_mm_cmpeq_epi8(
               _mm_loadu_si128((const __m128i *) s + 3), semis)) << 48;
}

#endif


/*
 * The parse, as one body for each way the ';' are found: SEMIS, the mask
 * of the 64 bytes at s, where BLOCKS is 1; memchr() for the rest.
 */

#define eg_cookie_scan_body(SEMIS, BLOCKS)                                    \
    size_t                i;                                                  \
    uint64_t              m;                                                  \
    const uint8_t        *skip;                                               \
    eg_cookie_scan_t      cs;                                                 \
    const unsigned char  *s, *p, *part, *end, *semi;                          \
                                                                              \
    cs.out = out;                                                             \
    cs.cap = cap;                                                             \
    cs.max = max;                                                             \
    cs.n = 0;                                                                 \
    cs.kept = 0;                                                              \
    cs.present = 0;                                                           \
    cs.all = (rs == NULL || rs->all_cookies);                                 \
    cs.lens = cs.all ? 0 : rs->cookie_name_lens;                              \
    cs.rs = rs;                                                               \
    cs.npre = cs.all ? 0 : rs->ncookie_pre;                                   \
    skip = cs.all ? eg_cookie_keep : rs->cookie_skip;                         \
                                                                              \
    for (i = 0; i < nheaders; i++) {                                          \
        s = headers[i].data;                                                  \
        end = s + headers[i].len;                                             \
        part = s;                                                             \
                                                                              \
        if ((BLOCKS) && end - s >= 64) {                                      \
                                                                              \
            /* most blocks of a cookie jar hold a ';': the mask is built     \
               without a test first; the last bytes are the tail of one      \
               more block that ends at the header's end */                    \
                                                                              \
            for ( /* void */ ; end - s >= 64; s += 64) {                      \
                m = SEMIS(s);                                                 \
                eg_cookie_each_semi(cs, skip, part, s, m);                    \
            }                                                                 \
                                                                              \
            if (s < end) {                                                    \
                m = SEMIS(end - 64) >> (64 - (end - s));                      \
                eg_cookie_each_semi(cs, skip, part, s, m);                    \
                s = end;                                                      \
            }                                                                 \
        }                                                                     \
                                                                              \
        while ((semi = memchr(s, ';', end - s)) != NULL) {                    \
            eg_cookie_next(cs, skip, part, semi);                             \
            part = semi + 1;                                                  \
            s = part;                                                         \
        }                                                                     \
                                                                              \
        /* the last part ends at the header's end, which may not be read:    \
           a space is skipped only before a byte of the part */               \
                                                                              \
        if (part < end) {                                                     \
            p = part + (*part == ' ' && part + 1 < end);                      \
                                                                              \
            if (skip[*p] || eg_cookie_pre_miss(&cs, p, end)) {                \
                cs.n++;                                                       \
                                                                              \
            } else {                                                          \
                eg_cookie_part(&cs, part, end);                               \
            }                                                                 \
        }                                                                     \
    }                                                                         \
                                                                              \
    *found = cs.kept;                                                         \
    *present = cs.present;                                                    \
    return cs.n


/* the parse's parameters, and the same passed on, for the variants */

#define EG_COOKIE_SCAN_PARAMS                                                 \
    const eg_str_t *headers, size_t nheaders, eg_cookie_t *out, size_t cap,   \
    size_t max, const eg_ruleset_t *rs, size_t *found, uint32_t *present

#define EG_COOKIE_SCAN_ARGS                                                   \
    headers, nheaders, out, cap, max, rs, found, present


/* SSE2's blocks, or where it is not, the ';' one memchr() at a time */

#if !(EG_COOKIE_SSE2)
#define eg_cookie_semis(s)  0
#endif

static EG_NOINLINE size_t
eg_cookie_scan(EG_COOKIE_SCAN_PARAMS)
{
    eg_cookie_scan_body(eg_cookie_semis, EG_COOKIE_SSE2);
}


#if (EG_AVX2)

/* bit i: s[i] is ';', for the 64 bytes at s, 32 at a time */

static EG_INLINE __attribute__((target("avx2"))) uint64_t
eg_cookie_semis_avx2(const unsigned char *s)
{
    __m256i  semis;

    semis = _mm256_set1_epi8(';');

    return (uint64_t) (uint32_t) _mm256_movemask_epi8(_mm256_cmpeq_epi8(
               _mm256_loadu_si256((const __m256i *) s), semis))
           | (uint64_t) (uint32_t) _mm256_movemask_epi8(_mm256_cmpeq_epi8(
               _mm256_loadu_si256((const __m256i *) s + 1), semis)) << 32;
}


static EG_NOINLINE __attribute__((target("avx2"))) size_t
eg_cookie_scan_avx2(EG_COOKIE_SCAN_PARAMS)
{
    eg_cookie_scan_body(eg_cookie_semis_avx2, 1);
}


/* the first parse asks the CPU, then takes its path (not in the caller:
   the call would give every parse a stack frame) */

static EG_NOINLINE size_t
eg_cookie_scan_first(EG_COOKIE_SCAN_PARAMS)
{
    return eg_cpu_avx2() ? eg_cookie_scan_avx2(EG_COOKIE_SCAN_ARGS)
                         : eg_cookie_scan(EG_COOKIE_SCAN_ARGS);
}

#endif


size_t
eg_cookie_parse_wanted(EG_COOKIE_SCAN_PARAMS)
{
#if (EG_AVX2)
    if (eg_avx2 > 0) {
        return eg_cookie_scan_avx2(EG_COOKIE_SCAN_ARGS);
    }

    if (eg_avx2 < 0) {
        return eg_cookie_scan_first(EG_COOKIE_SCAN_ARGS);
    }
#endif

    return eg_cookie_scan(EG_COOKIE_SCAN_ARGS);
}


/* one part, s up to semi (';' or the end of the header) */

static void
eg_cookie_part(eg_cookie_scan_t *cs, const unsigned char *s,
    const unsigned char *semi)
{
    int                   want, k;
    uint32_t              bit;
    eg_str_t              name;
    const unsigned char  *eq;
    const eg_ruleset_t   *rs = cs->rs;

    /* the callers counted the parts whose first bytes no wanted name has
       (skip, eg_cookie_pre_miss()) */

    eq = memchr(s, '=', semi - s);

    if (eq == NULL) {
        name = eg_trim(s, semi);

        /* a part without '=' is a cookie with an empty name */

        if (name.len) {
            cs->n++;
            if (rs == NULL && cs->kept < cs->cap && cs->n <= cs->max) {
                cs->out[cs->kept].name.data = s;
                cs->out[cs->kept].name.len = 0;
                cs->out[cs->kept].value = name;
            }
            cs->kept += (rs == NULL && cs->n <= cs->max);
        }

        return;
    }

    cs->n++;

    /* "; name=": the usual name is printable ASCII after spaces */

    name.data = s;
    while (name.data < eq && *name.data == ' ') {
        name.data++;
    }

    name.len = eq - name.data;

    if (name.len == 0
        || (unsigned char) (name.data[0] - 0x21) >= 0x7f - 0x21
        || (unsigned char) (eq[-1] - 0x21) >= 0x7f - 0x21)
    {
        name = eg_trim(s, eq);
    }

    /* most names differ in length from every wanted one */

    want = cs->all;
    bit = cs->all ? ~(uint32_t) 0 : 0;

    if (!want && ((cs->lens >> (name.len < 64 ? name.len : 0)) & 1)) {
        k = eg_cookie_index(rs, name);
        if (k >= 0) {
            want = 1;
            bit = k < 32 ? (uint32_t) 1 << k : 0;
        }
    }

    /* the first max cookies are examined; found counts the wanted ones
       even past cap, so the caller can ask again with room */

    if (want && cs->n <= cs->max) {
        if (cs->kept < cs->cap) {
            cs->out[cs->kept].name = name;
            cs->out[cs->kept].value = eg_trim(eq + 1, semi);
        }
        cs->kept++;
        cs->present |= bit;
    }
}


/* the index of a wanted name (any case) in rs->cookie_lnames, or -1 */

int
eg_cookie_wanted(const eg_ruleset_t *rs, eg_str_t name)
{
    return eg_cookie_index(rs, name);
}


static EG_INLINE int
eg_cookie_index(const eg_ruleset_t *rs, eg_str_t name)
{
    size_t  j;

    if (rs->cookie_tab == NULL) {
        for (j = 0; j < rs->ncookie_names; j++) {
            if (name.len == rs->cookie_lnames[j].len
                && (name.data[0] | 0x20)
                   == (rs->cookie_lnames[j].data[0] | 0x20)
                && eg_ieq_lower(name, rs->cookie_lnames[j]))
            {
                return (int) j;
            }
        }
        return -1;
    }

    j = eg_name_slot(rs->cookie_tab, rs->cookie_tab_mask, rs->cookie_lnames,
                     name);

    return (int) rs->cookie_tab[j] - 1;
}


int
eg_cookie_name_is(eg_str_t name, eg_str_t want)
{
    return eg_str_ieq(name, want);
}


int
eg_str_ieq(eg_str_t a, eg_str_t b)
{
    size_t  i;

    if (a.len != b.len) {
        return 0;
    }

    for (i = 0; i < a.len; i++) {
        if (eg_lower(a.data[i]) != eg_lower(b.data[i])) {
            return 0;
        }
    }

    return 1;
}


/*
 * The length of the white space String.Trim() removes at s (or, with back,
 * ending at e), 0 if none.  ASP.NET reads header bytes as Latin-1, so a
 * lone 0x85 or 0xA0 is white space; UTF-8 encodings of Unicode spaces are
 * trimmed too, in case a proxy in front decodes them: trimming more than
 * the back end only makes a cookie name easier to recognize.
 */

static size_t
eg_space(const unsigned char *s, const unsigned char *e, int back)
{
    size_t                i, n, len;
    const unsigned char  *p;
    static const char    *spaces[] = {
        "\xc2\x85", "\xc2\xa0", "\xe1\x9a\x80", "\xe2\x80\x80",
        "\xe2\x80\x81", "\xe2\x80\x82", "\xe2\x80\x83", "\xe2\x80\x84",
        "\xe2\x80\x85", "\xe2\x80\x86", "\xe2\x80\x87", "\xe2\x80\x88",
        "\xe2\x80\x89", "\xe2\x80\x8a", "\xe2\x80\x8b", "\xe2\x80\xa8",
        "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f", "\xe3\x80\x80",
        "\xef\xbb\xbf", NULL
    };

    if (s >= e) {
        return 0;
    }

    p = back ? e - 1 : s;

    if (*p == ' ' || (*p >= '\t' && *p <= '\r') || (*p >= 0x1c && *p <= 0x1f)
        || *p == 0x85 || *p == 0xa0)
    {
        /* 0x85 and 0xa0 may end a UTF-8 sequence: that is trimmed below */
        if (!(back && (*p == 0x85 || *p == 0xa0) && e - s >= 2
              && e[-2] == 0xc2))
        {
            return 1;
        }
    }

    if (*p < 0x80) {
        return 0;
    }

    for (i = 0; spaces[i]; i++) {
        len = strlen(spaces[i]);

        if ((size_t) (e - s) < len) {
            continue;
        }

        p = back ? e - len : s;

        for (n = 0; n < len && p[n] == (unsigned char) spaces[i][n]; n++) {
            /* void */
        }

        if (n == len) {
            return len;
        }
    }

    return 0;
}


static eg_str_t
eg_trim(const unsigned char *s, const unsigned char *e)
{
    size_t    n;
    eg_str_t  r;

    /* the usual case: "; name=value", printable ASCII once the spaces
       that follow the ';' are skipped */

    while (s < e && *s == ' ') {
        s++;
    }

    while (e > s && e[-1] == ' ') {
        e--;
    }

    if (s == e || (*s > 0x20 && *s < 0x7f && e[-1] > 0x20 && e[-1] < 0x7f)) {
        r.data = s;
        r.len = e - s;
        return r;
    }

    while ((n = eg_space(s, e, 0)) != 0) {
        s += n;
    }

    while ((n = eg_space(s, e, 1)) != 0) {
        e -= n;
    }

    r.data = s;
    r.len = e - s;
    return r;
}
