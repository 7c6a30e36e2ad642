/*
 * exchange_guard: the backend-routing cookie value check.
 *
 * Exchange's BackEndServer.FromString splits the value on '~' into exactly
 * two parts, a server and an integer version; since the March 2021 patch
 * the server must be a plain DNS host name.  So the only legitimate value
 * is "<dns-hostname>~<integer>", e.g. "EX01.contoso.local~1942062522".
 */

#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "eg_internal.h"

#if defined(__SSE2__) && !defined(EG_NO_SIMD)
#include <emmintrin.h>
#define EG_BACKEND_SSE2  1
#else
#define EG_BACKEND_SSE2  0
#endif


#define EG_MAX_HOST   253
#define EG_MAX_LABEL  63


/*
 * One pass over the host, up to the first '~': the bytes of a DNS name
 * (letters, digits, '-' inside labels, and '_' for NetBIOS-derived
 * Windows host names), labels of 1-63, names up to 253 bytes; then the
 * version, 1-10 digits up to 2^31 - 1.  The pass notes where the first
 * label ends and the last begins, for the localhost and IP literal test.
 */

#define EG_BE_LABEL  1          /* a letter, a digit or '_': the 1s */
#define EG_BE_DASH   2
#define EG_BE_DOT    3
#define EG_BE_TILDE  4

static const unsigned char  eg_be_class[256] = {
    ['-'] = EG_BE_DASH, ['.'] = EG_BE_DOT, ['~'] = EG_BE_TILDE,
    ['_'] = EG_BE_LABEL,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
    ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
    ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
    ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
    ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1
};


static int eg_valid_version(const unsigned char *p, const unsigned char *end);
static int eg_local_host(eg_str_t first, eg_str_t last);
#if (EG_BACKEND_SSE2)
static int eg_backend_short(eg_str_t value, size_t *host, size_t *first,
    size_t *last);
#endif


eg_backend_e
eg_backend_check(eg_str_t value, const eg_str_t *backends, size_t nbackends)
{
    size_t                i;
    unsigned              k;
    eg_str_t              host, first, last;
    const unsigned char  *p, *end, *label, *first_end;

    if (value.len == 0) {
        return EG_BACKEND_SYNTAX;
    }

#if (EG_BACKEND_SSE2)
    if (value.len <= 64) {
        /* the usual value, "EX01.contoso.local~1942062522": the same
           rules read from byte masks */

        if (!eg_backend_short(value, &host.len, &first.len, &last.len)) {
            return EG_BACKEND_SYNTAX;
        }

        host.data = value.data;
        first.data = value.data;
        last.data = value.data + host.len - last.len;

        goto checked;
    }
#endif

    p = value.data;
    end = p + value.len;
    label = p;
    first_end = NULL;

    for ( /* void */ ; p < end; p++) {
        k = eg_be_class[*p];

        if (k == EG_BE_LABEL) {
            continue;
        }

        if (k == EG_BE_DASH && p != label) {    /* not first in a label */
            continue;
        }

        if (k != EG_BE_DOT) {
            break;
        }

        /* '.' after a label of 1-63 that does not end in '-' */

        if (p == label || p[-1] == '-' || p - label > EG_MAX_LABEL) {
            return EG_BACKEND_SYNTAX;
        }

        if (first_end == NULL) {
            first_end = p;
        }

        label = p + 1;
    }

    /* the host ends at the first '~', in a label that does not end in
       '-' (no trailing dot) */

    if (p == end || *p != '~' || p == label || p[-1] == '-'
        || p - label > EG_MAX_LABEL || p - value.data > EG_MAX_HOST
        || !eg_valid_version(p + 1, end))
    {
        return EG_BACKEND_SYNTAX;
    }

    host.data = value.data;
    host.len = p - value.data;
    first.data = host.data;
    first.len = (first_end ? first_end : p) - host.data;
    last.data = label;
    last.len = p - label;

#if (EG_BACKEND_SSE2)
checked:
#endif

    if (eg_local_host(first, last)) {
        return EG_BACKEND_LOCAL;
    }

    if (nbackends == 0) {
        return EG_BACKEND_OK;
    }

    for (i = 0; i < nbackends; i++) {
        if (eg_str_ieq(host, backends[i])) {
            return EG_BACKEND_OK;
        }
    }

    return EG_BACKEND_UNKNOWN;
}


