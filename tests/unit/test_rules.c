/*
 * Unit tests of the rule-file parser: eg_ruleset_load_buffer() and
 * eg_ruleset_load_file().  Every error message is checked for its exact
 * "name:line: " prefix and a key phrase, and every failed load is checked
 * to leave the rule set as it was: a file is added whole or not at all.
 */

#include <errno.h>
#include <glob.h>

#include "eg_test.h"


/* a rule's head: lines 1 to 4; the next line is line 5 */
#define HEAD                                                                  \
    "rule A\n"                                                                \
    "    name    \"a rule\"\n"                                                \
    "    cve     CVE-2021-26855\n"                                            \
    "    action  block\n"

#define MATCH  "    match   path prefix /ecp/\n"

/* buffer "t.rules" must fail at line (0: no line) with phrase */
#define CHECK_ERR(text, line, phrase)                                         \
    check_err(EG_LIT(text), line, phrase, __FILE__, __LINE__)

#define CHECK_ERR_BUF(buf, len, line, phrase)                                 \
    check_err(eg_test_mem(buf, len), line, phrase, __FILE__, __LINE__)

#define ERRLEN  1024


static int load(eg_ruleset_t *rs, const char *name, eg_str_t text,
    char *err);
static eg_ruleset_t *base_set(void);
static void check_prefix(const char *err, const char *prefix,
    const char *phrase, const char *file, int line);
static void check_err(eg_str_t text, unsigned errline, const char *phrase,
    const char *file, int line);
static char *write_file(const char *dir, const char *name, const char *text,
    size_t len);
static void test_valid(void);
static void test_shipped(void);
static void test_tokens(void);
static void test_structure(void);
static void test_ids(void);
static void test_keywords(void);
static void test_fields(void);
static void test_operators(void);
static void test_end(void);
static void test_bytes(void);
static void test_limits(void);
static void test_atomic(void);
static void test_files(void);
static void test_errlen(void);


static const char  valid[] =
    "# exchange_guard test rules\n"
    "\n"
    "rule EG-T-001   # a comment after the id\n"
    "    name    \"first \\\"rule\\\" with \\\\ and '\"\n"
    "    cve     CVE-2021-26855 CVE-2021-27065\n"
    "    action  block\n"
    "    match   cookie:X-BEResource backend\n"
    "    match   path not regex '^/x\"y'\n"
    "end\n"
    "\n"
    "rule EG-T-002\n"
    "\tname\t'single \"quoted\" \\ name'\n"
    "\tcve\tCVE-2022-41040\n"
    "\taction\tlog\n"
    "\tmatch\theader:User-Agent prefix antSword/ \"Exchange Svc\"\n"
    "end\n"
    "rule eg_t.003\r\n"
    "    name \"crlf\"\r\n"
    "    cve CVE-2021-34473 CVE-2021-34523 CVE-2021-31207\r\n"
    "    action log\r\n"
    "    match method is POST\r\n"
    "    match arg:Email present\r\n"
    "    match cookie-names contains x-anon\r\n"
    "    match cookies regex '(?i)email='\r\n"
    "    match query suffix .js\r\n"
    "    match uri contains autodiscover\r\n"
    "    match header:X-A not backend\r\n"
    "end\r\n"
    "# trailing comment, no newline at the end";


static int
load(eg_ruleset_t *rs, const char *name, eg_str_t text, char *err)
{
    err[0] = '\0';

    return eg_ruleset_load_buffer(rs, name, text.data, text.len, err,
                                  ERRLEN);
}


/* a set that already holds one rule, BASE, defined at base.rules:2 */

static eg_ruleset_t *
base_set(void)
{
    char           err[ERRLEN];
    eg_ruleset_t  *rs;

    rs = eg_ruleset_new();
    if (rs == NULL) {
        return NULL;
    }

    if (load(rs, "base.rules", EG_LIT("# base\n"
                                      "rule BASE\n"
                                      "    name \"base\"\n"
                                      "    cve CVE-2021-26855\n"
                                      "    action log\n"
                                      "    match method is GET\n"
                                      "end\n"), err)
        != 0)
    {
        printf("base.rules: %s\n", err);
        eg_ruleset_free(rs);
        return NULL;
    }

    return rs;
}


