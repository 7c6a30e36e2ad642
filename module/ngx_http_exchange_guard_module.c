/*
 * exchange_guard: refuses the published Microsoft Exchange exploit
 * requests in front of an unpatched Exchange server.
 *
 * This file adapts nginx to the decision engine (eg_engine.h): directives,
 * the request view, the phase handler and the variables.  The JSON log
 * file lives in ngx_http_exchange_guard_log.c.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_exchange_guard_module.h"


static ngx_int_t ngx_http_exchange_guard_handler(ngx_http_request_t *r);
static ngx_http_exchange_guard_ctx_t *ngx_http_exchange_guard_get_ctx(
    ngx_http_request_t *r);
static void ngx_http_exchange_guard_set_ctx(ngx_http_request_t *r,
    const ngx_http_exchange_guard_ctx_t *ctx);
static ngx_int_t ngx_http_exchange_guard_view(ngx_http_request_t *r,
    ngx_http_exchange_guard_loc_conf_t *lcf,
    ngx_http_exchange_guard_ctx_t *ctx);
static ngx_inline ngx_table_elt_t *ngx_http_exchange_guard_first(
    ngx_http_request_t *r, ngx_uint_t offset);
static uint64_t ngx_http_exchange_guard_header_filter(eg_ruleset_t *rules);
static void ngx_http_exchange_guard_known(
    ngx_http_exchange_guard_loc_conf_t *conf);
static void *ngx_http_exchange_guard_alloc(void *ctx, size_t size);
static ngx_int_t ngx_http_exchange_guard_decide(ngx_http_request_t *r,
    ngx_http_exchange_guard_loc_conf_t *lcf,
    ngx_http_exchange_guard_ctx_t *ctx);
static void ngx_http_exchange_guard_summarize(ngx_http_request_t *r,
    ngx_http_exchange_guard_ctx_t *ctx);
static ngx_http_exchange_guard_ctx_t *ngx_http_exchange_guard_keep(
    ngx_http_request_t *r, ngx_http_exchange_guard_ctx_t *ctx);
static ngx_int_t ngx_http_exchange_guard_evaluate(ngx_http_request_t *r,
    ngx_http_exchange_guard_loc_conf_t *lcf,
    ngx_http_exchange_guard_ctx_t *ctx);
static ngx_int_t ngx_http_exchange_guard_read_body(ngx_http_request_t *r,
    ngx_http_exchange_guard_loc_conf_t *lcf,
    ngx_http_exchange_guard_ctx_t *ctx);
static void ngx_http_exchange_guard_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_exchange_guard_body(ngx_http_request_t *r,
    ngx_http_exchange_guard_loc_conf_t *lcf, eg_request_t *req);
static char *ngx_http_exchange_guard_trusted(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

static ngx_int_t ngx_http_exchange_guard_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_exchange_guard_ctx_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_exchange_guard_add_variables(ngx_conf_t *cf);

static char *ngx_http_exchange_guard_rules(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_exchange_guard_load(ngx_conf_t *cf,
    ngx_http_exchange_guard_loc_conf_t *lcf, char *path);
static char *ngx_http_exchange_guard_backends(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_exchange_guard_status(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void ngx_http_exchange_guard_free_rules(void *data);
static void *ngx_http_exchange_guard_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_exchange_guard_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_exchange_guard_init(ngx_conf_t *cf);


static ngx_conf_enum_t  ngx_http_exchange_guard_modes[] = {
    { ngx_string("off"), NGX_HTTP_EXCHANGE_GUARD_OFF },
    { ngx_string("on"), NGX_HTTP_EXCHANGE_GUARD_ON },
    { ngx_string("detect"), NGX_HTTP_EXCHANGE_GUARD_DETECT },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_exchange_guard_limit_actions[] = {
    { ngx_string("block"), 1 },
    { ngx_string("pass"), 0 },
    { ngx_null_string, 0 }
};


static ngx_conf_num_bounds_t  ngx_http_exchange_guard_cookies_bounds = {
    ngx_conf_check_num_bounds, 1, 100000
};


static ngx_conf_num_bounds_t  ngx_http_exchange_guard_rounds_bounds = {
    ngx_conf_check_num_bounds, 1, 16
};


static ngx_conf_num_bounds_t  ngx_http_exchange_guard_regex_bounds = {
    ngx_conf_check_num_bounds, 1, 100000000
};


static ngx_command_t  ngx_http_exchange_guard_commands[] = {

    { ngx_string("exchange_guard"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_exchange_guard_loc_conf_t, mode),
      &ngx_http_exchange_guard_modes },

    { ngx_string("exchange_guard_rules"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_exchange_guard_rules,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("exchange_guard_backends"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_exchange_guard_backends,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("exchange_guard_log"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_exchange_guard_log_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("exchange_guard_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_exchange_guard_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("exchange_guard_limit_action"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_exchange_guard_loc_conf_t, limit_block),
      &ngx_http_exchange_guard_limit_actions },

    { ngx_string("exchange_guard_max_cookies"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_exchange_guard_loc_conf_t, max_cookies),
      &ngx_http_exchange_guard_cookies_bounds },

    { ngx_string("exchange_guard_max_header_bytes"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_exchange_guard_loc_conf_t, max_header_bytes),
      NULL },

    { ngx_string("exchange_guard_decode_rounds"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_exchange_guard_loc_conf_t, decode_rounds),
      &ngx_http_exchange_guard_rounds_bounds },

    { ngx_string("exchange_guard_max_body"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_exchange_guard_loc_conf_t, max_body),
      NULL },

    { ngx_string("exchange_guard_regex_match_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_exchange_guard_loc_conf_t, match_limit),
      &ngx_http_exchange_guard_regex_bounds },

    { ngx_string("exchange_guard_regex_depth_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_exchange_guard_loc_conf_t, depth_limit),
      &ngx_http_exchange_guard_regex_bounds },

    { ngx_string("exchange_guard_trusted_networks"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_exchange_guard_trusted,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_exchange_guard_module_ctx = {
    ngx_http_exchange_guard_add_variables,   /* preconfiguration */
    ngx_http_exchange_guard_init,            /* postconfiguration */

    NULL,                                    /* create main configuration */
    NULL,                                    /* init main configuration */

    NULL,                                    /* create server configuration */
    NULL,                                    /* merge server configuration */

    ngx_http_exchange_guard_create_loc_conf, /* create location configuration */
    ngx_http_exchange_guard_merge_loc_conf   /* merge location configuration */
};


