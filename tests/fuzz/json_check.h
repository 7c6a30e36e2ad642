/*
 * A small strict JSON validator for the fuzzers (RFC 8259), with no
 * dependencies.
 *
 *   json_utf8_valid(s, len)        1 if s is well-formed UTF-8 (Unicode
 *                                  table 3-7: no overlong forms, no
 *                                  surrogates, nothing above U+10FFFF)
 *   json_check(s, len, &err)       1 if s is exactly one JSON value with
 *                                  optional white space around it; else 0
 *                                  and err names the offset and the reason
 *   json_string_decode(...)        decode the body of a JSON string (no
 *                                  quotes) into bytes; -1 if invalid
 *
 * Strict means: UTF-8 only, no raw control characters (< 0x20) in
 * strings, only the escapes \" \\ \/ \b \f \n \r \t \uXXXX, a high
 * surrogate escape must be followed by a low one and a low one never
 * stands alone, numbers as in the RFC (no leading zeros, no '+', no
 * bare '.'), no trailing commas, no duplicate-key check (the RFC allows
 * them; the caller may look), nesting at most JSON_CHECK_MAX_DEPTH.
 */

#ifndef EG_JSON_CHECK_H
#define EG_JSON_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>


#define JSON_CHECK_MAX_DEPTH  256


typedef struct {
    const unsigned char  *s;
    size_t                len;
    size_t                pos;
    unsigned              depth;
    char                 *err;
    size_t                errlen;
} json_check_t;


static int json_check_value(json_check_t *j);


/* length of the well-formed UTF-8 sequence at s, 0 if ill-formed */

static __attribute__((unused)) size_t
json_utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char  c, lo, hi;
    size_t         n, i;

    c = s[0];

    if (c < 0x80) {
        return 1;
    }

    lo = 0x80;
    hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c == 0xe0) {
        n = 3;
        lo = 0xa0;
    } else if (c >= 0xe1 && c <= 0xec) {
        n = 3;
    } else if (c == 0xed) {
        n = 3;
        hi = 0x9f;
    } else if (c >= 0xee && c <= 0xef) {
        n = 3;
    } else if (c == 0xf0) {
        n = 4;
        lo = 0x90;
    } else if (c >= 0xf1 && c <= 0xf3) {
        n = 4;
    } else if (c == 0xf4) {
        n = 4;
        hi = 0x8f;
    } else {
        return 0;
    }

    if (len < n || s[1] < lo || s[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }

    return n;
}


static __attribute__((unused)) int
json_utf8_valid(const unsigned char *s, size_t len)
{
    size_t  i, n;

    for (i = 0; i < len; i += n) {
        n = json_utf8_seq(s + i, len - i);
        if (n == 0) {
            return 0;
        }
    }

    return 1;
}


static int
json_check_fail(json_check_t *j, const char *why)
{
    if (j->err && j->errlen) {
        snprintf(j->err, j->errlen, "offset %zu: %s", j->pos, why);
    }

    return 0;
}


static void
json_check_ws(json_check_t *j)
{
    while (j->pos < j->len
           && (j->s[j->pos] == ' ' || j->s[j->pos] == '\t'
               || j->s[j->pos] == '\n' || j->s[j->pos] == '\r'))
    {
        j->pos++;
    }
}


static int
json_hex4(const unsigned char *p, uint32_t *v)
{
    int            i;
    unsigned char  c;

    *v = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];
        *v <<= 4;

        if (c >= '0' && c <= '9') {
            *v |= c - '0';
        } else if (c >= 'a' && c <= 'f') {
            *v |= c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            *v |= c - 'A' + 10;
        } else {
            return -1;
        }
    }

    return 0;
}


static size_t
json_put_utf8(unsigned char *d, uint32_t cp)
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
 * The body of a string (between the quotes, which it must not contain
 * unescaped) decoded into out, which needs len bytes (decoding never
 * grows).  out may be NULL to validate only.  Returns 0, or -1 with
 * *bad at the offending offset.
 */

