/*
 * exchange_guard: request-target normalization, the way IIS, ASP.NET and
 * Exchange read it.  Every difference between this view and theirs is a
 * bypass, so each step below names the back-end behaviour it mirrors.
 */

#include <string.h>

#include "eg_internal.h"

#if defined(__SSE2__) && !defined(EG_NO_SIMD)
#include <emmintrin.h>
#define EG_PATH_SSE2  1
#else
#define EG_PATH_SSE2  0
#endif


static EG_NOINLINE int eg_url_decode_copy(eg_str_t in, unsigned rounds,
    int plus_is_space, const eg_alloc_t *alloc, eg_str_t *out);
static size_t eg_decode_once(unsigned char *s, size_t len, int plus,
    int *more);
static int eg_hex(unsigned char c);
static size_t eg_path_canonical(unsigned char *s, size_t len);
static EG_INLINE int eg_has_escape(eg_str_t in, int plus);
static size_t eg_segment(unsigned char *seg, size_t len);
static EG_NOINLINE unsigned eg_scan(eg_str_t target, size_t *qpos);


int
eg_url_decode(eg_str_t in, unsigned rounds, int plus_is_space,
    const eg_alloc_t *alloc, eg_str_t *out)
{
    /* nothing to decode: the input is the answer, no copy (the usual
       query, tested here without the decoder's frame) */

    if (in.len == 0 || !eg_has_escape(in, plus_is_space)) {
        *out = in;
        return 0;
    }

    return eg_url_decode_copy(in, rounds, plus_is_space, alloc, out);
}


#if (EG_AVX2)

/*
 * The bytes the AVX2 scans compare with, 32 of each, read from memory:
 * _mm256_set1_epi8() of a constant is built by three instructions each
 * time a scan starts.  eg_splat256() of a constant folds to one load.
 */

#define EG_X8(c)   c, c, c, c, c, c, c, c
#define EG_X32(c)  { EG_X8(c), EG_X8(c), EG_X8(c), EG_X8(c) }

static const unsigned char  eg_splat32[][32] __attribute__((aligned(32))) = {
    EG_X32(0x21), EG_X32(0x7f), EG_X32('%'), EG_X32('('), EG_X32(':'),
    EG_X32('\\'), EG_X32('/'), EG_X32('.'), EG_X32('?'), EG_X32('+'),
    EG_X32('a')
};


static EG_INLINE __attribute__((target("avx2"))) __m256i
eg_splat256(unsigned char c)
{
    size_t                k;
    const unsigned char  *t;

    switch (c) {
    case 0x21: k = 0; break;
    case 0x7f: k = 1; break;
    case '%': k = 2; break;
    case '(': k = 3; break;
    case ':': k = 4; break;
    case '\\': k = 5; break;
    case '/': k = 6; break;
    case '.': k = 7; break;
    case '?': k = 8; break;
    case '+': k = 9; break;
    case 'a': k = 10; break;
    default:
        return _mm256_set1_epi8((char) c);
    }

    /* the table's address, hidden from the compiler, which would
       otherwise see the constant and build it again */

    t = eg_splat32[0];
    __asm__ ("" : "+r" (t));

    return _mm256_load_si256((const __m256i *) (t + 32 * k));
}

#define eg_splat_mm256(c)  eg_splat256(c)


/*
 * A '%' (or, plus: a '+') among the bytes from..len-1 of s, 32 at a time:
 * the blocks start at from, none past last (s + last + 32 may be read:
 * len - 32, or 0 for a short text copied into padding that has neither
 * byte), the last overlapping the one before; the bytes of a block before
 * from, or before the block's start, are not counted.
 */

