/*
 * exchange_guard decision engine: the whole public API.
 *
 * Plain C, no nginx types.  A request view goes in, a verdict comes out.
 * The nginx module, the command-line tools, the unit tests and the fuzzers
 * all use this header and nothing else.
 */

#ifndef EG_ENGINE_H
#define EG_ENGINE_H

#include <stddef.h>
#include <stdint.h>

/* the engine's symbols stay inside the nginx module that links it: its
   calls from one file to another are direct, not through the PLT */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif


typedef struct {
    const unsigned char  *data;
    size_t                len;
} eg_str_t;

#define eg_string(s)  { (const unsigned char *) (s), sizeof(s) - 1 }


typedef struct {
    eg_str_t              name;
    eg_str_t              value;
} eg_header_t;


/*
 * Per-request scratch memory.  nginx passes its request pool; tools pass
 * an arena.  Memory is never freed by the engine: the owner frees it all
 * at once when the request ends.
 */
typedef struct {
    void                *(*alloc)(void *ctx, size_t size);
    void                 *ctx;
} eg_alloc_t;


typedef enum {
    EG_BODY_NONE = 0,        /* the request has no body */
    EG_BODY_PENDING,         /* it has one, not read yet */
    EG_BODY_READ,            /* body holds it */
    EG_BODY_TOO_LARGE        /* larger than the inspection limit */
} eg_body_e;


typedef struct {
    eg_str_t              method;
    eg_str_t              target;       /* request-target as sent */
    const eg_header_t    *headers;      /* every header, in order */
    size_t                nheaders;

    /*
     * Optional (NULL: none): for each header, 1 + the index of its name in
     * eg_ruleset_header_names() when the caller has already found it to
     * be that name, ASCII case ignored, else 0.  nginx has matched the
     * names of the headers it knows: the engine need not compare them.
     */
    const uint8_t        *header_slots;
    eg_str_t              client_addr;  /* textual address, may be empty */
    eg_body_e             body_state;
    eg_str_t              body;         /* de-chunked, when EG_BODY_READ */
} eg_request_t;


/* an IPv4 or IPv6 network; IPv4 is stored as an IPv4-mapped address */
typedef struct {
    unsigned char         addr[16];
    unsigned              bits;         /* prefix length, of 128 */
} eg_cidr_t;

int eg_cidr_parse(eg_str_t text, eg_cidr_t *cidr);


/* bounds applied to hostile input; 0 in a field means the default */
typedef struct {
    size_t                max_cookies;       /* default 256 */
    size_t                max_header_bytes;  /* default 65536 */
    unsigned              decode_rounds;     /* default 3 */
    const eg_str_t       *backends;          /* FQDNs of the real servers */
    size_t                nbackends;
    const eg_cidr_t      *trusted;           /* exchange_guard_trusted_networks */
    size_t                ntrusted;
    uint32_t              match_limit;       /* PCRE2, default 100000 */
    uint32_t              depth_limit;       /* PCRE2, default 10000 */
} eg_options_t;

#define EG_DEFAULT_MAX_COOKIES       256
#define EG_DEFAULT_MAX_HEADER_BYTES  65536
#define EG_DEFAULT_DECODE_ROUNDS     3
#define EG_DEFAULT_MATCH_LIMIT       100000
#define EG_DEFAULT_DEPTH_LIMIT       10000


/*
 * What a matching rule does.  EG_NOTE rules never decide anything: they
 * are evaluated only for a request that is logged anyway, and listed in
 * its line (Microsoft's EOMT patterns, for comparison).
 */
typedef enum {
    EG_PASS = 0,
    EG_NOTE,
    EG_LOG,
    EG_BLOCK
} eg_action_e;


/* a limit that stopped inspection; the caller decides what to do */
typedef enum {
    EG_LIMIT_NONE = 0,
    EG_LIMIT_COOKIES,
    EG_LIMIT_HEADER_BYTES,
    EG_LIMIT_DECODE_ROUNDS,
    EG_LIMIT_REGEX,
    EG_LIMIT_BODY
} eg_limit_e;


typedef struct eg_rule_s     eg_rule_t;
typedef struct eg_ruleset_s  eg_ruleset_t;


typedef struct {
    const eg_rule_t      *rule;
    eg_str_t              field;    /* what was inspected, "cookie:X-BEResource" */
    eg_str_t              value;    /* the value that matched, as inspected */
} eg_match_t;

#define EG_MAX_MATCHES  8

typedef struct {
    eg_action_e           action;       /* strongest action of the matches */
    unsigned              nmatches;     /* entries in matches[] */
    unsigned              total;        /* matches, including unlisted */
    eg_match_t            matches[EG_MAX_MATCHES];
    eg_limit_e            limit;        /* first limit hit, if any */
    const eg_rule_t      *limit_rule;   /* for EG_LIMIT_REGEX */
    eg_str_t              path;         /* path as normalized for matching */
    eg_str_t              query;        /* query as decoded for matching */
    unsigned              need_body;    /* a rule waits for the body */
} eg_verdict_t;


/* rule sets */

eg_ruleset_t *eg_ruleset_new(void);
void eg_ruleset_free(eg_ruleset_t *rs);

/*
 * Load one rule file (or an in-memory buffer named "name").  On error
 * returns -1 and writes "file:line: what is wrong" into err; the rule set
 * is then unchanged: a file is added whole or not at all.
 */
int eg_ruleset_load_file(eg_ruleset_t *rs, const char *path, char *err,
    size_t errlen);
