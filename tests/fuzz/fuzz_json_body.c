/*
 * fuzz_json_body: eg_json_scan(), the request-body JSON scanner.
 *
 * Input: one byte (how many values to take before the callback asks the
 * scan to stop; 0: never), then the body, copied to a heap buffer of its
 * exact size.
 *
 * Invariants:
 *   - every key and value the callback gets is readable over its whole
 *     length (ASan), non-NULL, and no longer than the body could decode
 *     to (UTF-16 bodies become at most 3/2 of their size, plus a little)
 *   - the scan returns 0 when the callback never stops it; when the
 *     callback returns R at its Nth call, the scan returns R after exactly
 *     N calls
 *   - the same body scanned twice gives the same pairs
 *   - for a body that is strict JSON (json_check.h) nested at most 60
 *     deep, the pairs are exactly those of a reference walk: every string
 *     value in document order, with the name of the member that holds it
 *     (values in arrays take the member holding the array; values
 *     outside any object an empty name), escapes decoded
 */

#include "fuzz_common.h"
#include "json_check.h"


#define FUZZ_REF_MAX_DEPTH  60


typedef struct {
    eg_str_t              key;
    eg_str_t              value;
} pair_t;

typedef struct {
    size_t                bound;      /* longest possible key or value */
    size_t                calls;
    size_t                stop_at;    /* 0: never */
    int                   stop_rc;
    pair_t               *pairs;      /* recorded, when not NULL */
    size_t                npairs;
    size_t                nalloc;
} scan_t;


static int
scan_cb(void *data, eg_str_t key, eg_str_t value)
{
    scan_t  *sc = data;
    pair_t  *p;

    sc->calls++;

    FUZZ_CHECK(key.data != NULL, "NULL key");
    FUZZ_CHECK(value.data != NULL, "NULL value");
    FUZZ_CHECK(key.len <= sc->bound, "key of %zu bytes, bound %zu", key.len,
               sc->bound);
    FUZZ_CHECK(value.len <= sc->bound, "value of %zu bytes, bound %zu",
               value.len, sc->bound);

    (void) fuzz_touch(key);
    (void) fuzz_touch(value);

    if (sc->pairs) {
        if (sc->npairs == sc->nalloc) {
            sc->nalloc *= 2;
            p = fuzz_arena_alloc(&fuzz_arena, sc->nalloc * sizeof(pair_t));
            memcpy(p, sc->pairs, sc->npairs * sizeof(pair_t));
            sc->pairs = p;
        }

        /* copies: the next scan reuses nothing, but be safe */
        sc->pairs[sc->npairs].key = fuzz_dup(key.data, key.len);
        sc->pairs[sc->npairs].value = fuzz_dup(value.data, value.len);
        sc->npairs++;
    }

    if (sc->stop_at && sc->calls == sc->stop_at) {
        return sc->stop_rc;
    }

    return 0;
}


/* the reference walk over text that json_check() accepted */

typedef struct {
    const unsigned char  *s;
    size_t                len;
    size_t                pos;
    unsigned              depth;
    unsigned              max_depth;
    pair_t               *pairs;
    size_t                npairs;
    size_t                nalloc;
} ref_t;


static void
ref_ws(ref_t *r)
{
    while (r->pos < r->len
           && (r->s[r->pos] == ' ' || r->s[r->pos] == '\t'
               || r->s[r->pos] == '\n' || r->s[r->pos] == '\r'))
    {
        r->pos++;
    }
}


static eg_str_t
ref_string(ref_t *r)
{
    size_t          start, outlen;
    eg_str_t        s;
    unsigned char  *out;

    start = ++r->pos;

    while (r->s[r->pos] != '"') {
        r->pos += (r->s[r->pos] == '\\') ? 2 : 1;
    }

    out = fuzz_arena_alloc(&fuzz_arena, r->pos - start);
    if (json_string_decode(r->s + start, r->pos - start, out, &outlen) != 0) {
        abort();                     /* json_check() accepted it */
    }

    r->pos++;
    s.data = out;
    s.len = outlen;
    return s;
}


static void
ref_emit(ref_t *r, eg_str_t key, eg_str_t value)
{
    pair_t  *p;

    if (r->npairs == r->nalloc) {
        r->nalloc = r->nalloc ? r->nalloc * 2 : 16;
        p = fuzz_arena_alloc(&fuzz_arena, r->nalloc * sizeof(pair_t));
        if (r->npairs) {
            memcpy(p, r->pairs, r->npairs * sizeof(pair_t));
        }
        r->pairs = p;
    }

    r->pairs[r->npairs].key = key;
    r->pairs[r->npairs].value = value;
    r->npairs++;
}


