/*
 * exchange_guard: evaluating a rule set against one request.
 *
 * Every field is computed at most once per request, and only when a rule
 * asks for it: a request without a Cookie header never parses cookies.
 * A rule matches when all of its "match" lines hold; a line on a field
 * with several values (cookies, headers) holds when any value matches,
 * or, with "not", when none does.
 */

#include <string.h>

#include "eg_internal.h"

#if defined(__SSE2__) && !defined(EG_NO_SIMD)
#include <emmintrin.h>
#define EG_MATCH_SSE2  1
#else
#define EG_MATCH_SSE2  0
#endif


#define EG_HAVE_COOKIES  1
#define EG_HAVE_RAW      2
#define EG_HAVE_URI_DEC  4
#define EG_HAVE_LIMITS   8
#define EG_HAVE_METHOD   16

#define EG_MAX_COOKIE_HEADERS  64
#define EG_STACK_COOKIES       16


static const eg_str_t  eg_cookie_name = eg_string("cookie");


typedef struct eg_state_s {
    const eg_ruleset_t   *rs;
    const eg_request_t   *req;
    const eg_options_t   *opts;
    const eg_alloc_t     *alloc;
    eg_verdict_t         *v;
    unsigned              have;
    eg_cookie_t          *cookies;
    size_t                ncookies;
    size_t                ncookie_headers;   /* taken, within the bound */
    size_t                cookie_bytes;      /* theirs, "; " included */
    eg_str_t              raw;           /* Cookie headers, joined */
    eg_str_t              uri_decoded;
    const eg_rule_t      *rule;
    const eg_cond_t      *cond;          /* for the JSON callback */
    int                   json_rc;
    eg_str_t              hit;           /* the value that matched */
    uint32_t              present;       /* header slots the request has */
    uint32_t              cookie_present;    /* wanted cookie names */
    uint64_t              memo_done;     /* shared regex results known */
    uint64_t              memo_res;
    uint64_t              method;        /* its bit in rs->methods */
    uint64_t              anchor_done;   /* anchors looked for */
    uint64_t              anchor_res;    /* and found */
    unsigned              scan_found;    /* the scan's: EG_FOUND_* */
    uint32_t              lacked;        /* 1: the lack tables applied */
    uint64_t             *allowed;       /* rules the headers sent open */
    uint64_t             *bits;          /* the rules left to evaluate,
                                            rs->gate_words of them */
    size_t                first[EG_HDR_SLOTS];   /* per present slot */
    size_t                end[EG_HDR_SLOTS];     /* past the last one */
} eg_state_t;


static int eg_rule_matches(eg_state_t *st, const eg_rule_t *r,
    eg_match_t *m);
static int eg_cond(eg_state_t *st, const eg_cond_t *c);
static int eg_single_value(eg_state_t *st, const eg_cond_t *c,
    eg_str_t *value);
static EG_NOINLINE int eg_cond_memo(eg_state_t *st, const eg_cond_t *c);
static EG_NOINLINE int eg_cond_other(eg_state_t *st, const eg_cond_t *c);
static EG_INLINE int eg_test(eg_state_t *st, const eg_cond_t *c,
    eg_str_t value);
static int eg_test_is(eg_state_t *st, const eg_cond_t *c, eg_str_t s);
static EG_INLINE int eg_arg_eq(const eg_cond_t *c, const eg_str_t *a,
    eg_str_t s);
static int eg_test_prefix(eg_state_t *st, const eg_cond_t *c, eg_str_t s);
static int eg_test_suffix(eg_state_t *st, const eg_cond_t *c, eg_str_t s);
static int eg_test_contains(eg_state_t *st, const eg_cond_t *c, eg_str_t s);
static EG_NOINLINE int eg_test_regex(eg_state_t *st, const eg_cond_t *c,
    eg_str_t s);
static int eg_test_backend(eg_state_t *st, const eg_cond_t *c, eg_str_t s);
static int eg_test_present(eg_state_t *st, const eg_cond_t *c, eg_str_t s);
static int eg_test_none(eg_state_t *st, const eg_cond_t *c, eg_str_t s);
static int eg_test_cookies(eg_state_t *st, const eg_cond_t *c);
static int eg_test_headers(eg_state_t *st, const eg_cond_t *c);
static int eg_test_pairs(eg_state_t *st, const eg_cond_t *c, eg_str_t text);
static int eg_test_body(eg_state_t *st, const eg_cond_t *c);
static int eg_json_value(void *data, eg_str_t key, eg_str_t value);
static int eg_test_client(eg_state_t *st, const eg_cond_t *c);
static int eg_form_body(eg_state_t *st);
static int eg_test_multipart(eg_state_t *st, const eg_cond_t *c,
    eg_str_t body);
static eg_str_t eg_query_text(eg_state_t *st);
static void eg_normalize(eg_state_t *st);
static EG_INLINE int eg_cookies(eg_state_t *st);
static EG_NOINLINE int eg_need_cookies(eg_state_t *st);
static int eg_raw_cookies(eg_state_t *st);
static void eg_limit(eg_state_t *st, eg_limit_e limit);
static int eg_icontains(eg_str_t s, eg_str_t lower);
static void eg_index_headers(eg_state_t *st);
static EG_INLINE void eg_open_gate(eg_state_t *st, size_t g);
static EG_INLINE void eg_bits_set(uint64_t *bits, const uint32_t *rule,
    const uint32_t *end);
static EG_NOINLINE void eg_open_gate_by_name(eg_state_t *st, eg_str_t name);
static EG_NOINLINE void eg_open_grams(eg_state_t *st);
static void eg_open_grams_in(eg_state_t *st, uint32_t target, eg_str_t s);
static EG_INLINE const eg_header_t *eg_next_header(eg_state_t *st,
    int slot, eg_str_t lname, size_t *i);
static EG_INLINE void eg_lack_bytes(eg_state_t *st, uint64_t *bits);
static EG_INLINE int eg_rule_skipped(eg_state_t *st, const eg_rule_t *r);
static EG_INLINE void eg_eval_bits(eg_state_t *st, uint64_t *bits,
    const uint64_t *notes, uint64_t live, int recheck);
static void eg_cookie_gates(eg_state_t *st);
static EG_INLINE int eg_probe(eg_state_t *st, const eg_probe_t *p);
static EG_INLINE eg_str_t eg_target_value(eg_state_t *st, unsigned field);
static EG_INLINE size_t eg_max_header_bytes(eg_state_t *st);
static EG_INLINE int eg_one_header(eg_state_t *st, int slot, eg_str_t *s);
static EG_NOINLINE int eg_probe_anchors(eg_state_t *st,
    const eg_probe_t *p);
static EG_NOINLINE int eg_probe_bytes(eg_state_t *st, uint64_t mask);
static EG_NOINLINE int eg_probe_line_slot(eg_state_t *st, uint64_t mask);
static EG_NOINLINE int eg_probe_pair(eg_state_t *st, const eg_probe_t *p);
static EG_NOINLINE int eg_probe_param(eg_state_t *st, const eg_probe_t *p);
static int eg_probe_line(eg_state_t *st, const eg_cond_t *c);
static EG_NOINLINE void eg_probe_method(eg_state_t *st);
static void eg_match_found(eg_state_t *st, const eg_rule_t *r,
    const eg_match_t *m);


