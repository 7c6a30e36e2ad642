/*
 * Reading the request corpora (tests/corpus/README.md) for the engine's
 * command-line tools, and evaluating a record the way the nginx adapter
 * does.  Not part of the module.
 */

#ifndef EG_CORPUS_H
#define EG_CORPUS_H

#include "eg_engine.h"


#define EG_CORPUS_MAX_HEADERS  256


typedef struct {
    char                 *id;
    char                 *expect;       /* expect= value, or NULL */
    eg_request_t          req;
    eg_header_t           h[EG_CORPUS_MAX_HEADERS];
    eg_body_e             body_state;   /* as sent: NONE or READ */

    /* the headers the rules of fh_rs read, as the module passes them */
    const eg_ruleset_t   *fh_rs;
    eg_header_t           fh[EG_CORPUS_MAX_HEADERS];
    uint8_t               fslots[EG_CORPUS_MAX_HEADERS];
    size_t                nfh;
} eg_record_t;


typedef int (*eg_record_pt)(eg_record_t *rec, const char *file, void *data);

/*
 * Call fn for every record of the file.  The record points into the file's
 * text, which is freed afterwards unless keep is set.  A record that does
 * not parse is reported on stderr and skipped.  Returns -1 if the file
 * cannot be read or fn returns non-zero.
 */
int eg_corpus_read(const char *path, int keep, eg_record_pt fn, void *data);

/* a record copied elsewhere must have its header pointer set again */
void eg_record_fix(eg_record_t *rec);

/*
 * As nginx: only the headers rules read, headers first; the body only when
 * a rule asks for it and nothing refused the request already.
 */
void eg_eval_like_nginx(const eg_ruleset_t *rs, const eg_options_t *opts,
    const eg_alloc_t *alloc, eg_record_t *rec, eg_verdict_t *v);

#endif /* EG_CORPUS_H */
