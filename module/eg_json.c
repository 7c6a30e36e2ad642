/*
 * exchange_guard: the JSON log line.
 *
 * One object per line with Elastic Common Schema field names.  Every
 * string is escaped here, whatever bytes it holds: the line is valid JSON
 * and valid UTF-8 for any input, and every attacker-controlled field is
 * bounded, so the line is too.
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "eg_internal.h"


typedef struct {
    unsigned char        *p;
} eg_out_t;


static size_t eg_cap(eg_str_t s, size_t max);
static void eg_raw(eg_out_t *o, const char *s);
static void eg_key_str(eg_out_t *o, const char *key, eg_str_t s, size_t max,
    int *truncated);
static void eg_uint(eg_out_t *o, uint64_t n);
static size_t eg_utf8_len(const unsigned char *s, size_t len);
static void eg_timestamp(eg_out_t *o, uint64_t msec);


/* length of the valid UTF-8 sequence at s, 0 if invalid */

static size_t
eg_utf8_len(const unsigned char *s, size_t len)
{
    unsigned char  c = s[0];

    if (c < 0x80) {
        return 1;
    }

    if (c >= 0xc2 && c <= 0xdf) {
        return (len >= 2 && (s[1] & 0xc0) == 0x80) ? 2 : 0;
    }

    if (c >= 0xe0 && c <= 0xef) {
        if (len < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) {
            return 0;
        }

        /* no overlong forms, no UTF-16 surrogates */

        if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f)) {
            return 0;
        }

        return 3;
    }

    if (c >= 0xf0 && c <= 0xf4) {
        if (len < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80
            || (s[3] & 0xc0) != 0x80)
        {
            return 0;
        }

        if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f)) {
            return 0;
        }

        return 4;
    }

    return 0;
}


size_t
eg_json_escape(unsigned char *dst, eg_str_t src, size_t max, int *truncated)
{
    size_t          i, n, end;
    unsigned char  *d, c;
    static const char  hex[] = "0123456789abcdef";

    d = dst;
    end = src.len < max ? src.len : max;
    *truncated = 0;

    for (i = 0; i < end; /* void */ ) {
        c = src.data[i];

        if (c == '"' || c == '\\') {
            *d++ = '\\';
            *d++ = c;
            i++;
            continue;
        }

        if (c < 0x20 || c == 0x7f) {
            *d++ = '\\';
            switch (c) {
            case '\n': *d++ = 'n'; break;
            case '\r': *d++ = 'r'; break;
            case '\t': *d++ = 't'; break;
            default:
                *d++ = 'u'; *d++ = '0'; *d++ = '0';
                *d++ = hex[c >> 4];
                *d++ = hex[c & 0xf];
            }
            i++;
            continue;
        }

        if (c < 0x80) {
            *d++ = c;
            i++;
            continue;
        }

        n = eg_utf8_len(src.data + i, src.len - i);

        if (n == 0) {
            memcpy(d, "\\ufffd", 6);
            d += 6;
            i++;
            continue;
        }

        if (i + n > end) {
            /* never split a character at the cut */
            *truncated = 1;
            return d - dst;
        }

        memcpy(d, src.data + i, n);
        d += n;
        i += n;
    }

    *truncated = (src.len > max);
    return d - dst;
}


static size_t
eg_cap(eg_str_t s, size_t max)
{
    return 6 * (s.len < max ? s.len : max);
}


size_t
eg_log_size(const eg_log_event_t *ev)
{
    size_t               n, i, j;
    const eg_verdict_t  *v = ev->verdict;
    const eg_rule_t     *r;

    /* the fixed text, numbers, the timestamp and the limit's rule id */
    n = 1024 + 6 * 64;

    /* escaping writes at most 6 bytes per input byte */

    n += eg_cap(ev->source_ip, 64) * 2 + eg_cap(ev->client_ip, 64)
         + eg_cap(ev->method, 64) + eg_cap(ev->request_id, 64)
         + eg_cap(ev->url_original, EG_LOG_STRING_MAX)
         + eg_cap(v->path, EG_LOG_STRING_MAX)
         + eg_cap(v->query, EG_LOG_STRING_MAX)
         + eg_cap(ev->user_agent, EG_LOG_STRING_MAX)
         + eg_cap(ev->server_address, 256);

    /* the primary match is written twice: as rule.* and in matches[] */

    for (i = 0; i < v->nmatches; i++) {
        r = v->matches[i].rule;
        n += 64 + 2 * (eg_cap(r->id, EG_LOG_VALUE_MAX)
                       + eg_cap(r->name, EG_LOG_VALUE_MAX)
                       + eg_cap(v->matches[i].field, EG_LOG_VALUE_MAX)
                       + eg_cap(v->matches[i].value, EG_LOG_VALUE_MAX));
        for (j = 0; j < r->ncves; j++) {
            n += 4 + r->cves[j].len;
        }
    }

    return n;
}