void
eg_eval(const eg_ruleset_t *rs, const eg_request_t *req,
    const eg_options_t *opts, const eg_alloc_t *alloc, eg_verdict_t *v)
{
    size_t            i, w, nwords;
    uint64_t          live, bits[EG_SCOPE_MAX_WORDS];
    uint64_t          allowed[EG_SCOPE_MAX_WORDS];
    eg_match_t        m;
    eg_state_t        st;
    eg_cookie_t       cookies[EG_STACK_COOKIES];
    const eg_rule_t  *r;
    const uint64_t   *notes;

    /* no memset of the match array or the cookie room: both are written
       before they are read */

    v->action = EG_PASS;
    v->nmatches = 0;
    v->total = 0;
    v->limit = EG_LIMIT_NONE;
    v->limit_rule = NULL;
    v->path.data = NULL;
    v->path.len = 0;
    v->query = v->path;
    v->need_body = 0;

    st.have = 0;
    st.cookies = cookies;
    st.ncookies = 0;
    st.ncookie_headers = 0;
    st.raw.data = NULL;
    st.raw.len = 0;
    st.uri_decoded = st.raw;
    st.rule = NULL;
    st.hit = st.raw;
    st.cond = NULL;
    st.json_rc = 0;
    st.present = 0;
    st.cookie_present = 0;
    st.memo_done = 0;
    st.memo_res = 0;
    st.method = 0;
    st.lacked = 0;

    st.rs = rs;
    st.req = req;
    st.opts = opts;
    st.alloc = alloc;
    st.v = v;
    st.allowed = allowed;
    st.bits = NULL;

    if (rs->ungated) {
        eg_bits_copy(allowed, rs->ungated, rs->gate_words);
    }

    if (rs->nhdr) {
        eg_index_headers(&st);
    }

    /* the rules this path can meet: global ones and its segment's, less
       those gated on a header the request does not send */

    eg_normalize(&st);
    notes = NULL;
    nwords = eg_scope_select(rs, v->path, bits, &notes);

    if (rs->ungated && nwords) {
        if (rs->ngram_targets) {
            eg_open_grams(&st);
        }

        for (w = 0; w < nwords; w++) {
            bits[w] &= allowed[w];
        }
    }

    /* up to 64 rules: those that need a header the request lacks, or a
       longer path or query */

    if (nwords == 1 && (rs->lack & (EG_LACK_HDR | EG_LACK_LEN))) {
        bits[0] &= ~(rs->lack_hdr[st.present & 0xff]
                     | rs->lack_path[v->path.len < 63 ? v->path.len : 63]
                     | rs->lack_query[v->query.len < 63 ? v->query.len : 63]);
        st.lacked = 1;
    }

    if (nwords == 1 && (rs->lack & EG_LACK_BYTE)) {
        eg_lack_bytes(&st, bits);
    }

    if (nwords == 1) {
        bits[0] &= ~rs->scan_drop[st.scan_found];
    }

    /* the words that hold a rule to evaluate: past 64 rules most hold
       none; a single word is walked as it is */

    live = 1;

    if (nwords > 1) {
        for (live = 0, w = 0; w < nwords; w++) {
            live |= (uint64_t) ((bits[w] & ~notes[w]) != 0) << w;
        }
    }

    if (nwords == 0) {
        /* no dispatch table: every rule, in order */

        for (i = 0; i < rs->nrules; i++) {
            r = rs->rules[i];

            if (r->action != EG_NOTE && !eg_rule_skipped(&st, r)
                && eg_rule_matches(&st, r, &m))
            {
                eg_match_found(&st, r, &m);
            }
        }

    } else if (rs->cookie_ungated == NULL && !(rs->lack & EG_LACK_COOKIE)) {
        eg_eval_bits(&st, bits, notes, live, 0);

    } else {
        /* the Cookie parse may drop rules of the names it lacks
           (eg_cookie_gates(), rs->lack_cookie) */
        st.bits = bits;
        eg_eval_bits(&st, bits, notes, live, 1);
    }

    /* notes cost nothing on the requests that pass unlogged */

    if (v->action < EG_LOG && v->limit == EG_LIMIT_NONE) {
        return;
    }

    for (i = 0; i < rs->nrules; i++) {
        if (nwords && !(bits[i / 64] & ((uint64_t) 1 << (i % 64)))) {
            continue;
        }

        r = rs->rules[i];

        if (r->action != EG_NOTE || eg_rule_skipped(&st, r)
            || !eg_rule_matches(&st, r, &m))
        {
            continue;
        }

        v->total++;

        if (v->nmatches < EG_MAX_MATCHES) {
            v->matches[v->nmatches++] = m;
        }
    }
}


/* the rules of bits, less notes, in order, in the words of live;
   recheck: a rule can drop later ones from bits (eg_cookie_gates()) */

static EG_INLINE void
eg_eval_bits(eg_state_t *st, uint64_t *bits, const uint64_t *notes,
    uint64_t live, int recheck)
{
    size_t             w;
    uint64_t           word;
    eg_match_t         m;
    eg_rule_t        **rules;
    const eg_rule_t   *r;

    /* the rule set's list, read once (the compiler cannot tell that the
       calls below leave st->rs as it is) */

    rules = st->rs->rules;

    while (live) {
        w = eg_ctz64(live);
        live &= live - 1;
        word = bits[w] & ~notes[w];

        while (word) {
            r = rules[w * 64 + (size_t) eg_ctz64(word)];
            word &= word - 1;

            if (!eg_rule_skipped(st, r) && eg_rule_matches(st, r, &m)) {
                eg_match_found(st, r, &m);
            }

            if (recheck) {
                word &= bits[w];
            }
        }
    }
}


/* the rules whose byte probe at a place of the tables the request's byte
   there fails (eg_plan_lack_bytes()), as eg_probe() would fail them */

static EG_INLINE void
eg_lack_bytes(eg_state_t *st, uint64_t *bits)
{
    eg_str_t               s;
    const eg_lack_byte_t  *lb, *end;

    lb = st->rs->lack_byte;

    for (end = lb + st->rs->nlack_byte; lb < end; lb++) {
        if (!(bits[0] & lb->rules)) {
            continue;
        }

        if (lb->field <= EG_F_URI) {
            s = eg_target_value(st, lb->field);

        } else if (!eg_one_header(st, lb->slot, &s)) {
            continue;
        }

        bits[0] &= ~(s.len <= lb->pos
                     ? lb->rules
                     : lb->drop[s.data[lb->tail ? s.len - 1 - lb->pos
                                                : lb->pos]]);
    }
}


/*
 * A rule the request cannot match for what it lacks: a header, a cookie
 * of a wanted name, a path or query long enough (eg_plan_build()).
 */

static EG_INLINE int
eg_rule_skipped(eg_state_t *st, const eg_rule_t *r)
{
    const eg_probe_t  *p, *end;

    if (!(st->lacked & r->lacked)
        && ((r->need & ~st->present)
            || st->v->path.len < r->min_path
            || st->v->query.len < r->min_query))
    {
        return 1;
    }

    for (p = r->probes, end = p + r->nprobes; p < end; p++) {
        if (!eg_probe(st, p)) {
            return 1;
        }
    }

    if (r->need_cookies) {
        /* the Cookie header is there (need): parse it, once; a limit the
           parse meets is this rule's */
        st->rule = r;
        if (!eg_cookies(st)
            || (r->need_cookies & ~st->cookie_present))
        {
            return 1;
        }
    }

    return 0;
}


/* the bound on the bytes of one header, or of the Cookie headers */

