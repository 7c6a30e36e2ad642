/*
 * exchange_guard: request bodies.
 *
 * The inspected ECP endpoints take JSON (WCF's DataContractJsonSerializer):
 * string escapes such as \u003c are decoded before matching, and UTF-16
 * bodies are read as UTF-16, because the back end reads them that way.
 * Form bodies are split and decoded as HttpUtility.ParseQueryString does.
 */

#include <string.h>

#include "eg_internal.h"


#define EG_JSON_MAX_DEPTH  64


static eg_str_t eg_utf16_to_utf8(eg_str_t in, const eg_alloc_t *alloc);
static int eg_json_string(const unsigned char **p, const unsigned char *end,
    unsigned char *out, size_t *len);
static int eg_hex4(const unsigned char *p, uint32_t *cp);


int
eg_json_scan(eg_str_t body, const eg_alloc_t *alloc, eg_json_value_pt fn,
    void *data)
{
    int                   rc, depth;
    size_t                len, deep;
    eg_str_t              s, key, keys[EG_JSON_MAX_DEPTH];
    unsigned char        *buf;
    unsigned char         kind[EG_JSON_MAX_DEPTH];
    const unsigned char  *p, *end, *q;

    body = eg_utf16_to_utf8(body, alloc);
    if (body.data == NULL) {
        return 0;
    }

    /* decoded strings are never longer than the text */

    buf = alloc->alloc(alloc->ctx, body.len + 1);
    if (buf == NULL) {
        return 0;
    }

    p = body.data;
    end = body.data + body.len;
    depth = 0;
    deep = 0;
    key.data = buf;
    key.len = 0;
    keys[0] = key;
    kind[0] = '[';

    while (p < end) {
        switch (*p) {

        case '{':
        case '[':
            /* keys[d]: the member holding the container at depth d; an
               array's values belong to it */
            if (depth + 1 < EG_JSON_MAX_DEPTH) {
                depth++;
                kind[depth] = *p;
                keys[depth] = key;
            } else {
                deep++;
            }
            p++;
            continue;

        case '}':
        case ']':
            if (deep) {
                deep--;
            } else if (depth > 0) {
                key = keys[depth];
                depth--;
            }
            p++;
            continue;

        case '"':
            break;

        default:
            p++;
            continue;
        }

        s.data = buf;
        if (eg_json_string(&p, end, buf, &len) != 0) {
            return 0;
        }
        s.len = len;

        for (q = p; q < end && (*q == ' ' || *q == '\t' || *q == '\r'
                                || *q == '\n'); q++)
        {
            /* void */
        }

        if (q < end && *q == ':' && kind[depth] == '{') {
            /* a member name: keep it until its value */
            key = s;
            buf += len;
            p = q + 1;
            continue;
        }

        rc = fn(data, kind[depth] == '{' ? key : keys[depth], s);
        if (rc) {
            return rc;
        }

        buf += len;
    }

    return 0;
}


/* *p at the opening quote; on return after the closing one */

static int
eg_json_string(const unsigned char **p, const unsigned char *end,
    unsigned char *out, size_t *len)
{
    uint32_t              cp, lo;
    const unsigned char  *s;
    unsigned char        *d;

    s = *p + 1;
    d = out;

    while (s < end && *s != '"') {
        if (*s != '\\') {
            *d++ = *s++;
            continue;
        }

        if (s + 1 == end) {
            break;
        }

        s++;

        switch (*s) {
        case 'b': *d++ = '\b'; s++; continue;
        case 'f': *d++ = '\f'; s++; continue;
        case 'n': *d++ = '\n'; s++; continue;
        case 'r': *d++ = '\r'; s++; continue;
        case 't': *d++ = '\t'; s++; continue;
        case 'u': break;
        default: *d++ = *s++; continue;      /* \" \\ \/ and the lenient */
        }

        if (end - s < 5 || eg_hex4(s + 1, &cp) != 0) {
            *d++ = 'u';
            s++;
            continue;
        }

        s += 5;

        if (cp >= 0xd800 && cp <= 0xdbff && end - s >= 6 && s[0] == '\\'
            && s[1] == 'u' && eg_hex4(s + 2, &lo) == 0
            && lo >= 0xdc00 && lo <= 0xdfff)
        {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            s += 6;
        }

        /* \uXXXX takes 6 bytes of text and at most 4 of UTF-8 */
        d += eg_utf8_put(d, cp);
    }

    *len = d - out;
    *p = (s < end) ? s + 1 : end;
    return 0;
}


