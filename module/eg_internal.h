/*
 * exchange_guard engine internals shared by the engine's own files.
 */

#ifndef EG_INTERNAL_H
#define EG_INTERNAL_H

#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "eg_engine.h"

/* AVX2 paths where the compiler can build them (see eg_avx2) */
#if defined(__SSE2__) && !defined(EG_NO_SIMD) && defined(__GNUC__)           \
    && defined(__x86_64__)
#include <immintrin.h>
#define EG_AVX2  1
#else
#define EG_AVX2  0
#endif

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)        /* as in eg_engine.h */
#endif


typedef enum {
    EG_F_METHOD = 0,
    EG_F_PATH,
    EG_F_QUERY,
    EG_F_URI,
    EG_F_COOKIE,
    EG_F_COOKIE_NAMES,
    EG_F_COOKIES,
    EG_F_HEADER,
    EG_F_ARG,
    EG_F_URI_DECODED,
    EG_F_PARAM,
    EG_F_BODY,
    EG_F_JSON,
    EG_F_JSON_VALUES,
    EG_F_FORM,
    EG_F_CLIENT
} eg_field_e;

typedef enum {
    EG_OP_IS = 0,
    EG_OP_PREFIX,
    EG_OP_SUFFIX,
    EG_OP_CONTAINS,
    EG_OP_REGEX,
    EG_OP_BACKEND,
    EG_OP_PRESENT,
    EG_OP_UNTRUSTED
} eg_op_e;


struct eg_state_s;
struct eg_cond_s;

/* one value against a condition's operator (before "not"): eg_match.c */
typedef int (*eg_test_pt)(struct eg_state_s *st, const struct eg_cond_s *c,
    eg_str_t s);

/*
 * A lower-case name of at most 32 bytes, compared many times: its words as
 * eg_ieq_lower() loads them (the last one overlapping), and in m the 0x20
 * bit of each byte that is a letter.  Then a byte x of the other side
 * matches when x | m == y: the letter in either case, any other byte
 * exactly; two operations a word instead of eg_lower8()'s nine.
 */

#define EG_FOLD_MAX  32

typedef struct {
    uint64_t              y[EG_FOLD_MAX / 8];
    uint64_t              m[EG_FOLD_MAX / 8];
} eg_fold_t;


typedef struct eg_cond_s {
    /* what evaluation reads, first */
    eg_test_pt            test;      /* by the operator (eg_plan_build) */
    eg_field_e            field;
    eg_op_e               op;
    unsigned              negate;

    /* the evaluation plan (eg_plan_build), -1 when there is none */
    int                   slot;      /* header: the header slot */
    int                   memo;      /* regex: the shared result */

    uint32_t              minlen;    /* no match on a shorter subject */
    eg_str_t             *args;      /* literals, lower case */
    size_t                nargs;
    eg_str_t              key;       /* cookie, header or argument name */
    pcre2_code           *re;
    unsigned              jit;       /* re has JIT code */

    /* is, prefix, suffix: a value whose first (suffix: last) byte starts
       no argument, or ("is") whose length none has, is ruled out at once */
    unsigned              has_edge;
    uint64_t              arg_lens;  /* bit n: n bytes, bit 63: longer */
    uint8_t               edge[32];  /* a bit per byte, both cases */

    /* prefix, suffix with 9 to 32 arguments: bit i of byedge[b] for each
       argument i whose first (suffix: last) byte is b, lower case, and of
       byedge[256 + b] for each whose second (suffix: second last) byte is
       b, or that has one byte */
    uint32_t             *byedge;

    /* is, prefix, suffix: each argument's eg_fold_make(), NULL when the
       memory was not there (the arguments are then compared by
       eg_ieq_lower()) */
    eg_fold_t            *folds;

    /* literals one of which a value the line holds for contains, lower
       case: the arguments of is, prefix, suffix and contains; for a regex,
       what eg_regex_literals() finds (nlits 0: none) */
    eg_str_t             *lits;
    size_t                nlits;
    unsigned              lits_done;     /* a regex's, found once */

    /* what only a report or a reload reads */
    eg_str_t              display;   /* "cookie:X-BEResource" */
    eg_str_t              src;       /* the regex as written */
} eg_cond_t;

#define EG_MAX_CONDS  16
#define EG_MAX_CVES   16
#define EG_MAX_PROBES  6