static void
check_prefix(const char *err, const char *prefix, const char *phrase,
    const char *file, int line)
{
    if (strncmp(err, prefix, strlen(prefix)) != 0) {
        eg_test_fail(file, line, "error \"%s\" does not start with \"%s\"",
                     err, prefix);
        return;
    }

    if (strstr(err + strlen(prefix), phrase) == NULL) {
        eg_test_fail(file, line, "error \"%s\" does not say \"%s\"", err,
                     phrase);
        return;
    }

    eg_test_pass();
}


static void
check_err(eg_str_t text, unsigned errline, const char *phrase,
    const char *file, int line)
{
    int            rc;
    char           err[ERRLEN], prefix[64];
    eg_ruleset_t  *rs;

    rs = base_set();
    if (rs == NULL) {
        eg_test_fail(file, line, "cannot make the base rule set");
        return;
    }

    rc = load(rs, "t.rules", text, err);

    if (rc != -1) {
        eg_test_fail(file, line, "load returned %d, expected -1 with "
                     "\"%s\"", rc, phrase);

    } else {
        if (errline) {
            snprintf(prefix, sizeof(prefix), "t.rules:%u: ", errline);

        } else {
            snprintf(prefix, sizeof(prefix), "t.rules: ");
        }

        check_prefix(err, prefix, phrase, file, line);
    }

    /* atomic: the set is as it was */

    if (eg_ruleset_count(rs) != 1) {
        eg_test_fail(file, line, "a failed load changed the rule count to "
                     "%zu", eg_ruleset_count(rs));

    } else {
        eg_test_pass();
    }

    eg_ruleset_free(rs);
}


static void
test_valid(void)
{
    char              err[ERRLEN];
    eg_ruleset_t     *rs;
    const eg_rule_t  *r;

    rs = eg_ruleset_new();
    CHECK(rs != NULL);
    if (rs == NULL) {
        return;
    }

    CHECK_INT(eg_ruleset_count(rs), 0);
    CHECK(eg_ruleset_rule(rs, 0) == NULL);

    CHECK_INT(load(rs, "valid.rules", EG_LIT(valid), err), 0);
    CHECK_STR(err, "");
    CHECK_INT(eg_ruleset_count(rs), 3);

    r = eg_ruleset_rule(rs, 0);
    CHECK(r != NULL);
    if (r) {
        CHECK_STR(eg_rule_id(r), "EG-T-001");
        CHECK_STR(eg_rule_name(r), "first \"rule\" with \\ and '");
        CHECK_INT(eg_rule_ncves(r), 2);
        CHECK_STR(eg_rule_cve(r, 0), "CVE-2021-26855");
        CHECK_STR(eg_rule_cve(r, 1), "CVE-2021-27065");
        CHECK(eg_rule_cve(r, 2).data == NULL && eg_rule_cve(r, 2).len == 0);
        CHECK_INT(eg_rule_action(r), EG_BLOCK);
    }

    r = eg_ruleset_rule(rs, 1);
    CHECK(r != NULL);
    if (r) {
        CHECK_STR(eg_rule_id(r), "EG-T-002");
        /* no escapes inside single quotes */
        CHECK_STR(eg_rule_name(r), "single \"quoted\" \\ name");
        CHECK_INT(eg_rule_ncves(r), 1);
        CHECK_STR(eg_rule_cve(r, 0), "CVE-2022-41040");
        CHECK_INT(eg_rule_action(r), EG_LOG);
    }

    r = eg_ruleset_rule(rs, 2);
    CHECK(r != NULL);
    if (r) {
        CHECK_STR(eg_rule_id(r), "eg_t.003");
        CHECK_STR(eg_rule_name(r), "crlf");
        CHECK_INT(eg_rule_ncves(r), 3);
        CHECK_STR(eg_rule_cve(r, 2), "CVE-2021-31207");
        CHECK_INT(eg_rule_action(r), EG_LOG);
    }

    CHECK(eg_ruleset_rule(rs, 3) == NULL);

    /* a second file adds to the set, in order */
    CHECK_INT(load(rs, "more.rules", EG_LIT("rule EG-T-004\n"
                                            " name \"4\"\n"
                                            " cve CVE-2022-41080\n"
                                            " action block\n"
                                            " match path contains /x\n"
                                            "end\n"), err), 0);
    CHECK_INT(eg_ruleset_count(rs), 4);
    r = eg_ruleset_rule(rs, 3);
    CHECK(r != NULL && eg_rule_id(r).len == 8);

    eg_ruleset_free(rs);

    /* freeing nothing is fine */
    eg_ruleset_free(NULL);
}