static EG_INLINE size_t
eg_max_header_bytes(eg_state_t *st)
{
    return st->opts->max_header_bytes ? st->opts->max_header_bytes
                                      : EG_DEFAULT_MAX_HEADER_BYTES;
}


/* the one value of the header of slot, if the request sends it once and
   within the bound: 1; else 0, and the rule decides (and reports a limit) */

static EG_INLINE int
eg_one_header(eg_state_t *st, int slot, eg_str_t *s)
{
    const eg_header_t  *h;

    if (!(st->present & ((uint32_t) 1 << slot))
        || st->end[slot] != st->first[slot] + 1)
    {
        return 0;
    }

    h = &st->req->headers[st->first[slot]];
    if (h->value.len > eg_max_header_bytes(st)) {
        return 0;
    }

    *s = h->value;
    return 1;
}


/* the method, path, query or uri (field <= EG_F_URI), or the client:
   known at once */

static EG_INLINE eg_str_t
eg_target_value(eg_state_t *st, unsigned field)
{
    switch (field) {
    case EG_F_METHOD:
        return st->req->method;
    case EG_F_PATH:
        return st->v->path;
    case EG_F_QUERY:
        return st->v->query;
    case EG_F_CLIENT:
        return st->req->client_addr;
    default:
        return st->req->target;
    }
}


/* 0 when the request fails a probe of the rule (eg_plan_probes()) */

static EG_INLINE int
eg_probe(eg_state_t *st, const eg_probe_t *p)
{
    unsigned       k;
    eg_str_t       s;
    unsigned char  b;

    switch (p->kind) {

    case EG_PROBE_BYTE:
        if (p->field <= EG_F_URI) {
            s = eg_target_value(st, p->field);

        } else if (!eg_one_header(st, p->slot, &s)) {
            return 1;
        }

        if (s.len <= p->pos) {
            return 0;
        }

        b = s.data[p->tail ? s.len - 1 - p->pos : p->pos];
        return eg_byte_in(p->set, b);

    case EG_PROBE_ANCHOR:
        if ((st->anchor_done & p->mask) == p->mask) {
            return (st->anchor_res & p->mask) != 0;
        }

        if (p->mask & (p->mask - 1)) {
            return eg_probe_anchors(st, p);
        }

        /* one anchor, the usual probe: looked for here */

        k = eg_ctz64(p->mask);
        s = eg_target_value(st, st->rs->anchor_field[k]);
        st->anchor_done |= p->mask;

        if (s.len && memchr(s.data, st->rs->anchor_byte[k], s.len)) {
            st->anchor_res |= p->mask;
            return 1;
        }

        return 0;

    case EG_PROBE_METHOD:
        if (!(st->have & EG_HAVE_METHOD)) {
            eg_probe_method(st);
        }
        return ((st->method & p->mask) != 0) != p->negate;

    default: /* EG_PROBE_TRUSTED */
        return st->opts->ntrusted != 0;
    }
}


/* 1 if the request has one of the anchors in the probe's mask (each
   looked for once), or passes its pair, parameter or line probe
   (EG_PROBE_PAIR, EG_PROBE_PARAM, EG_PROBE_LINE) */

static int
eg_probe_anchors(eg_state_t *st, const eg_probe_t *p)
{
    uint64_t  mask;

    /* a dispatch without a frame: each kind in its own function */

    mask = p->mask;

    if (mask == EG_PROBE_PAIR) {
        return eg_probe_pair(st, p);
    }

    if (mask == EG_PROBE_PARAM) {
        return eg_probe_param(st, p);
    }

    if ((mask & EG_PROBE_LINE) == EG_PROBE_LINE) {
        return eg_probe_line_slot(st, mask);
    }

    return eg_probe_bytes(st, mask);
}


/* the anchors of mask, each looked for once */

static int
eg_probe_bytes(eg_state_t *st, uint64_t mask)
{
    unsigned  k;
    uint64_t  todo;
    eg_str_t  s;

    todo = mask & ~st->anchor_done;

    while (todo) {
        k = eg_ctz64(todo);
        todo &= todo - 1;

        s = eg_target_value(st, st->rs->anchor_field[k]);

        if (s.len && memchr(s.data, st->rs->anchor_byte[k], s.len)) {
            st->anchor_res |= (uint64_t) 1 << k;
        }

        st->anchor_done |= (uint64_t) 1 << k;
    }

    return (st->anchor_res & mask) != 0;
}


/* a line probe: its slot's bit holds the line's answer, for every rule
   that has it */

static int
eg_probe_line_slot(eg_state_t *st, uint64_t mask)
{
    if (eg_probe_line(st, st->rs->anchor_line[eg_ctz64(mask)])) {
        st->anchor_res |= mask & ~EG_PROBE_LINE;
    }

    st->anchor_done |= mask;

    return (st->anchor_res & mask) != 0;
}


/*
 * A line probe (eg_plan_probe_line()): the line holds, by its own test, on
 * the value it reads.  A header that is not there once, or is too long,
 * passes: the rule decides it, and reports the limit.
 */

static int
eg_probe_line(eg_state_t *st, const eg_cond_t *c)
{
    eg_str_t  s;

    if (c->field != EG_F_HEADER) {
        s = eg_target_value(st, c->field);

    } else if (!eg_one_header(st, c->slot, &s)) {
        return 1;
    }

    return (c->test(st, c, s) != 0) != (c->negate != 0);
}


/*
 * A pair probe (eg_plan_probe_anchor()): the value has the byte set[0]
 * and, after it (pos 1) or before it (pos 0), set[1], with its 0x20 bit
 * set where set[1] is a letter.  The rule's anchor probe, just before it,
 * found the byte, so no memchr() looks for it again first: where SSE2 is,
 * a value of 17 bytes or more is read 16 pairs at a time (the last block
 * ends at the value's end); a shorter one byte by byte, by memchr().
 */

static int
eg_probe_pair(eg_state_t *st, const eg_probe_t *p)
{
    int                   side;
    eg_str_t              s;
    unsigned char         b, other, fold;
    const unsigned char  *q, *end;
#if (EG_MATCH_SSE2)
    size_t                i, last;
    __m128i               v1, v2, f1, f2;
#endif

    s = eg_target_value(st, p->field);
    b = p->set[0];
    other = p->set[1];
    fold = p->set[2];
    side = p->pos ? 1 : -1;

#if (EG_MATCH_SSE2)
    if (s.len >= 17) {
        /* the pair's first byte and its second, each with its 0x20 bit
           set where it is a letter */
        v1 = _mm_set1_epi8((char) (side > 0 ? b : other));
        v2 = _mm_set1_epi8((char) (side > 0 ? other : b));
        f1 = _mm_set1_epi8((char) (side > 0 ? 0 : fold));
        f2 = _mm_set1_epi8((char) (side > 0 ? fold : 0));
        last = s.len - 17;

        for (i = 0; /* void */; i += 16) {
            if (i > last) {
                i = last;
            }

            if (_mm_movemask_epi8(_mm_and_si128(
                    _mm_cmpeq_epi8(_mm_or_si128(_mm_loadu_si128(
                        (const __m128i *) (s.data + i)), f1), v1),
                    _mm_cmpeq_epi8(_mm_or_si128(_mm_loadu_si128(
                        (const __m128i *) (s.data + i + 1)), f2), v2))))
            {
                return 1;
            }

            if (i == last) {
                return 0;
            }
        }
    }
#endif

    /* each of the byte that has a neighbour on its side */

    q = s.data + (side < 0);
    end = s.data + s.len - (side > 0);

    while (q < end && (q = memchr(q, b, end - q)) != NULL) {
        if ((q[side] | fold) == other) {
            return 1;
        }
        q++;
    }

    return 0;
}