ngx_module_t  ngx_http_exchange_guard_module = {
    NGX_MODULE_V1,
    &ngx_http_exchange_guard_module_ctx,     /* module context */
    ngx_http_exchange_guard_commands,        /* module directives */
    NGX_HTTP_MODULE,                         /* module type */
    NULL,                                    /* init master */
    NULL,                                    /* init module */
    NULL,                                    /* init process */
    NULL,                                    /* init thread */
    NULL,                                    /* exit thread */
    NULL,                                    /* exit process */
    NULL,                                    /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_exchange_guard_vars[] = {

    { ngx_string("exchange_guard_action"), NULL,
      ngx_http_exchange_guard_variable,
      offsetof(ngx_http_exchange_guard_ctx_t, action_text),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("exchange_guard_rule"), NULL,
      ngx_http_exchange_guard_variable,
      offsetof(ngx_http_exchange_guard_ctx_t, rule_ids),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("exchange_guard_cve"), NULL,
      ngx_http_exchange_guard_variable,
      offsetof(ngx_http_exchange_guard_ctx_t, cves),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    /* the request's context, in its variable slot: see
       ngx_http_exchange_guard_get_ctx(); not for the configuration */
    { ngx_string("exchange_guard_internal_ctx"), NULL,
      ngx_http_exchange_guard_ctx_variable, 0, NGX_HTTP_VAR_NOHASH, 0 },

      ngx_http_null_variable
};


static ngx_int_t  ngx_http_exchange_guard_request_id_index;
static ngx_int_t  ngx_http_exchange_guard_ctx_index;

/* the context of every request that passed: read only, no room taken */
static const ngx_http_exchange_guard_ctx_t  ngx_http_exchange_guard_passed;


static ngx_int_t
ngx_http_exchange_guard_handler(ngx_http_request_t *r)
{
    ngx_http_exchange_guard_ctx_t       *ctx, local;
    ngx_http_exchange_guard_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_exchange_guard_module);

    if (lcf->mode == NGX_HTTP_EXCHANGE_GUARD_OFF || lcf->rules == NULL
        || r != r->main)
    {
        return NGX_DECLINED;
    }

    ctx = ngx_http_exchange_guard_get_ctx(r);

    if (ctx != NULL) {
        /* once per client request: an internal redirect keeps the
           verdict; the body handler brings us back here to finish */

        if (ctx->reading) {
            ctx->reading = 0;

            if (ngx_http_exchange_guard_body(r, lcf, &ctx->req) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_exchange_guard_evaluate(r, lcf, ctx);
        }

        return NGX_DECLINED;
    }

    /*
     * The context is on the stack while the request is evaluated: a
     * request that passes (nearly every one) is left pointing to
     * ngx_http_exchange_guard_passed; one that is refused, logged or
     * waits for its body keeps its context in the pool
     * (ngx_http_exchange_guard_keep()).
     */

    ctx = &local;

    /* what only a kept context reads: ngx_http_exchange_guard_keep() */

    ctx->reading = 0;
    ctx->kept = 0;
    ctx->req.body_state = EG_BODY_NONE;
    ctx->req.body.data = NULL;
    ctx->req.body.len = 0;

    if (ngx_http_exchange_guard_view(r, lcf, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->alloc.alloc = ngx_http_exchange_guard_alloc;
    ctx->alloc.ctx = r->pool;

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        ctx->req.body_state = EG_BODY_PENDING;

        if (r->headers_in.content_length_n > (off_t) lcf->max_body) {
            ctx->req.body_state = EG_BODY_TOO_LARGE;
        }
    }

    return ngx_http_exchange_guard_evaluate(r, lcf, ctx);
}


/*
 * The context in the pool, for a request refused, logged or waiting for
 * its body: a context on the stack is copied there first.  A request that
 * passes keeps only ngx_http_exchange_guard_passed, which takes no room.
 */

static ngx_http_exchange_guard_ctx_t *
ngx_http_exchange_guard_keep(ngx_http_request_t *r,
    ngx_http_exchange_guard_ctx_t *ctx)
{
    ngx_http_exchange_guard_ctx_t  *kept;

    if (ctx->kept) {
        return ctx;
    }

    kept = ngx_palloc(r->pool, sizeof(ngx_http_exchange_guard_ctx_t));
    if (kept == NULL) {
        return NULL;
    }

    *kept = *ctx;
    kept->kept = 1;
    kept->verdict = NULL;
    kept->status = 0;
    ngx_str_null(&kept->action_text);
    ngx_str_null(&kept->rule_ids);
    ngx_str_null(&kept->cves);

    if (ctx->req.headers == ctx->headers) {
        kept->req.headers = kept->headers;
        kept->req.header_slots = kept->slots;
    }

    ngx_http_exchange_guard_set_ctx(r, kept);

    return kept;
}


static ngx_int_t
ngx_http_exchange_guard_evaluate(ngx_http_request_t *r,
    ngx_http_exchange_guard_loc_conf_t *lcf,
    ngx_http_exchange_guard_ctx_t *ctx)
{
    eg_verdict_t  v;

    eg_eval(lcf->rules, &ctx->req, &lcf->options, &ctx->alloc, &v);

    /* only requests that a rule must see the body of wait for it (and are
       evaluated again once it is read) */

    if (v.need_body && v.action != EG_BLOCK
        && ctx->req.body_state == EG_BODY_PENDING)
    {
        ctx = ngx_http_exchange_guard_keep(r, ctx);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_exchange_guard_read_body(r, lcf, ctx);
    }

    if (v.action == EG_PASS && v.limit == EG_LIMIT_NONE) {
        /* a request that read its body keeps the context it has */

        if (!ctx->kept) {
            ngx_http_exchange_guard_set_ctx(r,
                                            &ngx_http_exchange_guard_passed);
        }

        return NGX_DECLINED;
    }

    ctx = ngx_http_exchange_guard_keep(r, ctx);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the verdict of a request refused or logged outlives this call, for
       the log line; a passing request's costs it no pool memory */

    ctx->verdict = ngx_palloc(r->pool, sizeof(eg_verdict_t));
    if (ctx->verdict == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *ctx->verdict = v;

    return ngx_http_exchange_guard_decide(r, lcf, ctx);
}


static ngx_int_t
ngx_http_exchange_guard_read_body(ngx_http_request_t *r,
    ngx_http_exchange_guard_loc_conf_t *lcf,
    ngx_http_exchange_guard_ctx_t *ctx)
{
    ngx_int_t  rc;

    ctx->reading = 1;

    rc = ngx_http_read_client_request_body(r,
                                       ngx_http_exchange_guard_body_handler);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);
    return NGX_DONE;
}


static void
ngx_http_exchange_guard_body_handler(ngx_http_request_t *r)
{
    /* the body stays for the upstream; run the phases from ours again */

    r->preserve_body = 1;
    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


/* the read body, up to exchange_guard_max_body bytes, into the pool */

static ngx_int_t
ngx_http_exchange_guard_body(ngx_http_request_t *r,
    ngx_http_exchange_guard_loc_conf_t *lcf, eg_request_t *req)
{
    u_char       *p;
    size_t        len, size;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        req->body_state = EG_BODY_NONE;
        return NGX_OK;
    }

    len = 0;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                          : (size_t) (b->last - b->pos);
    }

    if (len > lcf->max_body) {
        req->body_state = EG_BODY_TOO_LARGE;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    req->body.data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        /* spooled to a temporary file by client_body_buffer_size */

        size = b->file_last - b->file_pos;
        n = ngx_read_file(b->file, p, size, b->file_pos);
        if (n != (ssize_t) size) {
            return NGX_ERROR;
        }
        p += size;
    }

    req->body.len = p - req->body.data;
    req->body_state = EG_BODY_READ;
    return NGX_OK;
}


static ngx_int_t
ngx_http_exchange_guard_decide(ngx_http_request_t *r,
    ngx_http_exchange_guard_loc_conf_t *lcf,
    ngx_http_exchange_guard_ctx_t *ctx)
{
    ngx_uint_t  refuse;

    refuse = ctx->verdict->action == EG_BLOCK
             || (ctx->verdict->limit != EG_LIMIT_NONE && lcf->limit_block);

    if (!refuse && ctx->verdict->action == EG_PASS) {
        /* a limit was hit and "exchange_guard_limit_action pass" */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "exchange_guard: inspection limit reached, "
                      "request passed");
        return NGX_DECLINED;
    }

    if (refuse && lcf->mode == NGX_HTTP_EXCHANGE_GUARD_ON) {
        ngx_str_set(&ctx->action_text, "blocked");
        ctx->status = lcf->status;

    } else {
        ngx_str_set(&ctx->action_text, "detected");
        ctx->status = 0;
    }

    ngx_http_exchange_guard_summarize(r, ctx);
    ngx_http_exchange_guard_log_write(r, lcf, ctx);

    if (ctx->status == 0) {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "exchange_guard: request refused by rule %V",
                  &ctx->rule_ids);

    return ctx->status == 444 ? NGX_HTTP_CLOSE : (ngx_int_t) ctx->status;
}


/* $exchange_guard_rule and $exchange_guard_cve, comma-separated */

static void
ngx_http_exchange_guard_summarize(ngx_http_request_t *r,
    ngx_http_exchange_guard_ctx_t *ctx)
{
    u_char              *p, *q;
    size_t               ids, cves;
    eg_str_t             s;
    ngx_uint_t           i, j;
    const eg_rule_t     *rule;
    eg_verdict_t        *v = ctx->verdict;

    ids = sizeof(",EG-LIMIT");
    cves = 0;

    for (i = 0; i < v->nmatches; i++) {
        rule = v->matches[i].rule;
        ids += eg_rule_id(rule).len + 1;
        for (j = 0; j < eg_rule_ncves(rule); j++) {
            cves += eg_rule_cve(rule, j).len + 1;
        }
    }

    p = ngx_pnalloc(r->pool, ids + cves);
    if (p == NULL) {
        return;
    }

    ctx->rule_ids.data = p;

    for (i = 0; i < v->nmatches; i++) {
        s = eg_rule_id(v->matches[i].rule);
        if (i) {
            *p++ = ',';
        }
        p = ngx_cpymem(p, s.data, s.len);
    }

    if (v->limit != EG_LIMIT_NONE && v->action != EG_BLOCK) {
        if (p != ctx->rule_ids.data) {
            *p++ = ',';
        }
        p = ngx_cpymem(p, "EG-LIMIT", sizeof("EG-LIMIT") - 1);
    }

    ctx->rule_ids.len = p - ctx->rule_ids.data;
    ctx->cves.data = p;

    for (i = 0; i < v->nmatches; i++) {
        rule = v->matches[i].rule;

        for (j = 0; j < eg_rule_ncves(rule); j++) {
            s = eg_rule_cve(rule, j);

            /* each CVE once */
            for (q = ctx->cves.data; q + s.len <= p; q++) {
                if ((q == ctx->cves.data || q[-1] == ',')
                    && ngx_strncmp(q, s.data, s.len) == 0
                    && (q + s.len == p || q[s.len] == ','))
                {
                    break;
                }
            }

            if (q + s.len <= p) {
                continue;
            }

            if (p != ctx->cves.data) {
                *p++ = ',';
            }
            p = ngx_cpymem(p, s.data, s.len);
        }
    }

    ctx->cves.len = p - ctx->cves.data;
}


/*
 * The request's context lives in its slot of r->variables (the variable
 * exchange_guard_internal_ctx), not in r->ctx: an internal redirect
 * clears r->ctx but keeps the variables, so the request is evaluated once
 * whatever locations it passes through, at no cost in memory.  A
 * subrequest shares the variables; the handler declines it anyway.
 */

static ngx_http_exchange_guard_ctx_t *
ngx_http_exchange_guard_get_ctx(ngx_http_request_t *r)
{
    ngx_http_variable_value_t  *vv;

    vv = &r->variables[ngx_http_exchange_guard_ctx_index];

    return vv->valid ? (ngx_http_exchange_guard_ctx_t *) vv->data : NULL;
}


static void
ngx_http_exchange_guard_set_ctx(ngx_http_request_t *r,
    const ngx_http_exchange_guard_ctx_t *ctx)
{
    ngx_http_variable_value_t  *vv;

    /* cacheable, so that nginx never asks the variable's handler again,
       and of no length should the configuration read it */

    vv = &r->variables[ngx_http_exchange_guard_ctx_index];
    vv->len = 0;
    vv->valid = 1;
    vv->no_cacheable = 0;
    vv->not_found = 0;
    vv->escape = 0;
    vv->data = (u_char *) ctx;
}


static void *
ngx_http_exchange_guard_alloc(void *ctx, size_t size)
{
    return ngx_palloc((ngx_pool_t *) ctx, size);
}


/* the engine's request view; it points into nginx's buffers, no copies */

static ngx_int_t
ngx_http_exchange_guard_view(ngx_http_request_t *r,
    ngx_http_exchange_guard_loc_conf_t *lcf, ngx_http_exchange_guard_ctx_t *ctx)
{
    uint8_t          *slots;
    uint64_t          filter;
    ngx_uint_t        n, cap, j;
    eg_header_t      *h, *more;
    eg_request_t     *req;
    ngx_list_part_t  *part, *all;
    ngx_table_elt_t  *header, *last;

    req = &ctx->req;
    req->method.data = r->method_name.data;
    req->method.len = r->method_name.len;
    req->target.data = r->unparsed_uri.data;
    req->target.len = r->unparsed_uri.len;
    req->client_addr.data = r->connection->addr_text.data;
    req->client_addr.len = r->connection->addr_text.len;

    h = ctx->headers;
    slots = ctx->slots;
    cap = sizeof(ctx->headers) / sizeof(ctx->headers[0]);
    n = 0;

    /*
     * The whole list, Cookie included: this reads the same in nginx 1.22
     * (headers_in.cookies array) and 1.23+ (headers_in.cookie chain), and
     * keeps every duplicate header as the back end would see it.  Only
     * the headers whose hash a rule's header name has are copied: the
     * engine looks at no other (and compares the names itself).  They
     * fit the context's room, or room for every header is taken.
     */

    filter = lcf->header_filter;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        header = part->elts;
        last = header + part->nelts;

        for ( /* void */ ; header < last; header++) {
            /* most headers fail the filter: that test first */

            if (!((filter >> (header->hash % 64)) & 1) || header->hash == 0) {
                continue;
            }

            if (n == cap) {
                cap = 0;
                for (all = &r->headers_in.headers.part; all; all = all->next)
                {
                    cap += all->nelts;
                }

                more = ngx_palloc(r->pool, cap * (sizeof(eg_header_t) + 1));
                if (more == NULL) {
                    return NGX_ERROR;
                }

                ngx_memcpy(more, h, n * sizeof(eg_header_t));
                ngx_memcpy(more + cap, slots, n);
                h = more;
                slots = (uint8_t *) (more + cap);
            }

            h[n].name.data = header->key.data;
            h[n].name.len = header->key.len;
            h[n].value.data = header->value.data;
            h[n].value.len = header->value.len;

            /* the first header of a name nginx has found that a rule
               reads: the engine takes its slot, not comparing the name */

            slots[n] = 0;
            j = lcf->known_at[header->hash % 64];

            if (j && header == ngx_http_exchange_guard_first(r,
                                                  lcf->known[j - 1].offset))
            {
                slots[n] = lcf->known[j - 1].slot;
            }

            n++;
        }
    }

    req->headers = h;
    req->nheaders = n;
    req->header_slots = slots;
    return NGX_OK;
}