/*
 * A probe: a test of a few instructions that a request must pass for a
 * rule to match, derived from one of its positive lines (eg_plan_build()).
 * A request that fails one skips the rule, as it skips a rule whose
 * header it lacks.
 */

typedef enum {
    EG_PROBE_BYTE = 0,  /* the byte at pos (from the end: tail) is in set */
    EG_PROBE_ANCHOR,    /* the value has one of the anchor bytes (mask);
                           or EG_PROBE_PAIR, EG_PROBE_PARAM, EG_PROBE_LINE
                           (below) */
    EG_PROBE_METHOD,    /* the method is one of mask's (negate: is not) */
    EG_PROBE_TRUSTED    /* trusted networks are configured */
} eg_probe_e;

/*
 * Three probes that are anchor probes with a mask of two bits no anchor
 * has (up to EG_MAX_ANCHORS): eg_probe() never finds them looked for, and
 * takes them out of line as it takes several anchors, so that the walk
 * the compiler inlines into eg_eval() stays as it is.
 *   EG_PROBE_PAIR:  set[0] with set[1] after it (pos 1) or before it
 *                   (pos 0), set[1] with its 0x20 bit set where set[2]
 *                   is 0x20 ("contains", eg_plan_probe_anchor())
 *   EG_PROBE_PARAM: a request parameter can be there: a query, the
 *                   header slot of pos (Cookie), or a first header of
 *                   slot (Content-Type) that starts with 'a' or 'm'
 *                   ("param:", eg_plan_probe_param())
 *   EG_PROBE_LINE:  with the bit of an anchor slot that holds no byte
 *                   (EG_ANCHOR_LINE): the line anchor_line[bit] holds,
 *                   by its own test, a compare or two: "not is", "not
 *                   prefix" or "not suffix" on the path, query or uri;
 *                   "is", "prefix" or "suffix" with a list of arguments
 *                   on those or a header, where byte probes at two
 *                   places cannot tell the list apart.  The test is made
 *                   once per request for the rules that share the line:
 *                   the probe's two bits are marked looked for with the
 *                   slot's, so the next rule's probe takes the answer
 *                   inline ("path not prefix /ecp/DDI/DDIService.svc/Get"
 *                   skips both ECP rules for each read of the admin
 *                   pages; eg_plan_probe_line())
 */
#define EG_PROBE_PAIR   ((uint64_t) 3 << 62)
#define EG_PROBE_PARAM  ((uint64_t) 3 << 60)
#define EG_PROBE_LINE   ((uint64_t) 3 << 58)
#define EG_MAX_ANCHORS  58
#define EG_ANCHOR_LINE  0xff

typedef struct {
    uint8_t               kind;      /* eg_probe_e */
    uint8_t               field;     /* eg_field_e */
    uint8_t               tail;
    uint8_t               negate;
    int                   slot;      /* header: the header slot */
    uint32_t              pos;
    uint64_t              mask;      /* method names, anchors: bits */
    uint8_t               set[32];   /* a bit per byte */
    uint8_t               pad[8];    /* 64 bytes: a rule's probes are
                                        walked by a shift, not a multiply */
} eg_probe_t;


/*
 * A place byte probes read (up to 64 rules, eg_plan_lack_bytes()): the
 * byte at pos of a field (from its end: tail), or of a header's one value
 * (slot).  rules: those with a probe there; drop[b]: those whose probe
 * fails b.  A value too short fails them all; a header sent twice, or
 * too long, fails none (eg_probe()).
 */

#define EG_LACK_KEYS  4

typedef struct {
    uint64_t              rules;
    uint8_t               field;     /* eg_field_e */
    uint8_t               tail;
    int                   slot;
    uint32_t              pos;
    uint64_t              drop[256];
} eg_lack_byte_t;

struct eg_rule_s {
    /* what a request reads first, whether the rule can apply at all, on
       the rule's first cache lines; what only a match reads, last */
    eg_action_e           action;
    uint32_t              need;      /* header slots a match requires */
    uint32_t              need_cookies;  /* wanted cookie names, likewise */
    uint32_t              lacked;    /* the lack tables test need, min_path
                                        and min_query (eg_plan_lack()) */
    size_t                min_path;  /* shorter paths cannot match */
    size_t                min_query;
    size_t                nprobes;
    size_t                nconds;
    eg_probe_t            probes[EG_MAX_PROBES];
    eg_cond_t             conds[EG_MAX_CONDS];
    eg_str_t              id;
    eg_str_t              name;
    eg_str_t              cves[EG_MAX_CVES];
    size_t                ncves;
    const char           *file;
    unsigned              line;
};


