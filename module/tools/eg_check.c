/*
 * eg-check: run the exchange_guard engine over request corpora.
 *
 *   eg-check --rules GLOB [--rules GLOB ...] [--backend FQDN ...]
 *            [--json] FILE.http ...
 *
 * Each record of a corpus file (format: tests/corpus/README.md) is
 * evaluated as nginx would: records with "expect=RULE" must be refused by
 * that rule, the others must pass.  Prints a line per mismatch and a
 * summary "N passed, N failed"; with --json, the log line of every
 * refused or detected record.  Exit status 1 on any mismatch.
 */

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "eg_engine.h"


#define EG_CHECK_MAX_HEADERS  256
#define EG_CHECK_MAX_BACKENDS 64


typedef struct {
    char             *id;
    char             *expect;
    int               escapes;
    unsigned char    *head;        /* the record's text */
    size_t            len;
} eg_record_t;

typedef struct arena_s  arena_t;

struct arena_s {
    arena_t          *next;
};


static arena_t  *arena;


static void *
arena_alloc(void *ctx, size_t size)
{
    arena_t  *a;

    (void) ctx;

    a = malloc(sizeof(arena_t) + size + 16);
    if (a == NULL) {
        return NULL;
    }

    a->next = arena;
    arena = a;
    return (unsigned char *) a + sizeof(arena_t);
}


static void
arena_reset(void)
{
    arena_t  *next;

    while (arena) {
        next = arena->next;
        free(arena);
        arena = next;
    }
}


static int
hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}


/* decode the \xHH \r \n \t \\ escapes of an "escapes" record in place */

