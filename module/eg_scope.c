/*
 * exchange_guard: which rules can apply to a request, by the first segment
 * of its normalized path.  Built once per rule file load.
 */

#include <stdlib.h>
#include <string.h>

#include "eg_internal.h"


#define EG_SCOPE_MAX_SEGS  32


typedef struct {
    eg_str_t              seg;       /* lower case */
    unsigned              exact;     /* else the segment starts with it */
    uint64_t             *bits;      /* the rules scoped to it */
} eg_scope_entry_t;

struct eg_scope_s {
    size_t                nwords;
    uint64_t             *global;    /* rules with no path scope */
    eg_scope_entry_t     *entries;
    size_t                nentries;
    unsigned char        *mem;
};


static size_t eg_rule_segments(const eg_rule_t *r, eg_str_t *segs,
    unsigned *exact);
static size_t eg_literal_segments(const eg_cond_t *c, eg_str_t *segs,
    unsigned *exact);
static size_t eg_regex_segments(eg_str_t re, eg_str_t *segs,
    unsigned *exact);
static int eg_seg_char(unsigned char c);


int
eg_scope_build(eg_ruleset_t *rs)
{
    size_t             i, j, k, n, nwords, nent, total;
    unsigned           exact[EG_SCOPE_MAX_SEGS];
    eg_str_t           segs[EG_SCOPE_MAX_SEGS];
    eg_scope_t        *sc;
    unsigned char     *p;
    eg_scope_entry_t  *e;

    eg_scope_free(rs->scope);
    rs->scope = NULL;

    nwords = (rs->nrules + 63) / 64;
    if (nwords == 0 || nwords > EG_SCOPE_MAX_WORDS) {
        return -1;
    }

    /* at most one entry per (rule, segment) */

    total = 0;
    for (i = 0; i < rs->nrules; i++) {
        total += eg_rule_segments(rs->rules[i], segs, exact);
    }

    sc = calloc(1, sizeof(eg_scope_t));
    if (sc == NULL) {
        return -1;
    }

    sc->mem = calloc(1, (total + 1) * (sizeof(eg_scope_entry_t)
                                       + nwords * sizeof(uint64_t))
                        + nwords * sizeof(uint64_t));
    if (sc->mem == NULL) {
        free(sc);
        return -1;
    }

    p = sc->mem;
    sc->nwords = nwords;
    sc->global = (uint64_t *) p;
    p += nwords * sizeof(uint64_t);
    sc->entries = (eg_scope_entry_t *) p;
    p += (total + 1) * sizeof(eg_scope_entry_t);
    nent = 0;

    for (i = 0; i < rs->nrules; i++) {
        n = eg_rule_segments(rs->rules[i], segs, exact);

        if (n == 0) {
            sc->global[i / 64] |= (uint64_t) 1 << (i % 64);
            continue;
        }

        for (j = 0; j < n; j++) {
            for (k = 0; k < nent; k++) {
                e = &sc->entries[k];
                if (e->exact == exact[j] && eg_str_ieq(e->seg, segs[j])) {
                    break;
                }
            }

            if (k == nent) {
                e = &sc->entries[nent++];
                e->seg = segs[j];
                e->exact = exact[j];
                e->bits = (uint64_t *) p;
                p += nwords * sizeof(uint64_t);
            }

            e->bits[i / 64] |= (uint64_t) 1 << (i % 64);
        }
    }

    sc->nentries = nent;
    rs->scope = sc;
    return 0;
}


void
eg_scope_free(eg_scope_t *scope)
{
    if (scope) {
        free(scope->mem);
        free(scope);
    }
}


/*
 * The rules a request under path may match, as a bit set in load order;
 * returns the number of words, 0 when there is no table (evaluate all).
 */

size_t
eg_scope_select(const eg_ruleset_t *rs, eg_str_t path, uint64_t *bits)
{
    size_t                 i, w;
    eg_str_t               seg, head;
    const unsigned char   *slash;
    const eg_scope_t      *sc = rs->scope;
    const eg_scope_entry_t  *e;

    if (sc == NULL) {
        return 0;
    }

    seg.data = path.len ? path.data + 1 : path.data;
    seg.len = path.len ? path.len - 1 : 0;
    slash = seg.len ? memchr(seg.data, '/', seg.len) : NULL;
    if (slash) {
        seg.len = slash - seg.data;
    }

    memcpy(bits, sc->global, sc->nwords * sizeof(uint64_t));

    for (i = 0; i < sc->nentries; i++) {
        e = &sc->entries[i];

        if (e->exact) {
            if (!eg_ieq_lower(seg, e->seg)) {
                continue;
            }

        } else {
            if (seg.len < e->seg.len) {
                continue;
            }
            head.data = seg.data;
            head.len = e->seg.len;
            if (!eg_ieq_lower(head, e->seg)) {
                continue;
            }
        }

        for (w = 0; w < sc->nwords; w++) {
            bits[w] |= e->bits[w];
        }
    }

    return sc->nwords;
}