const char *
eg_backend_reason(eg_backend_e rc)
{
    switch (rc) {
    case EG_BACKEND_OK:
        return "valid";
    case EG_BACKEND_SYNTAX:
        return "not <dns-hostname>~<integer>";
    case EG_BACKEND_LOCAL:
        return "localhost or an IP address";
    default:
        return "not a configured Exchange server";
    }
}


#if (EG_BACKEND_SSE2)

/*
 * A value of 1-64 bytes, read sixteen at a time into masks (bit i: byte
 * i is of the class), checked as the pass above checks it: the host runs
 * up to the first '~' and holds only label bytes, '-' and '.'; no label
 * starts with '-' or '.', or ends with '-'; the host does not end in '.'
 * or '-'; a label of at most 63 bytes follows from a '~' within the first
 * 64.  Then 1-10 digits up to 2^31 - 1.  0: not the syntax; else the
 * lengths of the host, its first label and its last.
 */

static int
eg_backend_short(eg_str_t value, size_t *host, size_t *first, size_t *last)
{
    size_t                n, t, len;
    uint64_t              ok, dash, dot, tilde, digit, hmask, m, v, lim;
    __m128i               b, d, c;
    unsigned char         buf[16];
    const unsigned char  *s = value.data;

    len = value.len;
    ok = 0;
    dash = 0;
    dot = 0;
    tilde = 0;
    digit = 0;

    /* a value under 16 bytes is copied into a buffer padded with 0, a byte
       of no class; a longer one is read in blocks at 0, 16, ... and
       len - 16: the bits of bytes two blocks share are the same */

    if (len < 16) {
        eg_copy_short16(buf, s, len, 0);
        s = buf;
    }

    n = 0;

    for ( ;; ) {
        b = _mm_loadu_si128((const __m128i *) (s + n));

        /* letters: (b | 0x20) - 'a' below 26, digits: b - '0' below 10,
           both as signed bytes moved down by 0x80 */

        d = _mm_cmplt_epi8(_mm_add_epi8(b, _mm_set1_epi8((char) (0x80 - '0'))),
                           _mm_set1_epi8((char) (-128 + 10)));
        c = _mm_cmpeq_epi8(b, _mm_set1_epi8('-'));

        digit |= (uint64_t) (unsigned) _mm_movemask_epi8(d) << n;
        dash |= (uint64_t) (unsigned) _mm_movemask_epi8(c) << n;

        d = _mm_or_si128(d, c);
        c = _mm_cmpeq_epi8(b, _mm_set1_epi8('.'));
        dot |= (uint64_t) (unsigned) _mm_movemask_epi8(c) << n;

        d = _mm_or_si128(_mm_or_si128(d, c),
                _mm_or_si128(
                    _mm_cmplt_epi8(
                        _mm_add_epi8(_mm_or_si128(b, _mm_set1_epi8(0x20)),
                                     _mm_set1_epi8((char) (0x80 - 'a'))),
                        _mm_set1_epi8((char) (-128 + 26))),
                    _mm_cmpeq_epi8(b, _mm_set1_epi8('_'))));
        ok |= (uint64_t) (unsigned) _mm_movemask_epi8(d) << n;
        tilde |= (uint64_t) (unsigned) _mm_movemask_epi8(
                     _mm_cmpeq_epi8(b, _mm_set1_epi8('~'))) << n;

        if (n + 16 >= len) {
            break;
        }

        n = n + 32 <= len ? n + 16 : len - 16;
    }

    if (tilde == 0) {
        return 0;
    }

    t = eg_ctz64(tilde);

    if (t == 0 || (((dot | dash) >> (t - 1)) & 1)) {
        return 0;
    }

    /* the host: label bytes, '-' and '.' only; (dot << 1) | 1 is where a
       label starts */

    hmask = ((uint64_t) 1 << t) - 1;
    dot &= hmask;
    dash &= hmask;

    if ((hmask & ~ok)
        || ((dash | dot) & ((dot << 1) | 1))
        || (dot & (dash << 1)))
    {
        return 0;
    }

    /* the version: every byte after the '~' a digit, ten of them no more
       than "2147483647" (read as a big-endian word and two bytes) */

    n = len - t - 1;
    m = (len == 64 ? ~(uint64_t) 0 : ((uint64_t) 1 << len) - 1)
        & ~(hmask << 1 | 1);

    if (n == 0 || n > 10 || (m & ~digit)) {
        return 0;
    }

    if (n == 10) {
        memcpy(&v, value.data + t + 1, 8);
        v = __builtin_bswap64(v);
        lim = 0x3231343734383336ULL;          /* "21474836" */

        if (v > lim
            || (v == lim && (value.data[t + 9] > '4'
                             || (value.data[t + 9] == '4'
                                 && value.data[t + 10] > '7'))))
        {
            return 0;
        }
    }

    *host = t;
    *first = dot ? eg_ctz64(dot) : t;
    *last = dot ? t - 1 - (63 - (size_t) __builtin_clzll(dot)) : t;

    return 1;
}