#if defined(__GNUC__)
#define EG_INLINE    inline __attribute__((always_inline))
#define EG_NOINLINE  __attribute__((noinline))
#else
#define EG_INLINE    inline
#define EG_NOINLINE
#endif

/* the index of the lowest set bit of a non-zero word */

#if defined(__GNUC__)
#define eg_ctz32(x)  ((unsigned) __builtin_ctz(x))
#define eg_ctz64(x)  ((unsigned) __builtin_ctzll(x))
#else
static inline unsigned
eg_ctz64(uint64_t x)
{
    unsigned  n;

    for (n = 0; !(x & 1); n++) {
        x >>= 1;
    }

    return n;
}
#define eg_ctz32(x)  eg_ctz64((uint64_t) (x))
#endif


#define EG_HDR_SLOTS  32

#define EG_GRAM_TARGETS  8
#define EG_GRAM_BLOOM    65536

typedef struct eg_gram_s {
    uint32_t              gram;      /* four bytes | 0x20202020 */
    uint32_t              target;
    uint32_t              gate;      /* 0: an empty entry, else gate + 1 */
} eg_gram_t;

/* four bytes of a value as a gram: ORing 0x20 into each folds the case
   of letters (and maps a few other bytes together: a gram only opens a
   rule, which then compares exactly) */

static inline uint32_t
eg_gram_at(const unsigned char *p)
{
    uint32_t  g;

    memcpy(&g, p, 4);
    return g | 0x20202020u;
}

static inline uint32_t
eg_gram_hash(uint32_t gram, uint32_t target)
{
    return (gram * 0x9e3779b1u) ^ (target * 0x85ebca6bu);
}

#define EG_MEMO_MAX   64


/* a chain of malloc'ed blocks, freed together */
typedef struct eg_mem_s  eg_mem_t;

void *eg_mem_alloc(eg_mem_t **mem, size_t size);
void eg_mem_free(eg_mem_t *mem);


struct eg_ruleset_s {
    eg_rule_t           **rules;
    size_t                nrules;
    size_t                nalloc;
    eg_mem_t             *mem;
    pcre2_code          **codes;     /* every compiled regex, to free */
    size_t                ncodes;
    size_t                ncodes_alloc;
    pcre2_match_context  *mctx;
    pcre2_match_data     *md;
    pcre2_jit_stack      *jit_stack;

    /* the cookie names rules ask for: only those are kept when parsing */
    eg_str_t             *cookie_lnames;     /* lower case */
    eg_str_t             *cookie_block;      /* their allocation */
    size_t                ncookie_names;
    uint64_t              cookie_name_lens;  /* bit n: a name of n bytes */
    uint8_t               cookie_skip[256];  /* 1: a name starting with
                                                this byte is not wanted */
    uint32_t              cookie_pre[8];     /* the first three bytes of
                                                the wanted names, each once */
    size_t                ncookie_pre;       /* 0: a name too short, or too
                                                many prefixes (eg_plan_build) */
    unsigned              all_cookies;   /* a rule reads every name */

    /* which rules can apply, by the first segment of the path */
    struct eg_scope_s    *scope;

    /*
     * The headers rules read, found in one pass over the request: a rule
     * that needs a header the request lacks is skipped untouched.  With
     * more than EG_HDR_SLOTS names the rest are looked up one by one.
     */
    eg_str_t              hdr_names[EG_HDR_SLOTS];   /* lower case */
    size_t                nhdr;
    int8_t                hdr_first[1024];   /* the first slot of a
                                                eg_hdr_key(), or -1 */
    int8_t                hdr_next[EG_HDR_SLOTS];   /* next, same key */
    unsigned              hdr_overflow;  /* names past EG_HDR_SLOTS */
    int                   slot_cookie;   /* -1: no rule reads cookies */
    eg_fold_t             hdr_folds[EG_HDR_SLOTS];   /* eg_fold_make() */

