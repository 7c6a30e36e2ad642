/*
 * exchange_guard fuzzers: what every harness shares.
 *
 *   FUZZ_CHECK(cond, fmt, ...)   an invariant: print and abort() when it
 *                                fails, so libFuzzer saves the input
 *   fuzz_arena                   the engine's eg_alloc_t: every allocation
 *                                is a malloc() of its own, exactly the size
 *                                asked, so AddressSanitizer sees a write or
 *                                read one byte past any engine buffer
 *   fuzz_dup(data, len)          an exact-size heap copy of an input slice,
 *                                owned by the arena (same reason)
 *   fuzz_known_bugs_skipped()    1 when EG_FUZZ_SKIP_KNOWN=1: the checks
 *                                then step over engine bugs already saved
 *                                under tests/fuzz/regressions/, to look for
 *                                new ones (see tests/fuzz/README.md)
 *
 * Plain C99 plus the engine API; no libFuzzer header is needed.
 */

#ifndef EG_FUZZ_COMMON_H
#define EG_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eg_engine.h"


#define FUZZ_UNUSED  __attribute__((unused))

#define FUZZ_CHECK(cond, ...)                                                 \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: invariant failed: %s\n  ", __FILE__,     \
                    __LINE__, #cond);                                         \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
            abort();                                                          \
        }                                                                     \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);


/* the arena: a growing array of malloc'ed pointers, freed together */

typedef struct {
    void                **ptrs;
    size_t                n;
    size_t                nalloc;
    size_t                bytes;
    eg_alloc_t            alloc;
} fuzz_arena_t;

static fuzz_arena_t  fuzz_arena FUZZ_UNUSED;


static void *
fuzz_arena_alloc(void *ctx, size_t size)
{
    void          *p, **a;
    fuzz_arena_t  *ar = ctx;

    if (ar->n == ar->nalloc) {
        ar->nalloc = ar->nalloc ? ar->nalloc * 2 : 64;
        a = realloc(ar->ptrs, ar->nalloc * sizeof(void *));
        if (a == NULL) {
            abort();
        }
        ar->ptrs = a;
    }

    /* malloc(0) may return NULL, which the engine reads as failure */
    p = malloc(size ? size : 1);
    if (p == NULL) {
        abort();
    }

    ar->ptrs[ar->n++] = p;
    ar->bytes += size;
    return p;
}


static FUZZ_UNUSED const eg_alloc_t *
fuzz_arena_init(void)
{
    fuzz_arena.alloc.alloc = fuzz_arena_alloc;
    fuzz_arena.alloc.ctx = &fuzz_arena;
    return &fuzz_arena.alloc;
}


static FUZZ_UNUSED void
fuzz_arena_reset(void)
{
    size_t  i;

    for (i = 0; i < fuzz_arena.n; i++) {
        free(fuzz_arena.ptrs[i]);
    }

    fuzz_arena.n = 0;
    fuzz_arena.bytes = 0;
}


/* an exact-size copy of an input slice; never NULL, even for "" */

static FUZZ_UNUSED eg_str_t
fuzz_dup(const uint8_t *data, size_t len)
{
    eg_str_t        s;
    unsigned char  *p;

    p = fuzz_arena_alloc(&fuzz_arena, len);
    if (len) {
        memcpy(p, data, len);
    }

    s.data = p;
    s.len = len;
    return s;
}


static FUZZ_UNUSED eg_str_t
fuzz_cstr(const char *s)
{
    eg_str_t  r;

    r.data = (const unsigned char *) s;
    r.len = strlen(s);
    return r;
}


static FUZZ_UNUSED int
fuzz_known_bugs_skipped(void)
{
    static int  v = -1;
    const char  *e;

    if (v < 0) {
        e = getenv("EG_FUZZ_SKIP_KNOWN");
        v = (e && *e && strcmp(e, "0") != 0);
    }

    return v;
}


/* 1 if the slice [p, p+len) lies within [base, base+blen] */

static FUZZ_UNUSED int
fuzz_within(const unsigned char *p, size_t len, const unsigned char *base,
    size_t blen)
{
    return p >= base && p <= base + blen && len <= (size_t) (base + blen - p);
}


/* memmem(), which needs _GNU_SOURCE before the first #include */

static FUZZ_UNUSED const unsigned char *
fuzz_find(const unsigned char *s, size_t len, const char *what)
{
    size_t  i, n = strlen(what);

    for (i = 0; n <= len && i <= len - n; i++) {
        if (memcmp(s + i, what, n) == 0) {
            return s + i;
        }
    }

    return NULL;
}


/* read every byte, so that ASan checks a pointer/length pair */

static FUZZ_UNUSED unsigned
fuzz_touch(eg_str_t s)
{
    size_t    i;
    unsigned  sum = 0;
    volatile unsigned  sink;

    for (i = 0; i < s.len; i++) {
        sum += s.data[i];
    }

    sink = sum;
    return sink;
}