/* every shipped rule file loads, all of them into one set (README) */

static void
test_shipped(void)
{
    char              err[ERRLEN];
    size_t            i;
    glob_t            g;
    eg_ruleset_t     *rs;
    const eg_rule_t  *r;

    if (glob("rules/*.rules", 0, NULL, &g) != 0) {
        eg_test_fail(__FILE__, __LINE__, "no rules/*.rules (run from the "
                     "repository root)");
        return;
    }

    rs = eg_ruleset_new();
    if (rs == NULL) {
        CHECK(rs != NULL);
        globfree(&g);
        return;
    }

    for (i = 0; i < g.gl_pathc; i++) {
        err[0] = '\0';
        if (!CHECK_INT(eg_ruleset_load_file(rs, g.gl_pathv[i], err, ERRLEN),
                       0))
        {
            printf("    %s\n", err);
        }
    }

    CHECK(eg_ruleset_count(rs) >= g.gl_pathc);

    for (i = 0; i < eg_ruleset_count(rs); i++) {
        r = eg_ruleset_rule(rs, i);
        CHECK(eg_rule_id(r).len > 0 && eg_rule_name(r).len > 0
              && eg_rule_action(r) != EG_PASS);
    }

    eg_ruleset_free(rs);
    globfree(&g);
}


static void
test_tokens(void)
{
    CHECK_ERR("rule A\n    name \"abc\n", 2, "unterminated quoted string");
    CHECK_ERR(HEAD MATCH "    match path regex 'abc\n", 6,
              "unterminated quoted string");
    CHECK_ERR("rule A\n    name \"abc\\\"\n", 2,
              "unterminated quoted string");
    CHECK_ERR("rule A\n    name \"abc\"x\n", 2,
              "missing space after quoted string");
    CHECK_ERR("rule A\n    name 'abc'\"x\"\n", 2,
              "missing space after quoted string");

    /* quotes make one word, white space inside included */
    CHECK_ERR("rule \"A B\"\n", 1, "invalid rule id \"A B\"");
}


static void
test_structure(void)
{
    CHECK_ERR("\n# c\nfoo bar\n", 3, "expected \"rule\", found \"foo\"");
    CHECK_ERR("Rule A\n", 1, "expected \"rule\", found \"Rule\"");
    CHECK_ERR("name \"x\"\n", 1, "expected \"rule\", found \"name\"");
    CHECK_ERR("end\n", 1, "\"end\" outside a rule");
    CHECK_ERR(HEAD MATCH "end\nend\n", 7, "\"end\" outside a rule");

    /* not closed: reported at the line of the rule */
    CHECK_ERR("\n\nrule A\n    name \"n\"\n", 3,
              "rule \"A\" is not closed with \"end\"");
    CHECK_ERR(HEAD MATCH, 1, "rule \"A\" is not closed with \"end\"");
    CHECK_ERR(HEAD MATCH "rule B\n", 6,
              "rule \"A\" is not closed with \"end\" before the next "
              "\"rule\"");

    /* no rules: no line number */
    CHECK_ERR("", 0, "no rules in file");
    CHECK_ERR("# only a comment\n\n   \n\t\n", 0, "no rules in file");
}


