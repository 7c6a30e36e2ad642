/*
 * exchange_guard: the JSON Lines file of refused (and detected) requests.
 *
 * The file is one of nginx's open files, so "nginx -s reopen" reopens it
 * like an access_log.  A line is formatted by the engine into the request
 * pool and written with one write() on an O_APPEND descriptor: lines from
 * several workers never interleave, and nothing is fsync'ed.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_exchange_guard_module.h"


#define NGX_HTTP_EXCHANGE_GUARD_DEFAULT_LOG  "exchange_guard.log"


static ngx_int_t ngx_http_exchange_guard_default_log(ngx_conf_t *cf,
    ngx_str_t *name);
static void ngx_http_exchange_guard_peer(ngx_http_request_t *r,
    ngx_str_t *ip, ngx_uint_t *port);


char *
ngx_http_exchange_guard_log_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_exchange_guard_loc_conf_t *lcf = conf;

    ngx_str_t  *value;

    if (lcf->log != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        lcf->log = NULL;
        return NGX_CONF_OK;
    }

    lcf->log = ngx_conf_open_file(cf->cycle, &value[1]);
    if (lcf->log == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_exchange_guard_log_merge(ngx_conf_t *cf,
    ngx_http_exchange_guard_loc_conf_t *prev,
    ngx_http_exchange_guard_loc_conf_t *conf)
{
    ngx_str_t  name;

    if (conf->log == NGX_CONF_UNSET_PTR) {
        conf->log = prev->log;
    }

    if (conf->log != NGX_CONF_UNSET_PTR
        || conf->mode == NGX_HTTP_EXCHANGE_GUARD_OFF)
    {
        return NGX_CONF_OK;
    }

    /* the default sits next to nginx's default access log */

    if (ngx_http_exchange_guard_default_log(cf, &name) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    conf->log = ngx_conf_open_file(cf->cycle, &name);
    if (conf->log == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_exchange_guard_default_log(ngx_conf_t *cf, ngx_str_t *name)
{
    u_char     *p, *slash;
    ngx_str_t   access = ngx_string(NGX_HTTP_LOG_PATH);

    slash = NULL;
    for (p = access.data; p < access.data + access.len; p++) {
        if (*p == '/') {
            slash = p;
        }
    }

    name->len = (slash ? (size_t) (slash - access.data + 1) : 0)
                + sizeof(NGX_HTTP_EXCHANGE_GUARD_DEFAULT_LOG) - 1;
    name->data = ngx_pnalloc(cf->pool, name->len + 1);
    if (name->data == NULL) {
        return NGX_ERROR;
    }

    p = name->data;
    if (slash) {
        p = ngx_cpymem(p, access.data, slash - access.data + 1);
    }
    p = ngx_cpymem(p, NGX_HTTP_EXCHANGE_GUARD_DEFAULT_LOG,
                   sizeof(NGX_HTTP_EXCHANGE_GUARD_DEFAULT_LOG) - 1);
    *p = '\0';

    return NGX_OK;
}


void
ngx_http_exchange_guard_log_write(ngx_http_request_t *r,
    ngx_http_exchange_guard_loc_conf_t *lcf,
    ngx_http_exchange_guard_ctx_t *ctx)
{
    u_char          *buf;
    size_t           len;
    off_t            end;
    ssize_t          n;
    ngx_err_t        err;
    ngx_str_t        ip, id;
    ngx_uint_t       port;
    ngx_time_t      *tp;
    eg_log_event_t   ev;
    static time_t    last_error;

    if (lcf->log == NULL) {
        return;
    }

    ngx_memzero(&ev, sizeof(eg_log_event_t));

    tp = ngx_timeofday();
    ev.msec = (uint64_t) tp->sec * 1000 + tp->msec;
    ev.action = (char *) ctx->action_text.data;
    ev.verdict = ctx->verdict;

    ngx_http_exchange_guard_peer(r, &ip, &port);
    ev.source_ip.data = ip.data;
    ev.source_ip.len = ip.len;
    ev.source_port = port;
    ev.client_ip.data = r->connection->addr_text.data;
    ev.client_ip.len = r->connection->addr_text.len;

    ev.method.data = r->method_name.data;
    ev.method.len = r->method_name.len;
    ev.url_original.data = r->unparsed_uri.data;
    ev.url_original.len = r->unparsed_uri.len;

    if (r->headers_in.user_agent) {
        ev.user_agent.data = r->headers_in.user_agent->value.data;
        ev.user_agent.len = r->headers_in.user_agent->value.len;
    }

    ngx_http_exchange_guard_request_id(r, &id);
    ev.request_id.data = id.data;
    ev.request_id.len = id.len;
    ev.server_address.data = r->headers_in.server.data;
    ev.server_address.len = r->headers_in.server.len;
    ev.status = ctx->status;

    if (ctx->verdict->path.data == NULL) {
        (void) eg_uri_normalize(ctx->req.target, lcf->options.decode_rounds,
                                &ctx->alloc, &ctx->verdict->path,
                                &ctx->verdict->query);
    }

    buf = ngx_pnalloc(r->pool, eg_log_size(&ev));
    if (buf == NULL) {
        return;
    }

    len = eg_log_format(buf, &ev);

    n = ngx_write_fd(lcf->log->fd, buf, len);

    if (n == (ssize_t) len) {
        return;
    }

    if (n > 0) {
        /*
         * A full disk took part of the line.  A JSON Lines file must hold
         * whole lines only, so the part is taken back: the line is lost,
         * the file stays parseable.  Another worker appending in the same
         * instant is not expected while the disk is full.
         */

        end = lseek(lcf->log->fd, 0, SEEK_END);
        if (end >= n && ftruncate(lcf->log->fd, end - n) == -1) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                          "exchange_guard: ftruncate(\"%s\") failed",
                          lcf->log->name.data);
        }
    }

    /* a full disk must not flood error_log: once a second per worker */

    if (last_error == ngx_time()) {
        return;
    }

    last_error = ngx_time();
    err = (n == -1) ? ngx_errno : 0;

    ngx_log_error(NGX_LOG_ALERT, r->connection->log, err,
                  "exchange_guard: writing to \"%s\" failed "
                  "(%z of %uz bytes written); the request was still %V",
                  lcf->log->name.data, n, len, &ctx->action_text);
}


/* the TCP peer, before realip replaced the address */

static void
ngx_http_exchange_guard_peer(ngx_http_request_t *r, ngx_str_t *ip,
    ngx_uint_t *port)
{
    ngx_str_t                   name;
    ngx_http_variable_value_t  *vv;

    ngx_str_set(&name, "realip_remote_addr");
    vv = ngx_http_get_variable(r, &name, ngx_hash_key(name.data, name.len));

    if (vv && !vv->not_found && vv->len) {
        ip->data = vv->data;
        ip->len = vv->len;

        ngx_str_set(&name, "realip_remote_port");
        vv = ngx_http_get_variable(r, &name,
                                   ngx_hash_key(name.data, name.len));
        if (vv && !vv->not_found && vv->len) {
            *port = ngx_atoi(vv->data, vv->len);
            return;
        }

    } else {
        ip->data = r->connection->addr_text.data;
        ip->len = r->connection->addr_text.len;
    }

    *port = ngx_inet_get_port(r->connection->sockaddr);
}
