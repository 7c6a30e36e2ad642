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


#define EG_MAX_HOST   253
#define EG_MAX_LABEL  63


static int eg_valid_host(eg_str_t host);
static int eg_valid_version(eg_str_t v);
static int eg_local_host(eg_str_t host);


eg_backend_e
eg_backend_check(eg_str_t value, const eg_str_t *backends, size_t nbackends)
{
    size_t                i;
    eg_str_t              host, version;
    const unsigned char  *tilde;

    tilde = value.len ? memchr(value.data, '~', value.len) : NULL;
    if (tilde == NULL) {
        return EG_BACKEND_SYNTAX;
    }

    host.data = value.data;
    host.len = tilde - value.data;
    version.data = tilde + 1;
    version.len = value.data + value.len - version.data;

    if (!eg_valid_host(host) || !eg_valid_version(version)) {
        return EG_BACKEND_SYNTAX;
    }

    if (eg_local_host(host)) {
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


static int
eg_valid_host(eg_str_t host)
{
    size_t                i, label;
    unsigned char         k;
    static const unsigned char  ok[256] = {
        ['-'] = 2, ['_'] = 1, ['.'] = 3,
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

    /* letters, digits, '-' inside labels, and '_' for NetBIOS-derived
       Windows host names; labels of 1-63, names up to 253 bytes */

    if (host.len == 0 || host.len > EG_MAX_HOST) {
        return 0;
    }

    label = 0;

    for (i = 0; i < host.len; i++) {
        k = ok[host.data[i]];

        if (k == 1) {                   /* the usual byte */
            if (++label > EG_MAX_LABEL) {
                return 0;
            }
            continue;
        }

        if (k == 2) {                   /* '-', not first in a label */
            if (label == 0 || ++label > EG_MAX_LABEL) {
                return 0;
            }
            continue;
        }

        if (k == 3 && label != 0 && host.data[i - 1] != '-') {
            label = 0;                  /* '.' after a label */
            continue;
        }

        return 0;
    }

    /* no empty last label (trailing dot), no trailing '-' */

    return label != 0 && host.data[host.len - 1] != '-';
}


static int
eg_valid_version(eg_str_t v)
{
    size_t    i;
    uint64_t  n;

    if (v.len == 0 || v.len > 10) {
        return 0;
    }

    n = 0;

    for (i = 0; i < v.len; i++) {
        if (v.data[i] < '0' || v.data[i] > '9') {
            return 0;
        }
        n = n * 10 + (v.data[i] - '0');
    }

    return n <= 0x7fffffff;
}


static int
eg_local_host(eg_str_t host)
{
    size_t                i;
    eg_str_t              first, last;
    const unsigned char  *dot;
    static const eg_str_t  localhost = eg_string("localhost");

    dot = memchr(host.data, '.', host.len);
    first.data = host.data;
    first.len = dot ? (size_t) (dot - host.data) : host.len;

    if (eg_str_ieq(first, localhost)) {
        return 1;
    }

    for (i = host.len; i > 0 && host.data[i - 1] != '.'; i--) {
        /* void */
    }

    last.data = host.data + i;
    last.len = host.len - i;

    /* an all-digit or 0x-hex last label makes an IPv4 literal in any of the
       forms inet_addr accepts: 127.0.0.1, 127.1, 2130706433, 0x7f000001 */

    if (last.len > 2 && last.data[0] == '0' && eg_lower(last.data[1]) == 'x') {
        for (i = 2; i < last.len; i++) {
            unsigned char c = eg_lower(last.data[i]);
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
                return 0;
            }
        }
        return 1;
    }

    for (i = 0; i < last.len; i++) {
        if (last.data[i] < '0' || last.data[i] > '9') {
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