static void
test_ids(void)
{
    char           text[256], err[ERRLEN];
    eg_ruleset_t  *rs;

    CHECK_ERR("rule\n", 1, "\"rule\" takes exactly one id");
    CHECK_ERR("rule A B\n", 1, "\"rule\" takes exactly one id");
    CHECK_ERR("rule a/b\n", 1, "invalid rule id \"a/b\"");
    CHECK_ERR("rule a:b\n", 1, "invalid rule id \"a:b\"");
    CHECK_ERR("rule \"\"\n", 1, "invalid rule id \"\"");
    CHECK_ERR("rule \xc3\xa9\n", 1, "invalid rule id");

    /* 64 characters are fine, 65 are not */
    snprintf(text, sizeof(text), "rule %065d\n", 0);
    CHECK_ERR_BUF(text, strlen(text), 1, "invalid rule id");

    snprintf(text, sizeof(text),
             "rule %064d\n name \"n\"\n cve CVE-2021-26855\n action log\n"
             " match method is GET\nend\n", 0);
    rs = eg_ruleset_new();
    CHECK_INT(load(rs, "id64.rules", eg_test_s(text), err), 0);
    CHECK_STR(err, "");
    CHECK_INT(eg_rule_id(eg_ruleset_rule(rs, 0)).len, 64);
    eg_ruleset_free(rs);

    /* duplicates: in one file, and with the set's rule from base.rules */
    CHECK_ERR(HEAD MATCH "end\n" HEAD MATCH "end\n", 7,
              "duplicate rule id \"A\", first defined at t.rules:1");
    CHECK_ERR("\n" HEAD MATCH "end\nrule BASE\n", 8,
              "duplicate rule id \"BASE\", first defined at base.rules:2");
}


static void
test_keywords(void)
{
    char  text[1024];
    int   i, n;

    CHECK_ERR(HEAD "    foo bar\n", 5,
              "unknown keyword \"foo\" in rule \"A\"");
    CHECK_ERR(HEAD "    Name \"x\"\n", 5, "unknown keyword \"Name\"");

    CHECK_ERR(HEAD "    name \"again\"\n", 5,
              "\"name\" given twice in rule \"A\"");
    CHECK_ERR(HEAD "    cve CVE-2021-27065\n", 5,
              "\"cve\" given twice in rule \"A\"");
    CHECK_ERR(HEAD "    action log\n", 5,
              "\"action\" given twice in rule \"A\"");

    CHECK_ERR("rule A\n    name\n", 2, "\"name\" takes one quoted text");
    CHECK_ERR("rule A\n    name \"a\" \"b\"\n", 2,
              "\"name\" takes one quoted text");
    CHECK_ERR("rule A\n    name \"\"\n", 2, "\"name\" takes one quoted text");

    n = snprintf(text, sizeof(text), "rule A\n    name \"");
    for (i = 0; i < 257; i++) {
        text[n++] = 'x';
    }
    n += snprintf(text + n, sizeof(text) - n, "\"\n");
    CHECK_ERR_BUF(text, n, 2, "\"name\" takes one quoted text");

    CHECK_ERR("rule A\n    cve CVE-21-1\n", 2,
              "invalid CVE id \"CVE-21-1\"");
    CHECK_ERR("rule A\n    cve cve-2021-26855\n", 2,
              "invalid CVE id \"cve-2021-26855\"");
    CHECK_ERR("rule A\n    cve CVE-2021-123\n", 2, "invalid CVE id");
    CHECK_ERR("rule A\n    cve CVE-2021-26855x\n", 2, "invalid CVE id");
    CHECK_ERR("rule A\n    cve CVE-2021-26855 bogus\n", 2,
              "invalid CVE id \"bogus\"");
    CHECK_ERR("rule A\n    cve\n", 2, "\"cve\" takes 1 to 16 CVE ids");

    n = snprintf(text, sizeof(text), "rule A\n    cve");
    for (i = 0; i < 17; i++) {
        n += snprintf(text + n, sizeof(text) - n, " CVE-2021-%d", 10000 + i);
    }
    n += snprintf(text + n, sizeof(text) - n, "\n");
    CHECK_ERR_BUF(text, n, 2, "\"cve\" takes 1 to 16 CVE ids");

    CHECK_ERR("rule A\n    action drop\n", 2,
              "\"action\" takes \"block\"");
    CHECK_ERR("rule A\n    action\n", 2, "\"action\" takes \"block\"");
    CHECK_ERR("rule A\n    action block log\n", 2,
              "\"action\" takes \"block\"");
    CHECK_ERR("rule A\n    action Block\n", 2, "\"action\" takes \"block\"");
}