int eg_ruleset_load_buffer(eg_ruleset_t *rs, const char *name,
    const unsigned char *buf, size_t len, char *err, size_t errlen);

/* PCRE2 match and depth limits for every regex of the set */
void eg_ruleset_set_regex_limits(eg_ruleset_t *rs, uint32_t match_limit,
    uint32_t depth_limit);

size_t eg_ruleset_count(const eg_ruleset_t *rs);

/*
 * The request headers the rules read, lower case: a caller may pass
 * eg_eval() only those (and any others; extra ones are ignored).  Returns
 * their number, or (size_t) -1 when every header must be passed.
 */
size_t eg_ruleset_header_names(const eg_ruleset_t *rs,
    const eg_str_t **names);
const eg_rule_t *eg_ruleset_rule(const eg_ruleset_t *rs, size_t i);

eg_str_t eg_rule_id(const eg_rule_t *rule);
eg_str_t eg_rule_name(const eg_rule_t *rule);
eg_action_e eg_rule_action(const eg_rule_t *rule);
size_t eg_rule_ncves(const eg_rule_t *rule);
eg_str_t eg_rule_cve(const eg_rule_t *rule, size_t i);


/* evaluation */

void eg_eval(const eg_ruleset_t *rs, const eg_request_t *req,
    const eg_options_t *opts, const eg_alloc_t *alloc, eg_verdict_t *v);


/* building blocks, exposed for tests, tools and fuzzers */

typedef struct {
    eg_str_t              name;     /* trimmed, as sent */
    eg_str_t              value;    /* trimmed, as sent */
} eg_cookie_t;

/*
 * Parse Cookie header values the way ASP.NET does: ';' separates cookies,
 * white space around names and values is trimmed, a part without '='
 * is a cookie with an empty name.  Returns the number of cookies found
 * (which may exceed max; only max are stored).
 */
size_t eg_cookie_parse(const eg_str_t *headers, size_t nheaders,
    eg_cookie_t *out, size_t max);

/* 1 if name equals want, ASCII case-insensitive */
int eg_cookie_name_is(eg_str_t name, eg_str_t want);


typedef enum {
    EG_BACKEND_OK = 0,
    EG_BACKEND_SYNTAX,       /* not <dns-hostname>~<integer> */
    EG_BACKEND_LOCAL,        /* localhost or an IP literal */
    EG_BACKEND_UNKNOWN       /* not one of the configured backends */
} eg_backend_e;

eg_backend_e eg_backend_check(eg_str_t value, const eg_str_t *backends,
    size_t nbackends);
const char *eg_backend_reason(eg_backend_e rc);


/*
 * Normalize a request-target the way IIS and ASP.NET see it.  The path is
 * percent-decoded (%XX and IIS %uXXXX) up to "rounds" times, '\' becomes
 * '/', repeated slashes collapse, Windows ignores trailing dots and spaces
 * and alternate data streams in segment names, dot segments are resolved,
 * ASP.NET cookieless-session segments are dropped.  The query is decoded
 * the way HttpUtility.UrlDecode does ('+' is a space).  Returns 0, or -1
 * when the decoding bound was reached with escapes left.
 */
int eg_uri_normalize(eg_str_t target, unsigned rounds,
    const eg_alloc_t *alloc, eg_str_t *path, eg_str_t *query);

/* percent-decode up to rounds times; -1 if escapes remain after rounds */
int eg_url_decode(eg_str_t in, unsigned rounds, int plus_is_space,
    const eg_alloc_t *alloc, eg_str_t *out);


/*
 * Call fn for every string value of a JSON text, with its member name
 * (empty for values outside objects), both with escapes decoded.  UTF-16
 * text (BOM, or NULs in every other byte) is read as UTF-16, as WCF's
 * deserializer does.  Stops early when fn returns non-zero and returns
 * that; malformed JSON is scanned as far as strings can be found.
 */
typedef int (*eg_json_value_pt)(void *data, eg_str_t key, eg_str_t value);

int eg_json_scan(eg_str_t body, const eg_alloc_t *alloc, eg_json_value_pt fn,
    void *data);


/* the JSON log line */

typedef struct {
    uint64_t              msec;             /* ms since the epoch */
    const char           *action;           /* "blocked" or "detected" */
    const eg_verdict_t   *verdict;
    eg_str_t              source_ip;
    unsigned              source_port;
    eg_str_t              client_ip;
    eg_str_t              method;
    eg_str_t              url_original;
    eg_str_t              user_agent;
    eg_str_t              request_id;
    eg_str_t              server_address;
    unsigned              status;
} eg_log_event_t;

#define EG_LOG_VALUE_MAX   256
#define EG_LOG_STRING_MAX  4096

/* an upper bound of the line eg_log_format writes, newline included */
size_t eg_log_size(const eg_log_event_t *ev);

/* writes one JSON object and '\n' into buf; returns the length */
size_t eg_log_format(unsigned char *buf, const eg_log_event_t *ev);

/*
 * Escape bytes into a JSON string body (no quotes).  Invalid UTF-8 becomes
 * U+FFFD, control bytes become \u00XX.  At most max input bytes are read,
 * never splitting a UTF-8 sequence; *truncated says if input was left.
 * dst needs 6 * max bytes.  Returns the bytes written.
 */
size_t eg_json_escape(unsigned char *dst, eg_str_t src, size_t max,
    int *truncated);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif /* EG_ENGINE_H */
