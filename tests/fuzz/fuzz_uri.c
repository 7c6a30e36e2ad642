/*
 * fuzz_uri: eg_uri_normalize() and eg_url_decode().
 *
 * Input: one byte, then the request-target.  Bits 0-1 of the byte pick
 * the decoding rounds (1 to 4), bit 2 '+' as space for eg_url_decode.
 * The target is copied to a heap buffer of its exact size, and every
 * engine allocation is exact too.
 *
 * Invariants of eg_uri_normalize():
 *   - it returns 0 or -1; path is set, starts with '/', and its length
 *     is at most the target's + 1; query is at most the target's length
 *   - no "//", no "." or ".." segment ("/./", "/../", or at the end),
 *     no '\', no ':' (alternate data streams go), no segment ending in
 *     '.' or ' ' (Win32 drops them), no overlong C0/C1 two-byte form
 *   - metamorphic: for a target starting with '/', "/." + target
 *     normalizes to the same path, query and return code; most paths
 *     take the engine's fast path (eg_path_plain: "IIS reads it as
 *     sent") and "/." forces the full canonicalization, so any
 *     disagreement is a path the fast path lets through unnormalized
 *   - eg_path_plain() of the target (SSE2 where built) is the
 *     byte-at-a-time rule's answer (eg_path_byte_ok())
 *   - eg_target_scan() of the target, with AVX2 and without, finds its
 *     first '?', and says whether the path before it is plain (byte at a
 *     time) and whether the query after it holds a '%' or '+'; and
 *     eg_target_scan_anchors(), with AVX2, whether the plain path and the
 *     query with nothing to decode hold the target's last two bytes
 * Invariants of eg_url_decode():
 *   - out is set and at most as long as the input
 *   - 0 means no escape is left: one more round changes nothing
 *   - decoding is monotone: more rounds never leave a longer text
 */

#include "fuzz_common.h"
#include "eg_internal.h"          /* eg_path_plain() */


static void
check_path(eg_str_t path, size_t tlen)
{
    size_t         i, seg, slen;
    unsigned char  c;

    FUZZ_CHECK(path.data != NULL, "no path");
    (void) fuzz_touch(path);

    FUZZ_CHECK(path.len >= 1 && path.data[0] == '/',
               "path \"%.*s\" does not start with '/'", (int) path.len,
               path.data);
    FUZZ_CHECK(path.len <= tlen + 1, "path of %zu bytes from a target of "
               "%zu", path.len, tlen);

    for (i = 0; i < path.len; i++) {
        c = path.data[i];

        FUZZ_CHECK(c != '\\', "'\\' in path \"%.*s\"", (int) path.len,
                   path.data);
        FUZZ_CHECK(c != ':', "':' in path \"%.*s\"", (int) path.len,
                   path.data);
        FUZZ_CHECK(!(c == '/' && i + 1 < path.len && path.data[i + 1] == '/'),
                   "\"//\" in path \"%.*s\"", (int) path.len, path.data);
        FUZZ_CHECK(!((c == 0xc0 || c == 0xc1) && i + 1 < path.len
                     && (path.data[i + 1] & 0xc0) == 0x80),
                   "overlong form left at %zu in path", i);
    }

    /* each segment: not "." or "..", no trailing dot or space */

    for (i = 0; i < path.len; i = seg + slen) {
        seg = i + 1;                               /* after the '/' */
        for (slen = 0; seg + slen < path.len && path.data[seg + slen] != '/';
             slen++)
        { /* void */ }

        if (slen == 0) {
            FUZZ_CHECK(seg == path.len, "empty segment in \"%.*s\"",
                       (int) path.len, path.data);
            break;
        }

        FUZZ_CHECK(!(slen == 1 && path.data[seg] == '.')
                   && !(slen == 2 && path.data[seg] == '.'
                        && path.data[seg + 1] == '.'),
                   "dot segment in path \"%.*s\"", (int) path.len,
                   path.data);

        c = path.data[seg + slen - 1];
        FUZZ_CHECK(c != '.' && c != ' ', "segment ends in '%c' in path "
                   "\"%.*s\"", c, (int) path.len, path.data);
    }
}


static void
check_plain(eg_str_t path)
{
    int     want;
    size_t  i;

    if (path.len == 0 || path.data[0] != '/') {
        return;
    }

    want = 1;
    for (i = 1; i < path.len; i++) {
        want &= eg_path_byte_ok(path.data, i, path.len);
    }

    FUZZ_CHECK(eg_path_plain(path) == want,
               "eg_path_plain() is not %d for \"%.*s\"", want,
               (int) path.len, path.data);
}