static void
test_fields(void)
{
    CHECK_ERR(HEAD "    match path\n", 5,
              "\"match\" needs a field and an operator");
    CHECK_ERR(HEAD "    match\n", 5,
              "\"match\" needs a field and an operator");

    CHECK_ERR(HEAD "    match bogus contains x\n", 5,
              "unknown field \"bogus\"");
    CHECK_ERR(HEAD "    match Path prefix /\n", 5, "unknown field \"Path\"");
    CHECK_ERR(HEAD "    match cookiex:a present\n", 5,
              "unknown field \"cookiex:a\"");

    CHECK_ERR(HEAD "    match cookie present\n", 5,
              "field \"cookie\" needs a name, as in \"cookie:NAME\"");
    CHECK_ERR(HEAD "    match cookie: present\n", 5,
              "field \"cookie\" needs a name");
    CHECK_ERR(HEAD "    match header present\n", 5,
              "field \"header\" needs a name");
    CHECK_ERR(HEAD "    match arg present\n", 5,
              "field \"arg\" needs a name");

    CHECK_ERR(HEAD "    match path:x prefix /\n", 5,
              "field \"path\" takes no name");
    CHECK_ERR(HEAD "    match cookies:x contains a\n", 5,
              "field \"cookies\" takes no name");
    CHECK_ERR(HEAD "    match cookie-names:x is a\n", 5,
              "field \"cookie-names\" takes no name");
    CHECK_ERR(HEAD "    match method: is GET\n", 5,
              "field \"method\" takes no name");

    CHECK_ERR(HEAD "    match cookie:a;b present\n", 5,
              "invalid name \"a;b\" in field \"cookie\"");
    CHECK_ERR(HEAD "    match cookie:a=b present\n", 5,
              "invalid name \"a=b\" in field \"cookie\"");
    CHECK_ERR(HEAD "    match \"header:a b\" present\n", 5,
              "invalid name \"a b\" in field \"header\"");
}


static void
test_operators(void)
{
    CHECK_ERR(HEAD "    match path equals /\n", 5,
              "unknown operator \"equals\"");
    CHECK_ERR(HEAD "    match path not not is /\n", 5,
              "unknown operator \"not\"");
    CHECK_ERR(HEAD "    match path Prefix /\n", 5,
              "unknown operator \"Prefix\"");

    CHECK_ERR(HEAD "    match path not\n", 5,
              "\"not\" must be followed by an operator");

    CHECK_ERR(HEAD "    match cookie:a present x\n", 5,
              "operator \"present\" takes no arguments");
    CHECK_ERR(HEAD "    match cookie:a backend x\n", 5,
              "operator \"backend\" takes no arguments");
    CHECK_ERR(HEAD "    match path present\n", 5,
              "operator \"present\" applies only to cookie:, header:");
    CHECK_ERR(HEAD "    match cookies present\n", 5,
              "operator \"present\" applies only to");
    CHECK_ERR(HEAD "    match arg:a backend\n", 5,
              "operator \"backend\" applies only to cookie: and header:");
    CHECK_ERR(HEAD "    match cookies backend\n", 5,
              "operator \"backend\" applies only to");
    CHECK_ERR(HEAD "    match path not backend\n", 5,
              "operator \"backend\" applies only to");

    CHECK_ERR(HEAD "    match client untrusted x\n", 5,
              "operator \"untrusted\" takes no arguments");
    CHECK_ERR(HEAD "    match path untrusted\n", 5,
              "operator \"untrusted\" applies only to the client field");

    CHECK_ERR(HEAD "    match path regex a b\n", 5,
              "operator \"regex\" takes exactly one pattern");
    CHECK_ERR(HEAD "    match path regex\n", 5,
              "operator \"regex\" takes exactly one pattern");
    CHECK_ERR(HEAD "    match path regex '(a'\n", 5, "at offset");
    CHECK_ERR(HEAD "    match path regex '(a'\n", 5, "invalid regex \"(a\"");
    CHECK_ERR(HEAD "    match path regex [z-a]\n", 5, "at offset");
    CHECK_ERR(HEAD "    match path regex ''\n", 5, "empty regex");

    CHECK_ERR(HEAD "    match path prefix\n", 5,
              "operator \"prefix\" needs at least one value");
    CHECK_ERR(HEAD "    match path is\n", 5,
              "operator \"is\" needs at least one value");
    CHECK_ERR(HEAD "    match path not suffix\n", 5,
              "operator \"suffix\" needs at least one value");
    CHECK_ERR(HEAD "    match uri contains\n", 5,
              "operator \"contains\" needs at least one value");
    CHECK_ERR(HEAD "    match path is /a \"\"\n", 5,
              "empty value for operator \"is\"");
}


