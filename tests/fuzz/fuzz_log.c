/*
 * fuzz_log: the JSON log line, eg_log_size(), eg_log_format() and
 * eg_json_escape().
 *
 * Input: a 16-byte head, then fields separated by the head's separator
 * byte (so any byte, '\n' and '"' included, can be in a field when the
 * separator is another one):
 *
 *   head[0..7]   msec, little-endian
 *   head[8..9]   source port          head[10..11]  status (0: none)
 *   head[12]     flags: bit 0 "blocked" (else "detected"), bit 1 empty
 *                fields are NULL (else ""), bits 2-3 decode rounds - 1,
 *                bit 4 no max_cookies limit (else 1-4 cookies)
 *   head[13]     the separator
 *   head[14]     max for the direct eg_json_escape() test
 *   head[15]     unused
 *
 *   fields: source_ip, client_ip, method, url_original (the target),
 *   user_agent, request_id, server_address, a Cookie header, the body,
 *   then the rest
 *
 * The verdict comes from a real eg_eval() of that request against a rule
 * set made to match it everywhere (fields, cookies, JSON, body, client),
 * with awkward rule names (quotes, backslashes, tabs, invalid UTF-8,
 * 256 bytes), 64-byte ids, up to 16 CVEs per rule, more matches than
 * EG_MAX_MATCHES, and a low regex match limit so "limit" shows up.
 * Then fuzz_check_log() (exact-size buffer, UTF-8, one line, strict JSON).
 *
 * eg_json_escape() alone: the output fits 6 * max, is a valid JSON string
 * body, and for valid UTF-8 input decodes back to the input's first k
 * bytes, k <= max, k >= min(len, max) - 3, truncated == (k < len).
 */

#include "fuzz_log_check.h"


#define HEAD     16
#define NFIELDS  10


/* a header name of 7 + 280 bytes: its field name is cut in the log */
#define A10  "aaaaaaaaaa"
#define A70  A10 A10 A10 A10 A10 A10 A10
#define LONG_HEADER  "X-Fuzz-" A70 A70 A70 A70

static eg_ruleset_t  *rules;
static eg_cidr_t      trusted[1];


/* written as a C string: \" and \\ are the rule file's own escapes */

