/*
 * exchange_guard rule files: parser and compiled rule set.
 *
 * The format is described in rules/README.md.  A file is parsed into its
 * own memory and added to the set only when every rule in it is valid, so
 * a broken file never leaves half of itself behind.
 */

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eg_internal.h"


#define EG_MAX_FILE_SIZE   (4 * 1024 * 1024)
#define EG_MAX_LINE        65536
#define EG_MAX_TOKENS      64
#define EG_MAX_ID_LEN      64
#define EG_MAX_NAME_LEN    256



struct eg_mem_s {
    eg_mem_t             *next;
    size_t                used;
    size_t                size;
    /* data follows, aligned */
};

#define EG_MEM_ALIGN   16
#define EG_MEM_HDR     ((sizeof(eg_mem_t) + EG_MEM_ALIGN - 1)                 \
                        & ~(size_t) (EG_MEM_ALIGN - 1))
#define EG_MEM_BLOCK   16384


typedef struct {
    eg_str_t              s;
} eg_token_t;

typedef struct {
    const char           *file;
    unsigned              line;
    char                 *err;
    size_t                errlen;
    eg_mem_t             *mem;
    pcre2_code          **codes;
    size_t                ncodes;
    size_t                ncodes_alloc;
    eg_rule_t           **rules;
    size_t                nrules;
    size_t                nalloc;
    eg_rule_t            *cur;
    unsigned              seen;         /* keywords seen in cur */
    const eg_ruleset_t   *rs;
} eg_parser_t;

#define EG_SEEN_NAME    1
#define EG_SEEN_CVE     2
#define EG_SEEN_ACTION  4


static int eg_parse(eg_parser_t *p, const unsigned char *buf, size_t len);
static int eg_parse_line(eg_parser_t *p, eg_token_t *t, size_t n);
static int eg_parse_rule_start(eg_parser_t *p, eg_token_t *t, size_t n);
static int eg_parse_rule_end(eg_parser_t *p, size_t n);
static int eg_parse_keyword(eg_parser_t *p, eg_token_t *t, size_t n);
static int eg_parse_match(eg_parser_t *p, eg_token_t *t, size_t n);
static int eg_parse_field(eg_parser_t *p, eg_cond_t *c, eg_str_t f);
static int eg_parse_op(eg_parser_t *p, eg_cond_t *c, eg_token_t *t,
    size_t n);
static int eg_compile_regex(eg_parser_t *p, eg_cond_t *c, eg_str_t src);
static int eg_tokenize(eg_parser_t *p, const unsigned char *s, size_t len,
    eg_token_t *t, size_t *n);
static int eg_error(eg_parser_t *p, const char *fmt, ...);
static eg_str_t eg_dup(eg_parser_t *p, eg_str_t s, int lower);
static int eg_push(void ***arr, size_t *n, size_t *nalloc, void *item);
static const eg_rule_t *eg_find_rule(eg_parser_t *p, eg_str_t id);
static int eg_collect_cookie_names(eg_ruleset_t *rs, eg_parser_t *p,
    eg_str_t **out);
static void eg_commit_cookie_names(eg_ruleset_t *rs, eg_parser_t *p,
    eg_str_t *names);


void *
eg_mem_alloc(eg_mem_t **mem, size_t size)
{
    size_t     bsize;
    eg_mem_t  *m;

    size = (size + EG_MEM_ALIGN - 1) & ~(size_t) (EG_MEM_ALIGN - 1);
    m = *mem;

    if (m == NULL || m->size - m->used < size) {
        bsize = size > EG_MEM_BLOCK ? size : EG_MEM_BLOCK;
        m = malloc(EG_MEM_HDR + bsize);
        if (m == NULL) {
            return NULL;
        }
        m->used = 0;
        m->size = bsize;
        m->next = *mem;
        *mem = m;
    }

    m->used += size;
    return (unsigned char *) m + EG_MEM_HDR + m->used - size;
}


void
eg_mem_free(eg_mem_t *mem)
{
    eg_mem_t  *next;

    while (mem) {
        next = mem->next;
        free(mem);
        mem = next;
    }
}


/* whether the engine's AVX2 paths are taken (eg_internal.h) */

int  eg_avx2 = -1;


int
eg_cpu_avx2(void)
{
#if (EG_AVX2)
    eg_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    eg_avx2 = 0;
#endif

    return eg_avx2;
}