    /* what probes ask about once per request: the method names of
       "method is" lines, the bytes of "contains" lines to look for */
    eg_str_t              methods[64];   /* lower case */
    uint64_t              method_words[64];  /* up to 8 bytes: packed */
    size_t                nmethods;
    uint64_t              method_keys;  /* bit eg_method_key() of each */
    uint8_t               anchor_field[64];  /* EG_ANCHOR_LINE: none, the
                                                slot of a line probe
                                                (anchor_line) */
    unsigned char         anchor_byte[64];
    const eg_cond_t      *anchor_line[64];
    size_t                nanchors;

    int                   slot_ctype;    /* Content-Type, for forms */
    unsigned              nmemo;         /* shared regex results */

    /*
     * Gates (eg_plan_gates()): a rule is opened to a request by one key
     * of its first positive line that has one: a 4-byte piece (a gram) of
     * each argument of an "is", "prefix", "suffix" or "contains" line on
     * the path, query, uri, method, client or a header; else the header
     * (or the Cookie header) the line reads.  A request opens the gates
     * of the headers it sends and of the grams in those values, and
     * evaluates only open rules: however many rules are loaded, it pays
     * per header and per byte it sends, and per rule it opens, not per
     * rule it cannot match.  Gates 0 to nhdr-1 are the header slots, the
     * names past EG_HDR_SLOTS follow, then the grams.  Only past 64 rules,
     * EG_HDR_SLOTS names or 8 rules on one value: below that, testing each
     * rule costs less.
     */
    uint64_t             *ungated;       /* gate_words; NULL: no gates */
    size_t                gate_words;
    uint32_t             *gate_start;    /* ngates + 1 */
    uint32_t             *gate_rules;    /* gate g: [start[g], start[g+1]) */
    uint32_t             *gate_dense_of; /* ngates: 0, or a gate of more
                                            than gate_words rules: the
                                            index + 1 of its bits */
    uint64_t             *gate_dense;    /* those bits, gate_words each */
    size_t                ngates;
    eg_str_t             *hdr_ovf;       /* lower case */
    size_t                nhdr_ovf;
    uint32_t             *hdr_ovf_tab;   /* index + 1 by eg_hash_lower() */
    uint32_t              hdr_ovf_mask;
    uint64_t              hdr_ovf_lens;  /* bit n: a name of n bytes */
    uint8_t               hdr_ovf_first[32];  /* their first bytes */
    struct eg_gram_s     *grams;         /* by eg_gram_hash() */
    uint32_t              gram_mask;
    uint64_t             *gram_bloom;    /* EG_GRAM_BLOOM bits */
    uint8_t               gram_field[EG_GRAM_TARGETS];   /* eg_field_e */
    int8_t                gram_slot[EG_GRAM_TARGETS];    /* header slot */
    uint8_t               gram_stride[EG_GRAM_TARGETS];  /* eg_scope.c */
    size_t                ngram_targets;
    uint64_t             *gram_target_rules;  /* per target, gate_words */

    /* rules whose gate line is "cookie:NAME", by the index of NAME in
       cookie_lnames: once the Cookie header is parsed, the rules of the
       names it lacks are dropped from the request's (eg_cookie_gates()) */
    uint64_t             *cookie_ungated;    /* NULL: no cookie gates */
    uint32_t             *cookie_gate_start; /* ncookie_names + 1 */
    uint32_t             *cookie_gate_rules;
    void                 *gate_mem;

    /* past 8 wanted cookie names: index + 1 by eg_hash_lower() */
    uint32_t             *cookie_tab;
    uint32_t              cookie_tab_mask;

    /*
     * Up to 64 rules (one word of bits): the rules that need one of the
     * header slots 0-7 a request lacks, by those eight bits of what it
     * has (lack_hdr); and those that need a cookie of one of the wanted
     * names 0-7 the parsed Cookie headers lack, likewise (lack_cookie);
     * and those whose path or query is longer than the request's, by its
     * length under 63 (lack_path, lack_query; at 63, none).  They are
     * dropped from the request's bits with a load each instead of visited
     * one by one; eg_rule_skipped() still tests each rule.
     */
    unsigned              lack;          /* EG_LACK_* */
    uint64_t              lack_hdr[256];
    uint64_t              lack_cookie[256];
    uint64_t              lack_path[64];
    uint64_t              lack_query[64];