/*
 * A parameter probe (eg_plan_probe_param()): a query (or one that could
 * not be decoded: the decoded query is empty only when the target's is),
 * a Cookie header, or a first Content-Type whose first byte is that of
 * a form's, in either case.
 */

static int
eg_probe_param(eg_state_t *st, const eg_probe_t *p)
{
    unsigned char       b;
    const eg_header_t  *h;

    if (st->v->query.len != 0 || st->v->query.data == NULL
        || (st->present & p->pos))
    {
        return 1;
    }

    if (!(st->present & ((uint32_t) 1 << p->slot))) {
        return 0;
    }

    h = &st->req->headers[st->first[p->slot]];
    b = h->value.len ? (h->value.data[0] | 0x20) : 0;

    return b == 'a' || b == 'm';
}


static void
eg_probe_method(eg_state_t *st)
{
    size_t               k;
    uint64_t             w;
    eg_str_t             m;
    const eg_ruleset_t  *rs = st->rs;

    st->have |= EG_HAVE_METHOD;

    m = st->req->method;

    if (m.len && !((rs->method_keys >> eg_method_key(m.len, m.data[0])) & 1))
    {
        return;
    }

    /* the method and the names as words: their first eight bytes */

    w = eg_lower8(eg_word(m));

    for (k = 0; k < rs->nmethods; k++) {
        if (rs->methods[k].len == m.len
            && rs->method_words[k] == w
            && (rs->methods[k].len <= 8 || eg_ieq_lower(m, rs->methods[k])))
        {
            st->method = (uint64_t) 1 << k;
            return;
        }
    }
}


static void
eg_match_found(eg_state_t *st, const eg_rule_t *r, const eg_match_t *m)
{
    eg_verdict_t  *v = st->v;

    v->total++;

    if (v->nmatches < EG_MAX_MATCHES) {
        v->matches[v->nmatches++] = *m;
    }

    if (r->action > v->action) {
        v->action = r->action;
    }
}


/*
 * One pass over the request's headers: the first of each header a rule
 * reads.  A name the caller has matched (req->header_slots) is not
 * compared again; any other only with the wanted ones of its key, its
 * length and first byte (eg_hdr_key()): most have none.
 */

static void
eg_index_headers(eg_state_t *st)
{
    int                   k;
    size_t                i, n, j, nhdr;
    uint32_t              present;
    const uint8_t        *slots;
    const eg_header_t    *h;
    const eg_ruleset_t   *rs = st->rs;

    h = st->req->headers;
    n = st->req->nheaders;
    slots = st->req->header_slots;
    i = 0;

    /*
     * The usual request from nginx: a slot on each header it passed, no
     * two the same, and no gates to open: the slots are taken in a loop
     * of their own, with what it keeps in registers (the stores to st
     * could be to rs, for the compiler); with gates, in a second loop,
     * so that the first stays as it is.  The first header without a
     * slot, or with a slot seen before, goes on below.
     */

    if (slots != NULL && rs->ungated == NULL) {
        nhdr = rs->nhdr;
        present = st->present;

        for ( /* void */ ; i < n; i++) {
            j = (size_t) slots[i] - 1;

            if (j >= nhdr || ((present >> j) & 1)) {
                break;
            }

            present |= (uint32_t) 1 << j;
            st->first[j] = i;
            st->end[j] = i + 1;
        }

        st->present = present;

    } else if (slots != NULL) {
        /* the same, opening each slot's gate (many rules: eg_plan_gates()) */

        for ( /* void */ ; i < n; i++) {
            j = (size_t) slots[i] - 1;

            if (j >= rs->nhdr || (st->present & ((uint32_t) 1 << j))) {
                break;
            }

            st->present |= (uint32_t) 1 << j;
            st->first[j] = i;
            st->end[j] = i + 1;
            eg_open_gate(st, j);
        }
    }

    for ( /* void */ ; i < n; i++) {
        if (slots && slots[i] && slots[i] <= rs->nhdr) {
            k = slots[i] - 1;

        } else if (h[i].name.len == 0) {
            continue;

        } else {
            for (k = rs->hdr_first[eg_hdr_key(h[i].name.len,
                                              h[i].name.data[0])];
                 k >= 0;
                 k = rs->hdr_next[k])
            {
                if (eg_ieq_fold(h[i].name, rs->hdr_names[k],
                                &rs->hdr_folds[k]))
                {
                    break;
                }
            }

            if (k < 0) {
                if (rs->nhdr_ovf) {
                    eg_open_gate_by_name(st, h[i].name);
                }

                continue;
            }
        }

        if (!(st->present & ((uint32_t) 1 << k))) {
            st->present |= (uint32_t) 1 << k;
            st->first[k] = i;

            if (rs->ungated) {
                eg_open_gate(st, k);
            }
        }

        st->end[k] = i + 1;
    }
}


/* the rules of gate g are open to this request */

static EG_INLINE void
eg_open_gate(eg_state_t *st, size_t g)
{
    size_t               d;
    const eg_ruleset_t  *rs = st->rs;

    d = rs->gate_dense_of[g];

    if (d) {
        eg_bits_or(st->allowed, &rs->gate_dense[(d - 1) * rs->gate_words],
                   rs->gate_words);
        return;
    }

    eg_bits_set(st->allowed, rs->gate_rules + rs->gate_start[g],
                rs->gate_rules + rs->gate_start[g + 1]);
}


/* the bits of a list of rules */

static EG_INLINE void
eg_bits_set(uint64_t *bits, const uint32_t *rule, const uint32_t *end)
{
    for ( /* void */ ; rule < end; rule++) {
        bits[*rule / 64] |= (uint64_t) 1 << (*rule % 64);
    }
}


/* a header past the slots: its gate, by hash */

static EG_NOINLINE void
eg_open_gate_by_name(eg_state_t *st, eg_str_t name)
{
    uint32_t             k;
    const eg_ruleset_t  *rs = st->rs;

    /* most names differ from every one past the slots in length or in
       their first byte (a name is never empty) */

    if (name.len == 0
        || !((rs->hdr_ovf_lens >> (name.len < 64 ? name.len : 0)) & 1)
        || !eg_byte_in(rs->hdr_ovf_first, name.data[0]))
    {
        return;
    }

    k = eg_name_slot(rs->hdr_ovf_tab, rs->hdr_ovf_mask, rs->hdr_ovf, name);

    if (rs->hdr_ovf_tab[k]) {
        eg_open_gate(st, rs->nhdr + rs->hdr_ovf_tab[k] - 1);
    }
}


/*
 * The grams of the values rules have gram gates on: the path, query, uri,
 * method, client or the instances of a header.  A header instance over
 * the byte bound opens every rule of its target, which then reports the
 * limit.
 */