eg_ruleset_t *
eg_ruleset_new(void)
{
    eg_ruleset_t  *rs;

    rs = calloc(1, sizeof(eg_ruleset_t));
    if (rs == NULL) {
        return NULL;
    }

    rs->mctx = pcre2_match_context_create(NULL);
    rs->md = pcre2_match_data_create(1, NULL);
    rs->jit_stack = pcre2_jit_stack_create(32 * 1024, 512 * 1024, NULL);

    if (rs->mctx == NULL || rs->md == NULL || rs->jit_stack == NULL) {
        eg_ruleset_free(rs);
        return NULL;
    }

    pcre2_jit_stack_assign(rs->mctx, NULL, rs->jit_stack);
    rs->slot_cookie = -1;
    rs->slot_ctype = -1;
    eg_ruleset_set_regex_limits(rs, EG_DEFAULT_MATCH_LIMIT,
                                EG_DEFAULT_DEPTH_LIMIT);
    return rs;
}


void
eg_ruleset_free(eg_ruleset_t *rs)
{
    size_t  i;

    if (rs == NULL) {
        return;
    }

    for (i = 0; i < rs->ncodes; i++) {
        pcre2_code_free(rs->codes[i]);
    }

    free(rs->codes);
    free(rs->rules);
    free(rs->cookie_block);
    eg_scope_free(rs->scope);
    free(rs->gate_mem);
    free(rs->cookie_tab);
    eg_mem_free(rs->mem);
    pcre2_match_context_free(rs->mctx);
    pcre2_match_data_free(rs->md);
    pcre2_jit_stack_free(rs->jit_stack);
    free(rs);
}


void
eg_ruleset_set_regex_limits(eg_ruleset_t *rs, uint32_t match_limit,
    uint32_t depth_limit)
{
    pcre2_set_match_limit(rs->mctx, match_limit);
    pcre2_set_depth_limit(rs->mctx, depth_limit);
}


size_t
eg_ruleset_count(const eg_ruleset_t *rs)
{
    return rs->nrules;
}


const eg_rule_t *
eg_ruleset_rule(const eg_ruleset_t *rs, size_t i)
{
    return i < rs->nrules ? rs->rules[i] : NULL;
}


eg_str_t
eg_rule_id(const eg_rule_t *rule)
{
    return rule->id;
}


eg_str_t
eg_rule_name(const eg_rule_t *rule)
{
    return rule->name;
}


eg_action_e
eg_rule_action(const eg_rule_t *rule)
{
    return rule->action;
}


size_t
eg_rule_ncves(const eg_rule_t *rule)
{
    return rule->ncves;
}


eg_str_t
eg_rule_cve(const eg_rule_t *rule, size_t i)
{
    eg_str_t  none = { NULL, 0 };

    return i < rule->ncves ? rule->cves[i] : none;
}


int
eg_ruleset_load_file(eg_ruleset_t *rs, const char *path, char *err,
    size_t errlen)
{
    int             rc, fd;
    long            size;
    FILE           *f;
    struct stat     st;
    unsigned char  *buf;

    /* O_NONBLOCK: opening a FIFO must not hang "nginx -t" or a reload */

    fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd == -1) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }

    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }

    f = fdopen(fd, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        close(fd);
        return -1;
    }

    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
    {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        fclose(f);
        return -1;
    }

    if (size > EG_MAX_FILE_SIZE) {
        snprintf(err, errlen, "%s: file is larger than %d bytes", path,
                 EG_MAX_FILE_SIZE);
        fclose(f);
        return -1;
    }

    buf = malloc(size + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        fclose(f);
        return -1;
    }

    if (fread(buf, 1, size, f) != (size_t) size) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        free(buf);
        fclose(f);
        return -1;
    }

    fclose(f);

    rc = eg_ruleset_load_buffer(rs, path, buf, size, err, errlen);
    free(buf);
    return rc;
}