static int
json_string_body(const unsigned char *s, size_t len, unsigned char *out,
    size_t *outlen, size_t *bad)
{
    size_t          i, n, o;
    uint32_t        cp, lo;
    unsigned char   tmp[4];

    o = 0;

    for (i = 0; i < len; /* void */ ) {
        *bad = i;

        if (s[i] == '"' || s[i] < 0x20) {
            return -1;
        }

        if (s[i] != '\\') {
            n = json_utf8_seq(s + i, len - i);
            if (n == 0) {
                return -1;
            }
            if (out) {
                memcpy(out + o, s + i, n);
            }
            o += n;
            i += n;
            continue;
        }

        if (i + 1 >= len) {
            return -1;
        }

        switch (s[i + 1]) {
        case '"':  tmp[0] = '"'; break;
        case '\\': tmp[0] = '\\'; break;
        case '/':  tmp[0] = '/'; break;
        case 'b':  tmp[0] = '\b'; break;
        case 'f':  tmp[0] = '\f'; break;
        case 'n':  tmp[0] = '\n'; break;
        case 'r':  tmp[0] = '\r'; break;
        case 't':  tmp[0] = '\t'; break;
        case 'u':  goto unicode;
        default:   return -1;
        }

        if (out) {
            out[o] = tmp[0];
        }
        o++;
        i += 2;
        continue;

    unicode:

        if (len - i < 6 || json_hex4(s + i + 2, &cp) != 0) {
            return -1;
        }

        i += 6;

        if (cp >= 0xdc00 && cp <= 0xdfff) {
            return -1;                       /* a lone low surrogate */
        }

        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (len - i < 6 || s[i] != '\\' || s[i + 1] != 'u'
                || json_hex4(s + i + 2, &lo) != 0
                || lo < 0xdc00 || lo > 0xdfff)
            {
                return -1;                   /* a lone high surrogate */
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 6;
        }

        n = json_put_utf8(tmp, cp);
        if (out) {
            memcpy(out + o, tmp, n);
        }
        o += n;
    }

    if (outlen) {
        *outlen = o;
    }

    return 0;
}


static __attribute__((unused)) int
json_string_decode(const unsigned char *s, size_t len, unsigned char *out,
    size_t *outlen)
{
    size_t  bad;

    return json_string_body(s, len, out, outlen, &bad);
}


static int
json_check_string(json_check_t *j)
{
    size_t  start, bad;

    /* at the opening quote */
    j->pos++;
    start = j->pos;

    for ( ;; ) {
        if (j->pos >= j->len) {
            return json_check_fail(j, "unterminated string");
        }

        if (j->s[j->pos] == '"') {
            break;
        }

        if (j->s[j->pos] == '\\') {
            j->pos++;
            if (j->pos >= j->len) {
                return json_check_fail(j, "unterminated string");
            }
        }

        j->pos++;
    }

    if (json_string_body(j->s + start, j->pos - start, NULL, NULL, &bad)
        != 0)
    {
        j->pos = start + bad;
        return json_check_fail(j, "invalid character or escape in string");
    }

    j->pos++;
    return 1;
}


static int
json_check_digits(json_check_t *j)
{
    size_t  start = j->pos;

    while (j->pos < j->len && j->s[j->pos] >= '0' && j->s[j->pos] <= '9') {
        j->pos++;
    }

    return j->pos > start;
}