static EG_NOINLINE void
eg_open_grams(eg_state_t *st)
{
    int                  slot;
    size_t               t, i, maxbytes;
    const eg_header_t   *h;
    const eg_ruleset_t  *rs = st->rs;

    maxbytes = eg_max_header_bytes(st);

    for (t = 0; t < rs->ngram_targets; t++) {
        if (rs->gram_field[t] != EG_F_HEADER) {
            eg_open_grams_in(st, (uint32_t) t,
                             eg_target_value(st, rs->gram_field[t]));
            continue;
        }

        slot = rs->gram_slot[t];

        for (i = 0; (h = eg_next_header(st, slot, rs->hdr_names[slot], &i))
                    != NULL; )
        {
            if (h->value.len > maxbytes) {
                eg_bits_or(st->allowed,
                           &rs->gram_target_rules[t * rs->gate_words],
                           rs->gate_words);
                break;
            }

            eg_open_grams_in(st, (uint32_t) t, h->value);
        }
    }
}


static void
eg_open_grams_in(eg_state_t *st, uint32_t target, eg_str_t s)
{
    size_t                stride;
    uint32_t              g, h, k;
    const eg_gram_t      *e;
    const unsigned char  *p, *end;
    const eg_ruleset_t   *rs = st->rs;

    if (s.len < 4) {
        return;
    }

    stride = rs->gram_stride[target];

    for (p = s.data, end = s.data + s.len - 3; p < end; p += stride) {
        g = eg_gram_at(p);
        h = eg_gram_hash(g, target);
        k = h >> 16;

        if (!((rs->gram_bloom[k / 64] >> (k % 64)) & 1)) {
            continue;
        }

        e = eg_gram_find(rs, g, target, h);

        if (e->gate) {
            eg_open_gate(st, e->gate - 1);
        }
    }
}


/*
 * The next header named lname (lower case) from *i on, NULL past the last.
 * With a slot (not -1) only the slot's range is read, and its first
 * header, known to have the name, is not compared again.
 */

static EG_INLINE const eg_header_t *
eg_next_header(eg_state_t *st, int slot, eg_str_t lname, size_t *i)
{
    size_t              end;
    const eg_header_t  *h;

    end = st->req->nheaders;

    if (slot >= 0) {
        if (!(st->present & ((uint32_t) 1 << slot))) {
            return NULL;
        }

        end = st->end[slot];

        if (*i <= st->first[slot]) {
            *i = st->first[slot] + 1;
            return &st->req->headers[*i - 1];
        }
    }

    while (*i < end) {
        h = &st->req->headers[(*i)++];

        if (eg_ieq_lower(h->name, lname)) {
            return h;
        }
    }

    return NULL;
}


static int
eg_rule_matches(eg_state_t *st, const eg_rule_t *r, eg_match_t *m)
{
    int               rc;
    eg_str_t          hit;
    const eg_cond_t  *c, *end, *shown;

    st->rule = r;
    shown = NULL;
    hit.data = NULL;
    hit.len = 0;

    for (c = r->conds, end = c + r->nconds; c < end; c++) {
        st->hit.data = NULL;
        st->hit.len = 0;

        rc = eg_cond(st, c);

        if (rc <= 0) {
            if (rc < 0) {
                /* the body decides; the caller reads it and asks again */
                st->v->need_body = 1;
            }
            return 0;
        }

        /* the report names the last positive line: rules put the cheap,
           broad tests first and the telling one last */

        if (!c->negate || shown == NULL) {
            shown = c;
            hit = st->hit;
        }
    }

    m->rule = r;
    m->value = hit;

    if (shown) {
        m->field = shown->display;

    } else {
        m->field.data = NULL;
        m->field.len = 0;
    }

    return 1;
}


static int
eg_cond(eg_state_t *st, const eg_cond_t *c)
{
    int  rc;

    if (c->memo >= 0) {
        rc = eg_cond_memo(st, c);
        return c->negate ? !rc : rc;
    }

    switch (c->field) {

    case EG_F_METHOD:
        rc = eg_test(st, c, st->req->method);
        break;

    case EG_F_PATH:             /* eg_eval() normalized the path first */
        rc = eg_test(st, c, st->v->path);
        break;

    case EG_F_QUERY:
        rc = eg_test(st, c, st->v->query);
        break;

    case EG_F_URI:
        rc = eg_test(st, c, st->req->target);
        break;

    case EG_F_COOKIE:
    case EG_F_COOKIE_NAMES:
        rc = eg_test_cookies(st, c);
        break;

    case EG_F_HEADER:
        rc = eg_test_headers(st, c);
        break;

    default:
        rc = eg_cond_other(st, c);
        if (rc < 0) {
            return rc;
        }
    }

    return c->negate ? !rc : rc;
}


/*
 * A field with one value per request (method, path, query, uri, cookies,
 * uri-decoded): sets *value, 0 when the request has none (no Cookie).
 * The path and query are eg_eval()'s, normalized first.
 */

static int
eg_single_value(eg_state_t *st, const eg_cond_t *c, eg_str_t *value)
{
    switch (c->field) {

    case EG_F_METHOD:
    case EG_F_PATH:
    case EG_F_QUERY:
    case EG_F_URI:
        *value = eg_target_value(st, c->field);
        return 1;

    case EG_F_COOKIES:
        if (!eg_cookies(st) || !eg_raw_cookies(st)) {
            return 0;
        }
        *value = st->raw;
        return 1;

    default: /* EG_F_URI_DECODED */
        if (!(st->have & EG_HAVE_URI_DEC)) {
            st->have |= EG_HAVE_URI_DEC;
            (void) eg_url_decode(st->req->target, 1, 0, st->alloc,
                                 &st->uri_decoded);
        }
        *value = st->uri_decoded;
        return 1;
    }
}


/* the same regex on the same value: asked once per request */

static int
eg_cond_memo(eg_state_t *st, const eg_cond_t *c)
{
    int       rc;
    uint64_t  bit;
    eg_str_t  value;

    bit = (uint64_t) 1 << c->memo;

    if (st->memo_done & bit) {
        rc = (st->memo_res & bit) != 0;
        if (rc) {
            (void) eg_single_value(st, c, &st->hit);
        }
        return rc;
    }

    rc = eg_single_value(st, c, &value) ? eg_test(st, c, value) : 0;

    st->memo_done |= bit;
    st->memo_res |= rc ? bit : 0;

    return rc;
}


/* the fields rules of the benign path rarely read; -1: the body decides */

static int
eg_cond_other(eg_state_t *st, const eg_cond_t *c)
{
    int       rc;
    eg_str_t  value;

    switch (c->field) {

    case EG_F_COOKIES:
    case EG_F_URI_DECODED:
        return eg_single_value(st, c, &value) ? eg_test(st, c, value) : 0;

    case EG_F_ARG:
        return eg_test_pairs(st, c, eg_query_text(st));

    case EG_F_PARAM:

        /* ASP.NET Request.Params: query string, form, cookies */

        rc = eg_test_pairs(st, c, eg_query_text(st));

        if (rc == 0 && eg_form_body(st)) {
            rc = eg_test_body(st, c);
            if (rc < 0) {
                return rc;
            }
        }

        if (rc == 0) {
            rc = eg_test_cookies(st, c);
        }

        return rc;

    case EG_F_BODY:
    case EG_F_JSON:
    case EG_F_JSON_VALUES:
    case EG_F_FORM:
        return eg_test_body(st, c);

    case EG_F_CLIENT:
        return eg_test_client(st, c);

    default:
        return 0;
    }
}


/* does one value satisfy the operator (before "not")? */

static EG_INLINE int
eg_test(eg_state_t *st, const eg_cond_t *c, eg_str_t s)
{
    if (c->test(st, c, s)) {
        st->hit = s;
        return 1;
    }

    return 0;
}


/* the test of a condition's operator, once per load; "untrusted" is
   decided by eg_test_client(), on any other field it holds for nothing */