static size_t
unescape(unsigned char *s, size_t len)
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
                if (i + 3 < len && hexval(s[i + 2]) >= 0
                    && hexval(s[i + 3]) >= 0)
                {
                    s[n++] = (unsigned char) (hexval(s[i + 2]) * 16
                                              + hexval(s[i + 3]));
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
trim(const unsigned char *s, const unsigned char *e)
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


/* the request line and headers of a record; the body is not inspected */

static size_t
dechunk(unsigned char *s, size_t len)
{
    size_t          n, size;
    unsigned char  *p, *end, *d;

    p = s;
    end = s + len;
    d = s;

    while (p < end) {
        size = 0;
        while (p < end && hexval(*p) >= 0) {
            size = size * 16 + hexval(*p++);
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
parse_request(unsigned char *s, size_t len, eg_request_t *req,
    eg_header_t *h)
{
    int             chunked;
    unsigned char  *end, *eol, *sp, *colon;
    static const eg_str_t  te = { (const unsigned char *) "Transfer-Encoding",
                                  17 };

    end = s + len;
    memset(req, 0, sizeof(eg_request_t));

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
    req->headers = h;
    chunked = 0;

    for (s = eol + 1; s < end; s = eol + 1) {
        eol = memchr(s, '\n', end - s);
        if (eol == NULL) {
            eol = end;
        }

        if (trim(s, eol).len == 0) {

            /* the body, as nginx hands it over: de-chunked */

            if (eol + 1 < end) {
                req->body.data = eol + 1;
                req->body.len = end - (eol + 1);
                if (chunked) {
                    req->body.len = dechunk(eol + 1, req->body.len);
                }
                req->body_state = req->body.len ? EG_BODY_READ
                                                : EG_BODY_NONE;
            }
            break;
        }

        colon = memchr(s, ':', eol - s);
        if (colon == NULL || req->nheaders == EG_CHECK_MAX_HEADERS) {
            return -1;
        }

        h[req->nheaders].name = trim(s, colon);
        h[req->nheaders].value = trim(colon + 1, eol);

        if (eg_cookie_name_is(h[req->nheaders].name, te)) {
            chunked = 1;
        }

        req->nheaders++;
    }

    return 0;
}


static int
check_record(eg_ruleset_t *rs, const eg_options_t *opts, eg_record_t *rec,
    const char *file, int json)
{
    int             ok;
    size_t          len;
    eg_str_t        id;
    eg_alloc_t      alloc = { arena_alloc, NULL };
    eg_header_t     h[EG_CHECK_MAX_HEADERS];
    eg_request_t    req;
    eg_verdict_t    v;
    unsigned char  *buf;
    eg_log_event_t  ev;
    struct timeval  tv;
    unsigned        i;
    eg_body_e       body_state;

    if (rec->escapes) {
        rec->len = unescape(rec->head, rec->len);
    }

    if (parse_request(rec->head, rec->len, &req, h) != 0) {
        printf("%s: %s: cannot parse the request\n", file, rec->id);
        return 0;
    }

    /* as nginx does: the body is read only when a rule needs it and
       nothing refused the request already */

    body_state = req.body_state;
    if (body_state == EG_BODY_READ) {
        req.body_state = EG_BODY_PENDING;
    }

    eg_eval(rs, &req, opts, &alloc, &v);

    if (v.need_body && v.action != EG_BLOCK && body_state == EG_BODY_READ) {
        req.body_state = EG_BODY_READ;
        eg_eval(rs, &req, opts, &alloc, &v);
    }

    /* as nginx does: a limit refuses unless "exchange_guard_limit_action
       pass" */

    id.data = NULL;
    id.len = 0;

    for (i = 0; i < v.nmatches; i++) {
        if (eg_rule_action(v.matches[i].rule) == EG_BLOCK) {
            id = eg_rule_id(v.matches[i].rule);
            break;
        }
    }

    if (id.data == NULL && v.limit != EG_LIMIT_NONE) {
        id.data = (const unsigned char *) "EG-LIMIT";
        id.len = 8;
    }

    if (rec->expect) {
        ok = id.data && id.len == strlen(rec->expect)
             && memcmp(id.data, rec->expect, id.len) == 0;
    } else {
        ok = id.data == NULL;
    }

    if (!ok) {
        printf("%s: %s: refused by %.*s, expected %s\n", file, rec->id,
               id.data ? (int) id.len : 4,
               id.data ? (const char *) id.data : "none",
               rec->expect ? rec->expect : "to pass");
    }

    if (json && (v.action != EG_PASS || v.limit != EG_LIMIT_NONE)) {
        memset(&ev, 0, sizeof(eg_log_event_t));
        gettimeofday(&tv, NULL);
        ev.msec = (uint64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
        ev.action = id.data ? "blocked" : "detected";
        ev.verdict = &v;
        ev.method = req.method;
        ev.url_original = req.target;
        ev.status = id.data ? 403 : 0;

        if (v.path.data == NULL) {
            (void) eg_uri_normalize(req.target, 3, &alloc, &v.path,
                                    &v.query);
        }

        buf = malloc(eg_log_size(&ev));
        if (buf) {
            len = eg_log_format(buf, &ev);
            fwrite(buf, 1, len, stdout);
            free(buf);
        }
    }

    arena_reset();
    return ok;
}


static int
check_file(eg_ruleset_t *rs, const eg_options_t *opts, const char *path,
    int json, unsigned *passed, unsigned *failed)
{
    long            size;
    FILE           *f;
    char           *w, *save;
    unsigned char  *text, *s, *end, *next, *eol;
    eg_record_t     rec;

    f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
    {
        fprintf(stderr, "eg-check: cannot read %s\n", path);
        return -1;
    }

    text = malloc(size + 2);
    if (text == NULL || fread(text, 1, size, f) != (size_t) size) {
        fprintf(stderr, "eg-check: cannot read %s\n", path);
        fclose(f);
        return -1;
    }

    fclose(f);
    text[size] = '\0';
    end = text + size;

    /* records start at lines beginning with "### " */

    s = (unsigned char *) strstr((char *) text, "### ");
    while (s && s != text && s[-1] != '\n') {
        s = (unsigned char *) strstr((char *) s + 4, "### ");
    }

    while (s && s < end) {
        next = s;
        do {
            next = (unsigned char *) strstr((char *) next + 4, "\n### ");
        } while (0);
        if (next == NULL) {
            next = end;
        }

        eol = memchr(s, '\n', next - s);
        if (eol == NULL) {
            break;
        }

        *eol = '\0';
        memset(&rec, 0, sizeof(eg_record_t));

        for (w = strtok_r((char *) s + 4, " \t", &save); w;
             w = strtok_r(NULL, " \t", &save))
        {
            if (rec.id == NULL) {
                rec.id = w;
            } else if (strncmp(w, "expect=", 7) == 0) {
                rec.expect = w + 7;
            } else if (strcmp(w, "escapes") == 0) {
                rec.escapes = 1;
            }
        }

        rec.head = eol + 1;
        rec.len = next - rec.head;

        if (check_record(rs, opts, &rec, path, json)) {
            (*passed)++;
        } else {
            (*failed)++;
        }

        s = next < end ? next + 1 : end;
    }

    free(text);
    return 0;
}


int
main(int argc, char **argv)
{
    int            i, json;
    char           err[1024];
    size_t         k, nb;
    glob_t         gl;
    unsigned       passed, failed;
    eg_str_t       backends[EG_CHECK_MAX_BACKENDS];
    eg_options_t   opts;
    eg_ruleset_t  *rs;

    rs = eg_ruleset_new();
    if (rs == NULL) {
        return 2;
    }

    memset(&opts, 0, sizeof(eg_options_t));
    json = 0;
    nb = 0;
    passed = 0;
    failed = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rules") == 0 && i + 1 < argc) {
            if (glob(argv[++i], 0, NULL, &gl) != 0) {
                fprintf(stderr, "eg-check: no rule file matches %s\n",
                        argv[i]);
                return 2;
            }
            for (k = 0; k < gl.gl_pathc; k++) {
                if (eg_ruleset_load_file(rs, gl.gl_pathv[k], err,
                                         sizeof(err)) != 0)
                {
                    fprintf(stderr, "eg-check: %s\n", err);
                    return 2;
                }
            }
            globfree(&gl);

        } else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc
                   && nb < EG_CHECK_MAX_BACKENDS)
        {
            backends[nb].data = (const unsigned char *) argv[++i];
            backends[nb].len = strlen(argv[i]);
            nb++;

        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;

        } else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: eg-check --rules GLOB [--backend FQDN] "
                    "[--json] FILE.http ...\n");
            return 2;

        } else {
            opts.backends = backends;
            opts.nbackends = nb;
            if (check_file(rs, &opts, argv[i], json, &passed, &failed) != 0)
            {
                return 2;
            }
        }
    }

    if (eg_ruleset_count(rs) == 0) {
        fprintf(stderr, "eg-check: no rules loaded (--rules GLOB)\n");
        return 2;
    }

    fprintf(json ? stderr : stdout, "%u passed, %u failed\n", passed, failed);
    eg_ruleset_free(rs);
    return failed ? 1 : 0;
}