static int
json_check_number(json_check_t *j)
{
    if (j->s[j->pos] == '-') {
        j->pos++;
    }

    if (j->pos >= j->len) {
        return json_check_fail(j, "truncated number");
    }

    if (j->s[j->pos] == '0') {
        j->pos++;
        if (j->pos < j->len && j->s[j->pos] >= '0' && j->s[j->pos] <= '9') {
            return json_check_fail(j, "leading zero in number");
        }

    } else if (!json_check_digits(j)) {
        return json_check_fail(j, "invalid number");
    }

    if (j->pos < j->len && j->s[j->pos] == '.') {
        j->pos++;
        if (!json_check_digits(j)) {
            return json_check_fail(j, "no digits after '.'");
        }
    }

    if (j->pos < j->len && (j->s[j->pos] == 'e' || j->s[j->pos] == 'E')) {
        j->pos++;
        if (j->pos < j->len && (j->s[j->pos] == '+' || j->s[j->pos] == '-')) {
            j->pos++;
        }
        if (!json_check_digits(j)) {
            return json_check_fail(j, "no digits in exponent");
        }
    }

    return 1;
}


static int
json_check_literal(json_check_t *j, const char *lit)
{
    size_t  n = strlen(lit);

    if (j->len - j->pos < n || memcmp(j->s + j->pos, lit, n) != 0) {
        return json_check_fail(j, "invalid literal");
    }

    j->pos += n;
    return 1;
}


static int
json_check_container(json_check_t *j, unsigned char close)
{
    int  first = 1;

    if (++j->depth > JSON_CHECK_MAX_DEPTH) {
        return json_check_fail(j, "nested too deep");
    }

    j->pos++;

    for ( ;; ) {
        json_check_ws(j);

        if (j->pos >= j->len) {
            return json_check_fail(j, "unterminated object or array");
        }

        if (j->s[j->pos] == close && first) {
            j->pos++;
            break;
        }

        if (!first) {
            if (j->s[j->pos] == close) {
                j->pos++;
                break;
            }

            if (j->s[j->pos] != ',') {
                return json_check_fail(j, "expected ',' or the closing "
                                       "bracket");
            }

            j->pos++;
            json_check_ws(j);

            if (j->pos >= j->len) {
                return json_check_fail(j, "truncated after ','");
            }
        }

        first = 0;

        if (close == '}') {
            if (j->s[j->pos] != '"') {
                return json_check_fail(j, "expected a member name");
            }

            if (!json_check_string(j)) {
                return 0;
            }

            json_check_ws(j);

            if (j->pos >= j->len || j->s[j->pos] != ':') {
                return json_check_fail(j, "expected ':'");
            }

            j->pos++;
        }

        if (!json_check_value(j)) {
            return 0;
        }
    }

    j->depth--;
    return 1;
}


static int
json_check_value(json_check_t *j)
{
    json_check_ws(j);

    if (j->pos >= j->len) {
        return json_check_fail(j, "expected a value");
    }

    switch (j->s[j->pos]) {
    case '{':
        return json_check_container(j, '}');
    case '[':
        return json_check_container(j, ']');
    case '"':
        return json_check_string(j);
    case 't':
        return json_check_literal(j, "true");
    case 'f':
        return json_check_literal(j, "false");
    case 'n':
        return json_check_literal(j, "null");
    default:
        if (j->s[j->pos] == '-'
            || (j->s[j->pos] >= '0' && j->s[j->pos] <= '9'))
        {
            return json_check_number(j);
        }
        return json_check_fail(j, "unexpected character");
    }
}


static __attribute__((unused)) int
json_check(const unsigned char *s, size_t len, char *err, size_t errlen)
{
    json_check_t  j;

    j.s = s;
    j.len = len;
    j.pos = 0;
    j.depth = 0;
    j.err = err;
    j.errlen = errlen;

    if (err && errlen) {
        err[0] = '\0';
    }

    if (!json_utf8_valid(s, len)) {
        /* find the offset for the message */
        while (j.pos < len && json_utf8_seq(s + j.pos, len - j.pos)) {
            j.pos += json_utf8_seq(s + j.pos, len - j.pos);
        }
        return json_check_fail(&j, "invalid UTF-8");
    }

    if (!json_check_value(&j)) {
        return 0;
    }

    json_check_ws(&j);

    if (j.pos != len) {
        return json_check_fail(&j, "text after the value");
    }

    return 1;
}

#endif /* EG_JSON_CHECK_H */
