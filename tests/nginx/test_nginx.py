#!/usr/bin/env python3
"""exchange_guard against the real nginx, real requests over TCP.

Each test starts Debian's nginx with the built module, the shipped rules
and the Exchange simulator as upstream, in a directory of its own.

    tests/nginx/test_nginx.py [NAME-SUBSTRING]
"""

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
sys.dont_write_bytecode = True

import eg  # noqa: E402
from eg import check  # noqa: E402

suite = eg.Suite()
MARK = "X-EG-Test-Id"


class Env:
    """Simulator plus nginx, stopped together.  A configuration argument
    may be a function of the simulator's port (a location of its own that
    proxies to it)."""

    def __init__(self, workdir, **kw):
        self.sim = eg.Simulator(workdir)
        kw = {k: v(self.sim.port) if callable(v) else v
              for k, v in kw.items()}
        try:
            self.nginx = eg.Nginx(workdir, self.sim.port, **kw).start()
        except Exception:
            self.sim.stop()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.nginx.stop()
        self.sim.stop()

    def upstream_marks(self):
        out = {}
        for r in self.sim.received():
            for n, v in r.get("headers", []):
                if n.lower() == MARK.lower():
                    out[v] = r
        return out


def send_record(env, rec):
    return eg.send_raw(env.nginx.port,
                       rec.raw([(MARK, rec.id.encode())]))


def _attack_checks(rec, resp, entries, marks, status=403):
    errs = []
    if resp.status != status:
        errs.append("status %d, want %d" % (resp.status, status))
    if rec.id in marks:
        errs.append("reached the upstream")
    if len(entries) != 1:
        errs.append("%d log lines, want 1" % len(entries))
        return errs
    e = entries[0]
    if e["rule"].get("id") != rec.expect:
        errs.append("rule.id %s, want %s" % (e["rule"].get("id"), rec.expect))
    for cve in rec.cves:
        if cve not in e["vulnerability"]["id"]:
            errs.append("vulnerability.id %s lacks %s"
                        % (e["vulnerability"]["id"], cve))
    if e["event"]["action"] != "blocked":
        errs.append("event.action %s" % e["event"]["action"])
    if status != 444 and e["http"]["response"]["status_code"] != status:
        errs.append("status_code %s" % e["http"]["response"]["status_code"])
    return errs


def _one_at_a_time(env, records, checker):
    """Send each record alone, pair it with the log lines it produced."""
    failures = []
    for rec in records:
        before = len(env.nginx.lines())
        resp = send_record(env, rec)
        time.sleep(0.005)
        lines = env.nginx.lines()[before:]
        try:
            entries = [json.loads(l.decode("utf-8")) for l in lines]
        except ValueError as e:
            failures.append("%s: invalid log line: %s" % (rec.id, e))
            continue
        errs = checker(rec, resp, entries)
        if errs:
            failures.append("%s (%s): %s" % (
                rec.id, os.path.basename(rec.path), "; ".join(errs)))
    return failures


@suite.test
def attack_corpus_refused_and_logged(workdir):
    records = eg.load_corpora("attack")
    check(len(records) > 0, "no attack records")
    with Env(workdir) as env:
        marks_after = {}

        def checker(rec, resp, entries):
            return _attack_checks(rec, resp, entries, marks_after)

        failures = _one_at_a_time(env, records, checker)
        marks = env.upstream_marks()
        for rec in records:
            if rec.id in marks:
                failures.append("%s: reached the upstream" % rec.id)
    check(not failures, "%d of %d attacks wrong:\n  %s" % (
        len(failures), len(records), "\n  ".join(failures[:40])))
    return len(records)