static void
check_scan(eg_str_t t)
{
    int            k, n;
    size_t         i, q, qpos;
    unsigned       want, got, found, want_found;
    unsigned char  anchors[2];
    static int     avx2 = -1;

    for (q = 0; q < t.len && t.data[q] != '?'; q++) {
        /* void */
    }

    want = 0;

    if (q > 0 && t.data[0] == '/') {
        want = EG_SCAN_PLAIN;
        for (i = 1; i < q; i++) {
            if (!eg_path_byte_ok(t.data, i, q)) {
                want = 0;
                break;
            }
        }
    }

    for (i = q + 1; i < t.len; i++) {
        if (t.data[i] == '%' || t.data[i] == '+') {
            want |= EG_SCAN_ESCAPE;
            break;
        }
    }

    if (avx2 < 0) {
        avx2 = eg_cpu_avx2();
    }

    /* the anchors: the target's last two bytes, as the rule set never
       takes them: not 'a' (the scan's padding) nor 0 */

    anchors[0] = t.len >= 1 ? t.data[t.len - 1] : '@';
    anchors[1] = t.len >= 2 ? t.data[t.len - 2] : '-';

    for (i = 0; i < 2; i++) {
        if (anchors[i] == 'a' || anchors[i] == 0) {
            anchors[i] = '@';
        }
    }

    for (k = 0, n = 1 + avx2; k < n; k++) {
        eg_avx2 = k;
        qpos = (size_t) -1;
        got = eg_target_scan(t, &qpos);
        FUZZ_CHECK(got == want && qpos == q,
                   "eg_target_scan() (AVX2 %d) is %u, '?' at %zu, not %u "
                   "at %zu for \"%.*s\"", k, got, qpos, want, q,
                   (int) t.len, t.data);

        want_found = 0;

        if (k && t.len && t.data[0] == '/') {
            if (want & EG_SCAN_PLAIN) {
                want_found |= EG_FOUND_PATH
                              | (memchr(t.data, anchors[0], q)
                                 ? EG_FOUND_P : 0);
            }

            if (!(want & EG_SCAN_ESCAPE)) {
                want_found |= EG_FOUND_QUERY
                              | (q + 1 < t.len
                                 && memchr(t.data + q + 1, anchors[1],
                                           t.len - q - 1)
                                 ? EG_FOUND_Q : 0);
            }
        }

        found = 0xff;
        qpos = (size_t) -1;
        got = eg_target_scan_anchors(t, &qpos, anchors, &found);
        FUZZ_CHECK(got == want && qpos == q && found == want_found,
                   "eg_target_scan_anchors() (AVX2 %d) is %u, '?' at %zu, "
                   "found %#x, not %u at %zu, %#x, of '%c' '%c' for "
                   "\"%.*s\"", k, got, qpos, found, want, q, want_found,
                   anchors[0], anchors[1], (int) t.len, t.data);
    }

    eg_avx2 = avx2;
}


static void
check_decode(eg_str_t in, unsigned rounds, int plus, const eg_alloc_t *alloc)
{
    int       rc, rc2, rc_more;
    eg_str_t  out, again, more;

    rc = eg_url_decode(in, rounds, plus, alloc, &out);

    FUZZ_CHECK(rc == 0 || rc == -1, "eg_url_decode returned %d", rc);
    FUZZ_CHECK(out.data != NULL, "eg_url_decode: no output");
    FUZZ_CHECK(out.len <= in.len, "decoded %zu bytes into %zu", in.len,
               out.len);
    (void) fuzz_touch(out);

    if (rc == 0) {
        /* no escape left: another round is the identity */
        rc2 = eg_url_decode(out, 1, 0, alloc, &again);
        FUZZ_CHECK(rc2 == 0 && again.len == out.len
                   && memcmp(again.data, out.data, out.len) == 0,
                   "returned 0 with escapes left: \"%.*s\" decodes to "
                   "\"%.*s\"", (int) out.len, out.data, (int) again.len,
                   again.data);
    }

    rc_more = eg_url_decode(in, rounds + 1, plus, alloc, &more);
    FUZZ_CHECK(more.len <= out.len, "%u rounds give %zu bytes, %u give %zu",
               rounds, out.len, rounds + 1, more.len);

    if (rc == 0) {
        FUZZ_CHECK(rc_more == 0 && more.len == out.len
                   && memcmp(more.data, out.data, out.len) == 0,
                   "done after %u rounds, but round %u changed the text",
                   rounds, rounds + 1);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                rc;
    unsigned           rounds;
    eg_str_t           target, path, query, p2;
    const eg_alloc_t  *alloc;

    if (size < 1) {
        return 0;
    }

    alloc = fuzz_arena_init();

    rounds = 1 + (data[0] & 3);

    target = fuzz_dup(data + 1, size - 1);

    rc = eg_uri_normalize(target, rounds, alloc, &path, &query);

    FUZZ_CHECK(rc == 0 || rc == -1, "eg_uri_normalize returned %d", rc);
    check_path(path, target.len);

    FUZZ_CHECK(query.data != NULL, "no query");
    FUZZ_CHECK(query.len <= target.len, "query of %zu bytes from %zu",
               query.len, target.len);
    (void) fuzz_touch(query);

    /* without a query pointer, the path is the same */
    (void) eg_uri_normalize(target, rounds, alloc, &p2, NULL);
    FUZZ_CHECK(p2.len == path.len && memcmp(p2.data, path.data, path.len) == 0,
               "path differs when query is NULL");

    /* the fast path against the full one */

    if (target.len && target.data[0] == '/') {
        int             rc2;
        eg_str_t        t2, path2, query2;
        unsigned char  *t;

        t = fuzz_arena_alloc(&fuzz_arena, target.len + 2);
        t[0] = '/';
        t[1] = '.';
        memcpy(t + 2, target.data, target.len);
        t2.data = t;
        t2.len = target.len + 2;

        rc2 = eg_uri_normalize(t2, rounds, alloc, &path2, &query2);

        FUZZ_CHECK(rc2 == rc && path2.len == path.len
                   && memcmp(path2.data, path.data, path.len) == 0
                   && query2.len == query.len
                   && memcmp(query2.data, query.data, query.len) == 0,
                   "\"%.*s\" -> \"%.*s\" (rc %d, fast path: %d) but "
                   "\"/.\" + it -> \"%.*s\" (rc %d)",
                   (int) target.len, target.data, (int) path.len, path.data,
                   rc, eg_path_plain(target), (int) path2.len, path2.data,
                   rc2);
    }

    check_plain(target);
    check_scan(target);
    check_decode(target, rounds, (data[0] >> 2) & 1, alloc);

    fuzz_arena_reset();
    return 0;
}
