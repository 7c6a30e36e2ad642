#!/usr/bin/env python3
"""Generate the fuzzers' seed corpora, tests/fuzz/seeds/<target>/.

    tests/fuzz/make_seeds.py [--out DIR]

From the request corpora (tests/corpus/**/*.http, the format eg-check
reads: records start at "### ID [expect=RULE] [escapes]" lines, the
request follows, an "escapes" record has \\xHH \\r \\n \\t \\\\ escapes):

    fuzz_engine     every record's raw request (CRLF line ends, body
                    de-chunked as nginx hands it over) behind the 4-byte
                    head fuzz_engine.c reads
    fuzz_cookie     every record's Cookie header values, one per line,
                    behind one byte (the small "max")
    fuzz_uri        every request-target behind one byte (rounds, '+')
    fuzz_json_body  every body behind one byte (0: scan to the end)
    fuzz_log        every record as the fields fuzz_log.c reads

and from rules/*.rules for fuzz_rules (each file, all of them together,
and a few broken ones).  Output is deterministic: the directories are
emptied and refilled, one file per distinct input, named after the
corpus file and record.
"""

import argparse
import glob
import hashlib
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGETS = ["fuzz_cookie", "fuzz_uri", "fuzz_rules", "fuzz_json_body",
           "fuzz_log", "fuzz_engine"]


def unescape(b):
    out = bytearray()
    i = 0
    while i < len(b):
        c = b[i]
        if c == 0x5c and i + 1 < len(b):
            n = b[i + 1]
            if n == ord('r'):
                out.append(13); i += 2; continue
            if n == ord('n'):
                out.append(10); i += 2; continue
            if n == ord('t'):
                out.append(9); i += 2; continue
            if n == 0x5c:
                out.append(0x5c); i += 2; continue
            if n == ord('x') and i + 3 < len(b) and \
                    re.match(rb'[0-9a-fA-F]{2}', b[i + 2:i + 4]):
                out.append(int(b[i + 2:i + 4], 16)); i += 4; continue
        out.append(c)
        i += 1
    return bytes(out)


def records(path):
    """(id, flags, raw bytes) for every record of a corpus file."""
    text = open(path, "rb").read()
    starts = [m.start() for m in re.finditer(rb'(?m)^### ', text)]
    for k, s in enumerate(starts):
        e = starts[k + 1] - 1 if k + 1 < len(starts) else len(text)
        eol = text.find(b"\n", s, e)
        if eol < 0:
            continue
        words = text[s + 4:eol].split()
        if not words:
            continue
        rid = words[0].decode("ascii", "replace")
        flags = [w.decode("ascii", "replace") for w in words[1:]]
        raw = text[eol + 1:e]
        if "escapes" in flags:
            raw = unescape(raw)
        yield rid, flags, raw


def dechunk(b):
    out = bytearray()
    p = 0
    while p < len(b):
        m = re.match(rb'[0-9a-fA-F]*', b[p:])
        size = int(m.group(0), 16) if m.group(0) else 0
        nl = b.find(b"\n", p)
        if nl < 0:
            break
        p = nl + 1
        if size == 0:
            break
        out += b[p:p + size]
        p += size + 2
    return bytes(out)


def parse(raw):
    """(method, target, headers [(name, value)], body) as eg-check reads."""
    lines = raw.split(b"\n")
    reqline = lines[0].rstrip(b"\r")
    sp = reqline.find(b" ")
    if sp < 0:
        return None
    method = reqline[:sp]
    rest = reqline[sp + 1:]
    last = rest.rfind(b" ")
    target = rest[:last] if last > 0 else rest
    version = rest[last + 1:] if last > 0 else b"HTTP/1.1"
    headers = []
    body = b""
    i = 1
    while i < len(lines):
        line = lines[i]
        if line.strip(b" \t\r") == b"":
            body = b"\n".join(lines[i + 1:])
            break
        c = line.find(b":")
        if c < 0:
            return None
        headers.append((line[:c].strip(b" \t"), line[c + 1:].strip(b" \t\r")))
        i += 1
    if any(n.lower() == b"transfer-encoding" and b"chunked" in v.lower()
           for n, v in headers):
        body = dechunk(body)
    return method, target, version, headers, body


def hval(headers, name):
    for n, v in headers:
        if n.lower() == name.lower():
            return v
    return b""


class Out:
    def __init__(self, base):
        self.base = base
        self.seen = {}
        for t in TARGETS:
            d = os.path.join(base, t)
            os.makedirs(d, exist_ok=True)
            for f in os.listdir(d):
                os.unlink(os.path.join(d, f))
            self.seen[t] = set()

    def put(self, target, name, data):
        h = hashlib.sha1(data).hexdigest()
        if h in self.seen[target]:
            return
        self.seen[target].add(h)
        name = re.sub(r'[^A-Za-z0-9._-]', '_', name)[:80]
        with open(os.path.join(self.base, target, name + "-" + h[:8]), "wb") as f:
            f.write(data)

    def count(self, target):
        return len(self.seen[target])