#endif


/* 1-10 digits, at most 2^31 - 1: fewer than ten digits always are */

static int
eg_valid_version(const unsigned char *p, const unsigned char *end)
{
    size_t    i, len;
    uint64_t  n;

    len = end - p;

    if (len == 0 || len > 10) {
        return 0;
    }

    n = 0;

    for (i = 0; i < len; i++) {
        if ((unsigned) (p[i] - '0') > 9) {
            return 0;
        }
        n = n * 10 + (p[i] - '0');
    }

    return n <= 0x7fffffff;
}


/* the first label is "localhost", or the last is all digits or 0x-hex: an
   IPv4 literal in any of the forms inet_addr accepts (127.0.0.1, 127.1,
   2130706433, 0x7f000001) */

static int
eg_local_host(eg_str_t first, eg_str_t last)
{
    size_t                 i;
    unsigned char          c;
    static const eg_str_t  localhost = eg_string("localhost");

    if (first.len == localhost.len && eg_str_ieq(first, localhost)) {
        return 1;
    }

    if (last.len > 2 && last.data[0] == '0' && eg_lower(last.data[1]) == 'x') {
        for (i = 2; i < last.len; i++) {
            c = eg_lower(last.data[i]);
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
                return 0;
            }
        }
        return 1;
    }

    for (i = 0; i < last.len; i++) {
        if ((unsigned) (last.data[i] - '0') > 9) {
            return 0;
        }
    }

    return 1;
}


/* "192.0.2.0/24", "2001:db8::/32", or a single address */

int
eg_cidr_parse(eg_str_t text, eg_cidr_t *cidr)
{
    int             v6;
    char            buf[64];
    size_t          len, i;
    unsigned        bits, max;
    unsigned char   a4[4];
    const unsigned char  *slash;

    if (text.len == 0) {
        return -1;
    }

    slash = memchr(text.data, '/', text.len);
    len = slash ? (size_t) (slash - text.data) : text.len;

    if (len == 0 || len >= sizeof(buf)) {
        return -1;
    }

    memcpy(buf, text.data, len);
    buf[len] = '\0';
    memset(cidr, 0, sizeof(eg_cidr_t));

    v6 = memchr(buf, ':', len) != NULL;

    if (v6) {
        if (inet_pton(AF_INET6, buf, cidr->addr) != 1) {
            return -1;
        }
        max = 128;

    } else {
        if (inet_pton(AF_INET, buf, a4) != 1) {
            return -1;
        }
        cidr->addr[10] = 0xff;
        cidr->addr[11] = 0xff;
        memcpy(cidr->addr + 12, a4, 4);
        max = 32;
    }

    bits = max;

    if (slash) {
        if (slash + 1 == text.data + text.len
            || text.data + text.len - slash - 1 > 3)
        {
            return -1;
        }

        bits = 0;
        for (i = 1; slash + i < text.data + text.len; i++) {
            if (slash[i] < '0' || slash[i] > '9') {
                return -1;
            }
            bits = bits * 10 + (slash[i] - '0');
        }

        if (bits > max) {
            return -1;
        }
    }

    cidr->bits = v6 ? bits : bits + 96;

    /* host bits of the network must be zero, as nginx's allow insists */

    for (i = cidr->bits; i < 128; i++) {
        if (cidr->addr[i / 8] & (0x80 >> (i % 8))) {
            return -1;
        }
    }

    return 0;
}