static EG_INLINE __attribute__((target("avx2"))) int
eg_escape_avx2(const unsigned char *s, size_t from, size_t len, size_t last,
    int plus, const unsigned char *anchors, unsigned *found)
{
    size_t    i, n;
    uint32_t  esc, keep, a;
    __m256i   b;

    a = 0;

    for (i = from; i < len; i = n + 32) {
        n = i < last ? i : last;
        b = _mm256_loadu_si256((const __m256i *) (s + n));
        esc = (uint32_t) _mm256_movemask_epi8(_mm256_or_si256(
                  _mm256_cmpeq_epi8(b, eg_splat256('%')),
                  _mm256_cmpeq_epi8(b, eg_splat256(plus ? '+' : '%'))));
        keep = ~(uint32_t) 0 << (i - n);

        if (esc & keep) {
            return 1;
        }

        /* the query's anchor (eg_target_scan_anchors()) */

        if (anchors) {
            a |= keep & (uint32_t) _mm256_movemask_epi8(_mm256_cmpeq_epi8(
                            b, _mm256_set1_epi8((char) anchors[1])));
        }
    }

    if (anchors) {
        *found |= EG_FOUND_QUERY | (a ? EG_FOUND_Q : 0);
    }

    return 0;
}


/* a text of 32 bytes or more */

static EG_NOINLINE __attribute__((target("avx2"))) int
eg_has_escape_avx2(eg_str_t in, int plus)
{
    return eg_escape_avx2(in.data, 0, in.len, in.len - 32, plus, NULL, NULL);
}

#endif


/* a '%' in in, or with plus a '+': something eg_url_decode() changes */

static EG_INLINE int
eg_has_escape(eg_str_t in, int plus)
{
#if (EG_AVX2)
    if (in.len >= 32 && eg_use_avx2()) {
        return eg_has_escape_avx2(in, plus);
    }
#endif

    return memchr(in.data, '%', in.len) != NULL
           || (plus && memchr(in.data, '+', in.len) != NULL);
}


/* eg_url_decode() of a text with something to decode */

static int
eg_url_decode_copy(eg_str_t in, unsigned rounds, int plus_is_space,
    const eg_alloc_t *alloc, eg_str_t *out)
{
    int             more;
    size_t          len;
    unsigned        i;
    unsigned char  *buf;

    out->data = NULL;
    out->len = 0;

    buf = alloc->alloc(alloc->ctx, in.len + 1);
    if (buf == NULL) {
        return -1;
    }

    memcpy(buf, in.data, in.len);
    len = in.len;
    more = memchr(buf, '%', len) != NULL;

    /* '+' is a space once, in HttpUtility.UrlDecode's single pass; later
       rounds only undo percent-encoding layered over it */

    if (plus_is_space) {
        for (i = 0; i < len; i++) {
            if (buf[i] == '+') {
                buf[i] = ' ';
            }
        }
    }

    for (i = 0; i < rounds && more; i++) {
        len = eg_decode_once(buf, len, 0, &more);
    }

    buf[len] = '\0';
    out->data = buf;
    out->len = len;

    return more ? -1 : 0;
}


int
eg_uri_normalize(eg_str_t target, unsigned rounds, const eg_alloc_t *alloc,
    eg_str_t *path, eg_str_t *query)
{
    return eg_uri_split(target, rounds, alloc, path, query, NULL, NULL);
}


/* the rest: an absolute-form target, a path to decode or canonicalize, a
   query to decode; scan and qpos: the target's scan, or EG_SCAN_NONE */