    /* and those whose byte probe at one place (a key below) the byte
       there fails, for the keys most rules probe (eg_plan_lack_bytes()) */
    eg_lack_byte_t        lack_byte[EG_LACK_KEYS];
    size_t                nlack_byte;

    /*
     * Anchors looked for by the target scan (eg_plan_scan_anchors()): one
     * of the path, one of the query, as eg_target_scan_anchors() takes
     * them.  By what it found (EG_FOUND_*): the anchors it answered for
     * (scan_done) and had (scan_res), and the rules whose first probe is
     * one of those it answered for and the request lacks (scan_drop).
     */
    unsigned char         scan_anchors[2];
    uint64_t              scan_done[16];
    uint64_t              scan_res[16];
    uint64_t              scan_drop[16];
};

#define EG_LACK_HDR     1
#define EG_LACK_COOKIE  2
#define EG_LACK_LEN     4
#define EG_LACK_BYTE    8
#define EG_LACK_ANCHOR  16


/*
 * Rule dispatch by the first path segment (eg_scope.c).  A rule with a
 * positive path condition ("path prefix /owa/auth/", "path regex
 * '^/(?:owa|ecp)/'") can only match requests under those segments; the
 * others are global.  A request evaluates the global rules and those of
 * its segment, in load order, so rules it cannot match cost nothing.
 */

#define EG_SCOPE_MAX_WORDS  64      /* 4096 rules; past that no dispatch */

typedef struct eg_scope_s  eg_scope_t;

int eg_scope_build(eg_ruleset_t *rs);
void eg_plan_build(eg_ruleset_t *rs);
void eg_plan_test(eg_cond_t *c);
void eg_scope_free(eg_scope_t *scope);
size_t eg_scope_select(const eg_ruleset_t *rs, eg_str_t path,
    uint64_t *bits, const uint64_t **notes);

size_t eg_cookie_parse_names(const eg_str_t *headers, size_t nheaders,
    eg_cookie_t *out, size_t cap, size_t max, const eg_ruleset_t *rs,
    size_t *found);
size_t eg_cookie_parse_wanted(const eg_str_t *headers, size_t nheaders,
    eg_cookie_t *out, size_t cap, size_t max, const eg_ruleset_t *rs,
    size_t *found, uint32_t *present);
int eg_cookie_wanted(const eg_ruleset_t *rs, eg_str_t name);

/*
 * AVX2: where the compiler can build it (EG_AVX2), the functions that
 * have a path for it (target("avx2")) take it if the CPU has it.
 * eg_avx2 is 1: they do, 0: they do not, -1: not asked yet
 * (eg_cpu_avx2() asks the CPU, once); tests set it to 0 and 1.
 */
extern int eg_avx2;
int eg_cpu_avx2(void);


static inline int
eg_use_avx2(void)
{
    return eg_avx2 > 0 || (eg_avx2 < 0 && eg_cpu_avx2());
}


int eg_path_plain(eg_str_t path);

/* eg_target_scan(): the path is plain; the query has something to decode */
#define EG_SCAN_PLAIN   1
#define EG_SCAN_ESCAPE  2

unsigned eg_target_scan(eg_str_t target, size_t *qpos);

/* eg_target_scan_anchors(): the path has its anchor byte, the query its,
   the path is plain (what the first says holds), the query has nothing
   to decode (likewise the second) */
#define EG_FOUND_P      1
#define EG_FOUND_Q      2
#define EG_FOUND_PATH   4
#define EG_FOUND_QUERY  8

unsigned eg_target_scan_anchors(eg_str_t target, size_t *qpos,
    const unsigned char *anchors, unsigned *found);

/* eg_uri_normalize() past the scan: scan and qpos are the target's
   eg_target_scan(), or EG_SCAN_NONE when it is not scanned yet */
#define EG_SCAN_NONE  ((unsigned) -1)

int eg_uri_decode_target(eg_str_t target, unsigned rounds,
    const eg_alloc_t *alloc, eg_str_t *path, eg_str_t *query, unsigned scan,
    size_t qpos);


/*
 * eg_uri_normalize(), inline for the engine: the usual target, a plain
 * path and a query with nothing to decode, is split with no frame around
 * the scan; both are the target's bytes.
 */