@suite.test
def legit_corpus_passes_untouched(workdir):
    records = eg.load_corpora("legit")
    check(len(records) > 0, "no legitimate records")
    with Env(workdir) as env:

        def checker(rec, resp, entries):
            errs = []
            if resp.status in (0, 403):
                errs.append("refused with status %d" % resp.status)
            blocked = [e for e in entries
                       if e["event"]["action"] == "blocked"]
            if blocked:
                errs.append("logged as blocked by %s"
                            % blocked[0]["rule"]["id"])
            return errs

        failures = _one_at_a_time(env, records, checker)
        marks = env.upstream_marks()
        for rec in records:
            got = marks.get(rec.id)
            if got is None:
                failures.append("%s: never reached the upstream" % rec.id)
                continue
            if got["method"] != rec.method.decode("latin-1") \
                    or got["target"] != rec.target.decode("latin-1"):
                failures.append("%s: upstream saw %s %s" % (
                    rec.id, got["method"], got["target"]))
            sent = [v.decode("latin-1") for v in rec.header("Cookie")]
            seen = [v for n, v in got["headers"] if n.lower() == "cookie"]
            if sent and "; ".join(sent) != "; ".join(seen):
                failures.append("%s: Cookie changed" % rec.id)
            if got["body_length"] != len(rec.body):
                failures.append("%s: body %d bytes upstream, %d sent" % (
                    rec.id, got["body_length"], len(rec.body)))
    check(not failures, "%d of %d legitimate requests wrong:\n  %s" % (
        len(failures), len(records), "\n  ".join(failures[:40])))
    return len(records)


@suite.test
def detect_mode_passes_and_logs(workdir):
    records = eg.load_corpora("attack")
    with Env(workdir, mode="detect") as env:
        failures = []
        for rec in records:
            before = len(env.nginx.lines())
            resp = send_record(env, rec)
            time.sleep(0.005)
            entries = env.nginx.entries()[before:]
            if resp.status in (0, 403):
                failures.append("%s: refused in detect mode" % rec.id)
            if len(entries) != 1 or entries[0]["event"]["action"] \
                    != "detected" or entries[0]["rule"]["id"] != rec.expect:
                failures.append("%s: log %s" % (rec.id, entries))
            elif "response" in entries[0]["http"]:
                failures.append("%s: a passed request has a status" % rec.id)
        marks = env.upstream_marks()
        missing = [r.id for r in records if r.id not in marks]
        check(not missing, "did not reach upstream: %s" % missing[:10])
    check(not failures, "\n  ".join(failures[:20]))
    return len(records)


@suite.test
def off_changes_nothing(workdir):
    records = eg.load_corpora("attack")
    with Env(workdir, mode="off") as env:
        for rec in records:
            resp = send_record(env, rec)
            check(resp.status not in (0, 403),
                  "%s refused with exchange_guard off" % rec.id)
        check(env.nginx.lines() == [], "off wrote log lines")
        marks = env.upstream_marks()
        check(all(r.id in marks for r in records), "not all reached upstream")
    return 1


@suite.test
def status_444_closes_without_response(workdir):
    with Env(workdir, server="exchange_guard_status 444;") as env:
        resp = eg.request(env.nginx.port, "GET", "/ecp/y.js",
                          [("Cookie", "X-BEResource=localhost~1942062522")])
        check(resp.status == 0, "got HTTP %d, want a closed connection"
              % resp.status)
        e = env.nginx.entries()
        check(len(e) == 1 and e[0]["http"]["response"]["status_code"] == 444,
              "log: %s" % e)
        resp = eg.request(env.nginx.port, "GET", "/owa/")
        check(resp.status == 200, "benign request got %d" % resp.status)
    return 1


@suite.test
def custom_status(workdir):
    with Env(workdir, location="exchange_guard_status 400;") as env:
        resp = eg.request(env.nginx.port, "GET", "/ecp/y.js",
                          [("Cookie", "X-BEResource=localhost~1")])
        check(resp.status == 400, "status %d" % resp.status)
    return 1


