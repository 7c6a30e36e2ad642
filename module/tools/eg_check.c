/*
 * eg-check: run the exchange_guard engine over request corpora.
 *
 *   eg-check --rules GLOB [--rules GLOB ...] [--backend FQDN ...]
 *            [--json] FILE.http ...
 *
 * Each record of a corpus file (format: tests/corpus/README.md) is
 * evaluated as nginx would (eg_corpus.c): records with "expect=RULE" must
 * be refused by that rule, the others must pass.  Prints a line per mismatch and a
 * summary "N passed, N failed"; with --json, the log line of every
 * refused or detected record.  Exit status 1 on any mismatch.
 */

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "eg_corpus.h"


#define EG_CHECK_MAX_BACKENDS 64


typedef struct arena_s  arena_t;

struct arena_s {
    arena_t          *next;
};

typedef struct {
    const eg_ruleset_t  *rs;
    const eg_options_t  *opts;
    int                  json;
    unsigned             passed;
    unsigned             failed;
} check_t;


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


static void
print_log_line(eg_record_t *rec, eg_verdict_t *v, const eg_alloc_t *alloc,
    int refused)
{
    size_t          len;
    unsigned char  *buf;
    eg_log_event_t  ev;
    struct timeval  tv;

    memset(&ev, 0, sizeof(eg_log_event_t));
    gettimeofday(&tv, NULL);
    ev.msec = (uint64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
    ev.action = refused ? "blocked" : "detected";
    ev.verdict = v;
    ev.method = rec->req.method;
    ev.url_original = rec->req.target;
    ev.status = refused ? 403 : 0;

    if (v->path.data == NULL) {
        (void) eg_uri_normalize(rec->req.target, 3, alloc, &v->path,
                                &v->query);
    }

    buf = malloc(eg_log_size(&ev));
    if (buf) {
        len = eg_log_format(buf, &ev);
        fwrite(buf, 1, len, stdout);
        free(buf);
    }
}


static int
check_record(eg_record_t *rec, const char *file, void *data)
{
    int           ok;
    unsigned      i;
    eg_str_t      id;
    check_t      *ck = data;
    eg_alloc_t    alloc = { arena_alloc, NULL };
    eg_verdict_t  v;

    eg_eval_like_nginx(ck->rs, ck->opts, &alloc, rec, &v);

    /* as nginx does: a limit refuses unless "exchange_guard_limit_action
       pass", and names EG-LIMIT when no block rule matched */

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

    if (ck->json && (v.action != EG_PASS || v.limit != EG_LIMIT_NONE)) {
        print_log_line(rec, &v, &alloc, id.data != NULL);
    }

    arena_reset();

    if (ok) {
        ck->passed++;
    } else {
        ck->failed++;
    }

    return 0;
}


int
main(int argc, char **argv)
{
    int            i;
    char           err[1024];
    size_t         k, nb;
    glob_t         gl;
    check_t        ck;
    eg_str_t       backends[EG_CHECK_MAX_BACKENDS];
    eg_options_t   opts;
    eg_ruleset_t  *rs;

    rs = eg_ruleset_new();
    if (rs == NULL) {
        return 2;
    }

    memset(&opts, 0, sizeof(eg_options_t));
    memset(&ck, 0, sizeof(check_t));
    ck.rs = rs;
    ck.opts = &opts;
    nb = 0;

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
            ck.json = 1;

        } else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: eg-check --rules GLOB [--backend FQDN] "
                    "[--json] FILE.http ...\n");
            return 2;

        } else {
            opts.backends = backends;
            opts.nbackends = nb;
            if (eg_corpus_read(argv[i], 0, check_record, &ck) != 0) {
                return 2;
            }
        }
    }

    if (eg_ruleset_count(rs) == 0) {
        fprintf(stderr, "eg-check: no rules loaded (--rules GLOB)\n");
        return 2;
    }

    fprintf(ck.json ? stderr : stdout, "%u passed, %u failed\n", ck.passed,
            ck.failed);
    eg_ruleset_free(rs);
    return ck.failed ? 1 : 0;
}