/*
 * The first header of a name nginx finds while parsing the request: the
 * one r->headers_in points to.  A second Host or Authorization is refused
 * by nginx; a second of the others is not pointed to, and the engine
 * compares its name.  Before 1.23 the Cookie headers are an array.
 */

static ngx_inline ngx_table_elt_t *
ngx_http_exchange_guard_first(ngx_http_request_t *r, ngx_uint_t offset)
{
#if (nginx_version < 1023000)
    if (offset == NGX_HTTP_EXCHANGE_GUARD_COOKIE) {
        return r->headers_in.cookies.nelts
               ? ((ngx_table_elt_t **) r->headers_in.cookies.elts)[0] : NULL;
    }
#endif

    return *(ngx_table_elt_t **) ((char *) &r->headers_in + offset);
}


void
ngx_http_exchange_guard_request_id(ngx_http_request_t *r, ngx_str_t *id)
{
    ngx_http_variable_value_t  *vv;

    vv = ngx_http_get_indexed_variable(r,
                                       ngx_http_exchange_guard_request_id_index);
    if (vv == NULL || vv->not_found) {
        ngx_str_null(id);
        return;
    }

    id->data = vv->data;
    id->len = vv->len;
}


static ngx_int_t
ngx_http_exchange_guard_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                      *s;
    ngx_http_exchange_guard_ctx_t  *ctx;

    ctx = ngx_http_exchange_guard_get_ctx(r->main);

    if (ctx == NULL) {
        v->len = 0;
        v->data = (u_char *) "";

    } else {
        s = (ngx_str_t *) ((char *) ctx + data);
        v->len = s->len;
        v->data = s->data ? s->data : (u_char *) "";
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* the slot's own handler: asked only before the request is evaluated */

static ngx_int_t
ngx_http_exchange_guard_ctx_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    v->not_found = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_exchange_guard_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_exchange_guard_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static char *
ngx_http_exchange_guard_rules(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_exchange_guard_loc_conf_t *lcf = conf;

    ngx_int_t            n;
    ngx_str_t           *value, name, file;
    ngx_glob_t           gl;
    ngx_pool_cleanup_t  *cln;

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (lcf->rules == NGX_CONF_UNSET_PTR) {
        lcf->rules = eg_ruleset_new();
        if (lcf->rules == NULL) {
            return NGX_CONF_ERROR;
        }

        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            eg_ruleset_free(lcf->rules);
            return NGX_CONF_ERROR;
        }

        cln->handler = ngx_http_exchange_guard_free_rules;
        cln->data = lcf->rules;
    }

    if (strpbrk((char *) name.data, "*?[") == NULL) {
        return ngx_http_exchange_guard_load(cf, lcf, (char *) name.data)
               == NGX_OK ? NGX_CONF_OK : NGX_CONF_ERROR;
    }

    ngx_memzero(&gl, sizeof(ngx_glob_t));
    gl.pattern = name.data;
    gl.log = cf->log;
    gl.test = 1;

    if (ngx_open_glob(&gl) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_glob_n " \"%s\" failed", name.data);
        return NGX_CONF_ERROR;
    }

    n = 0;

    for ( ;; ) {
        if (ngx_read_glob(&gl, &file) != NGX_OK) {
            break;
        }

        n++;

        if (ngx_http_exchange_guard_load(cf, lcf, (char *) file.data)
            != NGX_OK)
        {
            ngx_close_glob(&gl);
            return NGX_CONF_ERROR;
        }
    }

    ngx_close_glob(&gl);

    if (n == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "exchange_guard: no rule file matches \"%s\"",
                           name.data);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_exchange_guard_load(ngx_conf_t *cf,
    ngx_http_exchange_guard_loc_conf_t *lcf, char *path)
{
    char  err[1024];

    if (eg_ruleset_load_file(lcf->rules, path, err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "exchange_guard: %s", err);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_exchange_guard_free_rules(void *data)
{
    eg_ruleset_free(data);
}


static char *
ngx_http_exchange_guard_backends(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_exchange_guard_loc_conf_t *lcf = conf;

    ngx_str_t   *value;
    eg_str_t    *b, bad;
    ngx_uint_t   i;

    if (lcf->backends != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    b = ngx_palloc(cf->pool, (cf->args->nelts - 1) * sizeof(eg_str_t));
    if (b == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        /* a listed backend must itself pass the check */

        bad.data = ngx_pnalloc(cf->pool, value[i].len + 2);
        if (bad.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy((u_char *) bad.data, value[i].data, value[i].len);
        ((u_char *) bad.data)[value[i].len] = '~';
        ((u_char *) bad.data)[value[i].len + 1] = '1';
        bad.len = value[i].len + 2;

        if (eg_backend_check(bad, NULL, 0) != EG_BACKEND_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "exchange_guard_backends: \"%V\" is not a "
                               "DNS host name of an Exchange server",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        b[i - 1].data = value[i].data;
        b[i - 1].len = value[i].len;
    }

    lcf->backends = b;
    lcf->nbackends = cf->args->nelts - 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_exchange_guard_trusted(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_exchange_guard_loc_conf_t *lcf = conf;

    eg_str_t     text;
    ngx_str_t   *value;
    ngx_uint_t   i;

    if (lcf->trusted != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    lcf->ntrusted = cf->args->nelts - 1;

    lcf->trusted = ngx_palloc(cf->pool, lcf->ntrusted * sizeof(eg_cidr_t));
    if (lcf->trusted == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        text.data = value[i].data;
        text.len = value[i].len;

        if (eg_cidr_parse(text, &lcf->trusted[i - 1]) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "exchange_guard_trusted_networks: \"%V\" is "
                               "not an address or a network with its host "
                               "bits zero", &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_exchange_guard_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_exchange_guard_loc_conf_t *lcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (lcf->status != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    n = ngx_atoi(value[1].data, value[1].len);

    if (n != 444 && (n < 400 || n > 599)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "exchange_guard_status: \"%V\" is not 444 or a "
                           "status from 400 to 599", &value[1]);
        return NGX_CONF_ERROR;
    }

    lcf->status = n;
    return NGX_CONF_OK;
}


static void *
ngx_http_exchange_guard_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_exchange_guard_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_exchange_guard_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->nbackends = 0;
     *     conf->options = { 0 };
     */

    conf->mode = NGX_CONF_UNSET_UINT;
    conf->rules = NGX_CONF_UNSET_PTR;
    conf->backends = NGX_CONF_UNSET_PTR;
    conf->log = NGX_CONF_UNSET_PTR;
    conf->status = NGX_CONF_UNSET_UINT;
    conf->limit_block = NGX_CONF_UNSET_UINT;
    conf->max_cookies = NGX_CONF_UNSET_UINT;
    conf->max_header_bytes = NGX_CONF_UNSET_SIZE;
    conf->decode_rounds = NGX_CONF_UNSET_UINT;
    conf->max_body = NGX_CONF_UNSET_SIZE;
    conf->match_limit = NGX_CONF_UNSET_UINT;
    conf->depth_limit = NGX_CONF_UNSET_UINT;
    conf->trusted = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_exchange_guard_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_exchange_guard_loc_conf_t *prev = parent;
    ngx_http_exchange_guard_loc_conf_t *conf = child;

    ngx_conf_merge_uint_value(conf->mode, prev->mode,
                              NGX_HTTP_EXCHANGE_GUARD_OFF);
    ngx_conf_merge_ptr_value(conf->rules, prev->rules, NULL);
    ngx_conf_merge_uint_value(conf->status, prev->status, NGX_HTTP_FORBIDDEN);
    ngx_conf_merge_uint_value(conf->limit_block, prev->limit_block, 1);
    ngx_conf_merge_uint_value(conf->max_cookies, prev->max_cookies,
                              EG_DEFAULT_MAX_COOKIES);
    ngx_conf_merge_size_value(conf->max_header_bytes, prev->max_header_bytes,
                              EG_DEFAULT_MAX_HEADER_BYTES);
    ngx_conf_merge_uint_value(conf->decode_rounds, prev->decode_rounds,
                              EG_DEFAULT_DECODE_ROUNDS);

    ngx_conf_merge_size_value(conf->max_body, prev->max_body,
                              1024 * 1024);
    ngx_conf_merge_uint_value(conf->match_limit, prev->match_limit,
                              EG_DEFAULT_MATCH_LIMIT);
    ngx_conf_merge_uint_value(conf->depth_limit, prev->depth_limit,
                              EG_DEFAULT_DEPTH_LIMIT);

    if (conf->backends == NGX_CONF_UNSET_PTR) {
        conf->backends = prev->backends;
        conf->nbackends = prev->nbackends;
    }

    if (conf->trusted == NGX_CONF_UNSET_PTR) {
        conf->trusted = prev->trusted;
        conf->ntrusted = prev->ntrusted;
    }

    if (conf->trusted == NGX_CONF_UNSET_PTR) {
        conf->trusted = NULL;
        conf->ntrusted = 0;
    }

    if (conf->backends == NGX_CONF_UNSET_PTR) {
        conf->backends = NULL;
        conf->nbackends = 0;
    }

    if (ngx_http_exchange_guard_log_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->mode != NGX_HTTP_EXCHANGE_GUARD_OFF && conf->rules == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"exchange_guard\" is enabled but no "
                           "\"exchange_guard_rules\" are loaded");
        return NGX_CONF_ERROR;
    }

    conf->options.max_cookies = conf->max_cookies;
    conf->options.max_header_bytes = conf->max_header_bytes;
    conf->options.decode_rounds = conf->decode_rounds;
    conf->options.backends = conf->backends;
    conf->options.nbackends = conf->nbackends;
    conf->options.match_limit = conf->match_limit;
    conf->options.depth_limit = conf->depth_limit;
    conf->options.trusted = conf->trusted;
    conf->options.ntrusted = conf->ntrusted;

    conf->header_filter = ngx_http_exchange_guard_header_filter(conf->rules);
    ngx_http_exchange_guard_known(conf);

    return NGX_CONF_OK;
}


/*
 * Which request headers the engine gets: those whose nginx hash (of the
 * lower-cased name, computed while parsing) could be a name some rule
 * reads.  A name of other bytes than [a-z0-9-] may be hashed differently
 * by nginx (an '_' with underscores_in_headers off): then every header.
 */

static uint64_t
ngx_http_exchange_guard_header_filter(eg_ruleset_t *rules)
{
    size_t           n, k, i;
    uint64_t         filter;
    ngx_uint_t       hash;
    const eg_str_t  *names;

    if (rules == NULL) {
        return 0;
    }

    n = eg_ruleset_header_names(rules, &names);
    if (n == (size_t) -1) {
        return ~(uint64_t) 0;
    }

    filter = 0;

    for (k = 0; k < n; k++) {
        for (i = 0; i < names[k].len; i++) {
            if (!((names[k].data[i] >= 'a' && names[k].data[i] <= 'z')
                  || (names[k].data[i] >= '0' && names[k].data[i] <= '9')
                  || names[k].data[i] == '-'))
            {
                return ~(uint64_t) 0;
            }
        }

        hash = ngx_hash_key((u_char *) names[k].data, names[k].len);
        filter |= (uint64_t) 1 << (hash % 64);
    }

    return filter;
}


/* the headers nginx finds by name, most often sent first */

static struct {
    ngx_str_t     name;
    ngx_uint_t    offset;
} ngx_http_exchange_guard_known_headers[NGX_HTTP_EXCHANGE_GUARD_KNOWN] = {
#if (nginx_version >= 1023000)
    { ngx_string("cookie"), offsetof(ngx_http_headers_in_t, cookie) },
#else
    { ngx_string("cookie"), NGX_HTTP_EXCHANGE_GUARD_COOKIE },
#endif
    { ngx_string("user-agent"), offsetof(ngx_http_headers_in_t, user_agent) },
    { ngx_string("content-type"),
      offsetof(ngx_http_headers_in_t, content_type) },
    { ngx_string("host"), offsetof(ngx_http_headers_in_t, host) },
    { ngx_string("referer"), offsetof(ngx_http_headers_in_t, referer) },
    { ngx_string("authorization"),
      offsetof(ngx_http_headers_in_t, authorization) }
};


/* which of them the rules read, and their slots in the engine */

static void
ngx_http_exchange_guard_known(ngx_http_exchange_guard_loc_conf_t *conf)
{
    size_t           n, k, j, b;
    ngx_str_t       *known;
    const eg_str_t  *names;

    ngx_memzero(conf->known_at, sizeof(conf->known_at));

    if (conf->rules == NULL) {
        return;
    }

    n = eg_ruleset_header_names(conf->rules, &names);
    if (n == (size_t) -1) {
        return;
    }

    for (j = 0; j < NGX_HTTP_EXCHANGE_GUARD_KNOWN; j++) {
        known = &ngx_http_exchange_guard_known_headers[j].name;

        for (k = 0; k < n; k++) {
            if (names[k].len == known->len
                && ngx_strncmp(names[k].data, known->data, known->len) == 0)
            {
                /* a second name of the same bit has its names compared */

                b = ngx_hash_key(known->data, known->len) % 64;

                if (conf->known_at[b] == 0) {
                    conf->known[j].offset =
                                 ngx_http_exchange_guard_known_headers[j].offset;
                    conf->known[j].slot = (uint8_t) (k + 1);
                    conf->known_at[b] = (uint8_t) (j + 1);
                }

                break;
            }
        }
    }
}


static ngx_int_t
ngx_http_exchange_guard_init(ngx_conf_t *cf)
{
    ngx_str_t                   name = ngx_string("request_id");
    ngx_str_t                   ctx_name =
                                    ngx_string("exchange_guard_internal_ctx");
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;
    ngx_array_t                *a;

    ngx_http_exchange_guard_request_id_index =
                                      ngx_http_get_variable_index(cf, &name);
    if (ngx_http_exchange_guard_request_id_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_http_exchange_guard_ctx_index = ngx_http_get_variable_index(cf,
                                                                &ctx_name);
    if (ngx_http_exchange_guard_ctx_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /*
     * PREACCESS, which "satisfy any" cannot override.  Handlers of a phase
     * run from the last registered to the first; the guard goes first in
     * the array, so it runs after realip has set the client address.
     */

    a = &cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers;

    h = ngx_array_push(a);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h = a->elts;
    ngx_memmove(&h[1], &h[0], (a->nelts - 1) * sizeof(ngx_http_handler_pt));
    h[0] = ngx_http_exchange_guard_handler;

    return NGX_OK;
}
