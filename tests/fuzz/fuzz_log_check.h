/*
 * exchange_guard fuzzers: format one log line and validate it.
 *
 * fuzz_check_log(ev) writes the line with eg_log_format() into a heap
 * buffer of exactly eg_log_size(ev) bytes (so ASan sees any write past
 * the bound the engine promised), then checks that the line is valid
 * UTF-8, one line ending in '\n', one strict JSON object (json_check.h),
 * and that it ends with the verdict's "matches_total".
 *
 * It also checks who the line names as the decision, rule.id (README:
 * "the log names the first matching block rule as rule.id"; a "note"
 * rule "never decides anything"):
 *   - a verdict that blocks, logged as "blocked": a block rule's id
 *   - else a listed log rule's id when one matched, else "EG-LIMIT" when
 *     a limit was hit, else no id; never a note's id
 * EG_FUZZ_PRINT=1 prints the line to stderr (to look at a reproducer).
 */

#ifndef EG_FUZZ_LOG_CHECK_H
#define EG_FUZZ_LOG_CHECK_H

#include "fuzz_common.h"
#include "json_check.h"


static void
fuzz_check_log_rule(const eg_log_event_t *ev, const unsigned char *buf,
    size_t len)
{
    size_t               i, idlen;
    eg_str_t             mid;
    const char          *p, *q, *want;
    const eg_rule_t     *first_block, *first_log;
    const eg_verdict_t  *v = ev->verdict;
    static const char    pre[] = "\"rule\":{\"ruleset\":\"exchange_guard\"";

    p = (const char *) fuzz_find(buf, len, pre);
    FUZZ_CHECK(p != NULL, "no rule object in the line");
    p += sizeof(pre) - 1;

    if (strncmp(p, ",\"id\":\"", 7) == 0) {
        p += 7;
        q = memchr(p, '"', (const char *) buf + len - p);
        FUZZ_CHECK(q != NULL, "unterminated rule.id");
        idlen = q - p;
    } else {
        p = NULL;
        idlen = 0;
    }

    first_block = NULL;
    first_log = NULL;

    for (i = 0; i < v->nmatches; i++) {
        if (first_block == NULL
            && eg_rule_action(v->matches[i].rule) == EG_BLOCK)
        {
            first_block = v->matches[i].rule;
        }
        if (first_log == NULL
            && eg_rule_action(v->matches[i].rule) != EG_NOTE)
        {
            first_log = v->matches[i].rule;
        }
    }

    /* a note is never the decision.  Known engine bug, skipped with
       EG_FUZZ_SKIP_KNOWN=1: a "detected" line for a limit whose only
       listed matches are notes names the first note
       (regressions/fuzz_engine/note-named-as-rule-id-*) */

    if (fuzz_known_bugs_skipped() && first_log == NULL
        && v->limit != EG_LIMIT_NONE && strcmp(ev->action, "blocked") != 0)
    {
        return;
    }

    if (p) {
        for (i = 0; i < v->nmatches; i++) {
            mid = eg_rule_id(v->matches[i].rule);
            if (eg_rule_action(v->matches[i].rule) == EG_NOTE) {
                FUZZ_CHECK(!(mid.len == idlen && memcmp(mid.data, p, idlen)
                                                 == 0),
                           "rule.id \"%.*s\" is a note (action \"%s\", "
                           "verdict action %d, limit %d)", (int) idlen, p,
                           ev->action, (int) v->action, (int) v->limit);
            }
        }
    }

    if (strcmp(ev->action, "blocked") == 0 && v->action == EG_BLOCK) {
        FUZZ_CHECK(p != NULL && first_block != NULL
                   && eg_rule_id(first_block).len == idlen
                   && memcmp(eg_rule_id(first_block).data, p, idlen) == 0,
                   "blocked by a block rule, but rule.id is \"%.*s\" "
                   "(first listed block rule: %.*s; %u matches, %u listed)",
                   (int) idlen, p ? p : "",
                   first_block ? (int) eg_rule_id(first_block).len : 4,
                   first_block ? (const char *) eg_rule_id(first_block).data
                               : "none", v->total, v->nmatches);
        return;
    }

    want = NULL;

    if (strcmp(ev->action, "blocked") == 0 && v->limit != EG_LIMIT_NONE) {
        want = "EG-LIMIT";

    } else if (first_log) {
        mid = eg_rule_id(first_block ? first_block : first_log);
        FUZZ_CHECK(p != NULL && mid.len == idlen
                   && memcmp(mid.data, p, idlen) == 0,
                   "rule.id \"%.*s\", expected %.*s", (int) idlen,
                   p ? p : "", (int) mid.len, mid.data);
        return;

    } else if (v->limit != EG_LIMIT_NONE) {
        want = "EG-LIMIT";
    }

    if (want) {
        FUZZ_CHECK(p != NULL && idlen == strlen(want)
                   && memcmp(p, want, idlen) == 0,
                   "rule.id \"%.*s\", expected %s (action \"%s\", limit "
                   "%d, %u listed)", (int) idlen, p ? p : "", want,
                   ev->action, (int) v->limit, v->nmatches);
    } else {
        FUZZ_CHECK(p == NULL, "rule.id \"%.*s\" without a match or limit",
                   (int) idlen, p);
    }
}


static FUZZ_UNUSED size_t
fuzz_check_log(const eg_log_event_t *ev)
{
    size_t          size, len;
    char            err[128], tail[64];
    unsigned char  *buf;
    const unsigned char  *nl;

    size = eg_log_size(ev);
    FUZZ_CHECK(size > 0, "eg_log_size is 0");

    buf = malloc(size);
    if (buf == NULL) {
        abort();
    }

    len = eg_log_format(buf, ev);

    if (getenv("EG_FUZZ_PRINT")) {
        fprintf(stderr, "log line (%zu of %zu bytes): %.*s", len, size,
                (int) len, buf);
    }

    FUZZ_CHECK(len <= size, "wrote %zu bytes, eg_log_size said %zu", len,
               size);
    FUZZ_CHECK(len >= 2 && buf[len - 1] == '\n',
               "the line does not end with '\\n'");

    nl = memchr(buf, '\n', len - 1);
    FUZZ_CHECK(nl == NULL, "newline at offset %zu of %zu: \"%.*s\"",
               (size_t) (nl - buf), len, (int) len, buf);

    FUZZ_CHECK(json_utf8_valid(buf, len), "the line is not UTF-8: \"%.*s\"",
               (int) len, buf);

    FUZZ_CHECK(buf[0] == '{', "the line is not an object");
    FUZZ_CHECK(json_check(buf, len - 1, err, sizeof(err)),
               "the line is not JSON (%s): %.*s", err, (int) len, buf);

    fuzz_check_log_rule(ev, buf, len);

    snprintf(tail, sizeof(tail), "\"matches_total\":%u}}\n",
             ev->verdict->total);
    FUZZ_CHECK(len >= strlen(tail)
               && memcmp(buf + len - strlen(tail), tail, strlen(tail)) == 0,
               "the line does not end with %s", tail);

    free(buf);
    return len;
}

#endif /* EG_FUZZ_LOG_CHECK_H */
