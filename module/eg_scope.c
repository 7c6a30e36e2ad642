/*
 * exchange_guard: which rules can apply to a request, by the first segment
 * of its normalized path.  Built once per rule file load.
 */

#include <stdlib.h>
#include <string.h>

#include "eg_internal.h"


#define EG_SCOPE_MAX_SEGS  32
#define EG_GRAM_MIN_RULES  8
#define EG_GRAM_MAX_STRIDE  16


typedef struct {
    eg_str_t              seg;       /* lower case */
    eg_fold_t             fold;      /* seg, eg_fold_make() */
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
    uint32_t              bylast[256];   /* and by last byte */
    uint32_t              prefixes;      /* the entries that are not */

    /* the exact entries by hash (index + 1, open addressing), the others
       in a list: how a request looks past 32 entries, and how the build
       finds an entry again */
    uint32_t             *byhash;
    uint32_t              hash_mask;
    uint32_t             *others;
    size_t                nothers;
    unsigned char        *mem;
};


static size_t eg_rule_segments(const eg_rule_t *r, eg_str_t *segs,
    unsigned *exact);
static void eg_plan_probes_scoped(eg_rule_t *r);
static size_t eg_literal_segments(const eg_cond_t *c, eg_str_t *segs,
    unsigned *exact);
static size_t eg_regex_segments(eg_str_t re, eg_str_t *segs,
    unsigned *exact);
static int eg_seg_char(unsigned char c);
static EG_NOINLINE void eg_scope_many(const eg_scope_t *sc,
    eg_str_t seg, uint64_t *bits);
static EG_INLINE int eg_scope_hit(const eg_scope_entry_t *e, eg_str_t seg);
static eg_scope_entry_t *eg_scope_entry(const eg_scope_t *sc, eg_str_t seg,
    unsigned exact);
static void eg_scope_add(eg_scope_t *sc, size_t k);