EG_NOINLINE int
eg_uri_decode_target(eg_str_t target, unsigned rounds,
    const eg_alloc_t *alloc, eg_str_t *path, eg_str_t *query, unsigned scan,
    size_t qpos)
{
    int                   rc;
    size_t                i;
    eg_str_t              p, q;

    p = target;

    /* absolute-form: http://host/path is proxied as /path (a target that
       starts with '/' was scanned already) */

    if (scan == EG_SCAN_NONE && p.len > 7 && eg_lower(p.data[0]) == 'h'
        && eg_lower(p.data[1]) == 't' && eg_lower(p.data[2]) == 't'
        && eg_lower(p.data[3]) == 'p')
    {
        for (i = 4; i + 2 < p.len && i < 9; i++) {
            if (p.data[i] == ':' && p.data[i + 1] == '/'
                && p.data[i + 2] == '/')
            {
                i += 3;
                while (i < p.len && p.data[i] != '/' && p.data[i] != '?') {
                    i++;
                }
                p.data += i;
                p.len -= i;
                break;
            }
        }
    }

    if (scan == EG_SCAN_NONE) {
        scan = eg_scan(p, &qpos);
    }

    q.data = p.data + qpos + (qpos < p.len);
    q.len = p.data + p.len - q.data;
    p.len = qpos;

    rc = 0;

    if (scan & EG_SCAN_PLAIN) {
        *path = p;

    } else {
        eg_str_t        dec;
        unsigned char  *buf;

        if (eg_url_decode(p, rounds, 0, alloc, &dec) != 0) {
            if (dec.data == NULL) {
                path->data = NULL;
                path->len = 0;
                return -1;
            }
            rc = -1;
        }

        /* a path always starts at the root, even "a/b" or "*"; with the
           '/' in front canonicalization never grows the text */

        buf = alloc->alloc(alloc->ctx, dec.len + 2);
        if (buf == NULL) {
            path->data = NULL;
            path->len = 0;
            return -1;
        }

        buf[0] = '/';
        if (dec.len) {
            memcpy(buf + 1, dec.data, dec.len);
        }
        path->data = buf;
        path->len = eg_path_canonical(buf, dec.len + 1);
    }

    if (query) {
        if (!(scan & EG_SCAN_ESCAPE)) {
            *query = q;

        } else if (eg_url_decode_copy(q, rounds, 1, alloc, query) != 0) {
            rc = -1;
        }
    }

    return rc;
}


/*
 * The target (after any absolute-form prefix) read once: *qpos, where its
 * '?' is (its length if none); EG_SCAN_PLAIN if the path before it is
 * plain (eg_path_plain()), EG_SCAN_ESCAPE if the query after it has
 * something to decode (eg_has_escape(), '+' counting).  By AVX2 one pass
 * does all three; otherwise they are asked one after the other.
 */

#if (EG_AVX2)

static EG_NOINLINE __attribute__((target("avx2"))) unsigned
eg_target_scan_avx2(const unsigned char *s, size_t len, size_t *qpos);
static EG_NOINLINE __attribute__((target("avx2"))) unsigned
eg_target_scan_avx2_anchors(const unsigned char *s, size_t len, size_t *qpos,
    const unsigned char *anchors, unsigned *found);

#endif


/*
 * eg_target_scan(), and where AVX2 scans the target, in the same pass:
 * whether the path has the byte anchors[0] and the query anchors[1]
 * (*found, EG_FOUND_*); the path's only if it is plain, the query's only
 * if it has nothing to decode, which the bits EG_FOUND_PATH and
 * EG_FOUND_QUERY say.  Without AVX2, *found is 0.  Neither anchor is 'a'
 * or 0: a short target is scanned in a copy padded with 'a' after a 0.
 */

unsigned
eg_target_scan_anchors(eg_str_t target, size_t *qpos,
    const unsigned char *anchors, unsigned *found)
{
#if (EG_AVX2)
    if (eg_avx2 > 0 && target.len && target.data[0] == '/') {
        return eg_target_scan_avx2_anchors(target.data, target.len, qpos,
                                           anchors, found);
    }
#else
    (void) anchors;
#endif

    *found = 0;

    return eg_target_scan(target, qpos);
}


unsigned
eg_target_scan(eg_str_t target, size_t *qpos)
{
    /* the usual target, with AVX2 known to be there: a jump, no frame */

#if (EG_AVX2)
    if (eg_avx2 > 0 && target.len && target.data[0] == '/') {
        return eg_target_scan_avx2(target.data, target.len, qpos);
    }
#endif

    return eg_scan(target, qpos);
}


