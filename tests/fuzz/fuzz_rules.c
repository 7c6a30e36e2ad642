/*
 * fuzz_rules: the rule-file parser, eg_ruleset_load_buffer().
 *
 * Input: the text of a rule file, loaded as "fuzz.rules" into a rule set
 * that already holds one rule (EG-BASE-001), so that duplicate ids and
 * "the set is unchanged on error" are exercised.
 *
 * Invariants:
 *   - on error: -1, the message is non-empty, NUL-terminated and starts
 *     with "fuzz.rules:"; the rule count is unchanged; loading again with
 *     a tiny error buffer fails the same way and writes a prefix of the
 *     same message, within the buffer
 *   - on success: 0, at least one rule added, each with a valid id (1-64
 *     of [A-Za-z0-9._-]), a name of 1-256 bytes, 1-16 CVE-YYYY-NNNN ids,
 *     action block, log or note; loading the same text again fails with
 *     "duplicate rule id" and leaves the set as it was
 *   - on success the set evaluates two fixed requests (a JSON POST and a
 *     form POST carrying every kind of field) twice with the same verdict,
 *     keeps the verdict invariants, and the log line of each verdict is
 *     valid (fuzz_log_check.h): rule names and ids come from the input
 *   - no leak: the set is freed every time (LeakSanitizer)
 */

#include "fuzz_log_check.h"


static const char  base_rules[] =
    "rule EG-BASE-001\n"
    "    name    \"base rule\"\n"
    "    cve     CVE-2021-26855\n"
    "    action  log\n"
    "    match   header:X-Base present\n"
    "end\n";


static eg_header_t   json_headers[] = {
    { eg_string("Host"), eg_string("mail.contoso.com") },
    { eg_string("User-Agent"), eg_string("Mozilla/5.0 (Windows NT 10.0)") },
    { eg_string("Content-Type"), eg_string("application/json; charset=utf-8") },
    { eg_string("Cookie"), eg_string("X-BEResource=localhost~1942062522; "
                                     "ASP.NET_SessionId=abc; a=b; lone") },
    { eg_string("Cookie"), eg_string("X-AnonResource-Backend=EX01.contoso."
                                     "local/ecp/y.js?#~1; msExchEcpCanary=x") },
    { eg_string("X-OWA-ExplicitLogonUser"), eg_string("owa/mastermailbox@"
                                                      "outlook.com/powershell") },
    { eg_string("X-Base"), eg_string("1") },
};

static const char  json_body[] =
    "{\"properties\":{\"Parameters\":{\"__type\":\"JsonDictionaryOfanyType:#"
    "Microsoft.Exchange.Management.ControlPanel\",\"FilePathName\":"
    "\"\\\\\\\\127.0.0.1\\\\c$\\\\inetpub\\\\wwwroot\\\\aspnet_client\\\\"
    "shell.aspx\"}},\"identity\":{\"RawIdentity\":\"x\"},\"ExternalUrl\":"
    "\"http://f/<script language=\\\"JScript\\\" runat=\\\"server\\\">"
    "\\u003c%\"}";

static eg_header_t   form_headers[] = {
    { eg_string("Host"), eg_string("mail.contoso.com") },
    { eg_string("Content-Type"),
      eg_string("application/x-www-form-urlencoded") },
    { eg_string("Cookie"), eg_string("X-BackEndOverrideCookie=127.0.0.1~1") },
};

static const char  form_body[] =
    "Email=autodiscover/autodiscover.json%3f%40foo.com&x=%252e%u002e&y";


static eg_request_t   requests[2];
static eg_options_t   options;
static eg_cidr_t      trusted[2];
static eg_str_t       backends[] = { eg_string("EX01.contoso.local") };


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;

    requests[0].method = fuzz_cstr("POST");
    requests[0].target = fuzz_cstr("/ecp/DDI/DDIService.svc/SetObject?schema="
                                   "ResetOABVirtualDirectory&msExchEcpCanary="
                                   "x&a=%2541&X-Rps-CAT=1");
    requests[0].headers = json_headers;
    requests[0].nheaders = sizeof(json_headers) / sizeof(eg_header_t);
    requests[0].client_addr = fuzz_cstr("192.0.2.7");
    requests[0].body_state = EG_BODY_READ;
    requests[0].body = fuzz_cstr(json_body);

    requests[1].method = fuzz_cstr("POST");
    requests[1].target = fuzz_cstr("/autodiscover/autodiscover.json?@foo.com/"
                                   "owa/?&Email=autodiscover/autodiscover."
                                   "json%3F@foo.com&Protocol=XYZ");
    requests[1].headers = form_headers;
    requests[1].nheaders = sizeof(form_headers) / sizeof(eg_header_t);
    requests[1].client_addr = fuzz_cstr("10.1.2.3");
    requests[1].body_state = EG_BODY_READ;
    requests[1].body = fuzz_cstr(form_body);

    if (eg_cidr_parse(fuzz_cstr("10.0.0.0/8"), &trusted[0]) != 0
        || eg_cidr_parse(fuzz_cstr("2001:db8::/32"), &trusted[1]) != 0)
    {
        abort();
    }

    memset(&options, 0, sizeof(eg_options_t));
    options.backends = backends;
    options.nbackends = 1;
    options.trusted = trusted;
    options.ntrusted = 2;

    return 0;
}