int
eg_ruleset_load_buffer(eg_ruleset_t *rs, const char *name,
    const unsigned char *buf, size_t len, char *err, size_t errlen)
{
    size_t       i, need;
    eg_str_t    *names;
    eg_mem_t    *last;
    eg_parser_t  p;

    memset(&p, 0, sizeof(eg_parser_t));
    p.err = err;
    p.errlen = errlen;
    p.rs = rs;

    p.file = (const char *) eg_dup(&p, (eg_str_t) {
                                       (const unsigned char *) name,
                                     strlen(name) }, 0).data;
    if (p.file == NULL) {
        snprintf(err, errlen, "%s: out of memory", name);
        goto failed;
    }

    if (eg_parse(&p, buf, len) != 0) {
        goto failed;
    }

    /* make every allocation first: past this point nothing can fail, so
       the set takes the whole file or nothing */

    need = rs->nrules + p.nrules;
    if (need > rs->nalloc) {
        eg_rule_t **rules = realloc(rs->rules, need * sizeof(eg_rule_t *));
        if (rules == NULL) {
            snprintf(err, errlen, "%s: out of memory", name);
            goto failed;
        }
        rs->rules = rules;
        rs->nalloc = need;
    }

    need = rs->ncodes + p.ncodes;
    if (need > rs->ncodes_alloc) {
        pcre2_code **codes = realloc(rs->codes, need * sizeof(pcre2_code *));
        if (codes == NULL) {
            snprintf(err, errlen, "%s: out of memory", name);
            goto failed;
        }
        rs->codes = codes;
        rs->ncodes_alloc = need;
    }

    if (eg_collect_cookie_names(rs, &p, &names) != 0) {
        snprintf(err, errlen, "%s: out of memory", name);
        goto failed;
    }

    if (p.ncodes) {
        memcpy(rs->codes + rs->ncodes, p.codes,
               p.ncodes * sizeof(pcre2_code *));
        rs->ncodes += p.ncodes;
    }

    eg_commit_cookie_names(rs, &p, names);

    memcpy(rs->rules + rs->nrules, p.rules, p.nrules * sizeof(eg_rule_t *));
    rs->nrules += p.nrules;

    if (p.mem) {
        for (last = p.mem; last->next; last = last->next) { /* void */ }
        last->next = rs->mem;
        rs->mem = p.mem;
    }

    /* without the table every rule is evaluated: slower, never wrong */

    (void) eg_scope_build(rs);
    eg_plan_build(rs);

    free(p.codes);
    free(p.rules);
    return 0;

failed:

    for (i = 0; i < p.ncodes; i++) {
        pcre2_code_free(p.codes[i]);
    }

    free(p.codes);
    free(p.rules);
    eg_mem_free(p.mem);
    return -1;
}


static int
eg_parse(eg_parser_t *p, const unsigned char *buf, size_t len)
{
    size_t                n;
    const unsigned char  *s, *end, *eol;
    eg_token_t            t[EG_MAX_TOKENS];

    s = buf;
    end = buf + len;

    if (memchr(buf, '\0', len) != NULL) {
        p->line = 1;
        for (eol = buf; *eol != '\0'; eol++) {
            p->line += (*eol == '\n');
        }
        return eg_error(p, "NUL byte in rule file");
    }

    while (s < end) {
        p->line++;

        eol = memchr(s, '\n', end - s);
        if (eol == NULL) {
            eol = end;
        }

        if ((size_t) (eol - s) > EG_MAX_LINE) {
            return eg_error(p, "line longer than %d bytes", EG_MAX_LINE);
        }

        if (eg_tokenize(p, s, eol - s, t, &n) != 0) {
            return -1;
        }

        if (n && eg_parse_line(p, t, n) != 0) {
            return -1;
        }

        s = eol + 1;
    }

    if (p->cur) {
        p->line = p->cur->line;
        return eg_error(p, "rule \"%.*s\" is not closed with \"end\"",
                        (int) p->cur->id.len, p->cur->id.data);
    }

    if (p->nrules == 0) {
        p->line = 0;
        return eg_error(p, "no rules in file");
    }

    return 0;
}


