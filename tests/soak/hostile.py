#!/usr/bin/env python3
"""Hostile bytes in every field the guard logs.

About twenty refused requests, each carrying quotes, backslashes, control
bytes, invalid UTF-8, 64 KB values or text crafted to look like JSON in one
logged field (url.original/path/query, user_agent.original,
server.address, exchange_guard.value from a cookie, a header or an
argument, matches[].value).  Each must be answered 403 and produce exactly
one log line that is strict UTF-8, one JSON object, with the field escaped
back to what was sent (or a truncated, still valid, prefix of it).

Used by tests/soak/soak.py against its running guard; needs
`large_client_header_buffers 4 128k` so that 64 KB values reach the module.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
sys.dont_write_bytecode = True

import eg  # noqa: E402

QB = b'"\\'                                         # quote, backslash
CTRL = bytes(range(1, 9)) + b"\x0b\x0c" + bytes(range(0x0e, 0x20)) + b"\x7f\t"
BAD_UTF8 = b"\xff\xfe\xc0\xaf\xed\xa0\x80\xf5\x80\x80\x80\xe2\x82\xc3"
JSONISH = b'","rule":{"id":"FAKE-1"},"event":{"action":"allowed"},"x":"'
LINEISH = b'"}\\n{"@timestamp":"1970-01-01T00:00:00.000Z","rule":{"id":"X"}}'
VALID_UTF8 = "\u2028\u2029\ufeff\U0001f4a9 \u00e9\u00e8 \u202e".encode()
BIG = 64 * 1024

SHELL = b"/aspnet_client/x.aspx"            # EG-WS-001
BE = b"X-BEResource="                       # EG-PL-001 (cookie value logged)


def _req(target, headers, method=b"GET", host=b"mail.contoso.com"):
    raw = method + b" " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n"
    for n, v in headers:
        raw += n + b": " + v + b"\r\n"
    return raw + b"\r\n"


def cases():
    """(name, raw request, {json path: sent bytes})"""
    c = []
    ua = lambda v: [(b"User-Agent", v)]         # noqa: E731
    c.append(("ua_quotes_backslashes", _req(SHELL, ua(QB * 20)),
              {"user_agent.original": QB * 20}))
    c.append(("ua_control_bytes", _req(SHELL, ua(b"a" + CTRL + b"z")),
              {"user_agent.original": b"a" + CTRL + b"z"}))
    c.append(("ua_invalid_utf8", _req(SHELL, ua(BAD_UTF8 * 3)),
              {"user_agent.original": BAD_UTF8 * 3}))
    c.append(("ua_valid_utf8_kept", _req(SHELL, ua(VALID_UTF8)),
              {"user_agent.original": VALID_UTF8}))
    c.append(("ua_64k", _req(SHELL, ua((b"U" + QB + b"\x01\xff") * (BIG // 5))),
              {"user_agent.original": (b"U" + QB + b"\x01\xff") * (BIG // 5)}))
    c.append(("ua_json_lookalike", _req(SHELL, ua(JSONISH + LINEISH)),
              {"user_agent.original": JSONISH + LINEISH}))
    v = b"a" + QB + JSONISH + b"~1"
    c.append(("cookie_value_json_lookalike",
              _req(b"/ecp/y.js", [(b"Cookie", BE + v)]),
              {"exchange_guard.value": v}))
    v = b"b" + CTRL.replace(b"\x7f", b"") + BAD_UTF8 + b"~1"
    c.append(("cookie_value_control_and_invalid_utf8",
              _req(b"/ecp/y.js", [(b"Cookie", BE + v)]),
              {"exchange_guard.value": v}))
    v = (b"c\xc3\xa9" + QB) * (60 * 1024 // 5) + b"~1"
    c.append(("cookie_value_60k", _req(b"/ecp/y.js", [(b"Cookie", BE + v)]),
              {"exchange_guard.value": v}))
    c.append(("cookie_header_over_64k_limit",
              _req(b"/owa/", [(b"Cookie", b"a=" + b"\xff\"" * (BIG // 2 + 8))]),
              {}))
    c.append(("many_cookie_headers_hostile_names",
              _req(b"/ecp/y.js", [(b"Cookie", b"\"\\\xff" + b"=1")] * 30
                   + [(b"Cookie", BE + b"\"\\~1")]),
              {"exchange_guard.value": b"\"\\~1"}))
    # (%00 in the path: nginx itself answers 400)
    t = b"/aspnet_client/%22%5C%01%1f%7F%FF%C0%AF%ED%A0%80" + b".aspx"
    c.append(("path_percent_encoded_hostile", _req(t, []),
              {"url.original": t}))
    t = b"/aspnet_client/\xff\xfe\"\\{}\xc3\xa9.aspx"
    c.append(("path_raw_hostile_bytes", _req(t, []), {"url.original": t}))
    t = SHELL + b"?q=%22%5C%00%ff&j=" + JSONISH.replace(b'"', b"%22") \
        + b"&r=\"\\\xff"
    c.append(("query_hostile", _req(t, []), {"url.original": t}))
    t = b"/aspnet_client/" + b"A\"\\" * (BIG // 3) + b".aspx"
    c.append(("target_64k", _req(t, []), {"url.original": t}))
    h = b"mail\"\\\xff.contoso.com"
    c.append(("host_hostile", _req(SHELL, [], host=h),
              {"server.address": h.lower()}))
    t = b"/powershell/?X-Rps-CAT=%22%5C%01%FF" + JSONISH.replace(b'"', b"%22")
    c.append(("decoded_query_value_x_rps_cat", _req(t, []),
              {"url.original": t,
               "exchange_guard.value": b"X-Rps-CAT=\"\\\x01\xff" + JSONISH}))
    v = b"owa/\"\\\xff/../powershell" + JSONISH
    c.append(("header_value_explicit_logon_user",
              _req(b"/owa/", [(b"X-OWA-ExplicitLogonUser", v)]),
              {"exchange_guard.value": v}))
    t = (b"/autodiscover/autodiscover.json?@evil.com/mapi/nspi/?&Email="
         b"autodiscover/autodiscover.json%3F@evil.com&x=%22%5C%FF%01")
    c.append(("arg_value_hostile", _req(t, [(b"User-Agent", JSONISH)]),
              {"url.original": t, "user_agent.original": JSONISH}))
    t = b"/aspnet_client/x.aspx?" + b"%25" * 200 + b"22"
    c.append(("query_past_decode_rounds", _req(t, [(b"Cookie", BE + QB)]),
              {"url.original": t}))
    return c


def _get(obj, path):
    for k in path.split("."):
        obj = obj[k]
    return obj


def _expect(sent):
    """What the log should hold for the bytes sent: invalid UTF-8 gone to
    U+FFFD (how many per bad sequence is the writer's business)."""
    return sent.decode("utf-8", "replace")


def _same_modulo_replacement(got, sent):
    """got equals sent decoded, allowing any run of U+FFFD in got where
    sent has undecodable bytes, and allowing truncation of got."""
    want = _expect(sent)
    squash = lambda s: "".join(                      # noqa: E731
        ch for i, ch in enumerate(s) if ch != "\ufffd"
        or i == 0 or s[i - 1] != "\ufffd")
    g, w = squash(got), squash(want)
    return w.startswith(g) if len(g) < len(w) else g == w


def run(port, guard_lines, settle=0.02):
    """Send every case; guard_lines() returns the log's lines so far.
    Returns a list of (name, ok, detail)."""
    out = []
    for name, raw, fields in cases():
        before = len(guard_lines())
        resp = eg.send_raw(port, raw)
        deadline = time.time() + 5
        lines = guard_lines()[before:]
        while not lines and time.time() < deadline:
            time.sleep(settle)
            lines = guard_lines()[before:]
        time.sleep(settle)
        lines = guard_lines()[before:]
        errs = []
        if resp.status != 403:
            errs.append("status %d, want 403" % resp.status)
        if len(lines) != 1:
            errs.append("%d log lines, want 1" % len(lines))
        for l in lines:
            try:
                text = l.decode("utf-8", "strict")
                e = json.loads(text)
            except ValueError as exc:
                errs.append("invalid line (%s): %r" % (exc, l[:120]))
                continue
            if len(l) > 200000:
                errs.append("line of %d bytes" % len(l))
            if e.get("event", {}).get("action") != "blocked":
                errs.append("event.action %r" % e.get("event"))
            if "FAKE-1" in json.dumps(e["rule"]):
                errs.append("crafted value leaked into rule")
            for path, sent in fields.items():
                try:
                    got = _get(e, path)
                except (KeyError, TypeError):
                    errs.append("no %s" % path)
                    continue
                if not _same_modulo_replacement(got, sent):
                    errs.append("%s: %r not what was sent" % (path, got[:80]))
        out.append((name, not errs, "; ".join(errs)))
    return out


if __name__ == "__main__":
    # standalone: against a running guard, tests/soak/hostile.py PORT LOG
    port, log = int(sys.argv[1]), sys.argv[2]

    def lines():
        with open(log, "rb") as f:
            return f.read().split(b"\n")[:-1]

    bad = 0
    for name, ok, detail in run(port, lines):
        print("%s %s %s" % ("ok  " if ok else "FAIL", name, detail))
        bad += not ok
    print("%d passed, %d failed" % (len(cases()) - bad, bad))
    sys.exit(1 if bad else 0)
