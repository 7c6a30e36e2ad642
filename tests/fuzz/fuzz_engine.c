/*
 * fuzz_engine: the whole engine on a raw HTTP request, with the shipped
 * rules (every rules/NAME.rules file) and rules that turn the gates on
 * (gate_rules()).
 *
 * Input: a 4-byte head, then the request, read loosely (nothing is
 * rejected; whatever parses is used):
 *
 *   METHOD SP TARGET SP VERSION \r\n (NAME: VALUE \r\n)* \r\n BODY
 *
 * '\r' before '\n' is optional; a line without ':' is a header with an
 * empty value; the target runs to the last space of the request line.
 * Every string is copied to a heap buffer of its exact size.
 *
 *   head[0]  max_cookies: bits 0-4 (0: the default)
 *   head[1]  max_header_bytes: 16 * head[1] (0: the default)
 *   head[2]  decode_rounds: bit 2 set: the default, else 1 + bits 0-1;
 *            bits 3-7: the regex match limit, 1000 * (1 + value), depth
 *            limit 1000 (31: the defaults)
 *   head[3]  bit 0: exchange_guard_backends set; bit 1: trusted networks
 *            set; bits 2-4: the client address (a list, or the first
 *            X-Forwarded-For); bit 5: evaluate first with the body
 *            pending, as nginx does, then again with it read; bit 6:
 *            "exchange_guard detect" (the line says "detected")
 *
 * The rules directory: $EG_RULES_DIR, else the compile-time EG_RULES_DIR,
 * else "rules"; loaded once in LLVMFuzzerInitialize.
 *
 * Invariants: the verdict invariants (fuzz_common.h); evaluating again
 * gives the same verdict, and so does evaluating without the plan's
 * shortcuts (the probes that skip a rule, the lookup of long prefix and
 * suffix lists by edge byte, the gates, the lack tables); with the body
 * read there is no need_body, and every deciding rule that matched with
 * the body pending still matches (reading the body only adds matches);
 * the log line (as nginx would write it) is valid (fuzz_log_check.h).
 */

#include <glob.h>

#include "fuzz_log_check.h"
#include "eg_internal.h"          /* the plan's shortcuts */


#ifndef EG_RULES_DIR
#define EG_RULES_DIR  "rules"
#endif

#define HEAD         4
#define MAX_HEADERS  256


static eg_ruleset_t  *rules;
static size_t        *nprobes;          /* each rule's, as planned */
static uint32_t     **byedge;           /* each condition's, likewise */
static eg_fold_t    **folds;            /* each condition's, likewise */
static eg_cidr_t      trusted[3];
static eg_str_t       backends[2];

static const char    *addrs[] = {
    "192.0.2.1", "10.0.0.5", "::1", "2001:db8::5", "", "unix:",
    "not-an-address", NULL /* X-Forwarded-For */
};


/* the plan's shortcuts on (as planned, saved the first time) or off:
   probes, edge-byte lookups, gates, the lack tables, and the arguments'
   folds (compared with eg_ieq_lower() instead) */

static void gate_rules(void);


static void
shortcuts(int on)
{
    size_t      i, j;
    eg_rule_t  *r;
    eg_cond_t  *c;
    static int       saved;
    static unsigned  lack;
    static uint64_t *ungated, *cookie_ungated;

    if (!saved) {
        ungated = rules->ungated;
        cookie_ungated = rules->cookie_ungated;
        lack = rules->lack;
    }

    rules->ungated = on ? ungated : NULL;
    rules->cookie_ungated = on ? cookie_ungated : NULL;
    rules->lack = on ? lack : 0;

    for (i = 0; i < rules->nrules; i++) {
        r = rules->rules[i];

        if (!saved) {
            nprobes[i] = r->nprobes;
        }

        r->nprobes = on ? nprobes[i] : 0;

        for (j = 0; j < r->nconds; j++) {
            c = &r->conds[j];

            if (!saved) {
                byedge[i * EG_MAX_CONDS + j] = c->byedge;
                folds[i * EG_MAX_CONDS + j] = c->folds;
            }

            c->byedge = on ? byedge[i * EG_MAX_CONDS + j] : NULL;
            c->folds = on ? folds[i * EG_MAX_CONDS + j] : NULL;
        }
    }

    saved = 1;
}