int
eg_scope_build(eg_ruleset_t *rs)
{
    size_t             i, j, k, n, nwords, nent, total, tabsize;
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

    for (tabsize = 4; tabsize < 2 * total; tabsize *= 2) { /* void */ }

    sc->mem = calloc(1, (total + 1) * (sizeof(eg_scope_entry_t)
                                       + nwords * sizeof(uint64_t)
                                       + sizeof(uint32_t))
                        + 2 * nwords * sizeof(uint64_t)
                        + tabsize * sizeof(uint32_t));
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

    /* the entries' bits follow; the 32-bit tables come last */

    sc->byhash = (uint32_t *) (p + total * nwords * sizeof(uint64_t));
    sc->hash_mask = (uint32_t) (tabsize - 1);
    sc->others = sc->byhash + tabsize;
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
            e = eg_scope_entry(sc, segs[j], exact[j]);

            if (e == NULL) {
                e = &sc->entries[nent];
                e->seg = segs[j];
                eg_fold_make(e->seg, &e->fold);
                e->exact = exact[j];
                e->bits = (uint64_t *) p;
                p += nwords * sizeof(uint64_t);
                eg_scope_add(sc, nent++);
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

            j = e->seg.data[e->seg.len - 1];
            sc->bylast[j] |= (uint32_t) 1 << k;
            if (j >= 'a' && j <= 'z') {
                sc->bylast[j - 0x20] |= (uint32_t) 1 << k;
            }
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
    size_t                 i;
    uint32_t               m;
    eg_str_t               seg;
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

    eg_bits_copy(bits, sc->global, sc->nwords);

    if (seg.len == 0) {
        return sc->nwords;          /* no entry has an empty segment */
    }

    /* the candidates: entries with the segment's first byte and, unless
       they are prefixes, its length and last byte; past 32 entries, by
       hash */

    if (sc->nentries > 32) {
        eg_scope_many(sc, seg, bits);
        return sc->nwords;
    }

    m = sc->bychar[seg.data[0]]
        & (sc->prefixes
           | (seg.len < 64 ? sc->bylen[seg.len]
                             & sc->bylast[seg.data[seg.len - 1]]
                           : 0));

    while (m) {
        i = eg_ctz32(m);
        m &= m - 1;

        e = &sc->entries[i];

        if (eg_scope_hit(e, seg)) {
            eg_bits_or(bits, e->bits, sc->nwords);
        }
    }

    return sc->nwords;
}


/* the same past 32 entries: the exact entry by hash, then the others */

static EG_NOINLINE void
eg_scope_many(const eg_scope_t *sc, eg_str_t seg, uint64_t *bits)
{
    size_t                  i;
    const eg_scope_entry_t  *e;

    e = eg_scope_entry(sc, seg, 1);

    if (e) {
        eg_bits_or(bits, e->bits, sc->nwords);
    }

    for (i = 0; i < sc->nothers; i++) {
        e = &sc->entries[sc->others[i]];

        if (eg_scope_hit(e, seg)) {
            eg_bits_or(bits, e->bits, sc->nwords);
        }
    }
}


/* the segment is the entry's, or starts with it if it is a prefix */

static EG_INLINE int
eg_scope_hit(const eg_scope_entry_t *e, eg_str_t seg)
{
    if (!e->exact) {
        if (seg.len < e->seg.len) {
            return 0;
        }
        seg.len = e->seg.len;
    }

    return eg_ieq_fold(seg, e->seg, &e->fold);
}


/* the entry of a segment (lower case or not), NULL if there is none */

static eg_scope_entry_t *
eg_scope_entry(const eg_scope_t *sc, eg_str_t seg, unsigned exact)
{
    size_t             i;
    uint32_t           j;
    eg_scope_entry_t  *e;

    if (!exact) {
        for (i = 0; i < sc->nothers; i++) {
            e = &sc->entries[sc->others[i]];
            if (eg_ieq_lower(seg, e->seg)) {
                return e;
            }
        }
        return NULL;
    }

    for (i = eg_hash_lower(seg.data, seg.len) & sc->hash_mask;
         (j = sc->byhash[i]) != 0;
         i = (i + 1) & sc->hash_mask)
    {
        e = &sc->entries[j - 1];

        if (eg_ieq_lower(seg, e->seg)) {
            return e;
        }
    }

    return NULL;
}


/* entry k into the table of exact entries or the list of the others */

static void
eg_scope_add(eg_scope_t *sc, size_t k)
{
    size_t             i;
    eg_scope_entry_t  *e = &sc->entries[k];

    if (!e->exact) {
        sc->others[sc->nothers++] = (uint32_t) k;
        return;
    }

    for (i = eg_hash_lower(e->seg.data, e->seg.len) & sc->hash_mask;
         sc->byhash[i];
         i = (i + 1) & sc->hash_mask)
    {
        /* void */
    }

    sc->byhash[i] = (uint32_t) k + 1;
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
static void eg_plan_folds(eg_ruleset_t *rs, eg_cond_t *c);
static void eg_plan_needs(eg_ruleset_t *rs, eg_rule_t *r, const eg_cond_t *c);
static void eg_plan_probes(eg_ruleset_t *rs, eg_rule_t *r);
static void eg_plan_probe_method(eg_ruleset_t *rs, eg_rule_t *r,
    const eg_cond_t *c);
static void eg_plan_probe_line(eg_ruleset_t *rs, eg_rule_t *r,
    const eg_cond_t *c);
static void eg_plan_probe_param(eg_ruleset_t *rs, eg_rule_t *r);
static void eg_plan_probe_anchor(eg_ruleset_t *rs, eg_rule_t *r,
    const eg_cond_t *c);
static void eg_plan_probe_bytes(eg_rule_t *r, const eg_cond_t *c);
static unsigned eg_byte_weight(unsigned char b);
static void eg_set_either_case(uint8_t *set, unsigned char b);
static void eg_plan_gates(eg_ruleset_t *rs);
static void eg_plan_lack(eg_ruleset_t *rs);
static void eg_plan_lack_bytes(eg_ruleset_t *rs);
static void eg_plan_scan_anchors(eg_ruleset_t *rs);
static uint64_t eg_first_anchor(const eg_ruleset_t *rs, const eg_rule_t *r);
static const eg_probe_t *eg_lack_probe(const eg_rule_t *r);
static void eg_lack_place(eg_lack_byte_t *lb, const eg_probe_t *p);
static int eg_probe_at(const eg_probe_t *p, const eg_lack_byte_t *lb);
static void eg_plan_cookie_tab(eg_ruleset_t *rs);
static void eg_plan_literals(eg_ruleset_t *rs, eg_cond_t *c);
static size_t eg_regex_literals(eg_str_t re, unsigned char *buf,
    eg_str_t *lits, size_t max);
static const unsigned char *eg_regex_skip(const unsigned char *p,
    const unsigned char *end);
static const unsigned char *eg_regex_class(const unsigned char *p,
    const unsigned char *end);

void
eg_plan_build(eg_ruleset_t *rs)
{
    int            s, single, pre_ok;
    size_t         i, j, k, l;
    uint32_t       pre;
    eg_rule_t     *r;
    eg_cond_t     *c, *d;
    unsigned char  b;
    const eg_str_t        *n;
    static const eg_str_t  cookie = eg_string("cookie");
    static const eg_str_t  ctype = eg_string("content-type");

    /* a cookie whose name starts with a printable byte no wanted name
       starts with, or whose first three bytes start none, is counted
       without looking for its '='; the three bytes are compared with
       their 0x20 bits set, which equal bytes of any case keep equal (a
       name it lets through is compared in full) */

    for (i = 0; i < 256; i++) {
        rs->cookie_skip[i] = (i > 0x20 && i < 0x7f && i != '=' && i != ';');
    }

    /* each prefix once: names that share one (x-beresource and
       x-backendoverridecookie) are one test */

    rs->ncookie_pre = 0;
    pre_ok = 1;

    for (i = 0; i < rs->ncookie_names; i++) {
        n = &rs->cookie_lnames[i];
        b = n->data[0];
        rs->cookie_skip[b] = 0;
        rs->cookie_skip[eg_upper(b)] = 0;

        if (n->len < 3) {
            pre_ok = 0;
            continue;
        }

        pre = (n->data[0] | (n->data[1] << 8) | ((uint32_t) n->data[2] << 16))
              | 0x202020;

        for (j = 0; j < rs->ncookie_pre && rs->cookie_pre[j] != pre; j++) {
            /* void */
        }

        if (j == rs->ncookie_pre) {
            if (j == 8) {
                pre_ok = 0;
                continue;
            }

            rs->cookie_pre[rs->ncookie_pre++] = pre;
        }
    }

    if (!pre_ok) {
        rs->ncookie_pre = 0;
    }

    eg_plan_cookie_tab(rs);

    rs->nhdr = 0;
    rs->hdr_overflow = 0;
    memset(rs->hdr_first, -1, sizeof(rs->hdr_first));
    rs->slot_cookie = -1;
    rs->slot_ctype = -1;
    rs->nmemo = 0;
    rs->nmethods = 0;
    rs->method_keys = 0;
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
            eg_plan_folds(rs, c);
            eg_plan_test(c);
            eg_plan_literals(rs, c);

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

    eg_plan_gates(rs);
    eg_plan_lack(rs);
}


/* the rules a request lacking some of header slots 0-7, or of wanted
   cookie names 0-7, cannot match, for each of the 256 ways; those a path
   or query of 0-62 bytes is too short for (one word of rules only) */

static void
eg_plan_lack(eg_ruleset_t *rs)
{
    size_t      i, p;
    uint64_t    bit;
    eg_rule_t  *r;

    rs->lack = 0;
    rs->nlack_byte = 0;

    for (i = 0; i < rs->nrules; i++) {
        rs->rules[i]->lacked = 0;
    }

    if (rs->nrules > 64) {
        return;
    }

    memset(rs->lack_hdr, 0, sizeof(rs->lack_hdr));
    memset(rs->lack_cookie, 0, sizeof(rs->lack_cookie));
    memset(rs->lack_path, 0, sizeof(rs->lack_path));
    memset(rs->lack_query, 0, sizeof(rs->lack_query));

    for (i = 0; i < rs->nrules; i++) {
        r = rs->rules[i];
        bit = (uint64_t) 1 << i;

        for (p = 0; p < 256; p++) {
            if (r->need & 0xff & ~p) {
                rs->lack_hdr[p] |= bit;
                rs->lack |= EG_LACK_HDR;
            }

            if (r->need_cookies & 0xff & ~p) {
                rs->lack_cookie[p] |= bit;
                rs->lack |= EG_LACK_COOKIE;
            }
        }

        /* a rule whose needs the tables say all of (headers 0-7, lengths
           up to 63) is not tested again where they were applied */

        r->lacked = !(r->need & ~(uint32_t) 0xff) && r->min_path <= 63
                    && r->min_query <= 63;

        for (p = 0; p < 63; p++) {
            if (r->min_path > p) {
                rs->lack_path[p] |= bit;
                rs->lack |= EG_LACK_LEN;
            }

            if (r->min_query > p) {
                rs->lack_query[p] |= bit;
                rs->lack |= EG_LACK_LEN;
            }
        }
    }

    eg_plan_lack_bytes(rs);
    eg_plan_scan_anchors(rs);
}


/*
 * An anchor of the path and one of the query, those the most rules probe
 * first, for the target scan to look for in its pass (with AVX2): then no
 * memchr() looks for them, and the rules whose first probe is one the
 * request lacks are dropped unvisited ("path contains @" of EG-OWA-001
 * for a path without '@').  An anchor the scan cannot take (a byte of its
 * padding, 'a', or 0) stays with the probes.
 */

static void
eg_plan_scan_anchors(eg_ruleset_t *rs)
{
    size_t    i, j, k, n, most, idx;
    uint64_t  bit, done, res, take[2];

    for (j = 0; j < 2; j++) {
        take[j] = 0;
        most = 0;

        for (k = 0; k < rs->nanchors; k++) {
            bit = (uint64_t) 1 << k;

            if (rs->anchor_field[k] != (j == 0 ? EG_F_PATH : EG_F_QUERY)
                || rs->anchor_byte[k] == 'a' || rs->anchor_byte[k] == 0)
            {
                continue;
            }

            for (n = 0, i = 0; i < rs->nrules; i++) {
                n += (eg_first_anchor(rs, rs->rules[i]) == bit);
            }

            if (take[j] == 0 || n > most) {
                most = n;
                take[j] = bit;
            }
        }
    }

    if ((take[0] | take[1]) == 0) {
        return;
    }

    /* a field without one looks for the other's byte: its answer is not
       taken */

    for (j = 0; j < 2; j++) {
        rs->scan_anchors[j] = rs->anchor_byte[eg_ctz64(take[j] ? take[j]
                                                              : take[j ^ 1])];
    }

    for (idx = 0; idx < 16; idx++) {
        done = ((idx & EG_FOUND_PATH) ? take[0] : 0)
               | ((idx & EG_FOUND_QUERY) ? take[1] : 0);
        res = done & (((idx & EG_FOUND_P) ? take[0] : 0)
                      | ((idx & EG_FOUND_Q) ? take[1] : 0));

        rs->scan_done[idx] = done;
        rs->scan_res[idx] = res;
        rs->scan_drop[idx] = 0;

        for (i = 0; i < rs->nrules; i++) {
            if (eg_first_anchor(rs, rs->rules[i]) & done & ~res) {
                rs->scan_drop[idx] |= (uint64_t) 1 << i;
            }
        }
    }

    rs->lack |= EG_LACK_ANCHOR;
}


/* the bit of the one anchor of a rule's first probe; else 0 */

static uint64_t
eg_first_anchor(const eg_ruleset_t *rs, const eg_rule_t *r)
{
    uint64_t  m;

    if (r->nprobes == 0 || r->probes[0].kind != EG_PROBE_ANCHOR) {
        return 0;
    }

    m = r->probes[0].mask;

    return (m && !(m & (m - 1)) && eg_ctz64(m) < rs->nanchors) ? m : 0;
}


/*
 * The places the rules' first byte probes read that the most rules
 * share, up to EG_LACK_KEYS: a request reads each place once for all the
 * rules that probe it ("header:User-Agent prefix antSword/ ..." is
 * dropped by the User-Agent's eighth byte, its rule not visited).  The
 * rules keep their probes: a rule the table keeps is probed as before.
 */

static void
eg_plan_lack_bytes(eg_ruleset_t *rs)
{
    size_t             i, k, t, n, most;
    unsigned           b;
    uint64_t           bit;
    eg_lack_byte_t    *lb;
    const eg_probe_t  *p, *best;

    for (k = 0; k < EG_LACK_KEYS; k++) {
        lb = &rs->lack_byte[k];

        /* the place most rules probe first, of those not taken yet (the
           first of equals, in load order) */

        most = 0;
        best = NULL;

        for (i = 0; i < rs->nrules; i++) {
            p = eg_lack_probe(rs->rules[i]);

            for (t = 0; p != NULL && t < k; t++) {
                if (eg_probe_at(p, &rs->lack_byte[t])) {
                    p = NULL;
                }
            }

            if (p == NULL) {
                continue;
            }

            eg_lack_place(lb, p);

            for (n = 0, t = i; t < rs->nrules; t++) {
                n += eg_probe_at(eg_lack_probe(rs->rules[t]), lb);
            }

            if (n > most) {
                most = n;
                best = p;
            }
        }

        if (best == NULL) {
            return;
        }

        eg_lack_place(lb, best);
        lb->rules = 0;
        memset(lb->drop, 0, sizeof(lb->drop));

        for (i = 0; i < rs->nrules; i++) {
            p = eg_lack_probe(rs->rules[i]);

            if (!eg_probe_at(p, lb)) {
                continue;
            }

            bit = (uint64_t) 1 << i;
            lb->rules |= bit;

            for (b = 0; b < 256; b++) {
                if (!eg_byte_in(p->set, (unsigned char) b)) {
                    lb->drop[b] |= bit;
                }
            }
        }

        rs->nlack_byte = k + 1;
        rs->lack |= EG_LACK_BYTE;
    }
}


/* a rule's first byte probe, if it reads the method, path, query or uri,
   or a header slot; else NULL */

static const eg_probe_t *
eg_lack_probe(const eg_rule_t *r)
{
    size_t  j;

    for (j = 0; j < r->nprobes; j++) {
        if (r->probes[j].kind == EG_PROBE_BYTE) {
            return (r->probes[j].field <= EG_F_URI
                    || (r->probes[j].slot >= 0
                        && r->probes[j].slot < EG_HDR_SLOTS))
                   ? &r->probes[j] : NULL;
        }
    }

    return NULL;
}


static void
eg_lack_place(eg_lack_byte_t *lb, const eg_probe_t *p)
{
    lb->field = p->field;
    lb->tail = p->tail;
    lb->slot = p->field > EG_F_URI ? p->slot : -1;
    lb->pos = p->pos;
}


/* 1 if p (NULL: none) reads the place of lb */

static int
eg_probe_at(const eg_probe_t *p, const eg_lack_byte_t *lb)
{
    return p != NULL && p->field == lb->field && p->tail == lb->tail
           && p->pos == lb->pos
           && (p->field <= EG_F_URI || p->slot == lb->slot);
}


/* the literals of a line (eg_internal.h); a regex's are found once and
   kept with the rules */

#define EG_REGEX_MAX_LITS  8

static void
eg_plan_literals(eg_ruleset_t *rs, eg_cond_t *c)
{
    size_t          n;
    eg_str_t        lits[EG_REGEX_MAX_LITS];
    unsigned char  *buf;

    if (c->op == EG_OP_IS || c->op == EG_OP_PREFIX || c->op == EG_OP_SUFFIX
        || c->op == EG_OP_CONTAINS)
    {
        c->lits = c->args;
        c->nlits = c->nargs;
        return;
    }

    if (c->op != EG_OP_REGEX) {
        c->lits = NULL;
        c->nlits = 0;
        return;
    }

    if (c->lits_done) {
        return;
    }

    c->lits_done = 1;
    c->nlits = 0;

    buf = eg_mem_alloc(&rs->mem, c->src.len + 1);
    if (buf == NULL) {
        return;
    }

    n = eg_regex_literals(c->src, buf, lits, EG_REGEX_MAX_LITS);
    if (n == 0) {
        return;
    }

    c->lits = eg_mem_alloc(&rs->mem, n * sizeof(eg_str_t));
    if (c->lits == NULL) {
        return;
    }

    memcpy(c->lits, lits, n * sizeof(eg_str_t));
    c->nlits = n;
}


/*
 * Literals one of which every match of a regex holds (compiled caseless,
 * without UTF): the longest run of plain bytes of each top-level
 * alternative, outside groups and classes and not made optional by a
 * quantifier; lower case, into buf.  0 when some alternative has none of
 * 4 bytes or more, or the regex has what this reading does not follow:
 * inline options ("(?x)" changes what a space is), "(*" verbs ("(*UTF)"
 * changes what caseless means), "\Q", escapes with more after them.
 */

static size_t
eg_regex_literals(eg_str_t re, unsigned char *buf, eg_str_t *lits,
    size_t max)
{
    size_t                n, len, best;
    unsigned char         ch;
    unsigned char        *run, *best_run, *out;
    const unsigned char  *p, *end, *q;

    p = re.data;
    end = re.data + re.len;
    out = buf;
    n = 0;

    /* \Q..\E quotes anything, even in a group or a class */

    for (q = p; q + 1 < end; q++) {
        if (q[0] == '\\' && q[1] == 'Q') {
            return 0;
        }
        q += (q[0] == '\\');
    }

    for ( ;; ) {
        /* one alternative: runs of plain bytes */

        run = out;
        best_run = NULL;
        best = 0;

        while (p < end && *p != '|') {
            if (*p == '\\') {
                if (p + 1 == end) {
                    return 0;
                }
                ch = p[1];
                if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z')
                    || (ch >= 'A' && ch <= 'Z'))
                {
                    /* a class, an anchor or a control byte ends the run;
                       an escape with more after it (\x41, \cA, \k<n>,
                       \1) is not read */
                    if (strchr("dDsSwWhHvVRXbBAzZGKEtnrfae", ch) == NULL) {
                        return 0;
                    }
                    p += 2;
                    ch = 0;
                    q = p;
                    goto quantifier;
                }
                p += 2;

            } else if (*p == '(' || *p == '[') {
                /* a group or a class ends the run; a verb or a group
                   that sets options is not read */
                if (*p == '(' && p + 1 < end
                    && (p[1] == '*'
                        || (p[1] == '?' && p + 2 < end
                            && strchr(":=!<>|'P", p[2]) == NULL)))
                {
                    return 0;
                }
                p = *p == '(' ? eg_regex_skip(p, end) : eg_regex_class(p, end);
                if (p == NULL) {
                    return 0;
                }
                ch = 0;
                q = p;
                goto quantifier;

            } else if (*p == '.' || *p == '^' || *p == '$' || *p == ')'
                       || *p == '*' || *p == '+' || *p == '?' || *p == '{')
            {
                ch = 0;
                q = ++p;
                goto quantifier;

            } else {
                ch = *p++;
            }

            /* a plain byte: in the run unless a quantifier follows */

            q = p;

        quantifier:

            if (q < end && (*q == '*' || *q == '?' || *q == '{')) {
                ch = 0;                 /* optional, or counted: out */
                if (*q == '{') {
                    while (q < end && *q != '}') {
                        q++;
                    }
                    if (q == end) {
                        return 0;
                    }
                }
                q++;
                if (q < end && (*q == '?' || *q == '+')) {
                    q++;
                }
                p = q;

            } else if (q < end && *q == '+') {
                q++;
                if (q < end && (*q == '?' || *q == '+')) {
                    q++;
                }
                if (ch) {
                    *out++ = eg_lower(ch);      /* once at least */
                }
                ch = 0;
                p = q;
            }

            if (ch) {
                *out++ = eg_lower(ch);
                continue;
            }

            /* the run ends */

            len = out - run;
            if (len > best) {
                best = len;
                best_run = run;
            }
            run = out;
        }

        len = out - run;
        if (len > best) {
            best = len;
            best_run = run;
        }

        if (best < 4 || n == max) {
            return 0;
        }

        lits[n].data = best_run;
        lits[n].len = best;
        n++;

        if (p == end) {
            return n;
        }

        p++;                            /* the '|' */
    }
}


/* past a group at p ('('), or NULL if it does not close */

static const unsigned char *
eg_regex_skip(const unsigned char *p, const unsigned char *end)
{
    size_t  depth = 0;

    while (p < end) {
        if (*p == '\\') {
            p += 2;
            continue;
        }

        if (*p == '[') {
            p = eg_regex_class(p, end);
            if (p == NULL) {
                return NULL;
            }
            continue;
        }

        if (*p == '(') {
            depth++;

        } else if (*p == ')' && --depth == 0) {
            return p + 1;
        }

        p++;
    }

    return NULL;
}


/* past a class at p ('['), or NULL if it does not close */

static const unsigned char *
eg_regex_class(const unsigned char *p, const unsigned char *end)
{
    p++;

    if (p < end && *p == '^') {
        p++;
    }

    if (p < end && *p == ']') {
        p++;                            /* a ']' first is a member */
    }

    while (p < end) {
        if (*p == '\\') {
            p += 2;
            continue;
        }

        if (*p == '[' && p + 1 < end && p[1] == ':') {
            /* [:alpha:] */
            p += 2;
            while (p + 1 < end && !(p[0] == ':' && p[1] == ']')) {
                p++;
            }
            p += 2;
            continue;
        }

        if (*p == ']') {
            return p + 1;
        }

        p++;
    }

    return NULL;
}


/* past 8 wanted cookie names, the parser finds them by hash; without
   the memory, one by one */

static void
eg_plan_cookie_tab(eg_ruleset_t *rs)
{
    size_t    i, k, size;

    free(rs->cookie_tab);
    rs->cookie_tab = NULL;

    if (rs->ncookie_names <= 8) {
        return;
    }

    for (size = 16; size < 2 * rs->ncookie_names; size *= 2) { /* void */ }

    rs->cookie_tab = calloc(size, sizeof(uint32_t));
    if (rs->cookie_tab == NULL) {
        return;
    }

    rs->cookie_tab_mask = (uint32_t) (size - 1);

    /* the names are distinct (eg_commit_cookie_names()) */

    for (i = 0; i < rs->ncookie_names; i++) {
        k = eg_name_slot(rs->cookie_tab, rs->cookie_tab_mask,
                         rs->cookie_lnames, rs->cookie_lnames[i]);
        rs->cookie_tab[k] = (uint32_t) i + 1;
    }
}


/*
 * The gates (eg_internal.h).  Each rule gets the keys of its first
 * positive line that has some; without the memory, or without the scope
 * table, there are no gates and every rule is looked at.
 */

typedef struct {
    uint32_t  gate;
    uint32_t  rule;
} eg_gate_pair_t;

typedef struct {
    eg_ruleset_t    *rs;
    eg_gate_pair_t  *pairs;
    size_t           npairs;
    size_t           ngrams;         /* gram entries so far */
    size_t          *ngram;          /* rules per eg_gram_field() */
    size_t          *gminlen;        /* their shortest argument */
} eg_gate_build_t;

static int eg_gate_grams(eg_gate_build_t *gb, size_t i, const eg_cond_t *c);
static size_t eg_gram_field(const eg_rule_t *r, const eg_cond_t *c);
static uint32_t eg_gate_header(eg_gate_build_t *gb, eg_str_t name);
static int eg_line_header(const eg_ruleset_t *rs, const eg_cond_t *c,
    eg_str_t *name, int *slot);
static void eg_gate_sort(const eg_gate_pair_t *pairs, size_t npairs,
    size_t ngates, uint32_t *start, uint32_t *rules);

static void
eg_plan_gates(eg_ruleset_t *rs)
{
    int               g, cj, cookie_gates;
    size_t            i, j, k, a, nwords, maxovf, maxkeys, tabsize, gtabsize;
    size_t            nfields, ncookie, ncpairs, ngram[64], gminlen[64];
    eg_str_t          name;
    eg_rule_t        *r;
    eg_cond_t        *c;
    unsigned char    *p;
    eg_gate_pair_t   *cpairs;
    eg_gate_build_t   gb;
    const eg_cond_t  *gl;

    free(rs->gate_mem);
    rs->gate_mem = NULL;
    rs->ungated = NULL;
    rs->cookie_ungated = NULL;
    rs->ngates = 0;
    rs->nhdr_ovf = 0;
    rs->hdr_ovf_lens = 0;
    memset(rs->hdr_ovf_first, 0, sizeof(rs->hdr_ovf_first));
    rs->ngram_targets = 0;

    if (rs->scope == NULL) {
        return;
    }

    /* a value is looked through for grams only for the rules of many:
       a few rules cost less tested one by one */

    memset(ngram, 0, sizeof(ngram));
    memset(gminlen, 0, sizeof(gminlen));
    nfields = 0;
    ncookie = 0;

    for (i = 0; i < rs->nrules; i++) {
        r = rs->rules[i];
        for (j = 0; j < r->nconds; j++) {
            c = &r->conds[j];
            if (c->negate) {
                continue;
            }
            k = eg_gram_field(r, c);
            if (k < 64) {
                ngram[k]++;
                for (a = 0; a < c->nlits; a++) {
                    if (gminlen[k] == 0 || c->lits[a].len < gminlen[k]) {
                        gminlen[k] = c->lits[a].len;
                    }
                }
                break;
            }
            if (eg_line_header(rs, c, &name, &g)) {
                ncookie += (c->field == EG_F_COOKIE);
                break;
            }
        }
    }

    for (k = 0; k < 64; k++) {
        nfields += (ngram[k] >= EG_GRAM_MIN_RULES);
    }

    cookie_gates = (ncookie >= EG_GRAM_MIN_RULES);
    nfields += cookie_gates;

    /* up to 64 rules with no gram target and every header in a slot,
       testing each rule costs less than the gates (+59 instructions a
       request on the benchmark mix) */

    if (rs->nrules <= 64 && nfields == 0 && !rs->hdr_overflow) {
        return;
    }

    nwords = (rs->nrules + 63) / 64;

    /* bounds: a header name past the slots per header line; a key per
       rule, and per argument as many grams as it can have */

    maxovf = 1;                         /* "cookie" past the slots */
    maxkeys = 0;
    for (i = 0; i < rs->nrules; i++) {
        r = rs->rules[i];
        maxkeys++;
        for (j = 0; j < r->nconds; j++) {
            c = &r->conds[j];
            maxovf += (c->field == EG_F_HEADER && c->slot < 0);
            for (a = 0; a < c->nlits; a++) {
                k = c->lits[a].len < 4 ? 0 : c->lits[a].len - 3;
                maxkeys += k < EG_GRAM_MAX_STRIDE ? k : EG_GRAM_MAX_STRIDE;
            }
        }
    }

    for (tabsize = 4; tabsize < 2 * maxovf; tabsize *= 2) { /* void */ }
    for (gtabsize = 4; gtabsize < 2 * maxkeys; gtabsize *= 2) { /* void */ }

    rs->gate_mem = calloc(1, (2 + EG_GRAM_TARGETS) * nwords * sizeof(uint64_t)
                             + EG_GRAM_BLOOM / 8
                             + gtabsize * sizeof(eg_gram_t)
                             + maxovf * sizeof(eg_str_t)
                             + (rs->nhdr + maxovf + maxkeys + 1)
                               * sizeof(uint32_t)
                             + maxkeys * sizeof(uint32_t)
                             + tabsize * sizeof(uint32_t)
                             + (rs->ncookie_names + 1 + rs->nrules)
                               * sizeof(uint32_t)
                             + (maxkeys / nwords + 1) * nwords
                               * sizeof(uint64_t)
                             + (rs->nhdr + maxovf + maxkeys)
                               * sizeof(uint32_t));
    gb.pairs = malloc((maxkeys + rs->nrules) * sizeof(eg_gate_pair_t));

    if (rs->gate_mem == NULL || gb.pairs == NULL) {
        free(rs->gate_mem);
        rs->gate_mem = NULL;
        free(gb.pairs);
        return;
    }

    cpairs = gb.pairs + maxkeys;
    ncpairs = 0;

    p = rs->gate_mem;
    rs->ungated = (uint64_t *) p;
    p += nwords * sizeof(uint64_t);
    rs->gate_dense = (uint64_t *) p;
    p += (maxkeys / nwords + 1) * nwords * sizeof(uint64_t);
    rs->cookie_ungated = cookie_gates ? (uint64_t *) p : NULL;
    p += nwords * sizeof(uint64_t);
    rs->gram_target_rules = (uint64_t *) p;
    p += EG_GRAM_TARGETS * nwords * sizeof(uint64_t);
    rs->gram_bloom = (uint64_t *) p;
    p += EG_GRAM_BLOOM / 8;
    rs->grams = (eg_gram_t *) p;
    p += gtabsize * sizeof(eg_gram_t);
    rs->gram_mask = (uint32_t) (gtabsize - 1);
    rs->hdr_ovf = (eg_str_t *) p;
    p += maxovf * sizeof(eg_str_t);
    rs->gate_start = (uint32_t *) p;
    p += (rs->nhdr + maxovf + maxkeys + 1) * sizeof(uint32_t);
    rs->gate_rules = (uint32_t *) p;
    p += maxkeys * sizeof(uint32_t);
    rs->hdr_ovf_tab = (uint32_t *) p;
    p += tabsize * sizeof(uint32_t);
    rs->hdr_ovf_mask = (uint32_t) (tabsize - 1);
    rs->cookie_gate_start = (uint32_t *) p;
    p += (rs->ncookie_names + 1) * sizeof(uint32_t);
    rs->cookie_gate_rules = (uint32_t *) p;
    p += rs->nrules * sizeof(uint32_t);
    rs->gate_dense_of = (uint32_t *) p;
    rs->gate_words = nwords;

    gb.rs = rs;
    gb.npairs = 0;
    gb.ngrams = 0;
    gb.ngram = ngram;
    gb.gminlen = gminlen;

    /* the header names past the slots first: the grams' gates follow */

    for (i = 0; i < rs->nrules; i++) {
        r = rs->rules[i];
        for (j = 0; j < r->nconds; j++) {
            c = &r->conds[j];
            if (eg_line_header(rs, c, &name, &g) && g < 0) {
                (void) eg_gate_header(&gb, name);
            }
        }
    }

    for (i = 0; i < rs->nrules; i++) {
        r = rs->rules[i];
        gl = NULL;

        for (j = 0; j < r->nconds && gl == NULL; j++) {
            c = &r->conds[j];

            if (c->negate) {
                continue;
            }

            if (eg_gate_grams(&gb, i, c)) {
                gl = c;                 /* gram gates: pairs made */
                break;
            }

            if (!eg_line_header(rs, c, &name, &g)) {
                continue;
            }

            if (g < 0) {
                g = (int) eg_gate_header(&gb, name);
            }

            gb.pairs[gb.npairs].gate = (uint32_t) g;
            gb.pairs[gb.npairs].rule = (uint32_t) i;
            gb.npairs++;
            gl = c;
        }

        if (gl == NULL) {
            rs->ungated[i / 64] |= (uint64_t) 1 << (i % 64);
        }

        /* a gate line "cookie:NAME": the gate of NAME too */

        cj = -1;
        if (gl && cookie_gates && gl->field == EG_F_COOKIE) {
            cj = eg_cookie_wanted(rs, gl->key);
        }

        if (cj >= 0) {
            cpairs[ncpairs].gate = (uint32_t) cj;
            cpairs[ncpairs].rule = (uint32_t) i;
            ncpairs++;

        } else if (cookie_gates) {
            rs->cookie_ungated[i / 64] |= (uint64_t) 1 << (i % 64);
        }
    }

    rs->ngates = rs->nhdr + rs->nhdr_ovf + gb.ngrams;
    eg_gate_sort(gb.pairs, gb.npairs, rs->ngates, rs->gate_start,
                 rs->gate_rules);

    if (cookie_gates) {
        eg_gate_sort(cpairs, ncpairs, rs->ncookie_names,
                     rs->cookie_gate_start, rs->cookie_gate_rules);
    }

    /* a gate of more rules than words opens them a word at a time (the
       sum of the counts bounds how many there are) */

    k = 0;
    for (i = 0; i < rs->ngates; i++) {
        if (rs->gate_start[i + 1] - rs->gate_start[i] <= nwords) {
            continue;
        }

        for (j = rs->gate_start[i]; j < rs->gate_start[i + 1]; j++) {
            rs->gate_dense[k * nwords + rs->gate_rules[j] / 64]
                |= (uint64_t) 1 << (rs->gate_rules[j] % 64);
        }

        rs->gate_dense_of[i] = (uint32_t) ++k;
    }

    free(gb.pairs);
}


/* the rules of each gate, in rule order (pairs are): a counting sort */

static void
eg_gate_sort(const eg_gate_pair_t *pairs, size_t npairs, size_t ngates,
    uint32_t *start, uint32_t *rules)
{
    size_t  i;

    for (i = 0; i <= ngates; i++) {
        start[i] = 0;
    }

    for (i = 0; i < npairs; i++) {
        start[pairs[i].gate + 1]++;
    }

    for (i = 0; i < ngates; i++) {
        start[i + 1] += start[i];
    }

    for (i = 0; i < npairs; i++) {
        rules[start[pairs[i].gate]++] = pairs[i].rule;
    }

    for (i = ngates; i > 0; i--) {
        start[i] = start[i - 1];
    }

    start[0] = 0;
}


/* the header whose value a line reads (the Cookie header for the cookie
   fields): its name and slot (-1: past the slots); 0 if it reads none */

static int
eg_line_header(const eg_ruleset_t *rs, const eg_cond_t *c, eg_str_t *name,
    int *slot)
{
    static const eg_str_t  cookie = eg_string("cookie");

    switch (c->field) {

    case EG_F_HEADER:
        *name = c->key;
        *slot = c->slot;
        return 1;

    case EG_F_COOKIE:
    case EG_F_COOKIE_NAMES:
    case EG_F_COOKIES:
        *name = cookie;
        *slot = rs->slot_cookie;
        return 1;

    default:
        return 0;
    }
}


/* a header name's gate: its slot, or an index past them */

static uint32_t
eg_gate_header(eg_gate_build_t *gb, eg_str_t name)
{
    uint32_t       k;
    eg_ruleset_t  *rs = gb->rs;

    k = eg_name_slot(rs->hdr_ovf_tab, rs->hdr_ovf_mask, rs->hdr_ovf, name);

    if (rs->hdr_ovf_tab[k]) {
        return (uint32_t) rs->nhdr + rs->hdr_ovf_tab[k] - 1;
    }

    rs->hdr_ovf[rs->nhdr_ovf++] = name;
    rs->hdr_ovf_tab[k] = (uint32_t) rs->nhdr_ovf;
    rs->hdr_ovf_lens |= (uint64_t) 1 << (name.len < 64 ? name.len : 0);
    eg_set_either_case(rs->hdr_ovf_first, name.data[0]);

    return (uint32_t) (rs->nhdr + rs->nhdr_ovf - 1);
}


/*
 * Gates of grams for rule i by a line with literals on the path, query,
 * uri, method, client or a header in a slot, when many rules have one
 * there (eg_gram_field()).  A
 * target's values are looked at every stride bytes, stride = its shortest
 * argument - 3 (at most EG_GRAM_MAX_STRIDE): an argument in a value has
 * one of its first stride grams at such a place, so each opens the rule.
 * 0 if the line has no gram gates.
 */

static int
eg_gate_grams(eg_gate_build_t *gb, size_t i, const eg_cond_t *c)
{
    size_t         a, k, t, stride;
    uint32_t       gram, gate, hash;
    eg_gram_t     *e;
    eg_ruleset_t  *rs = gb->rs;

    k = eg_gram_field(gb->rs->rules[i], c);
    if (k >= 64 || gb->ngram[k] < EG_GRAM_MIN_RULES) {
        return 0;
    }

    stride = gb->gminlen[k] - 3;
    stride = stride < EG_GRAM_MAX_STRIDE ? stride : EG_GRAM_MAX_STRIDE;

    /* a line other than the one counted (eg_plan_gates()) may have a
       shorter argument: it is tested the plain way */

    for (a = 0; a < c->nlits; a++) {
        if (c->lits[a].len < stride + 3) {
            return 0;
        }
    }

    for (t = 0; t < rs->ngram_targets; t++) {
        if (rs->gram_field[t] == c->field
            && (c->field != EG_F_HEADER || rs->gram_slot[t] == c->slot))
        {
            break;
        }
    }

    if (t == rs->ngram_targets) {
        if (t == EG_GRAM_TARGETS) {
            return 0;
        }
        rs->gram_field[t] = (uint8_t) c->field;
        rs->gram_slot[t] = (int8_t) c->slot;
        rs->gram_stride[t] = (uint8_t) stride;
        rs->ngram_targets++;
    }

    for (a = 0; a < c->nlits; a++) {
        for (k = 0; k < stride; k++) {
            gram = eg_gram_at(c->lits[a].data + k);
            hash = eg_gram_hash(gram, (uint32_t) t);
            e = eg_gram_find(rs, gram, (uint32_t) t, hash);

            if (e->gate == 0) {
                e->gram = gram;
                e->target = (uint32_t) t;
                e->gate = (uint32_t) (rs->nhdr + rs->nhdr_ovf + gb->ngrams++)
                          + 1;
                hash >>= 16;
                rs->gram_bloom[hash / 64] |= (uint64_t) 1 << (hash % 64);
            }

            gate = e->gate - 1;

            /* a gram twice in the rule: the rule once */

            if (gb->npairs && gb->pairs[gb->npairs - 1].rule == i
                && gb->pairs[gb->npairs - 1].gate == gate)
            {
                continue;
            }

            gb->pairs[gb->npairs].gate = gate;
            gb->pairs[gb->npairs].rule = (uint32_t) i;
            gb->npairs++;
        }
    }

    rs->gram_target_rules[t * rs->gate_words + i / 64]
        |= (uint64_t) 1 << (i % 64);

    return 1;
}


/*
 * Where a line could have gram gates: 0 to 4 for the path (if the rule
 * has no path scope already), query, uri, method and client, 5 + slot for
 * a header in a slot; 64 for none.  The line needs literals (c->lits),
 * every one 4 bytes or more.
 */

static size_t
eg_gram_field(const eg_rule_t *r, const eg_cond_t *c)
{
    size_t    a;
    unsigned  exact[EG_SCOPE_MAX_SEGS];
    eg_str_t  segs[EG_SCOPE_MAX_SEGS];

    if (c->nlits == 0) {
        return 64;
    }

    for (a = 0; a < c->nlits; a++) {
        if (c->lits[a].len < 4) {
            return 64;
        }
    }

    switch (c->field) {
    case EG_F_PATH:
        return eg_rule_segments(r, segs, exact) ? 64 : 0;
    case EG_F_QUERY:
        return 1;
    case EG_F_URI:
        return 2;
    case EG_F_METHOD:
        return 3;
    case EG_F_CLIENT:
        return 4;
    case EG_F_HEADER:
        return c->slot >= 0 ? 5 + (size_t) c->slot : 64;
    default:
        return 64;
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
            eg_plan_probe_line(rs, r, c);
            continue;
        }

        if (c->op == EG_OP_UNTRUSTED) {
            memset(&r->probes[r->nprobes], 0, sizeof(eg_probe_t));
            r->probes[r->nprobes++].kind = EG_PROBE_TRUSTED;
            continue;
        }

        if (c->field == EG_F_PARAM) {
            eg_plan_probe_param(rs, r);
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

    if (rs->scope) {
        eg_plan_probes_scoped(r);
    }

    /* after the cheaper ones, the lists' own tests: the last line first,
       the telling one (eg_rule_matches()) */

    for (j = r->nconds; j > 0 && r->nprobes < EG_MAX_PROBES; j--) {
        c = &r->conds[j - 1];

        if (!c->negate) {
            eg_plan_probe_line(rs, r, c);
        }
    }
}


/*
 * With the dispatch table (eg_scope_build()), a rule scoped to first
 * segments is only evaluated for a path whose first segment starts with
 * one of them, in any case: a byte probe on the path that each of them
 * passes would pass for every request that reaches the rule, and is
 * dropped.  Without the table every rule meets every request, and keeps
 * its probes.
 */

static void
eg_plan_probes_scoped(eg_rule_t *r)
{
    size_t          i, j, k, n;
    unsigned        exact[EG_SCOPE_MAX_SEGS];
    eg_str_t        segs[EG_SCOPE_MAX_SEGS];
    unsigned char   b;
    eg_probe_t     *p;

    n = eg_rule_segments(r, segs, exact);

    if (n == 0) {
        return;
    }

    for (i = 0, k = 0; i < r->nprobes; i++) {
        p = &r->probes[i];

        if (p->kind == EG_PROBE_BYTE && p->field == EG_F_PATH && !p->tail
            && p->pos >= 1)
        {
            for (j = 0; j < n; j++) {
                if (p->pos - 1 >= segs[j].len) {
                    break;
                }

                b = segs[j].data[p->pos - 1];

                if (!eg_byte_in(p->set, b) || !eg_byte_in(p->set, eg_upper(b)))
                {
                    break;
                }
            }

            if (j == n) {
                continue;               /* each segment passes it */
            }
        }

        if (k != i) {
            r->probes[k] = *p;
        }
        k++;
    }

    r->nprobes = k;
}


/*
 * "param:NAME" holds only for a parameter that is there: in the query, a
 * form body or a cookie (eg_cond_other()).  A request with none of the
 * three cannot match: an Autodiscover POST of XML without cookies skips
 * the rule at once.  A form body is one whose first Content-Type starts
 * with "application/x-www-form-urlencoded" or "multipart/form-data"
 * (eg_form_body()): the probe asks for its first byte only.  Both headers
 * have slots (eg_plan_build() gave them), unless there are too many names
 * to index.
 */

static void
eg_plan_probe_param(eg_ruleset_t *rs, eg_rule_t *r)
{
    eg_probe_t  *p;

    if (rs->slot_cookie < 0 || rs->slot_ctype < 0) {
        return;
    }

    p = &r->probes[r->nprobes++];
    memset(p, 0, sizeof(eg_probe_t));
    p->kind = EG_PROBE_ANCHOR;
    p->mask = EG_PROBE_PARAM;
    p->pos = (uint32_t) 1 << rs->slot_cookie;
    p->slot = rs->slot_ctype;
}


/*
 * A line whose own test, a compare or two on one value, is the probe
 * (EG_PROBE_LINE): "not is", "not prefix", "not suffix" on the path, query
 * or uri; "is", "prefix", "suffix" with more than one argument on those or
 * on a header with a slot.  A request that passes it evaluates the line
 * again in the rule; one that fails it skips the rule without a call: the
 * ECP admin pages' reads skip the ECP rules by "path not prefix
 * /ecp/DDI/DDIService.svc/Get", their POSTs EG-PL-010 by its list of
 * suffixes, and the EWS Managed API's User-Agent
 * (ExchangeServicesClient/15...) EG-PL-020 by "antSword/
 * ExchangeServicesClient/0.0.0.0", whose byte probes it passes.  A
 * single argument gets none: the byte probes at its two rarest places
 * decide nearly every value.  The rules with the same line share an
 * anchor slot, whose bit holds the answer once it is known.
 */

static void
eg_plan_probe_line(eg_ruleset_t *rs, eg_rule_t *r, const eg_cond_t *c)
{
    size_t            i, k;
    eg_probe_t       *p;
    const eg_cond_t  *d;

    if ((c->op != EG_OP_IS && c->op != EG_OP_PREFIX && c->op != EG_OP_SUFFIX)
        || (c->field == EG_F_HEADER ? c->negate || c->slot < 0
            : c->field != EG_F_PATH && c->field != EG_F_QUERY
              && c->field != EG_F_URI)
        || (!c->negate && c->nargs < 2)
        || r->nprobes == EG_MAX_PROBES)
    {
        return;
    }

    for (k = 0; k < rs->nanchors; k++) {
        d = rs->anchor_line[k];

        if (rs->anchor_field[k] != EG_ANCHOR_LINE || d->field != c->field
            || d->slot != c->slot || d->op != c->op || d->negate != c->negate
            || d->nargs != c->nargs)
        {
            continue;
        }

        for (i = 0; i < c->nargs; i++) {
            if (d->args[i].len != c->args[i].len
                || memcmp(d->args[i].data, c->args[i].data, c->args[i].len)
                   != 0)
            {
                break;
            }
        }

        if (i == c->nargs) {
            break;
        }
    }

    if (k == rs->nanchors) {
        if (k == EG_MAX_ANCHORS) {
            return;
        }
        rs->anchor_field[k] = EG_ANCHOR_LINE;
        rs->anchor_byte[k] = 0;
        rs->anchor_line[k] = c;
        rs->nanchors++;
    }

    p = &r->probes[r->nprobes++];
    memset(p, 0, sizeof(eg_probe_t));
    p->kind = EG_PROBE_ANCHOR;
    p->field = (uint8_t) c->field;
    p->mask = EG_PROBE_LINE | (uint64_t) 1 << k;
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

            if (c->args[i].len) {
                rs->method_keys |= (uint64_t) 1 << eg_method_key(
                                       c->args[i].len, c->args[i].data[0]);
            }
        }

        mask |= (uint64_t) 1 << k;
    }

    p = &r->probes[r->nprobes++];
    memset(p, 0, sizeof(eg_probe_t));
    p->kind = EG_PROBE_METHOD;
    p->negate = c->negate != 0;
    p->mask = mask;
}