size_t
eg_log_format(unsigned char *buf, const eg_log_event_t *ev)
{
    int                  t;
    size_t               i, j, k, seen;
    eg_out_t             o;
    eg_str_t             cves[EG_MAX_MATCHES * EG_MAX_CVES];
    const eg_rule_t     *r, *primary;
    const eg_match_t    *m;
    const eg_verdict_t  *v = ev->verdict;

    o.p = buf;

    /* the decision: the first block match, else the first log match; a
       note decides nothing, and a refusal with neither is the limit's */

    m = NULL;
    for (i = 0; i < v->nmatches; i++) {
        if (v->matches[i].rule->action == EG_BLOCK) {
            m = &v->matches[i];
            break;
        }

        if (m == NULL && v->matches[i].rule->action == EG_LOG) {
            m = &v->matches[i];
        }
    }

    if (m && m->rule->action != EG_BLOCK && v->limit != EG_LIMIT_NONE
        && strcmp(ev->action, "blocked") == 0)
    {
        m = NULL;
    }

    primary = m ? m->rule : NULL;

    eg_raw(&o, "{\"@timestamp\":\"");
    eg_timestamp(&o, ev->msec);

    eg_raw(&o, "\",\"event\":{\"kind\":\"alert\",\"module\":\"exchange_guard\","
           "\"category\":[\"intrusion_detection\",\"web\"],\"type\":[\"");
    eg_raw(&o, strcmp(ev->action, "blocked") == 0 ? "denied" : "allowed");
    eg_raw(&o, "\"],\"action\":\"");
    eg_raw(&o, ev->action);
    eg_raw(&o, "\"},\"rule\":{\"ruleset\":\"exchange_guard\"");

    if (primary) {
        eg_raw(&o, ",");
        eg_key_str(&o, "id", primary->id, EG_LOG_VALUE_MAX, NULL);
        eg_raw(&o, ",");
        eg_key_str(&o, "name", primary->name, EG_LOG_VALUE_MAX, NULL);

    } else if (v->limit != EG_LIMIT_NONE) {
        eg_raw(&o, ",\"id\":\"EG-LIMIT\",\"name\":\"Inspection limit "
               "reached\"");
    }

    /* vulnerability.id: every CVE of every match, once, in order */

    eg_raw(&o, "},\"vulnerability\":{\"id\":[");
    seen = 0;

    for (i = 0; i < v->nmatches; i++) {
        r = v->matches[i].rule;
        for (j = 0; j < r->ncves; j++) {
            for (k = 0; k < seen; k++) {
                if (eg_str_ieq(cves[k], r->cves[j])) {
                    break;
                }
            }
            if (k == seen) {
                cves[seen++] = r->cves[j];
                eg_raw(&o, seen > 1 ? ",\"" : "\"");
                memcpy(o.p, r->cves[j].data, r->cves[j].len);
                o.p += r->cves[j].len;
                eg_raw(&o, "\"");
            }
        }
    }

    eg_raw(&o, "]},\"source\":{");
    eg_key_str(&o, "ip", ev->source_ip, 64, NULL);
    eg_raw(&o, ",\"port\":");
    eg_uint(&o, ev->source_port);
    eg_raw(&o, "},\"client\":{");
    eg_key_str(&o, "ip", ev->client_ip.len ? ev->client_ip : ev->source_ip,
               64, NULL);

    eg_raw(&o, "},\"http\":{\"request\":{");
    eg_key_str(&o, "method", ev->method, 64, NULL);
    eg_raw(&o, ",");
    eg_key_str(&o, "id", ev->request_id, 64, NULL);

    /* a detected request passes: its status is not ours to tell */

    if (ev->status) {
        eg_raw(&o, "},\"response\":{\"status_code\":");
        eg_uint(&o, ev->status);
    }

    eg_raw(&o, "}},\"url\":{");
    eg_key_str(&o, "original", ev->url_original, EG_LOG_STRING_MAX, &t);
    eg_raw(&o, ",");
    eg_key_str(&o, "path", v->path, EG_LOG_STRING_MAX, NULL);
    eg_raw(&o, ",");
    eg_key_str(&o, "query", v->query, EG_LOG_STRING_MAX, NULL);

    eg_raw(&o, "},\"user_agent\":{");
    eg_key_str(&o, "original", ev->user_agent, EG_LOG_STRING_MAX, NULL);
    eg_raw(&o, "},\"server\":{");
    eg_key_str(&o, "address", ev->server_address, 256, NULL);

    eg_raw(&o, "},\"exchange_guard\":{");

    if (m) {
        eg_key_str(&o, "field", m->field, EG_LOG_VALUE_MAX, NULL);
        eg_raw(&o, ",");
        eg_key_str(&o, "value", m->value, EG_LOG_VALUE_MAX, &t);
        eg_raw(&o, t ? ",\"value_truncated\":true,"
                     : ",\"value_truncated\":false,");
    }

    if (v->limit != EG_LIMIT_NONE) {
        static const char *limits[] = { "", "cookies", "header_bytes",
                                        "decode_rounds", "regex", "body" };
        eg_raw(&o, "\"limit\":\"");
        eg_raw(&o, limits[v->limit]);
        eg_raw(&o, "\",");

        /* which rule was being evaluated, e.g. a regex that ran too long */

        if (v->limit_rule) {
            eg_key_str(&o, "limit_rule", v->limit_rule->id,
                       EG_LOG_VALUE_MAX, NULL);
            eg_raw(&o, ",");
        }
    }

    eg_raw(&o, "\"matches\":[");

    for (i = 0; i < v->nmatches; i++) {
        m = &v->matches[i];
        eg_raw(&o, i ? ",{" : "{");
        eg_key_str(&o, "id", m->rule->id, EG_LOG_VALUE_MAX, NULL);
        eg_raw(&o, m->rule->action == EG_BLOCK ? ",\"action\":\"block\","
                   : m->rule->action == EG_LOG ? ",\"action\":\"log\","
                   : ",\"action\":\"note\",");
        eg_key_str(&o, "field", m->field, EG_LOG_VALUE_MAX, NULL);
        eg_raw(&o, ",");
        eg_key_str(&o, "value", m->value, EG_LOG_VALUE_MAX, NULL);
        eg_raw(&o, "}");
    }

    eg_raw(&o, "],\"matches_total\":");
    eg_uint(&o, v->total);
    eg_raw(&o, "}}\n");

    return o.p - buf;
}


static void
eg_raw(eg_out_t *o, const char *s)
{
    size_t  len = strlen(s);

    memcpy(o->p, s, len);
    o->p += len;
}


static void
eg_key_str(eg_out_t *o, const char *key, eg_str_t s, size_t max,
    int *truncated)
{
    int  t;

    *o->p++ = '"';
    eg_raw(o, key);
    eg_raw(o, "\":\"");

    if (s.data) {
        o->p += eg_json_escape(o->p, s, max, &t);

    } else {
        t = 0;
    }

    *o->p++ = '"';

    if (truncated) {
        *truncated = t;
    }
}


static void
eg_uint(eg_out_t *o, uint64_t n)
{
    char  tmp[24];
    int   len;

    len = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long) n);
    memcpy(o->p, tmp, len);
    o->p += len;
}


static void
eg_timestamp(eg_out_t *o, uint64_t msec)
{
    char       tmp[64];
    time_t     sec;
    struct tm  tm;

    sec = (time_t) (msec / 1000);
    gmtime_r(&sec, &tm);

    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (unsigned) (msec % 1000));
    eg_raw(o, tmp);
}