static void
ref_value(ref_t *r, eg_str_t key)
{
    unsigned char  c;
    eg_str_t       name;

    ref_ws(r);
    c = r->s[r->pos];

    if (c == '"') {
        ref_emit(r, key, ref_string(r));
        return;
    }

    if (c == '{' || c == '[') {
        r->pos++;
        if (++r->depth > r->max_depth) {
            r->max_depth = r->depth;
        }

        for ( ;; ) {
            ref_ws(r);

            if (r->s[r->pos] == '}' || r->s[r->pos] == ']') {
                r->pos++;
                break;
            }

            if (r->s[r->pos] == ',') {
                r->pos++;
                continue;
            }

            if (c == '{') {
                name = ref_string(r);
                ref_ws(r);
                r->pos++;                          /* ':' */
                ref_value(r, name);

            } else {
                ref_value(r, key);
            }
        }

        r->depth--;
        return;
    }

    /* number, true, false, null */
    while (r->pos < r->len && r->s[r->pos] != ',' && r->s[r->pos] != '}'
           && r->s[r->pos] != ']' && r->s[r->pos] != ' '
           && r->s[r->pos] != '\t' && r->s[r->pos] != '\n'
           && r->s[r->pos] != '\r')
    {
        r->pos++;
    }
}


static int
same_bytes(eg_str_t a, eg_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                rc;
    size_t             i;
    eg_str_t           body, empty;
    scan_t             sc, sc2;
    ref_t              ref;
    const eg_alloc_t  *alloc;

    if (size < 1) {
        return 0;
    }

    alloc = fuzz_arena_init();
    body = fuzz_dup(data + 1, size - 1);

    /* scan 1: every pair, recorded */

    memset(&sc, 0, sizeof(scan_t));
    sc.bound = body.len / 2 * 3 + 4;
    sc.nalloc = 16;
    sc.pairs = fuzz_arena_alloc(&fuzz_arena, sc.nalloc * sizeof(pair_t));

    rc = eg_json_scan(body, alloc, scan_cb, &sc);
    FUZZ_CHECK(rc == 0, "scan returned %d, the callback never stopped it",
               rc);

    /* scan 2: the same pairs again */

    memset(&sc2, 0, sizeof(scan_t));
    sc2.bound = sc.bound;
    sc2.nalloc = 16;
    sc2.pairs = fuzz_arena_alloc(&fuzz_arena, sc2.nalloc * sizeof(pair_t));

    rc = eg_json_scan(body, alloc, scan_cb, &sc2);
    FUZZ_CHECK(rc == 0 && sc2.npairs == sc.npairs, "second scan differs");

    for (i = 0; i < sc.npairs; i++) {
        FUZZ_CHECK(same_bytes(sc.pairs[i].key, sc2.pairs[i].key)
                   && same_bytes(sc.pairs[i].value, sc2.pairs[i].value),
                   "second scan differs at pair %zu", i);
    }

    /* scan 3: stopped early */

    if (data[0] && sc.npairs) {
        memset(&sc2, 0, sizeof(scan_t));
        sc2.bound = sc.bound;
        sc2.stop_at = 1 + (data[0] - 1) % sc.npairs;
        sc2.stop_rc = 1 + data[0];

        rc = eg_json_scan(body, alloc, scan_cb, &sc2);
        FUZZ_CHECK(rc == sc2.stop_rc && sc2.calls == sc2.stop_at,
                   "stop at call %zu with %d: scan returned %d after %zu "
                   "calls", sc2.stop_at, sc2.stop_rc, rc, sc2.calls);
    }

    /* strict JSON: the reference walk */

    if (json_check(body.data, body.len, NULL, 0)) {
        memset(&ref, 0, sizeof(ref_t));
        ref.s = body.data;
        ref.len = body.len;
        empty.data = (const unsigned char *) "";
        empty.len = 0;

        ref_value(&ref, empty);

        if (ref.max_depth <= FUZZ_REF_MAX_DEPTH) {
            FUZZ_CHECK(ref.npairs == sc.npairs, "%zu string values, the "
                       "reference finds %zu", sc.npairs, ref.npairs);

            for (i = 0; i < sc.npairs; i++) {
                FUZZ_CHECK(same_bytes(sc.pairs[i].key, ref.pairs[i].key)
                           && same_bytes(sc.pairs[i].value,
                                         ref.pairs[i].value),
                           "pair %zu: \"%.*s\": \"%.*s\", the reference says "
                           "\"%.*s\": \"%.*s\"", i,
                           (int) sc.pairs[i].key.len, sc.pairs[i].key.data,
                           (int) sc.pairs[i].value.len,
                           sc.pairs[i].value.data,
                           (int) ref.pairs[i].key.len, ref.pairs[i].key.data,
                           (int) ref.pairs[i].value.len,
                           ref.pairs[i].value.data);
            }
        }
    }

    fuzz_arena_reset();
    return 0;
}