/*
 * Verdict invariants any evaluation must keep.  Rules act "block", "log"
 * or "note"; a note never decides: the action is the strongest of the
 * other matches, notes are evaluated (and listed after every other match)
 * only for a request that is logged anyway: action log or block, or a
 * limit hit.
 */

static FUZZ_UNUSED void
fuzz_check_verdict(const eg_ruleset_t *rs, const eg_verdict_t *v)
{
    int           note_seen;
    size_t        i, k, n;
    eg_action_e   a, strongest;

    n = eg_ruleset_count(rs);

    FUZZ_CHECK(v->nmatches <= EG_MAX_MATCHES, "nmatches %u", v->nmatches);
    FUZZ_CHECK(v->total >= v->nmatches, "total %u < nmatches %u", v->total,
               v->nmatches);
    FUZZ_CHECK(v->nmatches == (v->total < EG_MAX_MATCHES ? v->total
                                                        : EG_MAX_MATCHES),
               "nmatches %u for total %u", v->nmatches, v->total);
    FUZZ_CHECK(v->total <= n, "total %u > %zu rules", v->total, n);
    FUZZ_CHECK(v->limit <= EG_LIMIT_BODY, "limit %d", (int) v->limit);
    FUZZ_CHECK(v->action == EG_PASS || v->action == EG_LOG
               || v->action == EG_BLOCK, "action %d", (int) v->action);
    FUZZ_CHECK(v->total > 0 || v->action == EG_PASS,
               "action %d without a match", (int) v->action);

    strongest = EG_PASS;
    note_seen = 0;

    for (i = 0; i < v->nmatches; i++) {
        for (k = 0; k < n; k++) {
            if (eg_ruleset_rule(rs, k) == v->matches[i].rule) {
                break;
            }
        }

        FUZZ_CHECK(k < n, "match %zu names a rule not in the set", i);

        a = eg_rule_action(v->matches[i].rule);
        FUZZ_CHECK(a == EG_NOTE || a == EG_LOG || a == EG_BLOCK,
                   "match %zu: rule action %d", i, (int) a);

        if (a == EG_NOTE) {
            note_seen = 1;
            FUZZ_CHECK(v->action >= EG_LOG || v->limit != EG_LIMIT_NONE,
                       "note %.*s listed for a request neither logged nor "
                       "limited", (int) eg_rule_id(v->matches[i].rule).len,
                       eg_rule_id(v->matches[i].rule).data);

        } else {
            FUZZ_CHECK(!note_seen, "match %zu (action %d) listed after a "
                       "note", i, (int) a);
            if (a > strongest) {
                strongest = a;
            }
        }

        FUZZ_CHECK(v->matches[i].field.data != NULL
                   && v->matches[i].field.len > 0,
                   "match %zu has no field", i);
        (void) fuzz_touch(v->matches[i].field);

        FUZZ_CHECK(v->matches[i].value.data != NULL
                   || v->matches[i].value.len == 0,
                   "match %zu: NULL value of length %zu", i,
                   v->matches[i].value.len);
        if (v->matches[i].value.data) {
            (void) fuzz_touch(v->matches[i].value);
        }
    }

    /* all deciding matches are listed when a note is, or when every
       match is; else some may be past EG_MAX_MATCHES */
    if (note_seen || v->total == v->nmatches) {
        FUZZ_CHECK(v->action == strongest, "action %d, strongest deciding "
                   "match %d", (int) v->action, (int) strongest);
    } else {
        FUZZ_CHECK(v->action >= strongest, "action %d, strongest listed "
                   "match %d", (int) v->action, (int) strongest);
    }

    if (v->limit == EG_LIMIT_REGEX) {
        FUZZ_CHECK(v->limit_rule != NULL, "regex limit without its rule");
    }

    if (v->path.data) {
        (void) fuzz_touch(v->path);
        FUZZ_CHECK(v->path.len > 0 && v->path.data[0] == '/',
                   "verdict path \"%.*s\" does not start with '/'",
                   (int) v->path.len, v->path.data);
    }

    if (v->query.data) {
        (void) fuzz_touch(v->query);
    }
}


static FUZZ_UNUSED int
fuzz_same_verdict(const eg_verdict_t *a, const eg_verdict_t *b)
{
    unsigned  i;

    if (a->action != b->action || a->nmatches != b->nmatches
        || a->total != b->total || a->limit != b->limit
        || a->need_body != b->need_body)
    {
        return 0;
    }

    for (i = 0; i < a->nmatches; i++) {
        if (a->matches[i].rule != b->matches[i].rule
            || a->matches[i].value.len != b->matches[i].value.len
            || (a->matches[i].value.len
                && memcmp(a->matches[i].value.data, b->matches[i].value.data,
                          a->matches[i].value.len) != 0))
        {
            return 0;
        }
    }

    return 1;
}


#endif /* EG_FUZZ_COMMON_H */
