/*
 * Reading the request corpora for the engine's command-line tools.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eg_corpus.h"


static int eg_hexval(int c);
static size_t eg_unescape(unsigned char *s, size_t len);
static eg_str_t eg_trim_line(const unsigned char *s, const unsigned char *e);
static size_t eg_dechunk(unsigned char *s, size_t len);
static int eg_parse_record(unsigned char *s, size_t len, eg_record_t *rec);


int
eg_corpus_read(const char *path, int keep, eg_record_pt fn, void *data)
{
    int             rc;
    long            size;
    FILE           *f;
    char           *w, *save;
    unsigned char  *text, *s, *end, *next, *eol;
    size_t          len;
    eg_record_t    *rec;

    f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
    {
        fprintf(stderr, "cannot read %s\n", path);
        if (f) {
            fclose(f);
        }
        return -1;
    }

    text = malloc(size + 2);
    rec = malloc(sizeof(eg_record_t));

    if (text == NULL || rec == NULL
        || fread(text, 1, size, f) != (size_t) size)
    {
        fprintf(stderr, "cannot read %s\n", path);
        fclose(f);
        free(text);
        free(rec);
        return -1;
    }

    fclose(f);
    text[size] = '\0';
    end = text + size;
    rc = 0;

    /* records start at lines beginning with "### " */

    s = (unsigned char *) strstr((char *) text, "### ");
    while (s && s != text && s[-1] != '\n') {
        s = (unsigned char *) strstr((char *) s + 4, "### ");
    }

    while (s && s < end && rc == 0) {
        next = (unsigned char *) strstr((char *) s + 4, "\n### ");
        if (next == NULL) {
            next = end;
        }

        eol = memchr(s, '\n', next - s);
        if (eol == NULL) {
            break;
        }

        *eol = '\0';
        memset(rec, 0, sizeof(eg_record_t));
        len = next - (eol + 1);

        for (w = strtok_r((char *) s + 4, " \t", &save); w;
             w = strtok_r(NULL, " \t", &save))
        {
            if (rec->id == NULL) {
                rec->id = w;

            } else if (strncmp(w, "expect=", 7) == 0) {
                rec->expect = w + 7;

            } else if (strcmp(w, "escapes") == 0) {
                len = eg_unescape(eol + 1, len);
            }
        }

        if (eg_parse_record(eol + 1, len, rec) != 0) {
            fprintf(stderr, "%s: %s: cannot parse the request\n", path,
                    rec->id ? rec->id : "?");

        } else if (fn(rec, path, data) != 0) {
            rc = -1;
        }

        s = next < end ? next + 1 : end;
    }

    free(rec);

    if (!keep) {
        free(text);
    }

    return rc;
}


void
eg_record_fix(eg_record_t *rec)
{
    rec->req.headers = rec->h;
    rec->fh_rs = NULL;
}


/*
 * The headers whose first one nginx finds by name while it parses the
 * request (r->headers_in), which the module passes to the engine as
 * matched: ngx_http_exchange_guard_known_headers[] in the module.
 */

static const eg_str_t  eg_nginx_known[] = {
    eg_string("cookie"),
    eg_string("user-agent"),
    eg_string("content-type"),
    eg_string("host"),
    eg_string("referer"),
    eg_string("authorization")
};