static void
test_end(void)
{
    CHECK_ERR("rule A\n"
              "    cve CVE-2021-26855\n"
              "    action block\n" MATCH
              "end\n", 5, "rule \"A\" has no \"name\"");
    CHECK_ERR("rule A\n"
              "    name \"n\"\n"
              "    action block\n" MATCH
              "end\n", 5, "rule \"A\" has no \"cve\"");
    CHECK_ERR("rule A\n"
              "    name \"n\"\n"
              "    cve CVE-2021-26855\n" MATCH
              "end\n", 5, "rule \"A\" has no \"action\"");
    CHECK_ERR(HEAD "end\n", 5, "rule \"A\" has no \"match\" line");
    CHECK_ERR("rule A\nend\n", 2, "rule \"A\" has no \"name\"");

    CHECK_ERR(HEAD MATCH "end A\n", 6, "\"end\" takes no arguments");
    CHECK_ERR(HEAD MATCH "end # comment\nend x\n", 7,
              "\"end\" outside a rule");
}


static void
test_bytes(void)
{
    CHECK_ERR("rule A\x01\n", 1, "control character in rule file");
    CHECK_ERR(HEAD "    match path\x0bprefix /\n", 5,
              "control character in rule file");
    CHECK_ERR(HEAD "    match path prefix /\x7f\n", 5,
              "control character in rule file");
    CHECK_ERR(HEAD "\x1b[31m\n", 5, "control character in rule file");

    /* NUL anywhere: the line of the NUL byte */
    CHECK_ERR("rule A\n    name \"n\"\n    cve \0CVE\n", 3,
              "NUL byte in rule file");
    CHECK_ERR("\0", 1, "NUL byte in rule file");
    CHECK_ERR(HEAD MATCH "end\n# \0\n", 7, "NUL byte in rule file");
}


static void
test_limits(void)
{
    int    i, n;
    char  *text;

    text = malloc(70000 + 4096);
    if (text == NULL) {
        CHECK(text != NULL);
        return;
    }

    /* 16 "match" lines are fine, the 17th is not */

    n = snprintf(text, 4096, HEAD);
    for (i = 0; i < 17; i++) {
        n += snprintf(text + n, 4096 - n, "    match path contains /%d\n",
                      i);
    }
    n += snprintf(text + n, 4096 - n, "end\n");
    CHECK_ERR_BUF(text, n, 5 + 16, "more than 16 \"match\" lines in rule "
                  "\"A\"");

    /* 64 words on a line */

    n = snprintf(text, 4096, HEAD "    match path is");
    for (i = 0; i < 64; i++) {
        n += snprintf(text + n, 4096 - n, " /%d", i);
    }
    n += snprintf(text + n, 4096 - n, "\nend\n");
    CHECK_ERR_BUF(text, n, 5, "more than 64 words on a line");

    /* a line of 65536 bytes is fine, 65537 are not */

    n = snprintf(text, 4096, "# ");
    memset(text + n, 'x', 65536 - n);
    n = 65536;
    n += snprintf(text + n, 4096, "\n" HEAD MATCH "end\n");
    {
        char           err[ERRLEN];
        eg_ruleset_t  *rs;

        rs = eg_ruleset_new();
        CHECK_INT(load(rs, "long.rules", eg_test_mem(text, n), err), 0);
        CHECK_STR(err, "");
        eg_ruleset_free(rs);
    }

    n = snprintf(text, 4096, HEAD MATCH "# ");
    memset(text + n, 'x', 65537 - 2);
    n += 65537 - 2;
    n += snprintf(text + n, 4096, "\nend\n");
    CHECK_ERR_BUF(text, n, 6, "line longer than 65536 bytes");

    free(text);
}


/*
 * A file is added whole or not at all: a rule that was valid in a failed
 * file is not in the set, and its id is free for a later file.
 */