static int
valid_id(eg_str_t id)
{
    size_t         i;
    unsigned char  c;

    if (id.len == 0 || id.len > 64) {
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
valid_cve(eg_str_t s)
{
    size_t  i;

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


static void
check_rule(const eg_rule_t *r)
{
    size_t      i;
    eg_str_t    id, name;

    FUZZ_CHECK(r != NULL, "NULL rule");

    id = eg_rule_id(r);
    FUZZ_CHECK(valid_id(id), "invalid id \"%.*s\"", (int) id.len, id.data);
    FUZZ_CHECK(id.data[id.len] == '\0', "id not NUL-terminated");

    name = eg_rule_name(r);
    FUZZ_CHECK(name.data && name.len >= 1 && name.len <= 256,
               "name of %zu bytes", name.len);
    (void) fuzz_touch(name);

    FUZZ_CHECK(eg_rule_action(r) == EG_BLOCK || eg_rule_action(r) == EG_LOG
               || eg_rule_action(r) == EG_NOTE,
               "action %d", (int) eg_rule_action(r));

    FUZZ_CHECK(eg_rule_ncves(r) >= 1 && eg_rule_ncves(r) <= 16,
               "%zu CVEs", eg_rule_ncves(r));

    for (i = 0; i < eg_rule_ncves(r); i++) {
        FUZZ_CHECK(valid_cve(eg_rule_cve(r, i)), "invalid CVE %zu", i);
    }

    FUZZ_CHECK(eg_rule_cve(r, eg_rule_ncves(r)).data == NULL,
               "CVE past the end");
}


static void
eval_and_log(const eg_ruleset_t *rs, const eg_request_t *req)
{
    int                blocked;
    const eg_alloc_t  *alloc;
    eg_verdict_t       v, v2;
    eg_log_event_t     ev;

    alloc = fuzz_arena_init();

    eg_eval(rs, req, &options, alloc, &v);
    fuzz_check_verdict(rs, &v);

    eg_eval(rs, req, &options, alloc, &v2);
    FUZZ_CHECK(fuzz_same_verdict(&v, &v2), "two evaluations differ");

    if (v.action != EG_PASS || v.limit != EG_LIMIT_NONE) {
        memset(&ev, 0, sizeof(eg_log_event_t));
        ev.msec = 1700000000123ULL;
        /* as nginx with "exchange_guard on": a limit refuses too */
        blocked = v.action == EG_BLOCK || v.limit != EG_LIMIT_NONE;
        ev.action = blocked ? "blocked" : "detected";
        ev.verdict = &v;
        ev.source_ip = req->client_addr;
        ev.source_port = 50123;
        ev.method = req->method;
        ev.url_original = req->target;
        ev.user_agent = req->headers[1].value;
        ev.server_address = req->headers[0].value;
        ev.request_id = fuzz_cstr("0123456789abcdef");
        ev.status = blocked ? 403 : 0;

        (void) fuzz_check_log(&ev);
    }

    fuzz_arena_reset();
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int            rc;
    size_t         i, before, errlen;
    char           err[1024], *small;
    eg_str_t       text;
    eg_ruleset_t  *rs;

    rs = eg_ruleset_new();
    FUZZ_CHECK(rs != NULL, "eg_ruleset_new");

    rc = eg_ruleset_load_buffer(rs, "base.rules",
                                (const unsigned char *) base_rules,
                                sizeof(base_rules) - 1, err, sizeof(err));
    FUZZ_CHECK(rc == 0, "base rules: %s", err);

    before = eg_ruleset_count(rs);

    /* an exact-size copy: the parser must not read past it */
    fuzz_arena_init();
    text = fuzz_dup(data, size);

    memset(err, 0x55, sizeof(err));
    rc = eg_ruleset_load_buffer(rs, "fuzz.rules", text.data, text.len, err,
                                sizeof(err));

    FUZZ_CHECK(rc == 0 || rc == -1, "load returned %d", rc);

    if (rc != 0) {
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL,
                   "error message not NUL-terminated");
        FUZZ_CHECK(strncmp(err, "fuzz.rules:", 11) == 0 && strlen(err) > 12,
                   "error message \"%s\" does not start with the buffer name",
                   err);
        FUZZ_CHECK(eg_ruleset_count(rs) == before,
                   "failed load changed the set: %zu rules, was %zu",
                   eg_ruleset_count(rs), before);

        /* the same error into a tiny buffer */
        errlen = 1 + size % 16;
        small = fuzz_arena_alloc(&fuzz_arena, errlen);
        rc = eg_ruleset_load_buffer(rs, "fuzz.rules", text.data, text.len,
                                    small, errlen);
        FUZZ_CHECK(rc == -1, "second load of a bad file returned %d", rc);
        FUZZ_CHECK(memchr(small, '\0', errlen) != NULL
                   && strncmp(small, err, strlen(small)) == 0,
                   "truncated message is not a prefix of \"%s\"", err);

        eval_and_log(rs, &requests[0]);
        goto done;
    }

    FUZZ_CHECK(eg_ruleset_count(rs) > before, "load succeeded, no rule");

    for (i = 0; i < eg_ruleset_count(rs); i++) {
        check_rule(eg_ruleset_rule(rs, i));
    }

    FUZZ_CHECK(eg_ruleset_rule(rs, eg_ruleset_count(rs)) == NULL,
               "rule past the end");

    /* every id is now taken: the same file again must fail, cleanly */

    before = eg_ruleset_count(rs);
    rc = eg_ruleset_load_buffer(rs, "fuzz.rules", text.data, text.len, err,
                                sizeof(err));
    FUZZ_CHECK(rc == -1 && strstr(err, "duplicate rule id") != NULL,
               "second load of the same file: rc %d, \"%s\"", rc, err);
    FUZZ_CHECK(eg_ruleset_count(rs) == before, "failed reload changed the "
               "set");

    eval_and_log(rs, &requests[0]);
    eval_and_log(rs, &requests[1]);

done:

    fuzz_arena_reset();
    eg_ruleset_free(rs);
    return 0;
}