static EG_NOINLINE unsigned
eg_scan(eg_str_t target, size_t *qpos)
{
    unsigned              scan;
    eg_str_t              p, q;
    const unsigned char  *qm;

#if (EG_AVX2)
    if (target.len && target.data[0] == '/' && eg_use_avx2()) {
        return eg_target_scan_avx2(target.data, target.len, qpos);
    }
#endif

    p = target;
    qm = p.len ? memchr(p.data, '?', p.len) : NULL;
    *qpos = qm ? (size_t) (qm - p.data) : p.len;

    p.len = *qpos;
    q.data = p.data + *qpos + (qm != NULL);
    q.len = target.data + target.len - q.data;

    scan = eg_path_plain(p) ? EG_SCAN_PLAIN : 0;

    if (q.len && eg_has_escape(q, 1)) {
        scan |= EG_SCAN_ESCAPE;
    }

    return scan;
}


/*
 * 1 if IIS would read the path exactly as sent: it starts with '/', and has
 * no escapes, no backslash, no empty or dot segments, no segment ending in
 * a dot or space, no stream or cookieless syntax, no control or 8-bit
 * bytes.  Most requests are like that and skip normalization entirely.
 */

#if (EG_PATH_SSE2)

/*
 * The bytes of b that make a path not plain, as a mask; prev holds the
 * byte before each (0 before the first byte of the path).  One body for
 * both widths: V, W name the intrinsics (_mm, si128: 16 bytes; _mm256,
 * si256: 32), so the two tests cannot drift apart.  Signed compares:
 * 8-bit bytes are negative, below 0x21 too.  "//" and "./" are a '/'
 * after '/' or '.', "/." a '.' after '/'.
 */

#define eg_splat_mm(c)  _mm_set1_epi8((char) (c))

#define eg_path_bad(V, W, b, prev)                                            \
    V##_movemask_epi8(V##_or_##W(                                             \
        V##_or_##W(                                                           \
            V##_or_##W(                                                       \
                V##_cmpgt_epi8(eg_splat##V(0x21), (b)),                       \
                V##_cmpeq_epi8((b), eg_splat##V(0x7f))),                      \
            V##_or_##W(                                                       \
                V##_or_##W(                                                   \
                    V##_cmpeq_epi8((b), eg_splat##V('%')),                    \
                    V##_cmpeq_epi8((b), eg_splat##V('('))),                   \
                V##_or_##W(                                                   \
                    V##_cmpeq_epi8((b), eg_splat##V(':')),                    \
                    V##_cmpeq_epi8((b), eg_splat##V('\\'))))),                \
        V##_or_##W(                                                           \
            V##_and_##W(V##_cmpeq_epi8((b), eg_splat##V('/')),                \
                V##_or_##W(                                                   \
                    V##_cmpeq_epi8((prev), eg_splat##V('/')),                 \
                    V##_cmpeq_epi8((prev), eg_splat##V('.')))),               \
            V##_and_##W(V##_cmpeq_epi8((b), eg_splat##V('.')),                \
                V##_cmpeq_epi8((prev), eg_splat##V('/'))))))


static EG_INLINE unsigned
eg_path_block(__m128i b, __m128i prev)
{
    return (unsigned) eg_path_bad(_mm, si128, b, prev);
}

#endif


#if (EG_AVX2)

static EG_INLINE __attribute__((target("avx2"))) unsigned
eg_path_block32(__m256i b, __m256i prev)
{
    return (unsigned) eg_path_bad(_mm256, si256, b, prev);
}


/*
 * eg_target_scan() of a target that starts with '/', 32 bytes at a time,
 * the last block overlapping the one before.  A target under 32 bytes is
 * copied after a 0 byte (the byte before the path, as the SSE2 path's
 * shift has it) into 'a' padding, which no test takes for bad after any
 * byte and which holds no '?', '%' or '+'; a longer one is read in place,
 * the first block's bytes before each from a shift across the halves.
 * The path's blocks give their '?' and the bytes that would make a path
 * not plain (eg_path_block32()); the query's, from the byte after the
 * '?', their '%' and '+'.
 */