static void
test_atomic(void)
{
    char           err[ERRLEN];
    eg_ruleset_t  *rs;

    rs = base_set();
    if (rs == NULL) {
        CHECK(rs != NULL);
        return;
    }

    CHECK_INT(load(rs, "half.rules",
                   EG_LIT("rule P1\n name \"p1\"\n cve CVE-2021-26855\n"
                          " action block\n match path regex '^/p1'\n"
                          "end\n"
                          "rule P2\n name \"p2\"\n cve CVE-2021-26855\n"
                          " action block\n match path regex '(('\nend\n"),
                   err), -1);
    check_prefix(err, "half.rules:11: ", "invalid regex", __FILE__,
                 __LINE__);
    CHECK_INT(eg_ruleset_count(rs), 1);
    CHECK_STR(eg_rule_id(eg_ruleset_rule(rs, 0)), "BASE");
    CHECK(eg_ruleset_rule(rs, 1) == NULL);

    CHECK_INT(load(rs, "whole.rules",
                   EG_LIT("rule P1\n name \"p1\"\n cve CVE-2021-26855\n"
                          " action block\n match path regex '^/p1'\n"
                          "end\n"), err), 0);
    CHECK_STR(err, "");
    CHECK_INT(eg_ruleset_count(rs), 2);
    CHECK_STR(eg_rule_id(eg_ruleset_rule(rs, 1)), "P1");

    /* and the duplicate now names the file that was added */
    CHECK_INT(load(rs, "again.rules",
                   EG_LIT("\n\nrule P1\n name \"p1\"\n"), err), -1);
    check_prefix(err, "again.rules:3: ", "duplicate rule id \"P1\", first "
                 "defined at whole.rules:1", __FILE__, __LINE__);
    CHECK_INT(eg_ruleset_count(rs), 2);

    eg_ruleset_free(rs);
}


static char *
write_file(const char *dir, const char *name, const char *text, size_t len)
{
    char  *path;
    FILE  *f;

    path = malloc(strlen(dir) + strlen(name) + 2);
    if (path == NULL) {
        return NULL;
    }

    sprintf(path, "%s/%s", dir, name);

    f = fopen(path, "wb");
    if (f == NULL) {
        free(path);
        return NULL;
    }

    if (fwrite(text, 1, len, f) != len) {
        fclose(f);
        free(path);
        return NULL;
    }

    fclose(f);
    return path;
}