static int
eg_tokenize(eg_parser_t *p, const unsigned char *s, size_t len,
    eg_token_t *t, size_t *n)
{
    size_t          i, start;
    unsigned char   q, *d, *dst;

    *n = 0;
    i = 0;

    for ( ;; ) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) {
            i++;
        }

        if (i == len || s[i] == '#') {
            return 0;
        }

        if (*n == EG_MAX_TOKENS) {
            return eg_error(p, "more than %d words on a line", EG_MAX_TOKENS);
        }

        if (s[i] == '"' || s[i] == '\'') {
            q = s[i++];
            start = i;

            dst = eg_mem_alloc(&p->mem, len - i + 1);
            if (dst == NULL) {
                return eg_error(p, "out of memory");
            }

            d = dst;

            while (i < len && s[i] != q) {
                if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f) {
                    return eg_error(p, "control character in rule file");
                }

                if (q == '"' && s[i] == '\\' && i + 1 < len
                    && (s[i + 1] == '"' || s[i + 1] == '\\'))
                {
                    i++;
                }
                *d++ = s[i++];
            }

            if (i == len) {
                return eg_error(p, "unterminated quoted string");
            }

            i++;

            if (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
                return eg_error(p, "missing space after quoted string");
            }

            (void) start;
            t[*n].s.data = dst;
            t[*n].s.len = d - dst;
            (*n)++;
            continue;
        }

        start = i;

        while (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
            if (s[i] < 0x20 || s[i] == 0x7f) {
                return eg_error(p, "control character in rule file");
            }
            i++;
        }

        t[*n].s.data = s + start;
        t[*n].s.len = i - start;
        (*n)++;
    }
}


static int
eg_word_is(eg_str_t s, const char *w)
{
    size_t  len = strlen(w);

    return s.len == len && memcmp(s.data, w, len) == 0;
}


static int
eg_parse_line(eg_parser_t *p, eg_token_t *t, size_t n)
{
    if (eg_word_is(t[0].s, "rule")) {
        return eg_parse_rule_start(p, t, n);
    }

    if (p->cur == NULL) {
        if (eg_word_is(t[0].s, "end")) {
            return eg_error(p, "\"end\" outside a rule");
        }

        return eg_error(p, "expected \"rule\", found \"%.*s\"",
                        (int) t[0].s.len, t[0].s.data);
    }

    if (eg_word_is(t[0].s, "end")) {
        return eg_parse_rule_end(p, n);
    }

    if (eg_word_is(t[0].s, "match")) {
        return eg_parse_match(p, t, n);
    }

    return eg_parse_keyword(p, t, n);
}