static EG_INLINE __attribute__((target("avx2"))) unsigned
eg_target_scan_avx2_body(const unsigned char *s, size_t len, size_t *qpos,
    const unsigned char *anchors, unsigned *found)
{
    size_t         i, n, last, qp;
    uint32_t       qm, bad, a;
    unsigned       scan;
    __m256i        b, prev, e, acc;
    unsigned char  buf[48];

    if (len < 32) {
        _mm256_storeu_si256((__m256i *) (buf + 1), eg_splat256('a'));
        buf[0] = 0;

        if (len >= 16) {
            _mm_storeu_si128((__m128i *) (buf + 1),
                             _mm_loadu_si128((const __m128i *) s));
            _mm_storeu_si128((__m128i *) (buf + 1 + len - 16),
                             _mm_loadu_si128((const __m128i *) (s + len - 16)));

        } else {
            eg_copy_short16(buf + 1, s, len, 'a');
        }

        s = buf + 1;
        b = _mm256_loadu_si256((const __m256i *) s);
        prev = _mm256_loadu_si256((const __m256i *) buf);
        last = 0;

    } else {
        b = _mm256_loadu_si256((const __m256i *) s);
        prev = _mm256_alignr_epi8(b, _mm256_permute2x128_si256(b, b, 0x08),
                                  15);
        last = len - 32;
    }

    /*
     * The path: up to the first '?' (the padding has none).  The last
     * block overlaps the one before; its first bytes were that block's,
     * which had no '?' and whose bad bytes are already counted.
     */

    scan = EG_SCAN_PLAIN;
    n = 0;
    a = 0;
    acc = _mm256_setzero_si256();

    for ( ;; ) {
        qm = (uint32_t) _mm256_movemask_epi8(
                 _mm256_cmpeq_epi8(b, eg_splat256('?')));
        bad = eg_path_block32(b, prev);

        /* the path's anchor: the bytes before the '?' of this block, and
           every byte of the blocks before it */

        if (anchors) {
            e = _mm256_cmpeq_epi8(b, _mm256_set1_epi8((char) anchors[0]));
        }

        if (qm) {
            qp = n + eg_ctz32(qm);
            bad &= (qm & -qm) - 1;

            if (anchors) {
                a = (uint32_t) _mm256_movemask_epi8(e) & ((qm & -qm) - 1);
            }

            break;
        }

        if (anchors) {
            acc = _mm256_or_si256(acc, e);
        }

        if (n == last) {
            qp = len;
            break;
        }

        if (bad) {
            scan = 0;
        }

        i = n + 32;
        n = i < last ? i : last;
        b = _mm256_loadu_si256((const __m256i *) (s + n));
        prev = _mm256_loadu_si256((const __m256i *) (s + n - 1));
    }

    /* IIS drops a final '.' of the path */

    if (bad || s[qp - 1] == '.') {
        scan = 0;
    }

    *qpos = qp;

    if (anchors) {
        a |= (uint32_t) _mm256_movemask_epi8(acc);
        *found = scan ? EG_FOUND_PATH | (a ? EG_FOUND_P : 0) : 0;
    }

    /* the query: from the byte after the '?' */

    return eg_escape_avx2(s, qp + 1, len, last, 1, anchors, found)
           ? scan | EG_SCAN_ESCAPE : scan;
}


static EG_NOINLINE __attribute__((target("avx2"))) unsigned
eg_target_scan_avx2(const unsigned char *s, size_t len, size_t *qpos)
{
    return eg_target_scan_avx2_body(s, len, qpos, NULL, NULL);
}


static EG_NOINLINE __attribute__((target("avx2"))) unsigned
eg_target_scan_avx2_anchors(const unsigned char *s, size_t len, size_t *qpos,
    const unsigned char *anchors, unsigned *found)
{
    /* anchors is not NULL: the body's tests of it are folded away */

    if (anchors == NULL) {
        __builtin_unreachable();
    }

    return eg_target_scan_avx2_body(s, len, qpos, anchors, found);
}

