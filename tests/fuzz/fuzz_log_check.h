/*
 * exchange_guard fuzzers: format one log line and validate it.
 *
 * fuzz_check_log(ev) writes the line with eg_log_format() into a heap
 * buffer of exactly eg_log_size(ev) bytes (so ASan sees any write past
 * the bound the engine promised), then checks that the line is valid
 * UTF-8, one line ending in '\n', one strict JSON object (json_check.h),
 * and that it ends with the verdict's "matches_total".
 */

#ifndef EG_FUZZ_LOG_CHECK_H
#define EG_FUZZ_LOG_CHECK_H

#include "fuzz_common.h"
#include "json_check.h"


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

    snprintf(tail, sizeof(tail), "\"matches_total\":%u}}\n",
             ev->verdict->total);
    FUZZ_CHECK(len >= strlen(tail)
               && memcmp(buf + len - strlen(tail), tail, strlen(tail)) == 0,
               "the line does not end with %s", tail);

    free(buf);
    return len;
}

#endif /* EG_FUZZ_LOG_CHECK_H */