static const char  rule_text[] =
    "rule FZ-UA-" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
    "    name \"User-Agent \\\"quoted\\\" \\\\ back\\slash \t "
    "\xff\xfe \xc0\xaf \xe2\x82 \xf0\x9f\x92\xa9 \xed\xa0\x80 caf\xc3\xa9 "
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\xe2\x82\xac\"\n"
    "    cve  CVE-2021-26855 CVE-2021-26857 CVE-2021-26858 CVE-2021-27065 "
    "CVE-2021-34473 CVE-2021-34523 CVE-2021-31207 CVE-2022-41040 "
    "CVE-2022-41082 CVE-2022-41080 CVE-2023-21529 CVE-2023-21706 "
    "CVE-2023-21707 CVE-2024-21410 CVE-2024-26198 CVE-2099-12345678901\n"
    "    action block\n"
    "    match header:User-Agent regex '^'\n"
    "end\n"
    "rule FZ-NOTE\n"
    "    name \"a note on the cookies\"\n"
    "    cve  CVE-2021-26855\n"
    "    action note\n"
    "    match cookies regex '^'\n"
    "end\n"
    "rule FZ-METHOD\n"
    "    name \"method\tTAB\"\n"
    "    cve  CVE-2021-26855 CVE-2000-0001 CVE-2000-0002 CVE-2000-0003\n"
    "    action log\n"
    "    match method regex '^'\n"
    "end\n"
    "rule FZ-URI\n"
    "    name 'single \"quoted\" \\ name'\n"
    "    cve  CVE-2000-0004 CVE-2000-0005 CVE-2000-0006 CVE-2000-0007 "
    "CVE-2000-0008 CVE-2000-0009 CVE-2000-0010 CVE-2000-0011 "
    "CVE-2000-0012 CVE-2000-0013 CVE-2000-0014 CVE-2000-0015 "
    "CVE-2000-0016 CVE-2000-0017 CVE-2000-0018 CVE-2000-0019\n"
    "    action log\n"
    "    match uri regex '^'\n"
    "end\n"
    "rule FZ-PATH\n"
    "    name \"path\"\n"
    "    cve  CVE-2000-0020 CVE-2000-0021\n"
    "    action block\n"
    "    match path regex '^'\n"
    "end\n"
    "rule FZ-QUERY\n"
    "    name \"query\"\n"
    "    cve  CVE-2000-0036 CVE-2000-0037\n"
    "    action log\n"
    "    match query regex '^'\n"
    "end\n"
    "rule FZ-COOKIE-NAMES\n"
    "    name \"cookie names\"\n"
    "    cve  CVE-2000-0052 CVE-2000-0053\n"
    "    action log\n"
    "    match cookie-names regex '^'\n"
    "end\n"
    "rule FZ-COOKIES\n"
    "    name \"cookies\"\n"
    "    cve  CVE-2000-0068 CVE-2000-0069\n"
    "    action log\n"
    "    match cookies regex '^'\n"
    "end\n"
    "rule FZ-JSON\n"
    "    name \"json values\"\n"
    "    cve  CVE-2000-0084 CVE-2000-0085\n"
    "    action block\n"
    "    match json-values regex '^'\n"
    "end\n"
    "rule FZ-BODY\n"
    "    name \"body\"\n"
    "    cve  CVE-2000-0100\n"
    "    action log\n"
    "    match body regex '^'\n"
    "end\n"
    "rule FZ-CLIENT\n"
    "    name \"client\"\n"
    "    cve  CVE-2000-0101\n"
    "    action log\n"
    "    match client untrusted\n"
    "end\n"
    "rule FZ-BACKEND\n"
    "    name \"backend\"\n"
    "    cve  CVE-2021-26855\n"
    "    action block\n"
    "    match cookie:X-BEResource backend\n"
    "end\n"
    "rule FZ-NOT\n"
    "    name \"negated only\"\n"
    "    cve  CVE-2000-0102\n"
    "    action log\n"
    "    match header:X-Absent not present\n"
    "end\n"
    "rule FZ-ARG\n"
    "    name \"args and params\"\n"
    "    cve  CVE-2000-0103\n"
    "    action log\n"
    "    match arg:a present\n"
    "    match param:a regex '^'\n"
    "end\n"
    "rule FZ-LIMIT\n"
    "    name \"catastrophic backtracking\"\n"
    "    cve  CVE-2000-0104\n"
    "    action log\n"
    "    match header:User-Agent regex '^(\\w+\\s?)*$'\n"
    "end\n"
    "rule FZ-LONG-FIELD\n"
    "    name \"long field name\"\n"
    "    cve  CVE-2000-0105\n"
    "    action log\n"
    "    match header:" LONG_HEADER " regex '^'\n"
    "end\n";



int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char  err[1024];

    (void) argc;
    (void) argv;

    rules = eg_ruleset_new();
    if (rules == NULL
        || eg_ruleset_load_buffer(rules, "fuzz_log.rules",
                                  (const unsigned char *) rule_text,
                                  sizeof(rule_text) - 1, err, sizeof(err))
           != 0)
    {
        fprintf(stderr, "fuzz_log: rules: %s\n", err);
        abort();
    }

    if (eg_cidr_parse(fuzz_cstr("10.0.0.0/8"), &trusted[0]) != 0) {
        abort();
    }

    return 0;
}