#endif


/* with AVX2 the request's path is tested by eg_target_scan_avx2(), in
   the same pass as its query; this is the path for the others */

int
eg_path_plain(eg_str_t path)
{
    size_t                i;
    const unsigned char  *s = path.data;

    if (path.len == 0 || s[0] != '/') {
        return 0;
    }

#if (EG_PATH_SSE2)
    {
        unsigned char  buf[16];
        size_t         n, last;
        __m128i        b;

        /*
         * Sixteen bytes at a time, each with the byte before it (an
         * unaligned load one byte back): no byte IIS would rewrite or
         * decode (control bytes, space, '%', '(', ':', '\\', DEL, 8-bit),
         * and no "//", "/.", "./".  A path of 16 bytes or more ends with
         * the last sixteen (overlapping the block before); a shorter one
         * is copied into a buffer padded with 'a' (eg_copy_short16()).
         */

        if (path.len < 16) {
            eg_copy_short16(buf, s, path.len, 'a');
            b = _mm_loadu_si128((const __m128i *) buf);

            return eg_path_block(b, _mm_slli_si128(b, 1)) == 0
                   && s[path.len - 1] != '.';
        }

        b = _mm_loadu_si128((const __m128i *) s);

        if (eg_path_block(b, _mm_slli_si128(b, 1))) {
            return 0;
        }

        last = path.len - 16;

        for (i = 16; i < path.len; i += 16) {
            n = i < last ? i : last;

            if (eg_path_block(_mm_loadu_si128((const __m128i *) (s + n)),
                              _mm_loadu_si128((const __m128i *) (s + n - 1))))
            {
                return 0;
            }
        }

        /* a final '.' is dropped by IIS */
        return s[path.len - 1] != '.';
    }
#else
    for (i = 1; i < path.len; i++) {
        if (!eg_path_byte_ok(s, i, path.len)) {
            return 0;
        }
    }

    return 1;
#endif
}


/* the byte at i (i > 0) of a plain path, one at a time */

int
eg_path_byte_ok(const unsigned char *s, size_t i, size_t len)
{
    static const unsigned char  special[256] = {
        /* control bytes and space */
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        /*  ! " # $ % & ' ( ) * + , - . / */
        1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 2, 2,
        /* 0-9 : ; < = > ? */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        /* P-Z [ \ ] ^ _ */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        /* p-z { | } ~ DEL */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        /* 8-bit */
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
    };

    switch (special[s[i]]) {
    case 0:
        return 1;
    case 1:
        return 0;
    default:
        /* '/' or '.': no "//", "/.", "./" and no final '.' */
        return !(s[i] == '/' ? (s[i - 1] == '/' || s[i - 1] == '.')
                             : (s[i - 1] == '/' || i + 1 == len));
    }
}


static size_t
eg_decode_once(unsigned char *s, size_t len, int plus, int *more)
{
    int             a, b, c, d;
    size_t          i, n;
    uint32_t        cp;

    *more = 0;
    n = 0;

    for (i = 0; i < len; i++) {

        if (s[i] == '+' && plus) {
            s[n++] = ' ';
            continue;
        }

        if (s[i] != '%') {
            s[n++] = s[i];
            continue;
        }

        /* IIS %uXXXX */

        if (i + 5 < len && (s[i + 1] == 'u' || s[i + 1] == 'U')
            && (a = eg_hex(s[i + 2])) >= 0 && (b = eg_hex(s[i + 3])) >= 0
            && (c = eg_hex(s[i + 4])) >= 0 && (d = eg_hex(s[i + 5])) >= 0)
        {
            cp = (a << 12) | (b << 8) | (c << 4) | d;
            n += eg_utf8_put(s + n, cp);   /* %uXXXX: 6 bytes in, 3 out */
            i += 5;
            *more = 1;
            continue;
        }

        if (i + 2 < len && (a = eg_hex(s[i + 1])) >= 0
            && (b = eg_hex(s[i + 2])) >= 0)
        {
            s[n++] = (unsigned char) ((a << 4) | b);
            i += 2;
            *more = 1;
            continue;
        }

        s[n++] = '%';
    }

    /* another round is needed only if an escape is left */

    if (*more) {
        *more = 0;
        for (i = 0; i < n; i++) {
            if (s[i] == '%' && i + 2 < n
                && ((eg_hex(s[i + 1]) >= 0 && eg_hex(s[i + 2]) >= 0)
                    || s[i + 1] == 'u' || s[i + 1] == 'U'))
            {
                *more = 1;
                break;
            }
        }
    }

    return n;
}