void
eg_plan_test(eg_cond_t *c)
{
    static const eg_test_pt  tests[] = {
        [EG_OP_IS] = eg_test_is,
        [EG_OP_PREFIX] = eg_test_prefix,
        [EG_OP_SUFFIX] = eg_test_suffix,
        [EG_OP_CONTAINS] = eg_test_contains,
        [EG_OP_REGEX] = eg_test_regex,
        [EG_OP_BACKEND] = eg_test_backend,
        [EG_OP_PRESENT] = eg_test_present,
        [EG_OP_UNTRUSTED] = eg_test_none
    };

    c->test = (size_t) c->op < sizeof(tests) / sizeof(tests[0])
              && tests[c->op] ? tests[c->op] : eg_test_none;
}


/*
 * is, prefix, suffix: arguments are lower case.  A value whose first
 * (suffix: last) byte no argument has, or ("is") whose length none has,
 * is out at once.
 */

static int
eg_test_is(eg_state_t *st, const eg_cond_t *c, eg_str_t s)
{
    unsigned char    b;
    const eg_str_t  *a, *end;

    (void) st;

    b = s.len ? s.data[0] : 0;

    if (c->has_edge
        && (s.len == 0 || !(c->edge[b >> 3] & (1 << (b & 7)))
            || !((c->arg_lens >> (s.len < 63 ? s.len : 63)) & 1)))
    {
        return 0;
    }

    b = eg_lower(b);

    for (a = c->args, end = a + c->nargs; a < end; a++) {
        if (a->len != s.len) {
            continue;
        }

        if (a->len == 0) {
            return 1;           /* "" is the empty value */
        }

        if (a->data[0] == b && eg_arg_eq(c, a, s)) {
            return 1;
        }
    }

    return 0;
}


/* the value s (of a's length) is the argument a of c, in any case */

static EG_INLINE int
eg_arg_eq(const eg_cond_t *c, const eg_str_t *a, eg_str_t s)
{
    return c->folds ? eg_ieq_fold(s, *a, &c->folds[a - c->args])
                    : eg_ieq_lower(s, *a);
}


/* prefix (tail 0) and suffix (tail 1): one body, specialized by the two
   callers' constant */

static EG_INLINE int
eg_test_end(const eg_cond_t *c, eg_str_t s, int tail)
{
    uint32_t         m;
    eg_str_t         part;
    unsigned char    b;
    const eg_str_t  *a, *end;

    b = s.len ? s.data[tail ? s.len - 1 : 0] : 0;

    if (c->has_edge && (s.len == 0 || !(c->edge[b >> 3] & (1 << (b & 7))))) {
        return 0;
    }

    b = eg_lower(b);

    if (c->byedge) {
        /* no argument is empty (has_edge) */

        m = c->byedge[b];

        if (s.len >= 2) {
            m &= c->byedge[256 + eg_lower(s.data[tail ? s.len - 2 : 1])];
        }

        for ( /* void */ ; m; m &= m - 1) {
            a = &c->args[eg_ctz32(m)];

            if (s.len >= a->len) {
                part.data = tail ? s.data + s.len - a->len : s.data;
                part.len = a->len;

                if (eg_arg_eq(c, a, part)) {
                    return 1;
                }
            }
        }

        return 0;
    }

    for (a = c->args, end = a + c->nargs; a < end; a++) {
        if (a->len == 0) {
            return 1;
        }

        if (s.len < a->len || a->data[tail ? a->len - 1 : 0] != b) {
            continue;
        }

        part.data = tail ? s.data + s.len - a->len : s.data;
        part.len = a->len;

        if (eg_arg_eq(c, a, part)) {
            return 1;
        }
    }

    return 0;
}


static int
eg_test_prefix(eg_state_t *st, const eg_cond_t *c, eg_str_t s)
{
    (void) st;

    return eg_test_end(c, s, 0);
}


static int
eg_test_suffix(eg_state_t *st, const eg_cond_t *c, eg_str_t s)
{
    (void) st;

    return eg_test_end(c, s, 1);
}


static int
eg_test_backend(eg_state_t *st, const eg_cond_t *c, eg_str_t s)
{
    (void) c;

    return eg_backend_check(s, st->opts->backends, st->opts->nbackends)
           != EG_BACKEND_OK;
}


static int
eg_test_present(eg_state_t *st, const eg_cond_t *c, eg_str_t s)
{
    (void) st;
    (void) c;
    (void) s;

    return 1;
}


static int
eg_test_none(eg_state_t *st, const eg_cond_t *c, eg_str_t s)
{
    (void) st;
    (void) c;
    (void) s;

    return 0;
}


static int
eg_test_contains(eg_state_t *st, const eg_cond_t *c, eg_str_t s)
{
    size_t  i;

    (void) st;

    for (i = 0; i < c->nargs; i++) {
        if (eg_icontains(s, c->args[i])) {
            return 1;
        }
    }

    return 0;
}


static EG_NOINLINE int
eg_test_regex(eg_state_t *st, const eg_cond_t *c, eg_str_t s)
{
    int  rc;

    if (s.len < c->minlen) {
        return 0;
    }

    if (!(st->have & EG_HAVE_LIMITS)) {
        /* the limits are the caller's (per location), the context is
           shared: set before the request's first regex */
        st->have |= EG_HAVE_LIMITS;
        eg_ruleset_set_regex_limits((eg_ruleset_t *) st->rs,
            st->opts->match_limit ? st->opts->match_limit
                                  : EG_DEFAULT_MATCH_LIMIT,
            st->opts->depth_limit ? st->opts->depth_limit
                                  : EG_DEFAULT_DEPTH_LIMIT);
    }

    if (s.data == NULL) {
        s.data = (const unsigned char *) "";
    }

    rc = c->jit ? pcre2_jit_match(c->re, s.data, s.len, 0, 0, st->rs->md,
                                  st->rs->mctx)
                : pcre2_match(c->re, s.data, s.len, 0, 0, st->rs->md,
                              st->rs->mctx);

    if (rc == PCRE2_ERROR_NOMATCH) {
        return 0;
    }

    if (rc < 0) {
        /* match or depth limit, JIT stack: stop, and say so */
        eg_limit(st, EG_LIMIT_REGEX);
        return 0;
    }

    return 1;
}


static int
eg_test_cookies(eg_state_t *st, const eg_cond_t *c)
{
    size_t  i;

    if (!eg_cookies(st)) {
        return 0;
    }

    for (i = 0; i < st->ncookies; i++) {
        if (c->field == EG_F_COOKIE_NAMES) {
            if (eg_test(st, c, st->cookies[i].name)) {
                return 1;
            }
            continue;
        }

        if (eg_ieq_lower(st->cookies[i].name, c->key)
            && eg_test(st, c, st->cookies[i].value))
        {
            return 1;
        }
    }

    return 0;
}


static int
eg_test_headers(eg_state_t *st, const eg_cond_t *c)
{
    size_t              i, maxbytes;
    const eg_header_t  *h;

    maxbytes = eg_max_header_bytes(st);

    for (i = 0; (h = eg_next_header(st, c->slot, c->key, &i)) != NULL; ) {
        if (h->value.len > maxbytes) {
            eg_limit(st, EG_LIMIT_HEADER_BYTES);
            continue;
        }

        if (eg_test(st, c, h->value)) {
            return 1;
        }
    }

    return 0;
}