/* the segments of the rule's first positive path condition that has some */

static size_t
eg_rule_segments(const eg_rule_t *r, eg_str_t *segs, unsigned *exact)
{
    size_t            i, n;
    const eg_cond_t  *c;

    for (i = 0; i < r->nconds; i++) {
        c = &r->conds[i];

        if (c->field != EG_F_PATH || c->negate) {
            continue;
        }

        switch (c->op) {
        case EG_OP_PREFIX:
        case EG_OP_IS:
            n = eg_literal_segments(c, segs, exact);
            break;
        case EG_OP_REGEX:
            n = eg_regex_segments(c->src, segs, exact);
            break;
        default:
            n = 0;
        }

        if (n) {
            return n;
        }
    }

    return 0;
}


/* "path prefix /owa/auth/ /ecp/": args are lower case already */

static size_t
eg_literal_segments(const eg_cond_t *c, eg_str_t *segs, unsigned *exact)
{
    size_t                i;
    eg_str_t              a;
    const unsigned char  *slash;

    if (c->nargs > EG_SCOPE_MAX_SEGS) {
        return 0;
    }

    for (i = 0; i < c->nargs; i++) {
        a = c->args[i];

        if (a.len < 2 || a.data[0] != '/') {
            return 0;           /* "/" or a relative value: no scope */
        }

        segs[i].data = a.data + 1;
        slash = memchr(a.data + 1, '/', a.len - 1);

        if (slash) {
            segs[i].len = slash - segs[i].data;
            exact[i] = 1;

        } else {
            segs[i].len = a.len - 1;
            exact[i] = (c->op == EG_OP_IS);
        }

        if (segs[i].len == 0) {
            return 0;
        }
    }

    return c->nargs;
}


/*
 * '^/word/...', '^/word(?:/|$)', '^/(?:a|b|c)/...', '^/(?:a|b)(?:/|$)':
 * literal segments the regex anchors at the start; anything fancier gives
 * no scope.  Segments point into the rule's copy of the regex, which is
 * lowered in place (the regex itself is compiled caseless already).
 */

static size_t
eg_regex_segments(eg_str_t re, eg_str_t *segs, unsigned *exact)
{
    size_t          n, i;
    unsigned char  *s, *end, *start;

    if (re.len < 3 || re.data[0] != '^' || re.data[1] != '/') {
        return 0;
    }

    s = (unsigned char *) re.data + 2;
    end = (unsigned char *) re.data + re.len;
    n = 0;

    if (end - s > 3 && memcmp(s, "(?:", 3) == 0) {
        s += 3;

        for ( ;; ) {
            start = s;
            while (s < end && eg_seg_char(*s)) {
                s++;
            }

            if (s == start || s == end || n == EG_SCOPE_MAX_SEGS) {
                return 0;
            }

            segs[n].data = start;
            segs[n].len = s - start;
            exact[n++] = 1;

            if (*s == ')') {
                s++;
                break;
            }

            if (*s != '|') {
                return 0;
            }

            s++;
        }

    } else {
        start = s;
        while (s < end && eg_seg_char(*s)) {
            s++;
        }

        if (s == start) {
            return 0;
        }

        segs[0].data = start;
        segs[0].len = s - start;
        exact[0] = 1;
        n = 1;
    }

    /* the segment must end there */

    if (!((s < end && *s == '/')
          || (end - s >= 7 && memcmp(s, "(?:/|$)", 7) == 0)))
    {
        return 0;
    }

    for (i = 0; i < n; i++) {
        for (s = (unsigned char *) segs[i].data;
             s < segs[i].data + segs[i].len; s++)
        {
            *s = eg_lower(*s);
        }
    }

    return n;
}


static int
eg_seg_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_' || c == '-';
}