static int
eg_valid_id(eg_str_t id)
{
    size_t         i;
    unsigned char  c;

    if (id.len == 0 || id.len > EG_MAX_ID_LEN) {
        return 0;
    }

    for (i = 0; i < id.len; i++) {
        c = id.data[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
        {
            return 0;
        }
    }

    return 1;
}


static int
eg_parse_rule_start(eg_parser_t *p, eg_token_t *t, size_t n)
{
    const eg_rule_t  *dup;

    if (p->cur) {
        return eg_error(p, "rule \"%.*s\" is not closed with \"end\" before "
                        "the next \"rule\"",
                        (int) p->cur->id.len, p->cur->id.data);
    }

    if (n != 2) {
        return eg_error(p, "\"rule\" takes exactly one id, as in "
                        "\"rule EG-XX-001\"");
    }

    if (!eg_valid_id(t[1].s)) {
        return eg_error(p, "invalid rule id \"%.*s\": use 1 to %d letters, "
                        "digits, '-', '_' or '.'",
                        (int) t[1].s.len, t[1].s.data, EG_MAX_ID_LEN);
    }

    dup = eg_find_rule(p, t[1].s);
    if (dup) {
        return eg_error(p, "duplicate rule id \"%.*s\", first defined at "
                        "%s:%u", (int) t[1].s.len, t[1].s.data,
                        dup->file, dup->line);
    }

    p->cur = eg_mem_alloc(&p->mem, sizeof(eg_rule_t));
    if (p->cur == NULL) {
        return eg_error(p, "out of memory");
    }

    memset(p->cur, 0, sizeof(eg_rule_t));
    p->cur->id = eg_dup(p, t[1].s, 0);
    p->cur->file = p->file;
    p->cur->line = p->line;
    p->cur->action = EG_PASS;
    p->seen = 0;

    return p->cur->id.data ? 0 : eg_error(p, "out of memory");
}


static int
eg_parse_rule_end(eg_parser_t *p, size_t n)
{
    eg_rule_t  *r = p->cur;

    if (n != 1) {
        return eg_error(p, "\"end\" takes no arguments");
    }

    if (!(p->seen & EG_SEEN_NAME)) {
        return eg_error(p, "rule \"%.*s\" has no \"name\"",
                        (int) r->id.len, r->id.data);
    }

    if (!(p->seen & EG_SEEN_CVE)) {
        return eg_error(p, "rule \"%.*s\" has no \"cve\"",
                        (int) r->id.len, r->id.data);
    }

    if (!(p->seen & EG_SEEN_ACTION)) {
        return eg_error(p, "rule \"%.*s\" has no \"action\"",
                        (int) r->id.len, r->id.data);
    }

    if (r->nconds == 0) {
        return eg_error(p, "rule \"%.*s\" has no \"match\" line",
                        (int) r->id.len, r->id.data);
    }

    if (eg_push((void ***) &p->rules, &p->nrules, &p->nalloc, r) != 0) {
        return eg_error(p, "out of memory");
    }

    p->cur = NULL;
    return 0;
}


static int
eg_valid_cve(eg_str_t s)
{
    size_t  i;

    /* CVE-YYYY-NNNN with 4 or more digits in the sequence number */

    if (s.len < 13 || s.len > 20 || memcmp(s.data, "CVE-", 4) != 0
        || s.data[8] != '-')
    {
        return 0;
    }

    for (i = 4; i < s.len; i++) {
        if (i != 8 && (s.data[i] < '0' || s.data[i] > '9')) {
            return 0;
        }
    }

    return 1;
}


static int
eg_parse_keyword(eg_parser_t *p, eg_token_t *t, size_t n)
{
    size_t      i;
    eg_rule_t  *r = p->cur;

    if (eg_word_is(t[0].s, "name")) {
        if (p->seen & EG_SEEN_NAME) {
            return eg_error(p, "\"name\" given twice in rule \"%.*s\"",
                            (int) r->id.len, r->id.data);
        }

        if (n != 2 || t[1].s.len == 0 || t[1].s.len > EG_MAX_NAME_LEN) {
            return eg_error(p, "\"name\" takes one quoted text of 1 to %d "
                            "bytes", EG_MAX_NAME_LEN);
        }

        r->name = eg_dup(p, t[1].s, 0);
        p->seen |= EG_SEEN_NAME;
        return r->name.data ? 0 : eg_error(p, "out of memory");
    }

    if (eg_word_is(t[0].s, "cve")) {
        if (p->seen & EG_SEEN_CVE) {
            return eg_error(p, "\"cve\" given twice in rule \"%.*s\"",
                            (int) r->id.len, r->id.data);
        }

        if (n < 2 || n - 1 > EG_MAX_CVES) {
            return eg_error(p, "\"cve\" takes 1 to %d CVE ids", EG_MAX_CVES);
        }

        for (i = 1; i < n; i++) {
            if (!eg_valid_cve(t[i].s)) {
                return eg_error(p, "invalid CVE id \"%.*s\": expected "
                                "CVE-YYYY-NNNN", (int) t[i].s.len,
                                t[i].s.data);
            }

            r->cves[r->ncves++] = eg_dup(p, t[i].s, 0);
            if (r->cves[r->ncves - 1].data == NULL) {
                return eg_error(p, "out of memory");
            }
        }

        p->seen |= EG_SEEN_CVE;
        return 0;
    }

    if (eg_word_is(t[0].s, "action")) {
        if (p->seen & EG_SEEN_ACTION) {
            return eg_error(p, "\"action\" given twice in rule \"%.*s\"",
                            (int) r->id.len, r->id.data);
        }

        if (n == 2 && eg_word_is(t[1].s, "block")) {
            r->action = EG_BLOCK;

        } else if (n == 2 && eg_word_is(t[1].s, "log")) {
            r->action = EG_LOG;

        } else if (n == 2 && eg_word_is(t[1].s, "note")) {
            r->action = EG_NOTE;

        } else {
            return eg_error(p, "\"action\" takes \"block\", \"log\" or "
                            "\"note\"");
        }

        p->seen |= EG_SEEN_ACTION;
        return 0;
    }

    return eg_error(p, "unknown keyword \"%.*s\" in rule \"%.*s\"",
                    (int) t[0].s.len, t[0].s.data,
                    (int) r->id.len, r->id.data);
}


static int
eg_parse_match(eg_parser_t *p, eg_token_t *t, size_t n)
{
    size_t      i;
    eg_cond_t  *c;
    eg_rule_t  *r = p->cur;

    if (r->nconds == EG_MAX_CONDS) {
        return eg_error(p, "more than %d \"match\" lines in rule \"%.*s\"",
                        EG_MAX_CONDS, (int) r->id.len, r->id.data);
    }

    if (n < 3) {
        return eg_error(p, "\"match\" needs a field and an operator, as in "
                        "\"match path prefix /ecp/\"");
    }

    c = &r->conds[r->nconds];
    memset(c, 0, sizeof(eg_cond_t));

    if (eg_parse_field(p, c, t[1].s) != 0) {
        return -1;
    }

    i = 2;

    if (eg_word_is(t[i].s, "not")) {
        c->negate = 1;
        i++;

        if (i == n) {
            return eg_error(p, "\"not\" must be followed by an operator");
        }
    }

    if (eg_parse_op(p, c, t + i, n - i) != 0) {
        return -1;
    }

    r->nconds++;
    return 0;
}


static const struct {
    const char  *name;
    eg_field_e   field;
    int          keyed;
} eg_fields[] = {
    { "method",       EG_F_METHOD,       0 },
    { "path",         EG_F_PATH,         0 },
    { "query",        EG_F_QUERY,        0 },
    { "uri",          EG_F_URI,          0 },
    { "cookie",       EG_F_COOKIE,       1 },
    { "cookie-names", EG_F_COOKIE_NAMES, 0 },
    { "cookies",      EG_F_COOKIES,      0 },
    { "header",       EG_F_HEADER,       1 },
    { "arg",          EG_F_ARG,          1 },
    { "uri-decoded",  EG_F_URI_DECODED,  0 },
    { "param",        EG_F_PARAM,        1 },
    { "body",         EG_F_BODY,         0 },
    { "json",         EG_F_JSON,         1 },
    { "json-values",  EG_F_JSON_VALUES,  0 },
    { "form",         EG_F_FORM,         1 },
    { "client",       EG_F_CLIENT,       0 },
    { NULL,           0,                 0 }
};


static int
eg_parse_field(eg_parser_t *p, eg_cond_t *c, eg_str_t f)
{
    size_t          i, j, len;
    eg_str_t        key;
    unsigned char  *colon;

    colon = memchr(f.data, ':', f.len);
    len = colon ? (size_t) (colon - f.data) : f.len;

    for (i = 0; eg_fields[i].name; i++) {
        if (strlen(eg_fields[i].name) == len
            && memcmp(eg_fields[i].name, f.data, len) == 0)
        {
            break;
        }
    }

    if (eg_fields[i].name == NULL) {
        return eg_error(p, "unknown field \"%.*s\"", (int) f.len, f.data);
    }

    if (eg_fields[i].keyed && (colon == NULL || colon + 1 == f.data + f.len)) {
        return eg_error(p, "field \"%s\" needs a name, as in \"%s:NAME\"",
                        eg_fields[i].name, eg_fields[i].name);
    }

    if (!eg_fields[i].keyed && colon) {
        return eg_error(p, "field \"%s\" takes no name", eg_fields[i].name);
    }

    c->field = eg_fields[i].field;
    c->display = eg_dup(p, f, 0);

    if (colon) {
        key.data = colon + 1;
        key.len = f.data + f.len - key.data;

        for (j = 0; j < key.len; j++) {
            if (key.data[j] <= 0x20 || key.data[j] >= 0x7f
                || key.data[j] == ';' || key.data[j] == '=')
            {
                return eg_error(p, "invalid name \"%.*s\" in field \"%s\"",
                                (int) key.len, key.data, eg_fields[i].name);
            }
        }

        /* names compare case-insensitively: the copy is lower case, so
           the evaluation compares with eg_ieq_lower() */
        c->key = eg_dup(p, key, 1);
    }

    return c->display.data ? 0 : eg_error(p, "out of memory");
}


static const struct {
    const char  *name;
    eg_op_e      op;
} eg_ops[] = {
    { "is",       EG_OP_IS },
    { "prefix",   EG_OP_PREFIX },
    { "suffix",   EG_OP_SUFFIX },
    { "contains", EG_OP_CONTAINS },
    { "regex",    EG_OP_REGEX },
    { "backend",  EG_OP_BACKEND },
    { "present",  EG_OP_PRESENT },
    { "untrusted", EG_OP_UNTRUSTED },
    { NULL,       0 }
};


static int
eg_parse_op(eg_parser_t *p, eg_cond_t *c, eg_token_t *t, size_t n)
{
    size_t  i;

    for (i = 0; eg_ops[i].name; i++) {
        if (eg_word_is(t[0].s, eg_ops[i].name)) {
            break;
        }
    }

    if (eg_ops[i].name == NULL) {
        return eg_error(p, "unknown operator \"%.*s\"",
                        (int) t[0].s.len, t[0].s.data);
    }

    c->op = eg_ops[i].op;

    switch (c->op) {

    case EG_OP_PRESENT:
        if (n != 1) {
            return eg_error(p, "operator \"present\" takes no arguments");
        }

        if (c->field != EG_F_COOKIE && c->field != EG_F_HEADER
            && c->field != EG_F_ARG && c->field != EG_F_PARAM
            && c->field != EG_F_JSON && c->field != EG_F_FORM)
        {
            return eg_error(p, "operator \"present\" applies only to cookie:, "
                            "header:, arg:, param:, form: and json: fields");
        }

        return 0;

    case EG_OP_UNTRUSTED:
        if (n != 1) {
            return eg_error(p, "operator \"untrusted\" takes no arguments");
        }

        if (c->field != EG_F_CLIENT) {
            return eg_error(p, "operator \"untrusted\" applies only to the "
                            "client field");
        }

        return 0;

    case EG_OP_BACKEND:
        if (n != 1) {
            return eg_error(p, "operator \"backend\" takes no arguments");
        }

        if (c->field != EG_F_COOKIE && c->field != EG_F_HEADER) {
            return eg_error(p, "operator \"backend\" applies only to "
                            "cookie: and header: fields");
        }

        return 0;

    case EG_OP_REGEX:
        if (n != 2) {
            return eg_error(p, "operator \"regex\" takes exactly one "
                            "pattern");
        }

        return eg_compile_regex(p, c, t[1].s);

    default:
        break;
    }

    if (n < 2) {
        return eg_error(p, "operator \"%s\" needs at least one value",
                        eg_ops[i].name);
    }

    c->nargs = n - 1;
    c->args = eg_mem_alloc(&p->mem, c->nargs * sizeof(eg_str_t));
    if (c->args == NULL) {
        return eg_error(p, "out of memory");
    }

    for (i = 0; i < c->nargs; i++) {
        if (t[i + 1].s.len == 0) {
            return eg_error(p, "empty value for operator \"%.*s\"",
                            (int) t[0].s.len, t[0].s.data);
        }

        c->args[i] = eg_dup(p, t[i + 1].s, 1);
        if (c->args[i].data == NULL) {
            return eg_error(p, "out of memory");
        }
    }

    return 0;
}


static int
eg_compile_regex(eg_parser_t *p, eg_cond_t *c, eg_str_t src)
{
    int          rc;
    PCRE2_SIZE   off;
    PCRE2_UCHAR  msg[256];

    if (src.len == 0) {
        return eg_error(p, "empty regex");
    }

    /* IIS and Exchange compare case-insensitively; so does every rule */

    c->src = eg_dup(p, src, 0);
    if (c->src.data == NULL) {
        return eg_error(p, "out of memory");
    }

    c->re = pcre2_compile(src.data, src.len, PCRE2_CASELESS | PCRE2_DOTALL
                          | PCRE2_DOLLAR_ENDONLY, &rc, &off, NULL);
    if (c->re == NULL) {
        pcre2_get_error_message(rc, msg, sizeof(msg));
        return eg_error(p, "invalid regex \"%.*s\" at offset %zu: %s",
                        (int) (src.len > 200 ? 200 : src.len), src.data,
                        (size_t) off, (char *) msg);
    }

    if (eg_push((void ***) &p->codes, &p->ncodes, &p->ncodes_alloc, c->re)
        != 0)
    {
        pcre2_code_free(c->re);
        c->re = NULL;
        return eg_error(p, "out of memory");
    }

    /* JIT may be unavailable on the platform: interpretation still works */
    c->jit = (pcre2_jit_compile(c->re, PCRE2_JIT_COMPLETE) == 0);

    /* a lower bound of what a match needs: a shorter value (an empty
       query, say) is ruled out without running the regex */
    if (pcre2_pattern_info(c->re, PCRE2_INFO_MINLENGTH, &c->minlen) != 0) {
        c->minlen = 0;
    }

    return 0;
}


static const eg_rule_t *
eg_find_rule(eg_parser_t *p, eg_str_t id)
{
    size_t  i;

    for (i = 0; i < p->nrules; i++) {
        if (p->rules[i]->id.len == id.len
            && memcmp(p->rules[i]->id.data, id.data, id.len) == 0)
        {
            return p->rules[i];
        }
    }

    for (i = 0; i < p->rs->nrules; i++) {
        if (p->rs->rules[i]->id.len == id.len
            && memcmp(p->rs->rules[i]->id.data, id.data, id.len) == 0)
        {
            return p->rs->rules[i];
        }
    }

    return NULL;
}


/*
 * The cookie names the new rules ask for join the set's list, so that the
 * Cookie parser keeps only those.  The names live in the parser's memory,
 * which the set adopts on success.  The list is built first and committed
 * after every other allocation has succeeded.
 */

static int
eg_collect_cookie_names(eg_ruleset_t *rs, eg_parser_t *p, eg_str_t **out)
{
    size_t      i, n;

    n = rs->ncookie_names;
    for (i = 0; i < p->nrules; i++) {
        n += p->rules[i]->nconds;
    }

    /* [0].len: the room n; [1..n]: the names */

    *out = malloc((n + 1) * sizeof(eg_str_t));
    if (*out == NULL) {
        return -1;
    }

    (*out)[0].len = n;        /* the room, for the commit */

    if (rs->ncookie_names) {
        memcpy(*out + 1, rs->cookie_lnames,
               rs->ncookie_names * sizeof(eg_str_t));
    }

    return 0;
}


static void
eg_commit_cookie_names(eg_ruleset_t *rs, eg_parser_t *p, eg_str_t *block)
{
    size_t      i, j, k, n;
    eg_str_t   *lnames;
    eg_cond_t  *c;

    lnames = block + 1;
    n = rs->ncookie_names;

    for (i = 0; i < p->nrules; i++) {
        for (j = 0; j < p->rules[i]->nconds; j++) {
            c = &p->rules[i]->conds[j];

            if (c->field == EG_F_COOKIE_NAMES) {
                rs->all_cookies = 1;
            }

            if (c->field != EG_F_COOKIE && c->field != EG_F_PARAM) {
                continue;
            }

            /* keys are lower case (eg_parse_field()) */

            for (k = 0; k < n; k++) {
                if (eg_ieq_lower(c->key, lnames[k])) {
                    break;
                }
            }

            if (k == n) {
                lnames[n++] = c->key;
                rs->cookie_name_lens |= (c->key.len < 64)
                                        ? (uint64_t) 1 << c->key.len : 1;
            }
        }
    }

    free(rs->cookie_block);
    rs->cookie_block = block;
    rs->cookie_lnames = lnames;
    rs->ncookie_names = n;
}


static eg_str_t
eg_dup(eg_parser_t *p, eg_str_t s, int lower)
{
    size_t          i;
    eg_str_t        r = { NULL, 0 };
    unsigned char  *d;

    d = eg_mem_alloc(&p->mem, s.len + 1);
    if (d == NULL) {
        return r;
    }

    for (i = 0; i < s.len; i++) {
        d[i] = lower ? eg_lower(s.data[i]) : s.data[i];
    }

    d[s.len] = '\0';
    r.data = d;
    r.len = s.len;
    return r;
}


static int
eg_push(void ***arr, size_t *n, size_t *nalloc, void *item)
{
    size_t   size;
    void   **a;

    if (*n == *nalloc) {
        size = *nalloc ? *nalloc * 2 : 16;
        a = realloc(*arr, size * sizeof(void *));
        if (a == NULL) {
            return -1;
        }
        *arr = a;
        *nalloc = size;
    }

    (*arr)[(*n)++] = item;
    return 0;
}


static int
eg_error(eg_parser_t *p, const char *fmt, ...)
{
    int      n;
    va_list  args;

    if (p->line) {
        n = snprintf(p->err, p->errlen, "%s:%u: ", p->file, p->line);

    } else {
        n = snprintf(p->err, p->errlen, "%s: ", p->file);
    }

    if (n >= 0 && (size_t) n < p->errlen) {
        va_start(args, fmt);
        vsnprintf(p->err + n, p->errlen - n, fmt, args);
        va_end(args);
    }

    return -1;
}