static eg_str_t
eg_query_text(eg_state_t *st)
{
    eg_str_t              q = { NULL, 0 };
    const unsigned char  *qm;

    qm = memchr(st->req->target.data, '?', st->req->target.len);
    if (qm) {
        q.data = qm + 1;
        q.len = st->req->target.data + st->req->target.len - q.data;
    }

    return q;
}


/* name=value pairs by name, decoded as HttpUtility.ParseQueryString does */

static int
eg_test_pairs(eg_state_t *st, const eg_cond_t *c, eg_str_t text)
{
    unsigned              rounds;
    eg_str_t              pair, name, value;
    const unsigned char  *s, *end, *amp, *eq;

    if (text.data == NULL) {
        return 0;
    }

    rounds = st->opts->decode_rounds ? st->opts->decode_rounds
                                     : EG_DEFAULT_DECODE_ROUNDS;
    s = text.data;
    end = text.data + text.len;

    while (s < end) {
        amp = memchr(s, '&', end - s);
        if (amp == NULL) {
            amp = end;
        }

        pair.data = s;
        pair.len = amp - s;
        s = amp + 1;

        eq = memchr(pair.data, '=', pair.len);
        name.data = pair.data;
        name.len = eq ? (size_t) (eq - pair.data) : 0;

        if (eg_url_decode(name, rounds, 1, st->alloc, &name) != 0) {
            if (name.data == NULL) {
                return 0;
            }
            eg_limit(st, EG_LIMIT_DECODE_ROUNDS);
        }

        if (!eg_ieq_lower(name, c->key)) {
            continue;
        }

        value.data = eq ? eq + 1 : pair.data;
        value.len = pair.data + pair.len - value.data;

        if (eg_url_decode(value, rounds, 1, st->alloc, &value) != 0) {
            if (value.data == NULL) {
                return 0;
            }
            eg_limit(st, EG_LIMIT_DECODE_ROUNDS);
        }

        if (eg_test(st, c, value)) {
            return 1;
        }
    }

    return 0;
}


/*
 * An HTML form body, which ASP.NET parses into Request.Form: 1 for
 * application/x-www-form-urlencoded, 2 for multipart/form-data, else 0.
 */

static int
eg_form_body(eg_state_t *st)
{
    size_t              i;
    eg_str_t            v;
    const eg_header_t  *h;
    static const eg_str_t  ct = eg_string("content-type");
    static const eg_str_t  form = eg_string("application/x-www-form-urlencoded");
    static const eg_str_t  multi = eg_string("multipart/form-data");

    if (st->req->body_state == EG_BODY_NONE) {
        return 0;
    }

    /* the first Content-Type, as ASP.NET reads it */

    i = 0;
    h = eg_next_header(st, st->rs->slot_ctype, ct, &i);
    if (h == NULL) {
        return 0;
    }

    v.data = h->value.data;
    v.len = h->value.len < form.len ? h->value.len : form.len;
    if (eg_str_ieq(v, form)) {
        return 1;
    }

    v.len = h->value.len < multi.len ? h->value.len : multi.len;
    return eg_str_ieq(v, multi) ? 2 : 0;
}


/*
 * multipart/form-data fields by name: each part's Content-Disposition
 * name="..." and the part's content up to the next CRLF "--".  Read
 * without the boundary, so a malformed boundary cannot hide a part.
 */

static int
eg_test_multipart(eg_state_t *st, const eg_cond_t *c, eg_str_t body)
{
    eg_str_t              name, value, hay;
    const unsigned char  *p, *end, *q, *e;
    static const eg_str_t  key = eg_string("name=");

    p = body.data;
    end = body.data + body.len;

    while (p < end) {
        hay.data = p;
        hay.len = end - p;

        /* the next "name=" */

        for (q = p; q + key.len <= end; q++) {
            hay.data = q;
            hay.len = key.len;
            if (eg_str_ieq(hay, key)) {
                break;
            }
        }

        if (q + key.len > end) {
            return 0;
        }

        q += key.len;
        p = q;

        if (q < end && *q == '"') {
            q++;
            for (e = q; e < end && *e != '"'; e++) { /* void */ }
        } else {
            for (e = q; e < end && *e != ';' && *e != '\r' && *e != '\n';
                 e++)
            { /* void */ }
        }

        name.data = q;
        name.len = e - q;

        if (!eg_ieq_lower(name, c->key)) {
            continue;
        }

        for (q = e; q + 3 < end; q++) {
            if (q[0] == '\r' && q[1] == '\n' && q[2] == '\r' && q[3] == '\n') {
                break;
            }
        }

        if (q + 3 >= end) {
            return 0;
        }

        value.data = q + 4;

        for (e = value.data; e + 3 < end; e++) {
            if (e[0] == '\r' && e[1] == '\n' && e[2] == '-' && e[3] == '-') {
                break;
            }
        }

        value.len = (e + 3 < end ? e : end) - value.data;

        if (eg_test(st, c, value)) {
            return 1;
        }

        p = value.data;
    }

    return 0;
}


/* -1 while the body is unread or too large to inspect */

static int
eg_test_body(eg_state_t *st, const eg_cond_t *c)
{
    int              rc;
    eg_str_t         empty = { (const unsigned char *) "", 0 };
    const eg_str_t  *body = &st->req->body;

    switch (st->req->body_state) {

    case EG_BODY_PENDING:
        return -1;

    case EG_BODY_TOO_LARGE:
        eg_limit(st, EG_LIMIT_BODY);
        return -1;

    case EG_BODY_NONE:
        body = &empty;
        break;

    default:
        break;
    }

    switch (c->field) {

    case EG_F_BODY:
        return eg_test(st, c, *body);

    case EG_F_FORM:
    case EG_F_PARAM:
        switch (eg_form_body(st)) {
        case 1:
            return eg_test_pairs(st, c, *body);
        case 2:
            return eg_test_multipart(st, c, *body);
        default:
            return 0;
        }

    default:
        st->cond = c;
        st->json_rc = 0;
        rc = eg_json_scan(*body, st->alloc, eg_json_value, st);
        return rc > 0;
    }
}


static int
eg_json_value(void *data, eg_str_t key, eg_str_t value)
{
    eg_state_t       *st = data;
    const eg_cond_t  *c = st->cond;

    if (c->field == EG_F_JSON && !eg_ieq_lower(key, c->key)) {
        return 0;
    }

    return eg_test(st, c, value);
}


static int
eg_test_client(eg_state_t *st, const eg_cond_t *c)
{
    size_t                i, bytes;
    unsigned              rest;
    eg_cidr_t             addr;
    const eg_cidr_t      *net;

    if (c->op != EG_OP_UNTRUSTED) {
        return eg_test(st, c, st->req->client_addr);
    }

    /* opt-in: with no trusted networks configured nobody is untrusted */

    if (st->opts->ntrusted == 0) {
        return 0;
    }

    st->hit = st->req->client_addr;

    if (eg_cidr_parse(st->req->client_addr, &addr) != 0) {
        return 1;
    }

    for (i = 0; i < st->opts->ntrusted; i++) {
        net = &st->opts->trusted[i];
        bytes = net->bits / 8;
        rest = net->bits % 8;

        if (memcmp(addr.addr, net->addr, bytes) != 0) {
            continue;
        }

        if (rest && ((addr.addr[bytes] ^ net->addr[bytes])
                     & (0xff << (8 - rest)) & 0xff))
        {
            continue;
        }

        return 0;
    }

    return 1;
}


/* the path and query as IIS reads them, first thing in every request */