static void
test_files(void)
{
    char           tmpl[] = "/tmp/eg_test_rules.XXXXXX";
    char           err[ERRLEN], prefix[512];
    char          *dir, *a, *b, *bad, *nul, *big, *data;
    size_t         size;
    eg_ruleset_t  *rs;

    dir = mkdtemp(tmpl);
    if (dir == NULL) {
        CHECK(dir != NULL);
        return;
    }

    rs = eg_ruleset_new();

    a = write_file(dir, "a.rules", valid, sizeof(valid) - 1);
    b = write_file(dir, "b.rules", "\n\nrule EG-T-002\n", 16);
    bad = write_file(dir, "bad.rules", HEAD "    match path regex '(a'\n",
                     sizeof(HEAD) - 1 + 26);
    nul = write_file(dir, "nul.rules", HEAD "\0", sizeof(HEAD));

    size = 4 * 1024 * 1024 + 1;
    data = malloc(size);
    big = NULL;
    if (data) {
        memset(data, '\n', size);
        big = write_file(dir, "big.rules", data, size);
        free(data);
    }

    CHECK(a != NULL && b != NULL && bad != NULL && nul != NULL
          && big != NULL);

    if (rs == NULL || a == NULL || b == NULL || bad == NULL || nul == NULL
        || big == NULL)
    {
        goto done;
    }

    err[0] = '\0';
    CHECK_INT(eg_ruleset_load_file(rs, a, err, ERRLEN), 0);
    CHECK_STR(err, "");
    CHECK_INT(eg_ruleset_count(rs), 3);

    /* the messages of a file name its path */

    CHECK_INT(eg_ruleset_load_file(rs, b, err, ERRLEN), -1);
    snprintf(prefix, sizeof(prefix), "%s:3: ", b);
    check_prefix(err, prefix, "duplicate rule id \"EG-T-002\", first",
                 __FILE__, __LINE__);
    snprintf(prefix, sizeof(prefix), "first defined at %s:11", a);
    CHECK(strstr(err, prefix) != NULL);
    CHECK_INT(eg_ruleset_count(rs), 3);

    CHECK_INT(eg_ruleset_load_file(rs, bad, err, ERRLEN), -1);
    snprintf(prefix, sizeof(prefix), "%s:5: ", bad);
    check_prefix(err, prefix, "at offset", __FILE__, __LINE__);
    CHECK_INT(eg_ruleset_count(rs), 3);

    CHECK_INT(eg_ruleset_load_file(rs, nul, err, ERRLEN), -1);
    snprintf(prefix, sizeof(prefix), "%s:5: ", nul);
    check_prefix(err, prefix, "NUL byte", __FILE__, __LINE__);

    CHECK_INT(eg_ruleset_load_file(rs, big, err, ERRLEN), -1);
    snprintf(prefix, sizeof(prefix), "%s: ", big);
    check_prefix(err, prefix, "larger than", __FILE__, __LINE__);

    /* a file that cannot be opened */

    snprintf(prefix, sizeof(prefix), "%s/missing.rules", dir);
    CHECK_INT(eg_ruleset_load_file(rs, prefix, err, ERRLEN), -1);
    strcat(prefix, ": ");
    check_prefix(err, prefix, "cannot open", __FILE__, __LINE__);
    CHECK(strstr(err, strerror(ENOENT)) != NULL);

    /* a directory is no rule file */

    CHECK_INT(eg_ruleset_load_file(rs, dir, err, ERRLEN), -1);
    snprintf(prefix, sizeof(prefix), "%s: ", dir);
    check_prefix(err, prefix, "", __FILE__, __LINE__);

    CHECK_INT(eg_ruleset_count(rs), 3);

done:

    eg_ruleset_free(rs);

    if (a) {
        unlink(a);
        free(a);
    }
    if (b) {
        unlink(b);
        free(b);
    }
    if (bad) {
        unlink(bad);
        free(bad);
    }
    if (nul) {
        unlink(nul);
        free(nul);
    }
    if (big) {
        unlink(big);
        free(big);
    }

    CHECK_INT(rmdir(dir), 0);
}


/* a short err buffer is cut, NUL-terminated, never overrun */

static void
test_errlen(void)
{
    int            rc;
    char          *err;
    eg_ruleset_t  *rs;

    rs = eg_ruleset_new();

    err = malloc(10);
    if (rs == NULL || err == NULL) {
        CHECK(rs != NULL && err != NULL);
        free(err);
        eg_ruleset_free(rs);
        return;
    }

    rc = eg_ruleset_load_buffer(rs, "some-long-name.rules",
                                (const unsigned char *) "foo\n", 4, err, 10);
    CHECK_INT(rc, -1);
    CHECK_STR(err, "some-long");

    rc = eg_ruleset_load_buffer(rs, "t", (const unsigned char *) "foo\n", 4,
                                err, 10);
    CHECK_INT(rc, -1);
    CHECK_STR(err, "t:1: expe");

    memcpy(err, "unchanged", 10);
    rc = eg_ruleset_load_buffer(rs, "t", (const unsigned char *) "foo\n", 4,
                                err, 0);
    CHECK_INT(rc, -1);
    CHECK_STR(err, "unchanged");

    rc = eg_ruleset_load_file(rs, "/nonexistent/x.rules", err, 10);
    CHECK_INT(rc, -1);
    CHECK_STR(err, "/nonexist");

    free(err);
    eg_ruleset_free(rs);
}


int
main(void)
{
    EG_RUN(test_valid);
    EG_RUN(test_shipped);
    EG_RUN(test_tokens);
    EG_RUN(test_structure);
    EG_RUN(test_ids);
    EG_RUN(test_keywords);
    EG_RUN(test_fields);
    EG_RUN(test_operators);
    EG_RUN(test_end);
    EG_RUN(test_bytes);
    EG_RUN(test_limits);
    EG_RUN(test_atomic);
    EG_RUN(test_files);
    EG_RUN(test_errlen);

    return eg_test_done();
}