static EG_INLINE int
eg_uri_split(eg_str_t target, unsigned rounds, const eg_alloc_t *alloc,
    eg_str_t *path, eg_str_t *query, const unsigned char *anchors,
    unsigned *found)
{
    size_t    qpos;
    unsigned  scan;

    qpos = 0;
    scan = EG_SCAN_NONE;

    if (target.len && target.data[0] == '/') {
        scan = anchors ? eg_target_scan_anchors(target, &qpos, anchors, found)
                       : eg_target_scan(target, &qpos);

        if (scan == EG_SCAN_PLAIN) {
            path->data = target.data;
            path->len = qpos;

            if (query) {
                query->data = target.data + qpos + (qpos < target.len);
                query->len = target.data + target.len - query->data;
            }

            return 0;
        }
    }

    return eg_uri_decode_target(target, rounds, alloc, path, query, scan,
                                qpos);
}


int eg_path_byte_ok(const unsigned char *s, size_t i, size_t len);
size_t eg_utf8_put(unsigned char *d, uint32_t cp);


/* a method name of len bytes that starts with c, in either case (its low
   5 bits), as a bit of a word: most methods no rule names ("POST" where
   rules name GET, HEAD and OPTIONS) are ruled out by it */

static inline unsigned
eg_method_key(size_t len, unsigned char c)
{
    return (unsigned) (len * 7 + (c & 31)) & 63;
}


/* a header name of len bytes (not 0) that starts with c, in either case:
   its low 5 bits of each, the key of rs->hdr_first */

static inline size_t
eg_hdr_key(size_t len, unsigned char c)
{
    return ((len & 31) << 5) | (c & 31);
}


static inline unsigned char
eg_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char) (c | 0x20) : c;
}

static inline unsigned char
eg_upper(unsigned char c)
{
    return (c >= 'a' && c <= 'z') ? (unsigned char) (c & ~0x20) : c;
}

int eg_str_ieq(eg_str_t a, eg_str_t b);


/* b is in the 256-bit set */

static inline int
eg_byte_in(const uint8_t *set, unsigned char b)
{
    return (set[b >> 3] >> (b & 7)) & 1;
}


/*
 * The 1-15 bytes at s into a 16-byte buffer padded with pad, for one
 * sixteen-byte load: two overlapping pieces of 8 or 4 bytes (or the 1-3
 * bytes one by one), no memcpy() of a variable length.
 */

static inline void
eg_copy_short16(unsigned char *buf, const unsigned char *s, size_t len,
    int pad)
{
    memset(buf, pad, 16);

    if (len >= 8) {
        memcpy(buf, s, 8);
        memcpy(buf + len - 8, s + len - 8, 8);

    } else if (len >= 4) {
        memcpy(buf, s, 4);
        memcpy(buf + len - 4, s + len - 4, 4);

    } else {
        buf[0] = s[0];
        buf[len / 2] = s[len / 2];
        buf[len - 1] = s[len - 1];
    }
}


/* n words of rule bits: one (up to 64 rules) inline, more by memcpy */

static inline void
eg_bits_copy(uint64_t *dst, const uint64_t *src, size_t n)
{
    if (n == 1) {
        dst[0] = src[0];

    } else {
        memcpy(dst, src, n * sizeof(uint64_t));
    }
}


/* n words of rule bits ORed into dst */

static inline void
eg_bits_or(uint64_t *dst, const uint64_t *src, size_t n)
{
    size_t  w;

    for (w = 0; w < n; w++) {
        dst[w] |= src[w];
    }
}


/* FNV-1a of the bytes in lower case: the hash of the name tables */

static inline uint32_t
eg_hash_lower(const unsigned char *p, size_t n)
{
    uint32_t  h = 2166136261u;

    while (n--) {
        h = (h ^ eg_lower(*p++)) * 16777619u;
    }

    return h;
}


/*
 * a equals lower (already lower case), ASCII case-insensitively; eight
 * bytes at a time: a byte is an upper-case letter when adding 0x80 - 'A'
 * sets its top bit and adding 0x80 - 'Z' - 1 does not.
 */

static EG_INLINE uint64_t
eg_lower8(uint64_t x)
{
    uint64_t  h, up;

    h = x & 0x7f7f7f7f7f7f7f7fULL;
    up = ((h + 0x3f3f3f3f3f3f3f3fULL) ^ (h + 0x2525252525252525ULL))
         & ~x & 0x8080808080808080ULL;

    return x | (up >> 2);
}


/* 1 to 7 bytes as one word: overlapping loads cover every byte once or
   twice, the same way for both sides of a comparison */