static int
eg_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c = eg_lower(c);

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/*
 * In place: '\' is '/' on Windows; overlong two-byte UTF-8 forms of ASCII
 * (C0 AF is '/') are read as the ASCII byte; empty and "." segments go,
 * ".." removes the previous segment but never climbs above the root; each
 * segment is read as Windows reads a file name.  The result starts with '/'
 * and keeps a trailing '/'.
 */

static size_t
eg_path_canonical(unsigned char *s, size_t len)
{
    int             trailing;
    size_t          i, n, start, seglen, segstart;
    unsigned char   c;

    n = 0;

    for (i = 0; i < len; i++) {
        c = s[i];

        if ((c == 0xc0 || c == 0xc1) && i + 1 < len
            && (s[i + 1] & 0xc0) == 0x80)
        {
            c = (unsigned char) (((c & 0x01) << 6) | (s[i + 1] & 0x3f));
            i++;
        }

        s[n++] = (c == '\\') ? '/' : c;
    }

    len = n;
    n = 0;
    i = 0;
    trailing = 0;

    /* s[0..n) is the output, always "" or "/seg/seg" */

    while (i < len) {
        while (i < len && s[i] == '/') {
            i++;
        }

        if (i == len) {
            trailing = 1;
            break;
        }

        start = i;
        while (i < len && s[i] != '/') {
            i++;
        }

        seglen = i - start;
        trailing = 0;

        if (seglen == 1 && s[start] == '.') {
            trailing = 1;
            continue;
        }

        if (seglen == 2 && s[start] == '.' && s[start + 1] == '.') {
            while (n > 0 && s[n - 1] != '/') {
                n--;
            }
            if (n > 0) {
                n--;
            }
            trailing = 1;
            continue;
        }

        segstart = n;
        s[n++] = '/';
        memmove(s + n, s + start, seglen);
        seglen = eg_segment(s + n, seglen);

        if (seglen == 0) {
            n = segstart;
            trailing = 1;
            continue;
        }

        n += seglen;
    }

    if (n == 0 || trailing) {
        s[n++] = '/';
    }

    return n;
}


/* one segment as Windows and ASP.NET read it; returns the new length */

static size_t
eg_segment(unsigned char *seg, size_t len)
{
    unsigned char  *colon;

    /* ASP.NET cookieless state: "(S(sessionid))", "(A(...))", "(F(...))" */

    if (len >= 5 && seg[0] == '(' && seg[2] == '(' && seg[len - 1] == ')'
        && seg[len - 2] == ')'
        && ((seg[1] >= 'A' && seg[1] <= 'Z') || (seg[1] >= 'a'
                                                  && seg[1] <= 'z')))
    {
        return 0;
    }

    /* NTFS alternate data stream: "shell.aspx::$DATA" is "shell.aspx" */

    colon = memchr(seg, ':', len);
    if (colon) {
        len = colon - seg;
    }

    /* Win32 drops trailing dots and spaces: "shell.aspx. ." */

    while (len > 0 && (seg[len - 1] == '.' || seg[len - 1] == ' ')) {
        len--;
    }

    return len;
}