/*
 * "contains": a byte of each argument that only itself matches (not a
 * letter), the rarest; none when an argument is all letters.  For a lone
 * argument, a second probe: that byte with the argument's byte after it
 * (at its end: before it), a letter in either case.  The byte is looked
 * for once for every rule that has it; the pair only by the rules that
 * still apply, after it: a '-' followed by 'r' rules out the query of
 * nearly every request with a GUID or a negative number in it, which the
 * '-' alone lets through.  The pair probe is an anchor probe whose mask
 * is EG_PROBE_PAIR, which no anchor is: it takes the out-of-line path of
 * a probe with several anchors (eg_probe_anchors()).
 */

static void
eg_plan_probe_anchor(eg_ruleset_t *rs, eg_rule_t *r, const eg_cond_t *c)
{
    size_t         i, j, k, at;
    uint64_t       mask;
    unsigned char  b, best, other;
    eg_probe_t    *p;

    mask = 0;
    at = 0;

    for (i = 0; i < c->nargs; i++) {
        best = 0;

        for (j = 0; j < c->args[i].len; j++) {
            b = c->args[i].data[j];

            if ((b < 'a' || b > 'z')
                && (best == 0 || eg_byte_weight(b) < eg_byte_weight(best)))
            {
                best = b;
                at = j;
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
            if (k == EG_MAX_ANCHORS) {
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

    if (c->nargs != 1 || c->args[0].len < 2 || r->nprobes == EG_MAX_PROBES) {
        return;
    }

    other = c->args[0].data[at + 1 < c->args[0].len ? at + 1 : at - 1];

    p = &r->probes[r->nprobes++];
    memset(p, 0, sizeof(eg_probe_t));
    p->kind = EG_PROBE_ANCHOR;
    p->field = (uint8_t) c->field;
    p->mask = EG_PROBE_PAIR;
    p->pos = at + 1 < c->args[0].len;
    p->set[0] = c->args[0].data[at];
    p->set[1] = other;
    p->set[2] = (other >= 'a' && other <= 'z') ? 0x20 : 0;
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


/* the arguments of a long prefix or suffix list by their edge byte and
   the byte next to it: a value is compared with the few that can match,
   not with all (".flt .eot .dat .manifest" end in 't'; of them, only
   ".manifest" can be the end of "/GetList") */

static void
eg_plan_byedge(eg_ruleset_t *rs, eg_cond_t *c)
{
    size_t         i, k, len;
    unsigned char  b;

    if (!c->has_edge || c->op == EG_OP_IS || c->nargs <= 8 || c->nargs > 32) {
        c->byedge = NULL;
        return;
    }

    /* the arguments do not change from one load to the next */

    if (c->byedge == NULL) {
        c->byedge = eg_mem_alloc(&rs->mem, 512 * sizeof(uint32_t));
        if (c->byedge == NULL) {
            return;
        }
    }

    memset(c->byedge, 0, 512 * sizeof(uint32_t));

    for (i = 0; i < c->nargs; i++) {
        len = c->args[i].len;
        b = c->args[i].data[c->op == EG_OP_SUFFIX ? len - 1 : 0];
        c->byedge[b] |= (uint32_t) 1 << i;

        /* the next byte: any, for an argument of one byte */

        if (len == 1) {
            for (k = 256; k < 512; k++) {
                c->byedge[k] |= (uint32_t) 1 << i;
            }

        } else {
            b = c->args[i].data[c->op == EG_OP_SUFFIX ? len - 2 : 1];
            c->byedge[256 + b] |= (uint32_t) 1 << i;
        }
    }
}


/* the arguments of is, prefix and suffix as folds: a value is compared
   with one in two operations a word */

static void
eg_plan_folds(eg_ruleset_t *rs, eg_cond_t *c)
{
    size_t  i;

    if ((c->op != EG_OP_IS && c->op != EG_OP_PREFIX
         && c->op != EG_OP_SUFFIX)
        || c->nargs == 0)
    {
        c->folds = NULL;
        return;
    }

    /* the arguments do not change from one load to the next */

    if (c->folds == NULL) {
        c->folds = eg_mem_alloc(&rs->mem, c->nargs * sizeof(eg_fold_t));
        if (c->folds == NULL) {
            return;
        }
    }

    for (i = 0; i < c->nargs; i++) {
        eg_fold_make(c->args[i], &c->folds[i]);
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

    /* slots of one key (length and first byte, 5 bits each) are chained
       (no header name is empty) */

    k = eg_hdr_key(lname.len, lname.data[0]);
    rs->hdr_names[rs->nhdr] = lname;
    eg_fold_make(lname, &rs->hdr_folds[rs->nhdr]);
    rs->hdr_next[rs->nhdr] = rs->hdr_first[k];
    rs->hdr_first[k] = (int8_t) rs->nhdr;

    return (int) rs->nhdr++;
}


/* lower (lower case) as eg_ieq_fold() reads it; names longer than
   EG_FOLD_MAX are compared by eg_ieq_lower() and need nothing */

void
eg_fold_make(eg_str_t lower, eg_fold_t *f)
{
    size_t         i, k;
    unsigned char  m[EG_FOLD_MAX];

    memset(f, 0, sizeof(eg_fold_t));

    if (lower.len == 0 || lower.len > EG_FOLD_MAX) {
        return;
    }

    for (i = 0; i < lower.len; i++) {
        m[i] = (lower.data[i] >= 'a' && lower.data[i] <= 'z') ? 0x20 : 0;
    }

    if (lower.len < 8) {
        f->y[0] = eg_load_short(lower.data, lower.len);
        f->m[0] = eg_load_short(m, lower.len);
        return;
    }

    for (i = 0, k = 0; i + 8 <= lower.len; i += 8, k++) {
        memcpy(&f->y[k], lower.data + i, 8);
        memcpy(&f->m[k], m + i, 8);
    }

    if (i < lower.len) {
        memcpy(&f->y[k], lower.data + lower.len - 8, 8);
        memcpy(&f->m[k], m + lower.len - 8, 8);
    }
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