static EG_INLINE uint64_t
eg_load_short(const unsigned char *p, size_t n)
{
    uint16_t  c, d;
    uint32_t  a, b;

    if (n >= 4) {
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
        return a | ((uint64_t) b << 32);
    }

    if (n >= 2) {
        memcpy(&c, p, 2);
        memcpy(&d, p + n - 2, 2);
        return c | ((uint64_t) d << 16);
    }

    return p[0];
}


/* a string of 1 to 8 bytes as one word, to compare with another of the
   same length; 0 for "" */

static EG_INLINE uint64_t
eg_word(eg_str_t s)
{
    uint64_t  x;

    if (s.len >= 8) {
        memcpy(&x, s.data, 8);
        return x;
    }

    return s.len ? eg_load_short(s.data, s.len) : 0;
}


static EG_INLINE int
eg_ieq_lower(eg_str_t a, eg_str_t lower)
{
    size_t    i;
    uint64_t  x, y;

    if (a.len != lower.len) {
        return 0;
    }

    if (a.len < 8) {
        return a.len == 0
               || eg_lower8(eg_load_short(a.data, a.len))
                  == eg_load_short(lower.data, a.len);
    }

    for (i = 0; i + 8 <= a.len; i += 8) {
        memcpy(&x, a.data + i, 8);
        memcpy(&y, lower.data + i, 8);
        if (eg_lower8(x) != y) {
            return 0;
        }
    }

    if (i < a.len) {
        /* the last eight bytes, overlapping the words compared */
        memcpy(&x, a.data + a.len - 8, 8);
        memcpy(&y, lower.data + a.len - 8, 8);
        return eg_lower8(x) == y;
    }

    return 1;
}


/* a equals lower, whose words eg_fold_make() prepared in f */

static EG_INLINE int
eg_ieq_fold(eg_str_t a, eg_str_t lower, const eg_fold_t *f)
{
    size_t    i, k;
    uint64_t  x;

    if (a.len != lower.len) {
        return 0;
    }

    if (a.len > EG_FOLD_MAX) {
        return eg_ieq_lower(a, lower);
    }

    if (a.len < 8) {
        return a.len == 0
               || (eg_load_short(a.data, a.len) | f->m[0]) == f->y[0];
    }

    /* most names: one word, or two (the second one overlapping) */

    memcpy(&x, a.data, 8);

    if ((x | f->m[0]) != f->y[0]) {
        return 0;
    }

    if (a.len <= 16) {
        memcpy(&x, a.data + a.len - 8, 8);
        return a.len == 8 || (x | f->m[1]) == f->y[1];
    }

    for (i = 8, k = 1; i + 8 <= a.len; i += 8, k++) {
        memcpy(&x, a.data + i, 8);
        if ((x | f->m[k]) != f->y[k]) {
            return 0;
        }
    }

    if (i < a.len) {
        memcpy(&x, a.data + a.len - 8, 8);
        return (x | f->m[k]) == f->y[k];
    }

    return 1;
}


void eg_fold_make(eg_str_t lower, eg_fold_t *f);


/*
 * A name table: open addressing by eg_hash_lower(), each entry the index
 * + 1 of a lower-case name in names, 0 when empty.  The entry of name (in
 * any case): where it is, or the empty one where it would go.
 */

static inline uint32_t
eg_name_slot(const uint32_t *tab, uint32_t mask, const eg_str_t *names,
    eg_str_t name)
{
    uint32_t  k;

    for (k = eg_hash_lower(name.data, name.len) & mask;
         tab[k] && !eg_ieq_lower(name, names[tab[k] - 1]);
         k = (k + 1) & mask)
    {
        /* void */
    }

    return k;
}


/* the entry of a gram of a target (hash: eg_gram_hash() of both), or the
   empty one where it goes */

static inline eg_gram_t *
eg_gram_find(const eg_ruleset_t *rs, uint32_t gram, uint32_t target,
    uint32_t hash)
{
    uint32_t    k;
    eg_gram_t  *e;

    for (k = hash & rs->gram_mask; ; k = (k + 1) & rs->gram_mask) {
        e = &rs->grams[k];

        if (e->gate == 0 || (e->gram == gram && e->target == target)) {
            return e;
        }
    }
}

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif /* EG_INTERNAL_H */