/*
 * Rules that turn the gates on (eg_plan_gates()): more than 32 header
 * names, eight or more rules on each gram target (a header, the path,
 * query, uri, client and method; regexes with literals too) and on
 * cookie names; short pieces a fuzzer finds.
 */

static void
gate_rules(void)
{
    int          i, k;
    char         err[1024];
    size_t       n;
    static char  text[64 * 1024];
    static const char  *kinds[] = {
        "header:User-Agent contains ab%dc",
        "header:X-H%d present",
        "query contains q%d=x",
        "uri suffix .ex%d",
        "path contains /d%d/",
        "cookie:c%d present",
        "path prefix /s%d/",
        "client is 10.0.0.%d",
        "method is mth%d",
        "query regex 'rqx%1$d(a|b)+x|zqy%1$dy'"
    };

    err[0] = '\0';
    n = 0;
    for (k = 0; k < 10; k++) {
        for (i = 0; i < (k == 1 ? 40 : 10); i++) {
            n += snprintf(text + n, sizeof(text) - n,
                          "rule FZ-%d-%d\n    name \"x\"\n"
                          "    cve CVE-2021-26855\n    action block\n"
                          "    match ", k, i);
            n += snprintf(text + n, sizeof(text) - n, kinds[k], i);
            n += snprintf(text + n, sizeof(text) - n, "\nend\n");
        }
    }

    if (eg_ruleset_load_buffer(rules, "fuzz-gates.rules",
                               (const unsigned char *) text, n, err,
                               sizeof(err))
        != 0
        || rules->ungated == NULL || rules->cookie_ungated == NULL
        || rules->ngram_targets != 6 || rules->nhdr_ovf == 0
        || rules->rules[rules->nrules - 1]->conds[0].nlits != 2)
    {
        fprintf(stderr, "fuzz_engine: the gate rules: %s\n", err);
        exit(2);
    }
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char         err[1024], pattern[4096];
    size_t       i;
    glob_t       gl;
    const char  *dir;

    (void) argc;
    (void) argv;

    dir = getenv("EG_RULES_DIR");
    if (dir == NULL || *dir == '\0') {
        dir = EG_RULES_DIR;
    }

    snprintf(pattern, sizeof(pattern), "%s/*.rules", dir);

    if (glob(pattern, 0, NULL, &gl) != 0 || gl.gl_pathc == 0) {
        fprintf(stderr, "fuzz_engine: no rule file matches %s (set "
                "EG_RULES_DIR)\n", pattern);
        exit(2);
    }

    rules = eg_ruleset_new();
    if (rules == NULL) {
        abort();
    }

    for (i = 0; i < gl.gl_pathc; i++) {
        if (eg_ruleset_load_file(rules, gl.gl_pathv[i], err, sizeof(err))
            != 0)
        {
            fprintf(stderr, "fuzz_engine: %s\n", err);
            exit(2);
        }
    }

    globfree(&gl);

    gate_rules();

    nprobes = calloc(eg_ruleset_count(rules) + 1, sizeof(size_t));
    byedge = calloc(eg_ruleset_count(rules) * EG_MAX_CONDS + 1,
                    sizeof(uint32_t *));
    folds = calloc(eg_ruleset_count(rules) * EG_MAX_CONDS + 1,
                   sizeof(eg_fold_t *));
    if (nprobes == NULL || byedge == NULL || folds == NULL) {
        abort();
    }

    shortcuts(1);

    if (eg_cidr_parse(fuzz_cstr("10.0.0.0/8"), &trusted[0]) != 0
        || eg_cidr_parse(fuzz_cstr("192.168.0.0/16"), &trusted[1]) != 0
        || eg_cidr_parse(fuzz_cstr("2001:db8::/32"), &trusted[2]) != 0)
    {
        abort();
    }

    backends[0] = fuzz_cstr("EX01.contoso.local");
    backends[1] = fuzz_cstr("ex02");

    return 0;
}