@suite.test
def probe_vulnerable_without_guard_not_with(workdir):
    probe = os.path.join(eg.ROOT, "auto", "probe")
    with Env(workdir) as env:
        direct = subprocess.run(
            [sys.executable, probe, "http://127.0.0.1:%d" % env.sim.port],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        check(direct.returncode == 2,
              "simulator alone not reported vulnerable: %s" % direct.stdout)
        guarded = subprocess.run(
            [sys.executable, probe, "http://127.0.0.1:%d" % env.nginx.port],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        check(guarded.returncode == 0,
              "guarded server not reported safe: %s" % guarded.stdout)
        check(b"not vulnerable" in guarded.stdout, guarded.stdout)
    return 2


@suite.test
def backends_directive(workdir):
    conf = "exchange_guard_backends EX01.contoso.local ex02.contoso.local;"
    with Env(workdir, server=conf) as env:
        ok = eg.request(env.nginx.port, "GET", "/ecp/x.js",
                        [("Cookie", "X-BEResource=ex01.CONTOSO.local~1942062522")])
        check(ok.status == 200, "listed backend refused: %d" % ok.status)
        bad = eg.request(env.nginx.port, "GET", "/ecp/x.js",
                         [("Cookie", "X-BEResource=evil.example~1942062522")])
        check(bad.status == 403, "unlisted backend passed: %d" % bad.status)
        e = env.nginx.entries()
        check(len(e) == 1 and e[0]["exchange_guard"]["value"]
              == "evil.example~1942062522", "log: %s" % e)
    return 2


@suite.test
def no_backends_accepts_any_dns_name(workdir):
    with Env(workdir) as env:
        for value, want in (("ex01.contoso.local~1942062522", 200),
                            ("EX01~15", 200),
                            ("127.0.0.1~1942062522", 403),
                            ("localhost~1942062522", 403),
                            ("LocalHost.localdomain~1", 403)):
            r = eg.request(env.nginx.port, "GET", "/ecp/x.js",
                           [("Cookie", "X-BEResource=" + value)])
            check(r.status == want, "%s: %d, want %d" % (value, r.status,
                                                         want))
    return 5


@suite.test
def backend_cookie_never_applied_to_x_backendcookie(workdir):
    with Env(workdir) as env:
        for name in ("X-BackEndCookie", "X-BackEndCookie2"):
            r = eg.request(env.nginx.port, "GET", "/owa/x.js", [(
                "Cookie", name + "=S-1-5-21-2614113441-2271441562-"
                "2548396483-500=u56Lnp2ejJqByM/KmMzMm8jS+z8=~a/b")])
            check(r.status == 200, "%s refused: %d" % (name, r.status))
    return 2


@suite.test
def satisfy_any_cannot_override(workdir):
    loc = "satisfy any; allow all;"
    with Env(workdir, location=loc) as env:
        r = eg.request(env.nginx.port, "GET", "/ecp/y.js",
                       [("Cookie", "X-BEResource=localhost~1")])
        check(r.status == 403, "satisfy any let it through: %d" % r.status)
    return 1


@suite.test
def once_per_request_across_internal_redirects(workdir):
    # try_files runs after the guard's phase and redirects to a named
    # location, which runs the phases again with a fresh module context
    locs = """
        location /ecp/ {
            root %s;
            try_files /nonexistent @ex;
        }
        location @ex {
            proxy_pass http://127.0.0.1:%%d;
        }
    """ % workdir
    sim = eg.Simulator(workdir)
    try:
        http = eg.GUARD_HTTP.format(mode="detect", rules=eg.RULES,
                                    dir=workdir)
        n = eg.Nginx(workdir, sim.port, http=http,
                     locations=locs % sim.port).start()
        try:
            r = eg.request(n.port, "GET", "/ecp/y.js",
                           [("Cookie", "X-BEResource=localhost~1")])
            check(r.status not in (0, 403), "status %d" % r.status)
            time.sleep(0.05)
            check(len(n.entries()) == 1, "log lines: %d" % len(n.entries()))
            check(len(sim.received()) == 1, "upstream saw %d"
                  % len(sim.received()))
        finally:
            n.stop()
    finally:
        sim.stop()
    return 1


@suite.test
def passed_once_across_internal_redirects(workdir):
    # a request that passed keeps that verdict after an internal redirect
    # to a location whose rules would refuse it: the module keeps only a
    # marker for it; one that passed once its body was read keeps its
    # context, and passes once too
    strict = eg.rules_file(workdir, "strict.rules", eg.rule_text(
        "EG-T-STRICT", "strict", "path prefix /owa/ /ecp/"))
    locs = """
        location ~ ^/(owa|ecp)/ {
            root %s;
            try_files /nonexistent @ex;
        }
        location @ex {
            exchange_guard_rules %s;
            proxy_pass http://127.0.0.1:%%d;
        }
    """ % (workdir, strict)
    sim = eg.Simulator(workdir)
    try:
        http = eg.GUARD_HTTP.format(mode="on", rules=eg.RULES, dir=workdir)
        n = eg.Nginx(workdir, sim.port, http=http,
                     locations=locs % sim.port).start()
        try:
            r = eg.request(n.port, "GET", "/owa/")
            check(r.status == 200, "GET /owa/: %d" % r.status)
            # EG-ECP-001 reads the body of a virtual-directory call
            r = eg.request(
                n.port, "POST", "/ecp/DDI/DDIService.svc/SetObject"
                "?schema=VirtualDirectory&msExchEcpCanary=x",
                [("Content-Type", "application/json")],
                body=b'{"properties":{"ExternalUrl":"https://a/owa"}}')
            check(r.status == 200, "POST SetObject: %d" % r.status)
            check(len(sim.received()) == 2, "upstream saw %d"
                  % len(sim.received()))
            time.sleep(0.05)
            check(len(n.entries()) == 0, "log lines: %d" % len(n.entries()))
        finally:
            n.stop()
    finally:
        sim.stop()
    return 4


@suite.test
def variables_in_access_log_and_headers(workdir):
    # exchange_guard_internal_ctx is the slot the module keeps its context
    # in: read by a log format it is empty, and does not disturb it
    http = (eg.GUARD_HTTP.format(mode="detect", rules=eg.RULES, dir=workdir)
            + "log_format eg '$exchange_guard_action|$exchange_guard_rule|"
              "$exchange_guard_cve|$exchange_guard_internal_ctx';\n"
            + "access_log %s/eg_access.log eg;" % workdir)
    with Env(workdir, http=http) as env:
        eg.request(env.nginx.port, "GET", "/ecp/y.js",
                   [("Cookie", "X-BEResource=localhost~1")])
        eg.request(env.nginx.port, "GET", "/owa/")
        time.sleep(0.1)
        with open(os.path.join(workdir, "eg_access.log")) as f:
            lines = f.read().splitlines()
        check(lines[0] == "detected|EG-PL-001|CVE-2021-26855|",
              "first line %r" % lines[0])
        check(lines[1] == "|||", "second line %r" % lines[1])
        check(len(env.nginx.entries()) == 1,
              "log entries: %s" % env.nginx.entries())
    return 3


@suite.test
def reopen_reopens_the_log(workdir):
    with Env(workdir) as env:
        eg.request(env.nginx.port, "GET", "/ecp/y.js",
                   [("Cookie", "X-BEResource=localhost~1")])
        moved = env.nginx.log + ".1"
        os.rename(env.nginx.log, moved)
        env.nginx.signal("reopen")
        deadline = time.time() + 5
        while not os.path.exists(env.nginx.log) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        eg.request(env.nginx.port, "GET", "/ecp/z.js",
                   [("Cookie", "X-BEResource=localhost~2")])
        check(len(env.nginx.entries(moved)) == 1, "old file changed")
        new = env.nginx.entries()
        check(len(new) == 1 and new[0]["url"]["original"] == "/ecp/z.js",
              "new file: %s" % new)
    return 1


@suite.test
def broken_rule_file_fails_nginx_t_with_file_and_line(workdir):
    bad = eg.rules_file(workdir, "bad.rules",
                        eg.rule_text("EG-X-1", "x", "path regex '(unclosed'"))
    http = ("exchange_guard on; exchange_guard_rules %s; "
            "exchange_guard_log %s/guard.jsonl;" % (bad, workdir))
    n = eg.Nginx(workdir, 1, http=http)
    ok, out = n.test_config()
    check(not ok, "nginx -t accepted a broken rule file")
    check("%s:5: invalid regex" % bad in out, "message: %s" % out)
    check("nginx.conf:" in out, "no nginx.conf line: %s" % out)
    return 1


@suite.test
def config_mistakes_fail_nginx_t(workdir):
    cases = [
        ("exchange_guard maybe;", "invalid value"),
        ("exchange_guard on;", "no \"exchange_guard_rules\""),
        ("exchange_guard_rules %s/none-*.rules;" % workdir,
         "no rule file matches"),
        ("exchange_guard_rules /nonexistent/x.rules;", "cannot open"),
        ("exchange_guard_status 200;", "is not 444"),
        ("exchange_guard_backends localhost~1;", "not a DNS host name"),
        ("exchange_guard_backends bad_host-.x;", "not a DNS host name"),
        ("exchange_guard_limit_action sometimes;", "invalid value"),
        ("exchange_guard_max_cookies 0;", "must be"),
        ("server { location / { set $exchange_guard_internal_ctx x; } }",
         "duplicate \"exchange_guard_internal_ctx\" variable"),
    ]
    for directive, want in cases:
        n = eg.Nginx(workdir, 1, http=directive)
        ok, out = n.test_config()
        check(not ok and want in out and "nginx.conf:" in out,
              "%s: %s" % (directive, out))
    return len(cases)


@suite.test
def hostile_bytes_give_one_valid_json_line(workdir):
    nasty = (b'"\\\x01\x7f\xff\xfe\xc0\xaf\xed\xa0\x80{"a":1}\n'
             .replace(b"\n", b""))
    with Env(workdir) as env:
        cases = [
            ("/ecp/y.js?" + "q=%22%5C%00%FF", [
                (b"Cookie", b"X-BEResource=" + nasty + b"~1"),
                (b"User-Agent", nasty * 2000)]),
            ("/aspnet_client/" + "A" * 6000 + ".aspx", [
                (b"User-Agent", b"\xe2\x80\xae\xf0\x9f\x92\xa9 ok")]),
            ("/ecp/y.js", [(b"Cookie", b"X-BEResource=" + b"\xff" * 70000
                            + b"~1")]),
        ]
        for target, headers in cases:
            raw = b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            for n, v in headers:
                raw += n + b": " + v + b"\r\n"
            eg.send_raw(env.nginx.port, raw + b"\r\n")
        lines = env.nginx.lines()
        check(len(lines) >= 2, "%d lines" % len(lines))
        for l in lines:
            e = json.loads(l.decode("utf-8", "strict"))
            check(len(l) < 200000, "line of %d bytes" % len(l))
            v = e["exchange_guard"].get("value", "")
            check(len(v.encode()) <= 6 * 256, "value not truncated")
    return len(cases)


SCRIPT_JSON = (b'{"identity":{"__type":"Identity:ECP","RawIdentity":"x"},'
               b'"properties":{"Parameters":{"__type":"JsonDictionaryOfanyType'
               b':#Microsoft.Exchange.Management.ControlPanel","ExternalUrl":'
               b'"http://f/\\u003cscript language=\\"JScript\\" runat='
               b'\\"server\\"\\u003efunction Page_Load(){eval(Request'
               b'[\\"x\\"],\\"unsafe\\");}\\u003c/script\\u003e"}}}')
SETOBJ = "/ecp/DDI/DDIService.svc/SetObject?schema=OABVirtualDirectory"


@suite.test
def body_inspection_chunked_spooled_and_limits(workdir):
    server = "client_body_buffer_size 1k; client_max_body_size 8m;"
    with Env(workdir, server=server) as env:
        hdr = [("Content-Type", "application/json")]
        # in memory, then chunked, then spooled to a temporary file
        r = eg.request(env.nginx.port, "POST", SETOBJ, hdr, SCRIPT_JSON)
        check(r.status == 403, "plain body: %d" % r.status)
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(SCRIPT_JSON[i:i + 50]),
                                              SCRIPT_JSON[i:i + 50])
                          for i in range(0, len(SCRIPT_JSON), 50))
        raw = (b"POST " + SETOBJ.encode() + b" HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
        r = eg.send_raw(env.nginx.port, raw)
        check(r.status == 403, "chunked body: %d" % r.status)
        padded = SCRIPT_JSON[:-1] + b',"Pad":"' + b"a" * 200000 + b'"}'
        r = eg.request(env.nginx.port, "POST", SETOBJ, hdr, padded)
        check(r.status == 403, "spooled body: %d" % r.status)
        legit = (b'{"properties":{"Parameters":{"ExternalUrl":'
                 b'"https://mail.contoso.com/OAB","Pad":"' + b"b" * 200000
                 + b'"}}}')
        r = eg.request(env.nginx.port, "POST", SETOBJ, hdr, legit)
        check(r.status == 200, "legitimate spooled body: %d" % r.status)
        got = [x for x in env.sim.received() if x["target"] == SETOBJ]
        check(len(got) == 1 and got[0]["body_length"] == len(legit),
              "upstream got %s" % [(x["body_length"]) for x in got])
        # above exchange_guard_max_body (1m): refused, as a limit
        big = b'{"a":"' + b"c" * (2 * 1024 * 1024) + b'"}'
        r = eg.request(env.nginx.port, "POST", SETOBJ, hdr, big)
        check(r.status == 403, "oversized body: %d" % r.status)
        e = env.nginx.entries()[-1]
        check(e["rule"]["id"] == "EG-LIMIT"
              and e["exchange_guard"]["limit"] == "body", "log: %s" % e)
        # a large body elsewhere is never read by the guard
        r = eg.request(env.nginx.port, "POST", "/EWS/Exchange.asmx",
                       [("Content-Type", "text/xml")], b"<x/>" * 600000)
        check(r.status == 200, "large EWS body: %d" % r.status)
    return 6


@suite.test
def body_limit_pass_option(workdir):
    server = ("client_max_body_size 8m; exchange_guard_max_body 1k; "
              "exchange_guard_limit_action pass;")
    with Env(workdir, server=server) as env:
        r = eg.request(env.nginx.port, "POST", SETOBJ,
                       [("Content-Type", "application/json")],
                       b'{"a":"' + b"d" * 4096 + b'"}')
        check(r.status == 200, "limit_action pass refused: %d" % r.status)
        check("inspection limit reached" in env.nginx.error_log(),
              "no warning in error_log")
    return 1


@suite.test
def exposure_policy_is_opt_in(workdir):
    with Env(workdir) as env:
        r = eg.request(env.nginx.port, "GET", "/ecp/")
        check(r.status == 200, "no trusted networks: /ecp got %d" % r.status)
    with Env(workdir, server="exchange_guard_trusted_networks 10.0.0.0/8 "
             "2001:db8::/32;") as env:
        for path, want in (("/ecp/", 403), ("/OAB/x/oab.xml", 403),
                           ("/powershell?PSVersion=5.1", 403),
                           ("/owa/", 200), ("/ecpx", 200)):
            r = eg.request(env.nginx.port, "GET", path)
            check(r.status == want, "%s: %d, want %d" % (path, r.status, want))
        e = env.nginx.entries()
        check(e[0]["rule"]["id"] == "EG-EXP-001", "log: %s" % e[0])
    with Env(workdir, server="exchange_guard_trusted_networks 127.0.0.0/8;") \
            as env:
        r = eg.request(env.nginx.port, "GET", "/ecp/")
        check(r.status == 200, "trusted client refused: %d" % r.status)
    return 7


@suite.test
def runaway_regex_stops_at_the_match_limit(workdir):
    rules = eg.rules_file(workdir, "slow.rules", eg.rule_text(
        "EG-SLOW-1", "catastrophic", "header:X-Slow regex '^(a+)+$'"))
    http = ("exchange_guard on; exchange_guard_rules %s; "
            "exchange_guard_log %s/guard.jsonl; "
            "exchange_guard_regex_match_limit 10000;" % (rules, workdir))
    with Env(workdir, http=http) as env:
        t0 = time.time()
        r = eg.request(env.nginx.port, "GET", "/owa/",
                       [("X-Slow", "a" * 40 + "!")])
        took = time.time() - t0
        check(r.status == 403, "status %d" % r.status)
        check(took < 2, "took %.1fs" % took)
        e = env.nginx.entries()
        check(len(e) == 1 and e[0]["exchange_guard"]["limit"] == "regex"
              and e[0]["exchange_guard"]["limit_rule"] == "EG-SLOW-1",
              "log: %s" % e)
        r = eg.request(env.nginx.port, "GET", "/owa/", [("X-Slow", "bbb")])
        check(r.status == 200, "benign: %d" % r.status)
    return 2


@suite.test
def realip_client_and_tcp_source(workdir):
    server = "set_real_ip_from 127.0.0.1; real_ip_header X-Forwarded-For;"
    with Env(workdir, server=server) as env:
        r = eg.request(env.nginx.port, "GET", "/ecp/y.js",
                       [("Cookie", "X-BEResource=localhost~1"),
                        ("X-Forwarded-For", "203.0.113.7")])
        check(r.status == 403, "status %d" % r.status)
        e = env.nginx.entries()[0]
        check(e["client"]["ip"] == "203.0.113.7", "client: %s" % e["client"])
        check(e["source"]["ip"] == "127.0.0.1" and e["source"]["port"] > 0,
              "source: %s" % e["source"])
    return 1


@suite.test
def header_rules_see_their_headers_only_filtered_by_hash(workdir):
    """nginx hands the engine only the headers rules name (by nginx's own
    header hash): a name in any case, a second copy, a name with '_' that
    nginx hashes without it (underscores_in_headers off,
    ignore_invalid_headers off), and a set of more names than the engine
    has slots for must all still reach the rules, and so must more of
    them than the module's context has room for."""
    rules = eg.rules_file(workdir, "hdr.rules", "".join(
        eg.rule_text("EG-H-%02d" % i, "header %d" % i,
                     "header:X-Hdr-%02d contains evil" % i)
        for i in range(40)))
    few = eg.rules_file(workdir, "few.rules",
                        eg.rule_text("EG-F-1", "one",
                                     "header:X-One contains evil")
                        + eg.rule_text("EG-F-US", "underscore",
                                       "header:X_Under contains evil"))
    http = ("exchange_guard on; exchange_guard_log %s/guard.jsonl; "
            "exchange_guard_rules %s; ignore_invalid_headers off; "
            % (workdir, few))
    def locations(port):
        return ("location /many/ { exchange_guard_rules %s; "
                "proxy_pass http://127.0.0.1:%d; }" % (rules, port))

    n = 0
    with Env(workdir, http=http, locations=locations) as env:
        cases = [
            ("/many/a", [("x-hdr-39", "evil")], 403),
            ("/many/a", [("X-HDR-00", "good"), ("X-Hdr-00", "so evil")], 403),
            ("/many/a", [("X-Hdr-17", "fine")], 200),
            ("/few/a", [("X_Under", "evil")], 403),
            ("/few/a", [("x_under", "fine")], 200),
            ("/few/a", [("X-ONE", "evil")], 403),
            ("/few/a", [("X-One", "ok"), ("x-one", "evil")], 403),
            ("/few/a", [("X-Two", "evil"), ("X-On", "evil")], 200),
            # more headers that pass the filter than the module keeps
            # room for in its context (8): the last one still counts
            ("/few/a", [("X-One", "ok %d" % i) for i in range(20)]
             + [("X-One", "evil")], 403),
            ("/few/a", [("X-One", "ok %d" % i) for i in range(20)], 200),
            ("/few/a", [("X-One", "ok"), ("Accept", "*/*")] * 10
             + [("X_Under", "evil")], 403),
        ]
        for path, headers, want in cases:
            r = eg.request(env.nginx.port, "GET", path, headers)
            check(r.status == want, "%s %s: status %d, want %d"
                  % (path, headers, r.status, want))
            n += 1
    return n


@suite.test
def headers_nginx_knows_every_copy_seen(workdir):
    """The first Cookie, User-Agent and Content-Type header is passed to
    the engine as the name nginx found (ngx_http_exchange_guard_known());
    a second one of the name, in any case, is still read, and so is the
    first when a header nginx does not know comes before it.  A header
    whose hash falls on the same bit is not taken for it."""
    site = os.path.join(workdir, "site.rules")
    with open(site, "w") as f:
        f.write(eg.rule_text("SITE-UA", "ua",
                             "header:User-Agent prefix EvilAgent/"))
        f.write(eg.rule_text("SITE-CT", "ct",
                             "header:Content-Type contains evil-type"))
        f.write(eg.rule_text("SITE-CK", "ck", "cookie:EvilCookie present"))
        f.write(eg.rule_text("SITE-XH", "xh", "header:X-Site-Evil present"))
    http = eg.GUARD_HTTP.format(mode="on", rules=eg.RULES, dir=workdir) \
        + "exchange_guard_rules %s;\n" % site
    cases = [
        ([("User-Agent", "Mozilla/5.0"), ("user-agent", "EvilAgent/1")],
         "SITE-UA"),
        ([("User-Agent", "EvilAgent/1"), ("User-Agent", "Mozilla/5.0")],
         "SITE-UA"),
        ([("X-Site-Evil2", "1"), ("USER-AGENT", "evilagent/2")], "SITE-UA"),
        ([("Content-Type", "text/xml"), ("Content-Type", "evil-type")],
         "SITE-CT"),
        ([("Cookie", "a=1"), ("cookie", "b=2; EvilCookie=1")], "SITE-CK"),
        ([("Cookie", "evilcookie=1"), ("Cookie", "a=1")], "SITE-CK"),
        ([("Cookie", "a=1"), ("User-Agent", "Mozilla/5.0"),
          ("x-site-evil", "1")], "SITE-XH"),
        ([("Cookie", "a=1"), ("User-Agent", "Mozilla/5.0"),
          ("Content-Type", "text/xml"), ("Cookie", "b=EvilCookie")], None),
        # nginx's hash of these names is that of user-agent and cookie,
        # modulo 64: the header filter passes them, they are not those
        ([("X-Collide-10", "EvilAgent/1"), ("User-Agent", "Mozilla/5.0")],
         None),
        ([("X-Collide-22", "EvilCookie=1"), ("Cookie", "a=1")], None),
    ]
    n = 0
    with Env(workdir, http=http) as env:
        for headers, rid in cases:
            _refused_by(env, "/owa/", headers, rid)
            n += 1
    return n


def _refused_by(env, path, headers, rid):
    """GET path with headers: refused and logged by rule rid alone, or,
    with rid None, passed and not logged."""
    before = len(env.nginx.lines())
    r = eg.request(env.nginx.port, "GET", path, headers)
    time.sleep(0.005)
    got = [json.loads(l.decode("utf-8"))["rule"]["id"]
           for l in env.nginx.lines()[before:]]
    want = 403 if rid else 200
    check(r.status == want and got == ([rid] if rid else []),
          "%s %s: status %d, log %s; want %d, %s"
          % (path, headers, r.status, got, want, rid))


@suite.test
def thousands_of_site_rules(workdir):
    """A site's own rules by the thousand next to the shipped ones: header
    names past the engine's slots, User-Agent and query pieces, cookie
    names, path scopes (the gates and the scope table, rules/README.md).
    Each kind still refuses what it names, under its own rule id, and the
    legitimate corpus still passes."""
    kinds = [
        ("H", "header:X-Block-%d present"),
        ("UA", "header:User-Agent contains BadScanner%d/"),
        ("Q", "query contains blockparam%d="),
        ("C", "cookie:BlockCookie%d present"),
        ("P", "path prefix /block%d/"),
    ]
    site = os.path.join(workdir, "site.rules")
    with open(site, "w") as f:
        for tag, match in kinds:
            for i in range(400):
                f.write(eg.rule_text("SITE-%s-%d" % (tag, i), "site",
                                     match % i))
    http = eg.GUARD_HTTP.format(mode="on", rules=eg.RULES, dir=workdir) \
        + "exchange_guard_rules %s;\n" % site
    n = 0
    with Env(workdir, http=http) as env:
        cases = [
            ("/owa/", [("x-block-399", "1")], "SITE-H-399"),
            ("/owa/", [("User-Agent", "Mozilla/5.0 BADSCANNER123/4")],
             "SITE-UA-123"),
            ("/ews/exchange.asmx?a=1&BlockParam77=1", [], "SITE-Q-77"),
            ("/owa/", [("Cookie", "a=1; blockcookie5=x; b=2")],
             "SITE-C-5"),
            ("/Block250/x", [], "SITE-P-250"),
            ("/owa/", [("X-Block-400", "1"),
                       ("User-Agent", "BadScanner400/1"),
                       ("Cookie", "BlockCookie400=1")], None),
            ("/ews/exchange.asmx?blockparam400=1", [], None),
        ]
        for path, headers, rid in cases:
            _refused_by(env, path, headers, rid)
            n += 1

        records = eg.load_corpora("legit")

        def checker(rec, resp, entries):
            if resp.status in (0, 403) or entries:
                return ["status %d, %d log lines" % (resp.status,
                                                     len(entries))]
            return []

        failures = _one_at_a_time(env, records, checker)
    check(not failures, "%d of %d legitimate requests wrong:\n  %s" % (
        len(failures), len(records), "\n  ".join(failures[:40])))
    return n + len(records)


if __name__ == "__main__":
    sys.exit(suite.run(sys.argv[1] if len(sys.argv) > 1 else None))
