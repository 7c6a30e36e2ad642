/*
 * exchange_guard: Cookie header parsing, the way ASP.NET reads it.
 *
 * HttpRequest.Cookies splits on ';' only (a ',' belongs to the value),
 * trims white space around names and values, and a part without '=' is a
 * cookie with an empty name whose value is the part.  Names are looked up
 * case-insensitively, so two cookies whose names differ only in case are
 * both candidates and both are inspected.
 */

#include <string.h>

#include "eg_internal.h"


static eg_str_t eg_trim(const unsigned char *s, const unsigned char *e);


size_t
eg_cookie_parse(const eg_str_t *headers, size_t nheaders, eg_cookie_t *out,
    size_t max)
{
    size_t                i, n;
    const unsigned char  *s, *end, *semi, *eq;

    n = 0;

    for (i = 0; i < nheaders; i++) {
        s = headers[i].data;
        end = s + headers[i].len;

        while (s < end) {
            semi = memchr(s, ';', end - s);
            if (semi == NULL) {
                semi = end;
            }

            eq = memchr(s, '=', semi - s);

            if (eq == NULL) {
                eq = s;
                if (eg_trim(s, semi).len == 0) {
                    s = semi + 1;
                    continue;
                }

                if (n < max) {
                    out[n].name.data = s;
                    out[n].name.len = 0;
                    out[n].value = eg_trim(s, semi);
                }

            } else if (n < max) {
                out[n].name = eg_trim(s, eq);
                out[n].value = eg_trim(eq + 1, semi);
            }

            n++;
            s = semi + 1;
        }
    }

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


static eg_str_t
eg_trim(const unsigned char *s, const unsigned char *e)
{
    eg_str_t  r;

    /* Char.IsWhiteSpace on ASCII: space, \t, \n, \v, \f, \r */

    while (s < e && (*s == ' ' || (*s >= '\t' && *s <= '\r'))) {
        s++;
    }

    while (e > s && (e[-1] == ' ' || (e[-1] >= '\t' && e[-1] <= '\r'))) {
        e--;
    }

    r.data = s;
    r.len = e - s;
    return r;
}