static eg_str_t
trim(const uint8_t *s, const uint8_t *e)
{
    while (s < e && (*s == ' ' || *s == '\t')) {
        s++;
    }

    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
        e--;
    }

    return fuzz_dup(s, e - s);
}


/* the end of the line at s (before "\r\n" or "\n"), and the next line */

static const uint8_t *
line_end(const uint8_t *s, const uint8_t *end, const uint8_t **next)
{
    const uint8_t  *nl;

    nl = memchr(s, '\n', end - s);

    if (nl == NULL) {
        *next = end;
        return end;
    }

    *next = nl + 1;
    return (nl > s && nl[-1] == '\r') ? nl - 1 : nl;
}


static void
parse_request(const uint8_t *s, const uint8_t *end, eg_request_t *req,
    eg_header_t *h)
{
    const uint8_t  *eol, *next, *sp, *colon, *p;

    memset(req, 0, sizeof(eg_request_t));
    req->headers = h;

    /* the request line */

    eol = line_end(s, end, &next);

    sp = memchr(s, ' ', eol - s);
    if (sp == NULL) {
        req->method = fuzz_dup(s, eol - s);
        req->target = fuzz_dup(eol, 0);

    } else {
        req->method = fuzz_dup(s, sp - s);
        s = sp + 1;

        for (p = eol; p > s && p[-1] != ' '; p--) { /* void */ }

        req->target = (p > s) ? fuzz_dup(s, p - 1 - s) : fuzz_dup(s, eol - s);
    }

    /* headers, to the first empty line */

    for (s = next; s < end; s = next) {
        eol = line_end(s, end, &next);

        if (eol == s) {
            s = next;
            break;
        }

        if (req->nheaders == MAX_HEADERS) {
            continue;
        }

        colon = memchr(s, ':', eol - s);

        if (colon) {
            h[req->nheaders].name = fuzz_dup(s, colon - s);
            h[req->nheaders].value = trim(colon + 1, eol);

        } else {
            h[req->nheaders].name = fuzz_dup(s, eol - s);
            h[req->nheaders].value = fuzz_dup(eol, 0);
        }

        req->nheaders++;
    }

    req->body = fuzz_dup(s < end ? s : end, s < end ? (size_t) (end - s) : 0);
    req->body_state = EG_BODY_READ;
}