static int
eg_hex4(const unsigned char *p, uint32_t *cp)
{
    int       i;
    uint32_t  v;
    unsigned char  c;

    v = 0;

    for (i = 0; i < 4; i++) {
        c = eg_lower(p[i]);
        if (c >= '0' && c <= '9') {
            v = v * 16 + (c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v = v * 16 + (c - 'a' + 10);
        } else {
            return -1;
        }
    }

    *cp = v;
    return 0;
}


/* UTF-8 of a code point below U+110000; at most 4 bytes */

size_t
eg_utf8_put(unsigned char *d, uint32_t cp)
{
    if (cp < 0x80) {
        d[0] = (unsigned char) cp;
        return 1;
    }

    if (cp < 0x800) {
        d[0] = (unsigned char) (0xc0 | (cp >> 6));
        d[1] = (unsigned char) (0x80 | (cp & 0x3f));
        return 2;
    }

    if (cp < 0x10000) {
        d[0] = (unsigned char) (0xe0 | (cp >> 12));
        d[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
        d[2] = (unsigned char) (0x80 | (cp & 0x3f));
        return 3;
    }

    d[0] = (unsigned char) (0xf0 | (cp >> 18));
    d[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3f));
    d[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
    d[3] = (unsigned char) (0x80 | (cp & 0x3f));
    return 4;
}


/*
 * UTF-16 with a BOM, or without one when the first bytes alternate with
 * NULs (JSON text starts with ASCII): transcode, so that byte patterns
 * written for UTF-8 see the same text the back end does.
 */

static eg_str_t
eg_utf16_to_utf8(eg_str_t in, const eg_alloc_t *alloc)
{
    int             be;
    size_t          i, n;
    uint32_t        cp, lo;
    eg_str_t        out = in;
    unsigned char  *d;

    if (in.len >= 2 && in.data[0] == 0xff && in.data[1] == 0xfe) {
        be = 0;
        i = 2;

    } else if (in.len >= 2 && in.data[0] == 0xfe && in.data[1] == 0xff) {
        be = 1;
        i = 2;

    } else if (in.len >= 4 && in.data[1] == 0 && in.data[3] == 0
               && in.data[0] != 0)
    {
        be = 0;
        i = 0;

    } else if (in.len >= 4 && in.data[0] == 0 && in.data[2] == 0
               && in.data[1] != 0)
    {
        be = 1;
        i = 0;

    } else {
        if (in.len >= 3 && in.data[0] == 0xef && in.data[1] == 0xbb
            && in.data[2] == 0xbf)
        {
            out.data += 3;
            out.len -= 3;
        }
        return out;
    }

    /* 2 bytes of UTF-16 become at most 3 of UTF-8 */

    d = alloc->alloc(alloc->ctx, in.len / 2 * 3 + 4);
    out.data = d;
    if (d == NULL) {
        out.len = 0;
        return out;
    }

    n = 0;

    for ( /* void */ ; i + 1 < in.len; i += 2) {
        cp = be ? (uint32_t) (in.data[i] << 8 | in.data[i + 1])
                : (uint32_t) (in.data[i + 1] << 8 | in.data[i]);

        if (cp >= 0xd800 && cp <= 0xdbff && i + 3 < in.len) {
            lo = be ? (uint32_t) (in.data[i + 2] << 8 | in.data[i + 3])
                    : (uint32_t) (in.data[i + 3] << 8 | in.data[i + 2]);
            if (lo >= 0xdc00 && lo <= 0xdfff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                i += 2;
            }
        }

        n += eg_utf8_put(d + n, cp);
    }

    out.len = n;
    return out;
}