static void
check_escape(eg_str_t src, size_t max)
{
    int             truncated;
    size_t          w, k, dlen;
    unsigned char  *dst, *wrapped, *dec;
    char            err[128];

    dst = fuzz_arena_alloc(&fuzz_arena, 6 * max);
    w = eg_json_escape(dst, src, max, &truncated);

    FUZZ_CHECK(w <= 6 * max, "escaped %zu bytes into %zu", w, 6 * max);
    FUZZ_CHECK(truncated == 0 || truncated == 1, "truncated %d", truncated);

    wrapped = fuzz_arena_alloc(&fuzz_arena, w + 2);
    wrapped[0] = '"';
    memcpy(wrapped + 1, dst, w);
    wrapped[w + 1] = '"';

    FUZZ_CHECK(json_check(wrapped, w + 2, err, sizeof(err)),
               "escaped text is not a JSON string (%s): %.*s", err,
               (int) w + 2, wrapped);

    if (!json_utf8_valid(src.data, src.len)) {
        FUZZ_CHECK(src.len > max || truncated == 0,
                   "truncated without a cut");
        return;
    }

    /* valid UTF-8: the output is exactly a prefix of the input */

    dec = fuzz_arena_alloc(&fuzz_arena, w);
    FUZZ_CHECK(json_string_decode(dst, w, dec, &dlen) == 0, "decode");

    k = dlen;
    FUZZ_CHECK(k <= src.len && (k == 0 || memcmp(dec, src.data, k) == 0),
               "escaped text does not decode to the input");
    FUZZ_CHECK(k <= max, "read %zu bytes, max %zu", k, max);
    FUZZ_CHECK(k + 3 >= (src.len < max ? src.len : max),
               "read %zu bytes of %zu, max %zu", k, src.len, max);
    FUZZ_CHECK(truncated == (k < src.len), "truncated %d, read %zu of %zu",
               truncated, k, src.len);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                i, nulls;
    size_t             n, k;
    uint8_t            head[HEAD];
    uint64_t           msec;
    eg_str_t           f[NFIELDS];
    eg_header_t        h[5];
    eg_request_t       req;
    eg_options_t       opts;
    eg_verdict_t       v;
    eg_log_event_t     ev;
    const uint8_t     *s, *end, *sep;
    const eg_alloc_t  *alloc;

    alloc = fuzz_arena_init();

    memset(head, 0, HEAD);
    n = size < HEAD ? size : HEAD;
    memcpy(head, data, n);

    nulls = (head[12] >> 1) & 1;

    /* the fields, each an exact-size copy */

    s = data + n;
    end = data + size;

    for (i = 0; i < NFIELDS; i++) {
        if (s > end) {
            f[i].data = NULL;
            f[i].len = 0;

        } else {
            sep = (i < NFIELDS - 1) ? memchr(s, head[13], end - s) : NULL;
            if (sep == NULL) {
                sep = end;
            }
            f[i] = fuzz_dup(s, sep - s);
            s = sep + 1;
        }

        if (f[i].len == 0) {
            f[i].data = nulls ? NULL : (const unsigned char *) "";
        }
    }

    /* the request the verdict is for; the engine gets no NULL strings */

    memset(&req, 0, sizeof(eg_request_t));
    req.method = f[2].data ? f[2] : fuzz_cstr("");
    req.target = f[3].data ? f[3] : fuzz_cstr("");
    req.client_addr = f[1].len ? f[1] : f[0].data ? f[0] : fuzz_cstr("");

    h[0].name = fuzz_cstr("User-Agent");
    h[0].value = f[4].data ? f[4] : fuzz_cstr("");
    h[1].name = fuzz_cstr("Host");
    h[1].value = f[6].data ? f[6] : fuzz_cstr("");
    h[2].name = fuzz_cstr("Cookie");
    h[2].value = f[7].data ? f[7] : fuzz_cstr("");
    h[3].name = fuzz_cstr("Content-Type");
    h[3].value = fuzz_cstr("application/x-www-form-urlencoded");

    /* "X-Fuzz-aaa...": the rule with a long field name, when present */
    h[4].name = fuzz_cstr(LONG_HEADER);
    h[4].value = f[9].data ? f[9] : fuzz_cstr("");

    req.headers = h;
    req.nheaders = f[9].len ? 5 : 4;
    req.body_state = EG_BODY_READ;
    req.body = f[8].data ? f[8] : fuzz_cstr("");

    memset(&opts, 0, sizeof(eg_options_t));
    opts.decode_rounds = 1 + ((head[12] >> 2) & 3);
    opts.max_cookies = (head[12] & 0x10) ? 0 : 1 + (head[12] >> 5) % 4;
    opts.trusted = trusted;
    opts.ntrusted = 1;
    opts.match_limit = 20000;
    opts.depth_limit = 1000;

    eg_eval(rules, &req, &opts, alloc, &v);
    fuzz_check_verdict(rules, &v);

    /* the event: strings straight from the input, NULL allowed */

    msec = 0;
    for (k = 0; k < 8; k++) {
        msec |= (uint64_t) head[k] << (8 * k);
    }

    memset(&ev, 0, sizeof(eg_log_event_t));
    ev.msec = msec;
    ev.action = (head[12] & 1) ? "blocked" : "detected";
    ev.verdict = &v;
    ev.source_ip = f[0];
    ev.source_port = head[8] | head[9] << 8;
    ev.client_ip = f[1];
    ev.method = f[2];
    ev.url_original = f[3];
    ev.user_agent = f[4];
    ev.request_id = f[5];
    ev.server_address = f[6];
    ev.status = head[10] | head[11] << 8;

    (void) fuzz_check_log(&ev);

    /* eg_json_escape() on its own, on the body and on the rest */

    check_escape(f[8].data ? f[8] : fuzz_cstr(""), head[14]);
    check_escape(f[9].data ? f[9] : fuzz_cstr(""), head[14] * 17 + 1);

    fuzz_arena_reset();
    return 0;
}
