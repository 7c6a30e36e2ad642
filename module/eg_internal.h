/*
 * exchange_guard engine internals shared by the engine's own files.
 */

#ifndef EG_INTERNAL_H
#define EG_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "eg_engine.h"


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


typedef struct {
    eg_field_e            field;
    eg_op_e               op;
    unsigned              negate;
    eg_str_t              display;   /* "cookie:X-BEResource" */
    eg_str_t              key;       /* cookie, header or argument name */
    eg_str_t             *args;      /* literals, lower case */
    size_t                nargs;
    pcre2_code           *re;
    eg_str_t              src;       /* the regex as written */
    unsigned              jit;       /* re has JIT code */
} eg_cond_t;

#define EG_MAX_CONDS  16
#define EG_MAX_CVES   16

struct eg_rule_s {
    eg_str_t              id;
    eg_str_t              name;
    eg_str_t              cves[EG_MAX_CVES];
    size_t                ncves;
    eg_action_e           action;
    eg_cond_t             conds[EG_MAX_CONDS];
    size_t                nconds;
    const char           *file;
    unsigned              line;
};


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
    eg_str_t             *cookie_names;
    eg_str_t             *cookie_lnames;     /* the same, lower case */
    eg_str_t             *cookie_block;      /* the allocation of both */
    size_t                ncookie_names;
    uint64_t              cookie_name_lens;  /* bit n: a name of n bytes */
    unsigned              all_cookies;   /* a rule reads every name */

    /* which rules can apply, by the first segment of the path */
    struct eg_scope_s    *scope;
};


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
void eg_scope_free(eg_scope_t *scope);
size_t eg_scope_select(const eg_ruleset_t *rs, eg_str_t path,
    uint64_t *bits);

size_t eg_cookie_parse_names(const eg_str_t *headers, size_t nheaders,
    eg_cookie_t *out, size_t cap, size_t max, const eg_ruleset_t *rs,
    size_t *found);
int eg_path_plain(eg_str_t path);
size_t eg_utf8_put(unsigned char *d, uint32_t cp);


static inline unsigned char
eg_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char) (c | 0x20) : c;
}

int eg_str_ieq(eg_str_t a, eg_str_t b);


/* a equals lower (already lower case), ASCII case-insensitively */

static inline int
eg_ieq_lower(eg_str_t a, eg_str_t lower)
{
    size_t  i;

    if (a.len != lower.len) {
        return 0;
    }

    for (i = 0; i < a.len; i++) {
        if ((unsigned char) (a.data[i]
                             | (((unsigned) a.data[i] - 'A' < 26u) << 5))
            != lower.data[i])
        {
            return 0;
        }
    }

    return 1;
}

#endif /* EG_INTERNAL_H */