static eg_str_t
header(const eg_request_t *req, const char *name)
{
    size_t    i;
    eg_str_t  none = { NULL, 0 };

    for (i = 0; i < req->nheaders; i++) {
        if (eg_cookie_name_is(req->headers[i].name, fuzz_cstr(name))) {
            return req->headers[i].value;
        }
    }

    return none;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                blocked;
    int                pend;
    unsigned           a, i, k;
    uint8_t            head[HEAD];
    eg_str_t           xff;
    eg_header_t       *h;
    eg_request_t       req;
    eg_options_t       opts;
    eg_verdict_t       v, v2, vp;
    eg_log_event_t     ev;
    const eg_alloc_t  *alloc;

    if (size < HEAD) {
        return 0;
    }

    alloc = fuzz_arena_init();
    memcpy(head, data, HEAD);

    h = fuzz_arena_alloc(&fuzz_arena, MAX_HEADERS * sizeof(eg_header_t));
    parse_request(data + HEAD, data + size, &req, h);


    memset(&opts, 0, sizeof(eg_options_t));
    opts.max_cookies = head[0] & 0x1f;
    opts.max_header_bytes = 16 * (size_t) head[1];
    opts.decode_rounds = (head[2] & 4) ? 0 : 1 + (head[2] & 3);

    if (head[3] & 1) {
        opts.backends = backends;
        opts.nbackends = 2;
    }

    if (head[3] & 2) {
        opts.trusted = trusted;
        opts.ntrusted = 3;
    }

    a = (head[3] >> 2) & 7;

    if (addrs[a]) {
        req.client_addr = fuzz_cstr(addrs[a]);

    } else {
        xff = header(&req, "X-Forwarded-For");
        req.client_addr = xff.data ? xff : fuzz_cstr("");
    }

    /* 31: the defaults */
    if ((head[2] >> 3) != 31) {
        opts.match_limit = 1000 * (1 + (head[2] >> 3));
        opts.depth_limit = 1000;
    }

    /* as nginx: first without the body, then with it if a rule asks */

    pend = 0;

    if (head[3] & 0x20) {
        eg_request_t  pending = req;
        eg_str_t      nobody = { NULL, 0 };

        pending.body_state = EG_BODY_PENDING;
        pending.body = nobody;

        eg_eval(rules, &pending, &opts, alloc, &vp);
        fuzz_check_verdict(rules, &vp);
        pend = 1;
    }

    eg_eval(rules, &req, &opts, alloc, &v);
    fuzz_check_verdict(rules, &v);

    /* reading the body only adds matches: a rule that matched without it
       did not look at it */

    if (pend) {
        FUZZ_CHECK(vp.action <= v.action, "action %d with the body pending, "
                   "%d with it read", (int) vp.action, (int) v.action);

        if (vp.total <= EG_MAX_MATCHES && v.total <= EG_MAX_MATCHES) {
            for (i = 0; i < vp.nmatches; i++) {
                if (eg_rule_action(vp.matches[i].rule) == EG_NOTE) {
                    continue;
                }

                for (k = 0; k < v.nmatches; k++) {
                    if (v.matches[k].rule == vp.matches[i].rule) {
                        break;
                    }
                }

                FUZZ_CHECK(k < v.nmatches, "rule %.*s matched with the body "
                           "pending, not with it read",
                           (int) eg_rule_id(vp.matches[i].rule).len,
                           eg_rule_id(vp.matches[i].rule).data);
            }
        }
    }

    FUZZ_CHECK(v.need_body == 0, "need_body with the body read");

    eg_eval(rules, &req, &opts, alloc, &v2);
    FUZZ_CHECK(fuzz_same_verdict(&v, &v2), "two evaluations differ");

    /* the shortcuts only skip work whose answer is known: without them
       every rule is tried, every list read in full, and every argument
       compared by eg_ieq_lower() */

    shortcuts(0);
    eg_eval(rules, &req, &opts, alloc, &v2);
    shortcuts(1);
    FUZZ_CHECK(fuzz_same_verdict(&v, &v2), "the verdict differs without "
               "the plan's probes, lookups, gates and folds: action %d/%d, "
               "%u/%u matches, limit %d/%d", (int) v.action, (int) v2.action,
               (unsigned) v.total, (unsigned) v2.total, (int) v.limit,
               (int) v2.limit);

    /* the log line, as the module writes it */

    if (v.path.data == NULL) {
        (void) eg_uri_normalize(req.target, 3, alloc, &v.path, &v.query);
    }

    /* "exchange_guard on" (limit_action block) or "detect" */
    blocked = !(head[3] & 0x40)
              && (v.action == EG_BLOCK || v.limit != EG_LIMIT_NONE);

    memset(&ev, 0, sizeof(eg_log_event_t));
    ev.msec = 1700000000000ULL + (head[0] | head[1] << 8 | head[2] << 16);
    ev.action = blocked ? "blocked" : "detected";
    ev.verdict = &v;
    ev.source_ip = req.client_addr;
    ev.source_port = 40000 + head[3];
    ev.client_ip = header(&req, "X-Forwarded-For");
    ev.method = req.method;
    ev.url_original = req.target;
    ev.user_agent = header(&req, "User-Agent");
    ev.request_id = header(&req, "X-Request-Id");
    ev.server_address = header(&req, "Host");
    ev.status = blocked ? 403 : 0;

    (void) fuzz_check_log(&ev);

    for (i = 0; i < v.nmatches; i++) {
        (void) eg_rule_id(v.matches[i].rule);
    }

    fuzz_arena_reset();
    return 0;
}
