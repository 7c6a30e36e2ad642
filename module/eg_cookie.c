/*
 * exchange_guard: Cookie header parsing, the way ASP.NET reads it.
 *
 * HttpRequest.Cookies splits on ';' only (a ',' belongs to the value),
 * trims white space around names and values (String.Trim: Unicode white
 * space, not only ASCII), and a part without '=' is a
 * cookie with an empty name whose value is the part.  Names are looked up
 * case-insensitively, so two cookies whose names differ only in case are
 * both candidates and both are inspected.
 */

#include <string.h>

#include "eg_internal.h"


static size_t eg_space(const unsigned char *s, const unsigned char *e,
    int back);
static eg_str_t eg_trim(const unsigned char *s, const unsigned char *e);


size_t
eg_cookie_parse(const eg_str_t *headers, size_t nheaders, eg_cookie_t *out,
    size_t max)
{
    size_t  found;

    /* one parser for the engine and its callers: every cookie kept */

    return eg_cookie_parse_names(headers, nheaders, out, max, (size_t) -1,
                                 NULL, &found);
}


/*
 * The parse, keeping only cookies the rule set names (all when rs is NULL
 * or a rule reads every name), at most cap of them: a request pays for
 * the cookies the rules ask about, not for the dozen others a browser
 * sends.  Returns every cookie counted.
 */

size_t
eg_cookie_parse_names(const eg_str_t *headers, size_t nheaders,
    eg_cookie_t *out, size_t cap, size_t max, const eg_ruleset_t *rs,
    size_t *found)
{
    uint32_t  present;

    return eg_cookie_parse_wanted(headers, nheaders, out, cap, max, rs, found,
                                  &present);
}


/*
 * The same, and *present: bit j for each wanted name j (of the rule set's
 * list, j < 32) that some examined cookie has; every bit when all cookies
 * are kept.
 */

size_t
eg_cookie_parse_wanted(const eg_str_t *headers, size_t nheaders,
    eg_cookie_t *out, size_t cap, size_t max, const eg_ruleset_t *rs,
    size_t *found, uint32_t *present)
{
    int                   want, all;
    unsigned char         c;
    size_t                i, j, n, kept;
    uint32_t              bit;
    uint64_t              lens;
    eg_str_t              name;
    const unsigned char  *s, *end, *semi, *eq;

    n = 0;
    kept = 0;
    *present = 0;
    all = (rs == NULL || rs->all_cookies);
    lens = all ? 0 : rs->cookie_name_lens;

    for (i = 0; i < nheaders; i++) {
        s = headers[i].data;
        end = s + headers[i].len;

        while (s < end) {
            semi = memchr(s, ';', end - s);
            if (semi == NULL) {
                semi = end;
            }

            if (!all) {
                /* a name that starts with a printable byte no wanted name
                   starts with: a cookie to count, nothing more (no '='
                   or white space can change that first byte) */

                for (name.data = s; name.data < semi && *name.data == ' ';
                     name.data++)
                {
                    /* void */
                }

                if (name.data < semi) {
                    c = *name.data;

                    if (c > 0x20 && c < 0x7f && c != '='
                        && !(rs->cookie_first[c >> 3] & (1 << (c & 7))))
                    {
                        n++;
                        s = semi + 1;
                        continue;
                    }
                }
            }

            eq = memchr(s, '=', semi - s);

            if (eq == NULL) {
                name = eg_trim(s, semi);

                /* a part without '=' is a cookie with an empty name */

                if (name.len) {
                    n++;
                    if (rs == NULL && kept < cap && n <= max) {
                        out[kept].name.data = s;
                        out[kept].name.len = 0;
                        out[kept].value = name;
                    }
                    kept += (rs == NULL && n <= max);
                }

                s = semi + 1;
                continue;
            }

            n++;

            /* "; name=": the usual name is printable ASCII after spaces */

            name.data = s;
            while (name.data < eq && *name.data == ' ') {
                name.data++;
            }

            name.len = eq - name.data;

            if (name.len == 0
                || (unsigned char) (name.data[0] - 0x21) >= 0x7f - 0x21
                || (unsigned char) (eq[-1] - 0x21) >= 0x7f - 0x21)
            {
                name = eg_trim(s, eq);
            }

            /* most names differ in length from every wanted one */

            want = all;
            bit = all ? ~(uint32_t) 0 : 0;

            if (!want && ((lens >> (name.len < 64 ? name.len : 0)) & 1)) {
                for (j = 0; j < rs->ncookie_names; j++) {
                    if (name.len == rs->cookie_lnames[j].len
                        && (name.data[0] | 0x20)
                           == (rs->cookie_lnames[j].data[0] | 0x20)
                        && eg_ieq_lower(name, rs->cookie_lnames[j]))
                    {
                        want = 1;
                        bit = j < 32 ? (uint32_t) 1 << j : 0;
                        break;
                    }
                }
            }

            /* the first max cookies are examined; found counts the wanted
               ones even past cap, so the caller can ask again with room */

            if (want && n <= max) {
                if (kept < cap) {
                    out[kept].name = name;
                    out[kept].value = eg_trim(eq + 1, semi);
                }
                kept++;
                *present |= bit;
            }

            s = semi + 1;
        }
    }

    *found = kept;
    return n;
}