def log_seed(idx, req):
    method, target, version, headers, body = req
    cookies = b"; ".join(v for n, v in headers if n.lower() == b"cookie")
    fields = [b"192.0.2.%d" % (idx % 250 + 1), hval(headers, b"X-Forwarded-For"),
              method, target, hval(headers, b"User-Agent"),
              b"%016x" % (idx * 2654435761 % (1 << 64)), hval(headers, b"Host"),
              cookies, body, hval(headers, b"Referer")]
    used = set(b"".join(fields))
    sep = next((c for c in [10, 0, 0xff, 0x1e, 0x7c] if c not in used), None)
    if sep is None:
        sep = next((c for c in range(256) if c not in used), None)
    if sep is None:
        return None
    msec = 1700000000000 + idx * 1009
    head = bytearray(msec.to_bytes(8, "little"))
    head += (40000 + idx % 20000).to_bytes(2, "little")
    head += (403 if idx % 2 == 0 else 0).to_bytes(2, "little")
    head.append((idx * 37) & 0xff)          # flags
    head.append(sep)
    head.append((idx * 13) & 0xff)          # escape max
    head.append(0)
    return bytes(head) + bytes([sep]).join(fields)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fuzz", "seeds"))
    args = ap.parse_args()

    out = Out(args.out)
    files = sorted(glob.glob(os.path.join(ROOT, "tests", "corpus", "**", "*.http"),
                             recursive=True))
    idx = 0

    for path in files:
        stem = os.path.relpath(path, os.path.join(ROOT, "tests", "corpus"))
        stem = stem[:-5].replace(os.sep, "-")

        for rid, flags, raw in records(path):
            req = parse(raw)
            name = stem + "-" + rid
            idx += 1

            # the raw request, as the harness parses it: CRLF head, then body
            if req is None:
                out.put("fuzz_engine", name, b"\x00\x00\xfc\x00" + raw)
                continue

            method, target, version, headers, body = req
            headtext = method + b" " + target + b" " + version + b"\r\n"
            headtext += b"".join(n + b": " + v + b"\r\n" for n, v in headers)
            headtext += b"\r\n"
            # defaults; every third with backends + trusted networks set and
            # the body pending first; every fifth with small limits
            h = bytearray(b"\x00\x00\xfc\x00")
            if idx % 3 == 0:
                h[3] = 0x23
            if idx % 5 == 0:
                h[0], h[1], h[2] = 3, 8, 0x01
            out.put("fuzz_engine", name, bytes(h) + headtext + body)

            cookies = [v for n, v in headers if n.lower() == b"cookie"]
            if cookies:
                out.put("fuzz_cookie", name,
                        bytes([idx % 8]) + b"\n".join(cookies))

            out.put("fuzz_uri", name, bytes([idx % 8]) + target)

            if body:
                out.put("fuzz_json_body", name, b"\x00" + body)

            seed = log_seed(idx, req)
            if seed:
                out.put("fuzz_log", name, seed)

    # the rule files: each, all together, and some broken ones

    rules = sorted(glob.glob(os.path.join(ROOT, "rules", "*.rules")))
    every = b""
    for path in rules:
        data = open(path, "rb").read()
        out.put("fuzz_rules", os.path.basename(path), data)
        every += data + b"\n"
    if every:
        out.put("fuzz_rules", "all", every)

    broken = {
        "unterminated": b'rule X\n name "abc\nend\n',
        "no-end": b'rule X\n name "n"\n cve CVE-2021-26855\n action block\n'
                  b' match path prefix /a\n',
        "bad-regex": b"rule X\n name \"n\"\n cve CVE-2021-26855\n action log\n"
                     b" match path regex '(unclosed'\nend\n",
        "every-field": b"rule A\n name \"every field\"\n cve CVE-2021-26855 "
                       b"CVE-2022-41040\n action block\n"
                       b" match method not is GET HEAD\n"
                       b" match path prefix /ecp/ /owa/\n"
                       b" match query contains x\n"
                       b" match uri suffix .aspx\n"
                       b" match cookie:X-BEResource backend\n"
                       b" match cookie-names regex '^x-'\n"
                       b" match cookies contains X-BEResource=\n"
                       b" match header:User-Agent present\n"
                       b" match arg:schema is ResetOABVirtualDirectory\n"
                       b" match uri-decoded contains autodiscover\n"
                       b" match param:Email contains @\n"
                       b" match body contains runat\n"
                       b" match json:FilePathName regex '\\.aspx$'\n"
                       b" match json-values regex '<%'\n"
                       b" match form:a present\n"
                       b" match client untrusted\n"
                       b"end\n",
        "quotes": b"# comment\nrule Q.1_x # trailing\n name 'single \"q\" \\'\n"
                  b" cve CVE-2021-26855\n action log\n"
                  b" match header:X regex \"a\\\"b\\\\c\\d\"\nend\n",
        "nul": b"rule X\n name \"a\x00b\"\nend\n",
        "note": b"rule N-1\n name \"a note\"\n cve CVE-2021-26855\n"
                b" action note\n match path regex '^/'\nend\n"
                b"rule L-1\n name \"logged\"\n cve CVE-2021-26855\n"
                b" action log\n match method is POST\nend\n",
    }
    for k in sorted(broken):
        out.put("fuzz_rules", k, broken[k])

    # a few JSON bodies the corpora may not have

    json_extra = {
        "nested": b'\x00{"a":[{"b":"x"},"y",["z",{"c":"w"}]],"d":{"e":"f"}}',
        "escapes": b'\x03{"FilePathName":"\\\\\\\\127.0.0.1\\\\c$\\u003c\\ud83d'
                   b'\\ude00\\/x","k\\u0041":"\\"q\\""}',
        "utf16le": b"\x00\xff\xfe" + '{"a":"\u00e9x"}'.encode("utf-16-le"),
        "utf16be-nobom": b"\x00" + '{"a":"b"}'.encode("utf-16-be"),
        "deep": b"\x00" + b"[" * 70 + b'{"k":"v"}' + b"]" * 70,
        "broken": b'\x00{"a":"unterminated\\',
    }
    for k in sorted(json_extra):
        out.put("fuzz_json_body", k, json_extra[k])

    uri_extra = {
        "relative": b"\x00a/b/../c",
        "absolute": b"\x01http://host:80/owa/%2e%2e/ecp/x.aspx?a=b",
        "iis-u": b"\x02/%u002e%u002e/%U005cecp/auth/x.aspx::$DATA. ",
        "overlong": b"\x03/owa/%c0%ae%c0%ae/%c0%afecp",
        "cookieless": b"\x00/owa/(S(abc))/auth/x.aspx?q=a+b%2bc",
        "nested-pct": b"\x03/ecp/%25252e%25252e/x",
    }
    for k in sorted(uri_extra):
        out.put("fuzz_uri", k, uri_extra[k])

    cookie_extra = {
        "whitespace": b"\x03 a = 1 ;\t;b\n=;;  lone  \nX-BEResource=localhost~1",
        "unicode-space": b"\x01\xc2\xa0X-BEResource\xe2\x80\x8b=x~1;\x85a=b\xa0",
    }
    for k in sorted(cookie_extra):
        out.put("fuzz_cookie", k, cookie_extra[k])

    # whole requests the corpora may not have: multipart, many Cookie
    # headers, many cookies, a form body, detect mode with small limits

    engine_extra = {
        "multipart-email": b"\x00\x00\xfc\x00POST /autodiscover/autodiscover.json"
            b"?a=b HTTP/1.1\r\nHost: mail\r\nContent-Type: multipart/form-data; "
            b"boundary=XyZ\r\n\r\n--XyZ\r\nContent-Disposition: form-data; "
            b"name=\"Email\"\r\n\r\nautodiscover/autodiscover.json?@x.com/"
            b"powershell\r\n--XyZ\r\nContent-Disposition: form-data; name=x"
            b"\r\n\r\ny\r\n--XyZ--\r\n",
        "form-param": b"\x00\x00\xfc\x20POST /autodiscover/autodiscover.json "
            b"HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"\r\nEmail=autodiscover/autodiscover.json%3F%40x.com%2Fowa%2F&"
            b"Protocol=Powershell",
        "many-cookie-headers": b"\x00\x00\xfc\x00GET /ecp/ HTTP/1.1\r\n"
            + b"".join(b"Cookie: c%d=%d\r\n" % (i, i) for i in range(70))
            + b"Cookie: X-BEResource=localhost~1\r\n\r\n",
        "many-cookies": b"\x05\x04\x01\x01GET /owa/ HTTP/1.1\r\nCookie: "
            + b"; ".join(b"c%d=%d" % (i, i) for i in range(40))
            + b"; X-AnonResource-Backend=EX01~1; X-BEResource=EX01.contoso.local"
              b"~1942062522\r\n\r\n",
        "detect-limit": b"\x01\x00\xfc\x40GET /owa/ HTTP/1.1\r\nHost: h\r\n"
            b"Cookie: a=1; X-BEResource=EX01~1\r\n\r\n",
        "xff-untrusted": b"\x00\x00\xfc\x1eGET /ecp/ HTTP/1.1\r\n"
            b"X-Forwarded-For: 2001:db8::1\r\n\r\n",
    }
    for k in sorted(engine_extra):
        out.put("fuzz_engine", k, engine_extra[k])

    for t in TARGETS:
        print("%s: %d seeds" % (t, out.count(t)))

    return 0


if __name__ == "__main__":
    sys.exit(main())