static void
eg_normalize(eg_state_t *st)
{
    unsigned  rounds, found;

    rounds = st->opts->decode_rounds ? st->opts->decode_rounds
                                     : EG_DEFAULT_DECODE_ROUNDS;
    found = 0;

    if (eg_uri_split(st->req->target, rounds, st->alloc, &st->v->path,
                     &st->v->query,
                     (st->rs->lack & EG_LACK_ANCHOR) ? st->rs->scan_anchors
                                                     : NULL,
                     &found)
        != 0)
    {
        eg_limit(st, EG_LIMIT_DECODE_ROUNDS);
    }

    /* the anchors the scan looked for, as eg_probe() would have found */

    st->scan_found = found;
    st->anchor_done = st->rs->scan_done[found];
    st->anchor_res = st->rs->scan_res[found];
}


/* the Cookie headers, parsed once; 0 if there are none */

static EG_INLINE int
eg_cookies(eg_state_t *st)
{
    if (st->have & EG_HAVE_COOKIES) {
        return st->ncookie_headers != 0;
    }

    return eg_need_cookies(st);
}


static int
eg_need_cookies(eg_state_t *st)
{
    int                 k;
    size_t              i, n, bytes, max, maxbytes, found;
    eg_str_t            hdrs[EG_MAX_COOKIE_HEADERS];
    const eg_header_t  *h;

    st->have |= EG_HAVE_COOKIES;

    maxbytes = eg_max_header_bytes(st);
    n = 0;
    bytes = 0;
    k = st->rs->slot_cookie;

    /* the usual request: one Cookie header, within the bound, from its
       slot (eg_one_header()); the loop finds the same, with its calls */

    if (k >= 0 && eg_one_header(st, k, &hdrs[0])) {
        n = 1;
        bytes = hdrs[0].len + 2;

    } else {
        for (i = 0; (h = eg_next_header(st, k, eg_cookie_name, &i)) != NULL; )
        {
            if (n == EG_MAX_COOKIE_HEADERS || bytes + h->value.len > maxbytes)
            {
                eg_limit(st, EG_LIMIT_HEADER_BYTES);
                break;
            }

            hdrs[n++] = h->value;
            bytes += h->value.len + 2;

            /* past the slot's last Cookie header (the usual request sends
               one) there is none to look for */

            if (k >= 0 && i >= st->end[k]) {
                break;
            }
        }
    }

    st->ncookie_headers = n;
    st->cookie_bytes = bytes;

    if (n == 0) {
        return 0;
    }

    /* "cookies", the raw header, is joined only if a rule reads it */

    st->raw = hdrs[0];

    max = st->opts->max_cookies ? st->opts->max_cookies
                                : EG_DEFAULT_MAX_COOKIES;

    /* a few wanted cookies fit the caller's stack array; many copies of
       one (an attack) get room from the allocator and a second pass */

    if (eg_cookie_parse_wanted(hdrs, n, st->cookies, EG_STACK_COOKIES, max,
                               st->rs, &found, &st->cookie_present)
        > max)
    {
        eg_limit(st, EG_LIMIT_COOKIES);
    }

    if (found > EG_STACK_COOKIES) {
        st->cookies = st->alloc->alloc(st->alloc->ctx,
                                       found * sizeof(eg_cookie_t));
        if (st->cookies == NULL) {
            return 0;
        }

        (void) eg_cookie_parse_names(hdrs, n, st->cookies, found, max, st->rs,
                                     &found);
    }

    st->ncookies = found;

    if (st->bits) {
        if (st->rs->cookie_ungated) {
            eg_cookie_gates(st);
        }

        if (st->rs->lack & EG_LACK_COOKIE) {
            st->bits[0] &= ~st->rs->lack_cookie[st->cookie_present & 0xff];
        }
    }

    return 1;
}


/* the rules gated on wanted names the parsed cookies lack: dropped */

static void
eg_cookie_gates(eg_state_t *st)
{
    int                  j;
    size_t               i, w;
    uint64_t             open[EG_SCOPE_MAX_WORDS];
    const eg_ruleset_t  *rs = st->rs;

    eg_bits_copy(open, rs->cookie_ungated, rs->gate_words);

    for (i = 0; i < st->ncookies; i++) {
        j = eg_cookie_wanted(rs, st->cookies[i].name);
        if (j < 0) {
            continue;
        }

        eg_bits_set(open, rs->cookie_gate_rules + rs->cookie_gate_start[j],
                    rs->cookie_gate_rules + rs->cookie_gate_start[j + 1]);
    }

    for (w = 0; w < rs->gate_words; w++) {
        st->bits[w] &= open[w];
    }
}


/*
 * "cookies" is the raw header as IIS's {HTTP_COOKIE}: several Cookie
 * headers (the ones eg_need_cookies() took, within the byte bound) are
 * joined with "; ", once.  0 when out of memory.
 */

static int
eg_raw_cookies(eg_state_t *st)
{
    size_t              i, k;
    unsigned char      *p;
    const eg_header_t  *h;

    if (st->ncookie_headers < 2 || (st->have & EG_HAVE_RAW)) {
        return 1;
    }

    p = st->alloc->alloc(st->alloc->ctx, st->cookie_bytes);
    if (p == NULL) {
        return 0;
    }

    st->have |= EG_HAVE_RAW;
    st->raw.data = p;

    for (i = 0, k = 0; k < st->ncookie_headers
                       && (h = eg_next_header(st, st->rs->slot_cookie,
                                              eg_cookie_name, &i))
                          != NULL; k++)
    {
        if (k) {
            *p++ = ';';
            *p++ = ' ';
        }
        memcpy(p, h->value.data, h->value.len);
        p += h->value.len;
    }

    st->raw.len = p - st->raw.data;
    return 1;
}


static void
eg_limit(eg_state_t *st, eg_limit_e limit)
{
    if (st->v->limit == EG_LIMIT_NONE) {
        st->v->limit = limit;
        st->v->limit_rule = st->rule;
    }
}


static int
eg_icontains(eg_str_t s, eg_str_t lower)
{
    size_t                i, j, k, last;
    unsigned char         first, up;
    const unsigned char  *p, *q, *end;

    if (lower.len == 0 || s.len < lower.len) {
        return lower.len == 0;
    }

    last = s.len - lower.len;

    /* a byte of the needle that is not a letter matches only itself:
       memchr() finds the candidates ("@", "x-rps-cat", "X-BEResource=") */

    for (k = 0; k < lower.len; k++) {
        if (lower.data[k] < 'a' || lower.data[k] > 'z') {
            break;
        }
    }

    if (k < lower.len) {
        p = s.data + k;
        end = s.data + last + k + 1;

        while (p < end && (p = memchr(p, lower.data[k], end - p)) != NULL) {
            q = p - k;              /* where the needle would start */

            for (j = 0; j < lower.len; j++) {
                if (eg_lower(q[j]) != lower.data[j]) {
                    break;
                }
            }

            if (j == lower.len) {
                return 1;
            }

            p++;
        }

        return 0;
    }

    first = lower.data[0];
    up = (unsigned char) (first & ~0x20);

    for (i = 0; i <= last; i++) {
        if (s.data[i] != first && s.data[i] != up) {
            continue;
        }

        for (j = 1; j < lower.len; j++) {
            if (eg_lower(s.data[i + j]) != lower.data[j]) {
                break;
            }
        }

        if (j == lower.len) {
            return 1;
        }
    }

    return 0;
}