static int
eg_nginx_knows(eg_str_t lname)
{
    size_t  j;

    for (j = 0; j < sizeof(eg_nginx_known) / sizeof(eg_str_t); j++) {
        if (lname.len == eg_nginx_known[j].len
            && memcmp(lname.data, eg_nginx_known[j].data, lname.len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


void
eg_eval_like_nginx(const eg_ruleset_t *rs, const eg_options_t *opts,
    const eg_alloc_t *alloc, eg_record_t *rec, eg_verdict_t *v)
{
    size_t           i, k, nwant;
    uint32_t         seen;
    eg_request_t     req;
    const eg_str_t  *want;

    /* as the module: only the headers rules read (nginx picks them by
       its header hash, a superset of these), the first of each name
       nginx knows with its slot; chosen once per rule set */

    if (rec->fh_rs != rs) {
        rec->fh_rs = rs;
        rec->nfh = 0;
        seen = 0;
        nwant = eg_ruleset_header_names(rs, &want);

        for (i = 0; i < rec->req.nheaders; i++) {
            for (k = 0; k < nwant || nwant == (size_t) -1; k++) {
                if (nwant == (size_t) -1
                    || eg_cookie_name_is(rec->req.headers[i].name, want[k]))
                {
                    rec->fslots[rec->nfh] = 0;

                    /* the names are lower case, fewer than 32 (nginx
                       passes no slot past them either) */

                    if (nwant != (size_t) -1 && !(seen & (1u << k))) {
                        seen |= 1u << k;

                        if (eg_nginx_knows(want[k])) {
                            rec->fslots[rec->nfh] = (uint8_t) (k + 1);
                        }
                    }

                    rec->fh[rec->nfh++] = rec->req.headers[i];
                    break;
                }
            }
        }
    }

    req = rec->req;
    req.headers = rec->fh;
    req.nheaders = rec->nfh;
    req.header_slots = rec->fslots;

    req.body_state = (rec->body_state == EG_BODY_READ)
                     ? EG_BODY_PENDING : rec->body_state;

    eg_eval(rs, &req, opts, alloc, v);

    if (v->need_body && v->action != EG_BLOCK
        && rec->body_state == EG_BODY_READ)
    {
        req.body_state = EG_BODY_READ;
        eg_eval(rs, &req, opts, alloc, v);
    }
}


static int
eg_hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}


/* the \xHH \r \n \t \\ escapes of an "escapes" record, in place */

static size_t
eg_unescape(unsigned char *s, size_t len)
{
    size_t  i, n;

    for (i = 0, n = 0; i < len; i++) {
        if (s[i] == '\\' && i + 1 < len) {
            switch (s[i + 1]) {
            case 'r': s[n++] = '\r'; i++; continue;
            case 'n': s[n++] = '\n'; i++; continue;
            case 't': s[n++] = '\t'; i++; continue;
            case '\\': s[n++] = '\\'; i++; continue;
            case 'x':
                if (i + 3 < len && eg_hexval(s[i + 2]) >= 0
                    && eg_hexval(s[i + 3]) >= 0)
                {
                    s[n++] = (unsigned char) (eg_hexval(s[i + 2]) * 16
                                              + eg_hexval(s[i + 3]));
                    i += 3;
                    continue;
                }
            }
        }
        s[n++] = s[i];
    }

    return n;
}


static eg_str_t
eg_trim_line(const unsigned char *s, const unsigned char *e)
{
    eg_str_t  r;

    while (s < e && (*s == ' ' || *s == '\t')) {
        s++;
    }

    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) {
        e--;
    }

    r.data = s;
    r.len = e - s;
    return r;
}


/* a chunked body, as nginx hands it over: de-chunked, in place */

static size_t
eg_dechunk(unsigned char *s, size_t len)
{
    size_t          n, size;
    unsigned char  *p, *end, *d;

    p = s;
    end = s + len;
    d = s;

    while (p < end) {
        size = 0;
        while (p < end && eg_hexval(*p) >= 0) {
            size = size * 16 + eg_hexval(*p++);
        }
        while (p < end && *p != '\n') {
            p++;
        }
        p++;
        if (size == 0 || p >= end) {
            break;
        }
        n = (size_t) (end - p) < size ? (size_t) (end - p) : size;
        memmove(d, p, n);
        d += n;
        p += n + 2;
    }

    return d - s;
}


static int
eg_parse_record(unsigned char *s, size_t len, eg_record_t *rec)
{
    int             chunked;
    unsigned char  *end, *eol, *sp, *colon;
    eg_header_t    *h;
    eg_request_t   *req = &rec->req;
    static const eg_str_t  te = eg_string("Transfer-Encoding");

    end = s + len;
    req->headers = rec->h;
    rec->body_state = EG_BODY_NONE;
    rec->fh_rs = NULL;

    eol = memchr(s, '\n', end - s);
    if (eol == NULL) {
        eol = end;
    }

    sp = memchr(s, ' ', eol - s);
    if (sp == NULL) {
        return -1;
    }

    req->method.data = s;
    req->method.len = sp - s;

    /* the target runs to the last space: " HTTP/1.1" */

    s = sp + 1;
    for (sp = eol; sp > s && sp[-1] != ' '; sp--) { /* void */ }
    if (sp == s) {
        return -1;
    }

    req->target.data = s;
    req->target.len = sp - 1 - s;
    chunked = 0;

    for (s = eol + 1; s < end; s = eol + 1) {
        eol = memchr(s, '\n', end - s);
        if (eol == NULL) {
            eol = end;
        }

        if (eg_trim_line(s, eol).len == 0) {
            if (eol + 1 < end) {
                req->body.data = eol + 1;
                req->body.len = end - (eol + 1);
                if (chunked) {
                    req->body.len = eg_dechunk(eol + 1, req->body.len);
                }
                rec->body_state = req->body.len ? EG_BODY_READ
                                                : EG_BODY_NONE;
            }
            break;
        }

        colon = memchr(s, ':', eol - s);
        if (colon == NULL || req->nheaders == EG_CORPUS_MAX_HEADERS) {
            return -1;
        }

        h = &rec->h[req->nheaders++];
        h->name = eg_trim_line(s, colon);
        h->value = eg_trim_line(colon + 1, eol);

        if (eg_cookie_name_is(h->name, te)) {
            chunked = 1;
        }
    }

    req->body_state = rec->body_state;
    return 0;
}
