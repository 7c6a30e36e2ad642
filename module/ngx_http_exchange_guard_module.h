/*
 * exchange_guard: declarations shared by the nginx side of the module.
 */

#ifndef NGX_HTTP_EXCHANGE_GUARD_MODULE_H
#define NGX_HTTP_EXCHANGE_GUARD_MODULE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "eg_engine.h"


#define NGX_HTTP_EXCHANGE_GUARD_OFF     0
#define NGX_HTTP_EXCHANGE_GUARD_ON      1
#define NGX_HTTP_EXCHANGE_GUARD_DETECT  2


/*
 * A header nginx finds by name while it parses the request, whose first
 * one r->headers_in points to, and the slot the engine has for its name
 * (1 + its index in eg_ruleset_header_names()).
 */

#define NGX_HTTP_EXCHANGE_GUARD_KNOWN   6

/* the offset of Cookie before 1.23, where headers_in.cookies is an array */
#define NGX_HTTP_EXCHANGE_GUARD_COOKIE  ((ngx_uint_t) -1)

typedef struct {
    ngx_uint_t            offset;       /* in ngx_http_headers_in_t */
    uint8_t               slot;
} ngx_http_exchange_guard_known_t;


typedef struct {
    ngx_uint_t            mode;
    eg_ruleset_t         *rules;
    eg_str_t             *backends;
    ngx_uint_t            nbackends;
    ngx_open_file_t      *log;          /* NULL: exchange_guard_log off */
    ngx_uint_t            status;
    ngx_uint_t            limit_block;
    ngx_uint_t            max_cookies;
    size_t                max_header_bytes;
    ngx_uint_t            decode_rounds;
    size_t                max_body;
    ngx_uint_t            match_limit;
    ngx_uint_t            depth_limit;
    eg_cidr_t            *trusted;
    ngx_uint_t            ntrusted;
    eg_options_t          options;

    /* the headers the rules read: bit (hash % 64) of nginx's header hash */
    uint64_t              header_filter;

    /* of those, the ones nginx finds by name (ngx_http_exchange_guard_view()):
       1 + their index in known, by the same bit of their hash */
    uint8_t               known_at[64];
    ngx_http_exchange_guard_known_t  known[NGX_HTTP_EXCHANGE_GUARD_KNOWN];
} ngx_http_exchange_guard_loc_conf_t;


typedef struct {
    eg_request_t          req;
    eg_alloc_t            alloc;
    eg_verdict_t         *verdict;      /* kept when refused or logged */
    ngx_uint_t            status;       /* 0: the request passes */
    unsigned              reading:1;    /* waiting for the request body */
    unsigned              kept:1;       /* in the pool, not on the stack */
    ngx_str_t             action_text;  /* $exchange_guard_action */
    ngx_str_t             rule_ids;     /* $exchange_guard_rule */
    ngx_str_t             cves;         /* $exchange_guard_cve */
    eg_header_t           headers[8];   /* req.headers, unless more */
    uint8_t               slots[8];     /* req.header_slots, unless more */
} ngx_http_exchange_guard_ctx_t;


extern ngx_module_t  ngx_http_exchange_guard_module;


void ngx_http_exchange_guard_request_id(ngx_http_request_t *r,
    ngx_str_t *id);

char *ngx_http_exchange_guard_log_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_exchange_guard_log_merge(ngx_conf_t *cf,
    ngx_http_exchange_guard_loc_conf_t *prev,
    ngx_http_exchange_guard_loc_conf_t *conf);
void ngx_http_exchange_guard_log_write(ngx_http_request_t *r,
    ngx_http_exchange_guard_loc_conf_t *lcf,
    ngx_http_exchange_guard_ctx_t *ctx);

#endif /* NGX_HTTP_EXCHANGE_GUARD_MODULE_H */
