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
    uint64_t             *notes;     /* the "note" rules */
    eg_scope_entry_t     *entries;
    size_t                nentries;
    uint32_t              bychar[256];   /* entries by first byte */
    uint32_t              bylen[64];     /* exact entries by length */
    uint32_t              prefixes;      /* the entries that are not */
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
                        + 2 * nwords * sizeof(uint64_t));
    if (sc->mem == NULL) {
        free(sc);
        return -1;
    }

    p = sc->mem;
    sc->nwords = nwords;
    sc->global = (uint64_t *) p;
    p += nwords * sizeof(uint64_t);
    sc->notes = (uint64_t *) p;
    p += nwords * sizeof(uint64_t);
    sc->entries = (eg_scope_entry_t *) p;
    p += (total + 1) * sizeof(eg_scope_entry_t);
    nent = 0;

    for (i = 0; i < rs->nrules; i++) {
        if (rs->rules[i]->action == EG_NOTE) {
            sc->notes[i / 64] |= (uint64_t) 1 << (i % 64);
        }

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

    /* a request's segment is compared only with entries that start with
       its first byte (segments are lower case and never empty) */

    for (k = 0; k < nent && nent <= 32; k++) {
        e = &sc->entries[k];
        j = e->seg.data[0];
        sc->bychar[j] |= (uint32_t) 1 << k;
        if (j >= 'a' && j <= 'z') {
            sc->bychar[j - 0x20] |= (uint32_t) 1 << k;
        }

        /* an exact entry of 64 bytes or more is compared at any length */
        if (!e->exact || e->seg.len >= 64) {
            sc->prefixes |= (uint32_t) 1 << k;

        } else {
            sc->bylen[e->seg.len] |= (uint32_t) 1 << k;
        }
    }

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
eg_scope_select(const eg_ruleset_t *rs, eg_str_t path, uint64_t *bits,
    const uint64_t **notes)
{
    size_t                 i, w;
    uint32_t               m;
    eg_str_t               seg, head;
    const unsigned char   *slash;
    const eg_scope_t      *sc = rs->scope;
    const eg_scope_entry_t  *e;

    if (sc == NULL) {
        return 0;
    }

    *notes = sc->notes;

    seg.data = path.len ? path.data + 1 : path.data;
    seg.len = path.len ? path.len - 1 : 0;
    slash = seg.len ? memchr(seg.data, '/', seg.len) : NULL;
    if (slash) {
        seg.len = slash - seg.data;
    }

    for (w = 0; w < sc->nwords; w++) {
        bits[w] = sc->global[w];
    }

    if (seg.len == 0) {
        return sc->nwords;          /* no entry has an empty segment */
    }

    /* the candidates: entries with the segment's first byte and, unless
       they are prefixes, its length; all of them past 32 entries */

    if (sc->nentries <= 32) {
        m = sc->bychar[seg.data[0]]
            & (sc->prefixes | (seg.len < 64 ? sc->bylen[seg.len] : 0));

    } else {
        m = 0;
    }

    for (i = 0; sc->nentries <= 32 ? m != 0 : i < sc->nentries; i++) {
        if (sc->nentries <= 32) {
            i = eg_ctz32(m);
            m &= m - 1;
        }

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


/*
 * The evaluation plan, after every load: header slots, what each rule
 * needs, and which regex conditions ask the same question.  It cannot
 * fail: past EG_HDR_SLOTS names or EG_MEMO_MAX questions the rest are
 * evaluated the plain way.
 */

static int eg_plan_slot(eg_ruleset_t *rs, eg_str_t lname);
static void eg_plan_edge(eg_cond_t *c);
static void eg_plan_byedge(eg_ruleset_t *rs, eg_cond_t *c);
static void eg_plan_needs(eg_ruleset_t *rs, eg_rule_t *r, const eg_cond_t *c);
static void eg_plan_probes(eg_ruleset_t *rs, eg_rule_t *r);
static void eg_plan_probe_method(eg_ruleset_t *rs, eg_rule_t *r,
    const eg_cond_t *c);
static void eg_plan_probe_anchor(eg_ruleset_t *rs, eg_rule_t *r,
    const eg_cond_t *c);
static void eg_plan_probe_bytes(eg_rule_t *r, const eg_cond_t *c);
static unsigned eg_byte_weight(unsigned char b);
static void eg_set_either_case(uint8_t *set, unsigned char b);

void
eg_plan_build(eg_ruleset_t *rs)
{
    int            s, single;
    size_t         i, j, k, l;
    eg_rule_t     *r;
    eg_cond_t     *c, *d;
    unsigned char  b;
    const eg_str_t        *n;
    static const eg_str_t  cookie = eg_string("cookie");
    static const eg_str_t  ctype = eg_string("content-type");

    /* a cookie whose name starts with a printable byte no wanted name
       starts with, or whose first three bytes start none, is counted
       without looking for its '=' */

    for (i = 0; i < 256; i++) {
        rs->cookie_skip[i] = (i > 0x20 && i < 0x7f && i != '=' && i != ';');
    }

    rs->ncookie_pre = rs->ncookie_names <= 8 ? rs->ncookie_names : 0;

    for (i = 0; i < rs->ncookie_names; i++) {
        n = &rs->cookie_lnames[i];
        b = n->data[0];
        rs->cookie_skip[b] = 0;
        rs->cookie_skip[eg_upper(b)] = 0;

        if (n->len < 3) {
            rs->ncookie_pre = 0;

        } else if (i < 8) {
            rs->cookie_pre[i] = n->data[0] | (n->data[1] << 8)
                                | ((uint32_t) n->data[2] << 16);
        }
    }

    rs->nhdr = 0;
    rs->hdr_overflow = 0;
    rs->hdr_lens = 0;
    memset(rs->hdr_bylen, -1, sizeof(rs->hdr_bylen));
    rs->slot_cookie = -1;
    rs->slot_ctype = -1;
    rs->nmemo = 0;
    rs->nmethods = 0;
    rs->nanchors = 0;

    for (i = 0; i < rs->nrules; i++) {
        r = rs->rules[i];
        r->need = 0;
        r->need_cookies = 0;
        r->min_path = 0;
        r->min_query = 0;

        for (j = 0; j < r->nconds; j++) {
            c = &r->conds[j];
            c->slot = -1;
            c->memo = -1;
            s = -1;

            eg_plan_edge(c);
            eg_plan_byedge(rs, c);
            eg_plan_test(c);

            switch (c->field) {

            case EG_F_HEADER:
                s = c->slot = eg_plan_slot(rs, c->key);
                break;

            case EG_F_COOKIE:
            case EG_F_COOKIE_NAMES:
            case EG_F_COOKIES:
                s = rs->slot_cookie = eg_plan_slot(rs, cookie);
                break;

            case EG_F_PARAM:
                rs->slot_cookie = eg_plan_slot(rs, cookie);
                /* fall through */

            case EG_F_FORM:
                rs->slot_ctype = eg_plan_slot(rs, ctype);
                break;

            default:
                break;
            }

            /* a positive line on a header holds only if the header is
               there: without it the rule cannot match */

            if (s >= 0 && !c->negate) {
                r->need |= (uint32_t) 1 << s;
            }

            if (!c->negate) {
                eg_plan_needs(rs, r, c);
            }

            /* one value per request: a regex on it gives one answer */

            single = (c->field == EG_F_METHOD || c->field == EG_F_PATH
                      || c->field == EG_F_QUERY || c->field == EG_F_URI
                      || c->field == EG_F_COOKIES
                      || c->field == EG_F_URI_DECODED);

            if (c->op != EG_OP_REGEX || !single) {
                continue;
            }

            for (k = 0; k <= i && c->memo < 0; k++) {
                for (l = 0; l < rs->rules[k]->nconds; l++) {
                    d = &rs->rules[k]->conds[l];

                    if (d == c) {
                        break;
                    }

                    if (d->memo >= 0 && d->field == c->field
                        && d->src.len == c->src.len
                        && memcmp(d->src.data, c->src.data, c->src.len) == 0)
                    {
                        c->memo = d->memo;
                        break;
                    }
                }
            }

            if (c->memo < 0 && rs->nmemo < EG_MEMO_MAX) {
                c->memo = rs->nmemo++;
            }
        }

        eg_plan_probes(rs, r);
    }
}


/*
 * The probes of a rule (eg_internal.h), from its lines in order: the
 * method of "method is" and "method not is"; "client untrusted" without
 * trusted networks; a byte or two at fixed places of "is", "prefix" and
 * "suffix" on the method, path, query, uri or a header; an anchor byte of
 * "contains" on the path, query or uri.  Each is a necessary condition:
 * a request that fails it fails the line.
 */

static void
eg_plan_probes(eg_ruleset_t *rs, eg_rule_t *r)
{
    size_t      j;
    eg_cond_t  *c;

    r->nprobes = 0;

    for (j = 0; j < r->nconds && r->nprobes < EG_MAX_PROBES; j++) {
        c = &r->conds[j];

        if (c->field == EG_F_METHOD && c->op == EG_OP_IS) {
            eg_plan_probe_method(rs, r, c);
            continue;
        }

        if (c->negate) {
            continue;
        }

        if (c->op == EG_OP_UNTRUSTED) {
            memset(&r->probes[r->nprobes], 0, sizeof(eg_probe_t));
            r->probes[r->nprobes++].kind = EG_PROBE_TRUSTED;
            continue;
        }

        if (c->field == EG_F_HEADER ? c->slot < 0
            : c->field != EG_F_METHOD && c->field != EG_F_PATH
              && c->field != EG_F_QUERY && c->field != EG_F_URI)
        {
            continue;
        }

        if (c->op == EG_OP_CONTAINS) {
            if (c->field != EG_F_HEADER) {
                eg_plan_probe_anchor(rs, r, c);
            }

        } else if (c->has_edge) {
            eg_plan_probe_bytes(r, c);
        }
    }
}


/* the method as one of the rule set's method names: exact, either way */

static void
eg_plan_probe_method(eg_ruleset_t *rs, eg_rule_t *r, const eg_cond_t *c)
{
    size_t       i, k;
    uint64_t     mask;
    eg_probe_t  *p;

    mask = 0;

    for (i = 0; i < c->nargs; i++) {
        for (k = 0; k < rs->nmethods; k++) {
            if (rs->methods[k].len == c->args[i].len
                && memcmp(rs->methods[k].data, c->args[i].data,
                          c->args[i].len) == 0)
            {
                break;
            }
        }

        if (k == rs->nmethods) {
            if (k == sizeof(rs->methods) / sizeof(rs->methods[0])) {
                return;
            }
            rs->methods[k] = c->args[i];
            rs->method_words[k] = eg_word(c->args[i]);
            rs->nmethods++;
        }

        mask |= (uint64_t) 1 << k;
    }

    p = &r->probes[r->nprobes++];
    memset(p, 0, sizeof(eg_probe_t));
    p->kind = EG_PROBE_METHOD;
    p->negate = c->negate != 0;
    p->mask = mask;
}


/* "contains": a byte of each argument that only itself matches (not a
   letter), the rarest; none when an argument is all letters */

static void
eg_plan_probe_anchor(eg_ruleset_t *rs, eg_rule_t *r, const eg_cond_t *c)
{
    size_t         i, j, k;
    uint64_t       mask;
    unsigned char  b, best;
    eg_probe_t    *p;

    mask = 0;

    for (i = 0; i < c->nargs; i++) {
        best = 0;

        for (j = 0; j < c->args[i].len; j++) {
            b = c->args[i].data[j];

            if ((b < 'a' || b > 'z')
                && (best == 0 || eg_byte_weight(b) < eg_byte_weight(best)))
            {
                best = b;
            }
        }

        if (best == 0) {
            return;
        }

        for (k = 0; k < rs->nanchors; k++) {
            if (rs->anchor_field[k] == c->field && rs->anchor_byte[k] == best)
            {
                break;
            }
        }

        if (k == rs->nanchors) {
            if (k == sizeof(rs->anchor_byte)) {
                return;
            }
            rs->anchor_field[k] = (uint8_t) c->field;
            rs->anchor_byte[k] = best;
            rs->nanchors++;
        }

        mask |= (uint64_t) 1 << k;
    }

    p = &r->probes[r->nprobes++];
    memset(p, 0, sizeof(eg_probe_t));
    p->kind = EG_PROBE_ANCHOR;
    p->field = (uint8_t) c->field;
    p->mask = mask;
}


/*
 * "is", "prefix", "suffix": every argument is at least n bytes long, so
 * the value has a byte at each of the first n places (suffix: last n),
 * and it is one of the arguments' bytes there.  The two places whose
 * bytes are rarest, and the later one on a tie: the first path segment
 * has chosen the rules already.
 */

static void
eg_plan_probe_bytes(eg_rule_t *r, const eg_cond_t *c)
{
    int            tail;
    size_t         i, k, pos, n, min;
    unsigned       w, weight[2];
    uint32_t       best[2];
    unsigned char  b;
    uint8_t        seen[32];
    eg_probe_t    *p;

    tail = (c->op == EG_OP_SUFFIX);
    min = (size_t) -1;

    for (i = 0; i < c->nargs; i++) {
        min = c->args[i].len < min ? c->args[i].len : min;
    }

    n = 0;
    weight[0] = weight[1] = (unsigned) -1;
    best[0] = best[1] = 0;

    for (pos = 0; pos < min && pos < 256; pos++) {
        memset(seen, 0, sizeof(seen));
        w = 0;

        for (i = 0; i < c->nargs; i++) {
            b = c->args[i].data[tail ? c->args[i].len - 1 - pos : pos];

            if (!(seen[b >> 3] & (1 << (b & 7)))) {
                seen[b >> 3] |= (uint8_t) (1 << (b & 7));
                w += eg_byte_weight(b) * ((b >= 'a' && b <= 'z') ? 2 : 1);
            }
        }

        /* a place most values pass is no probe */

        if (w > 40) {
            continue;
        }

        if (w <= weight[0]) {
            weight[1] = weight[0];
            best[1] = best[0];
            weight[0] = w;
            best[0] = (uint32_t) pos;

        } else if (w <= weight[1]) {
            weight[1] = w;
            best[1] = (uint32_t) pos;
        }

        n++;
    }

    for (k = 0; k < 2 && k < n && r->nprobes < EG_MAX_PROBES; k++) {
        p = &r->probes[r->nprobes++];
        memset(p, 0, sizeof(eg_probe_t));
        p->kind = EG_PROBE_BYTE;
        p->field = (uint8_t) c->field;
        p->tail = (uint8_t) tail;
        p->slot = c->slot;
        p->pos = best[k];

        for (i = 0; i < c->nargs; i++) {
            b = c->args[i].data[tail ? c->args[i].len - 1 - best[k]
                                     : best[k]];
            eg_set_either_case(p->set, b);
        }
    }
}


/* a byte (lower case) and its upper case in a set of 256 bits */

static void
eg_set_either_case(uint8_t *set, unsigned char b)
{
    set[b >> 3] |= (uint8_t) (1 << (b & 7));
    b = eg_upper(b);
    set[b >> 3] |= (uint8_t) (1 << (b & 7));
}


/* about how often a byte is seen in a path or header value */

static unsigned
eg_byte_weight(unsigned char b)
{
    switch (b) {
    case '/':
        return 16;
    case '.':
    case '-':
    case '=':
    case '&':
    case ' ':
        return 6;
    default:
        return 1;
    }
}


/*
 * What a positive line demands of the request: a cookie of a wanted name
 * ("cookie:X-BEResource backend"), or a path or query of some length
 * ("query contains X-Rps-CAT" needs nine bytes).  A request without it is
 * not evaluated against the rule at all.
 */

static void
eg_plan_needs(eg_ruleset_t *rs, eg_rule_t *r, const eg_cond_t *c)
{
    size_t  j, min;

    if (c->field == EG_F_COOKIE) {
        for (j = 0; j < rs->ncookie_names && j < 32; j++) {
            if (eg_ieq_lower(c->key, rs->cookie_lnames[j])) {
                r->need_cookies |= (uint32_t) 1 << j;
                break;
            }
        }
        return;
    }

    if (c->field != EG_F_PATH && c->field != EG_F_QUERY) {
        return;
    }

    switch (c->op) {

    case EG_OP_REGEX:
        min = c->minlen;
        break;

    case EG_OP_IS:
    case EG_OP_PREFIX:
    case EG_OP_SUFFIX:
    case EG_OP_CONTAINS:
        min = (size_t) -1;
        for (j = 0; j < c->nargs; j++) {
            if (c->args[j].len < min) {
                min = c->args[j].len;
            }
        }
        if (min == (size_t) -1) {
            min = 0;
        }
        break;

    default:
        min = 0;
    }

    if (c->field == EG_F_PATH) {
        r->min_path = min > r->min_path ? min : r->min_path;

    } else {
        r->min_query = min > r->min_query ? min : r->min_query;
    }
}


static void
eg_plan_edge(eg_cond_t *c)
{
    size_t         i;
    unsigned char  b;

    c->has_edge = 0;
    c->arg_lens = 0;
    memset(c->edge, 0, sizeof(c->edge));

    if ((c->op != EG_OP_IS && c->op != EG_OP_PREFIX && c->op != EG_OP_SUFFIX)
        || c->nargs == 0)
    {
        return;
    }

    for (i = 0; i < c->nargs; i++) {
        if (c->args[i].len == 0) {
            return;             /* an empty argument: every value */
        }

        /* arguments are lower case; the value may be either */

        b = c->op == EG_OP_SUFFIX ? c->args[i].data[c->args[i].len - 1]
                                  : c->args[i].data[0];
        eg_set_either_case(c->edge, b);

        c->arg_lens |= (uint64_t) 1 << (c->args[i].len < 63
                                        ? c->args[i].len : 63);
    }

    c->has_edge = 1;
}


/* the arguments of a long prefix or suffix list by their edge byte: a
   value is compared with the few that can match, not with all */

static void
eg_plan_byedge(eg_ruleset_t *rs, eg_cond_t *c)
{
    size_t         i;
    unsigned char  b;

    if (!c->has_edge || c->op == EG_OP_IS || c->nargs <= 8 || c->nargs > 32) {
        c->byedge = NULL;
        return;
    }

    /* the arguments do not change from one load to the next */

    if (c->byedge == NULL) {
        c->byedge = eg_mem_alloc(&rs->mem, 256 * sizeof(uint32_t));
        if (c->byedge == NULL) {
            return;
        }
    }

    memset(c->byedge, 0, 256 * sizeof(uint32_t));

    for (i = 0; i < c->nargs; i++) {
        b = c->args[i].data[c->op == EG_OP_SUFFIX ? c->args[i].len - 1 : 0];
        c->byedge[b] |= (uint32_t) 1 << i;
    }
}


static int
eg_plan_slot(eg_ruleset_t *rs, eg_str_t lname)
{
    size_t  k;

    for (k = 0; k < rs->nhdr; k++) {
        if (eg_ieq_lower(lname, rs->hdr_names[k])) {
            return (int) k;
        }
    }

    if (rs->nhdr == EG_HDR_SLOTS) {
        rs->hdr_overflow = 1;
        return -1;
    }

    /* slots of one length are chained; names of 64 bytes or more share
       the chain of length 0 (no header name is empty) */

    k = lname.len < 64 ? lname.len : 0;
    rs->hdr_names[rs->nhdr] = lname;
    rs->hdr_lens |= (uint64_t) 1 << k;
    rs->hdr_next[rs->nhdr] = rs->hdr_bylen[k];
    rs->hdr_bylen[k] = (int8_t) rs->nhdr;

    return (int) rs->nhdr++;
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


size_t
eg_ruleset_header_names(const eg_ruleset_t *rs, const eg_str_t **names)
{
    *names = rs->hdr_names;

    return rs->hdr_overflow ? (size_t) -1 : rs->nhdr;
}