int
eg_cookie_name_is(eg_str_t name, eg_str_t want)
{
    return eg_str_ieq(name, want);
}


int
eg_str_ieq(eg_str_t a, eg_str_t b)
{
    size_t  i;

    if (a.len != b.len) {
        return 0;
    }

    for (i = 0; i < a.len; i++) {
        if (eg_lower(a.data[i]) != eg_lower(b.data[i])) {
            return 0;
        }
    }

    return 1;
}


/*
 * The length of the white space String.Trim() removes at s (or, with back,
 * ending at e), 0 if none.  ASP.NET reads header bytes as Latin-1, so a
 * lone 0x85 or 0xA0 is white space; UTF-8 encodings of Unicode spaces are
 * trimmed too, in case a proxy in front decodes them: trimming more than
 * the back end only makes a cookie name easier to recognize.
 */

static size_t
eg_space(const unsigned char *s, const unsigned char *e, int back)
{
    size_t                i, n, len;
    const unsigned char  *p;
    static const char    *spaces[] = {
        "\xc2\x85", "\xc2\xa0", "\xe1\x9a\x80", "\xe2\x80\x80",
        "\xe2\x80\x81", "\xe2\x80\x82", "\xe2\x80\x83", "\xe2\x80\x84",
        "\xe2\x80\x85", "\xe2\x80\x86", "\xe2\x80\x87", "\xe2\x80\x88",
        "\xe2\x80\x89", "\xe2\x80\x8a", "\xe2\x80\x8b", "\xe2\x80\xa8",
        "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f", "\xe3\x80\x80",
        "\xef\xbb\xbf", NULL
    };

    if (s >= e) {
        return 0;
    }

    p = back ? e - 1 : s;

    if (*p == ' ' || (*p >= '\t' && *p <= '\r') || (*p >= 0x1c && *p <= 0x1f)
        || *p == 0x85 || *p == 0xa0)
    {
        /* 0x85 and 0xa0 may end a UTF-8 sequence: that is trimmed below */
        if (!(back && (*p == 0x85 || *p == 0xa0) && e - s >= 2
              && e[-2] == 0xc2))
        {
            return 1;
        }
    }

    if (*p < 0x80) {
        return 0;
    }

    for (i = 0; spaces[i]; i++) {
        len = strlen(spaces[i]);

        if ((size_t) (e - s) < len) {
            continue;
        }

        p = back ? e - len : s;

        for (n = 0; n < len && p[n] == (unsigned char) spaces[i][n]; n++) {
            /* void */
        }

        if (n == len) {
            return len;
        }
    }

    return 0;
}


static eg_str_t
eg_trim(const unsigned char *s, const unsigned char *e)
{
    size_t    n;
    eg_str_t  r;

    /* the usual case: "; name=value", printable ASCII once the spaces
       that follow the ';' are skipped */

    while (s < e && *s == ' ') {
        s++;
    }

    while (e > s && e[-1] == ' ') {
        e--;
    }

    if (s == e || (*s > 0x20 && *s < 0x7f && e[-1] > 0x20 && e[-1] < 0x7f)) {
        r.data = s;
        r.len = e - s;
        return r;
    }

    while ((n = eg_space(s, e, 0)) != 0) {
        s += n;
    }

    while ((n = eg_space(s, e, 1)) != 0) {
        e -= n;
    }

    r.data = s;
    r.len = e - s;
    return r;
}
