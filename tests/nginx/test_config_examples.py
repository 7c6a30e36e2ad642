#!/usr/bin/env python3
"""The files in config-examples/ work in the real nginx with the module.

For each config-examples/*.conf:

  load      the example, included in http{} of a generated nginx.conf with
            its site-specific paths pointed into a temporary directory,
            passes "nginx -t";
  live      the same configuration serves requests: every Exchange virtual
            directory in any letter case reaches a TLS upstream (which nginx
            verifies), a ProxyLogon request is refused ("on") or passed and
            logged ("detect"), RPC_IN_DATA with a 1 GB Content-Length
            streams to the upstream, other paths are refused.

Plus one check that detect-first-rollout.conf is exchange-front.conf with
the guard in detect mode, so the two files cannot drift apart.

What is rewritten: certificate paths (to a self-signed certificate made
with openssl), log paths (into the temporary directory), the rules
directory (to this repository's rules/), the upstream servers (to a local
upstream) and the listen ports (to free local ports; IPv6 listens are
dropped).  Comments are left alone.

    tests/nginx/test_config_examples.py [NAME-SUBSTRING]

Python 3 standard library only.  EG_NGINX and EG_MODULE override the nginx
binary (/usr/sbin/nginx) and the module (build/...so).
"""

import glob
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "config-examples")
RULES = os.path.join(ROOT, "rules")
NGINX = os.environ.get("EG_NGINX", "/usr/sbin/nginx")
MODULE = os.environ.get(
    "EG_MODULE", os.path.join(ROOT, "build", "ngx_http_exchange_guard_module.so"))

HOST = "mail.contoso.com"
TIMEOUT = 10.0

# directive -> which generated file replaces its path argument
CERT_DIRECTIVES = {
    "ssl_certificate": "cert",
    "ssl_certificate_key": "key",
    "ssl_trusted_certificate": "cert",
    "ssl_client_certificate": "cert",
    "proxy_ssl_certificate": "cert",
    "proxy_ssl_certificate_key": "key",
    "proxy_ssl_trusted_certificate": "cert",
}
LOG_DIRECTIVES = ("access_log", "error_log", "exchange_guard_log")

DIRECTIVE = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*)(\s+)(\S+)(.*)$")


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=TIMEOUT):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise Failure("nothing listens on port %d" % port)


def make_cert(d):
    """A self-signed certificate for the public names, also used as the CA
    nginx trusts for the upstream."""
    cert = os.path.join(d, "cert.pem")
    key = os.path.join(d, "key.pem")
    p = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec",
         "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2",
         "-subj", "/CN=" + HOST,
         "-addext", "subjectAltName=DNS:%s,DNS:autodiscover.contoso.com,"
                    "IP:127.0.0.1" % HOST],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise RuntimeError("openssl failed:\n" + p.stdout.decode())
    return {"cert": cert, "key": key}


# ---------------------------------------------------------------- rewrite

class Site:
    """The local stand-ins for an example's site-specific values."""

    def __init__(self, workdir, certs, upstream_port):
        self.dir = workdir
        self.logs = os.path.join(workdir, "logs")
        self.certs = certs
        self.upstream_port = upstream_port
        self.ports = {}            # listen port in the example -> local port

    def port_for(self, port):
        if port not in self.ports:
            self.ports[port] = free_port()
        return self.ports[port]


def rewrite(text, site):
    out = []
    upstream_depth = 0

    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            out.append(line)
            continue

        code = stripped.split("#", 1)[0]
        m = DIRECTIVE.match(line)
        name = m.group(2) if m else ""

        if upstream_depth:
            upstream_depth += code.count("{") - code.count("}")
            if name == "server":
                line = "%sserver 127.0.0.1:%d%s" % (
                    m.group(1), site.upstream_port, m.group(5))
            out.append(line)
            continue

        if name == "upstream":
            upstream_depth = code.count("{") - code.count("}")

        elif name == "listen":
            addr = m.group(4).rstrip(";")
            if addr.startswith("["):
                line = "%s# listen %s dropped by the test" % (m.group(1), addr)
            else:
                port = int(addr.rsplit(":", 1)[-1])
                line = "%slisten 127.0.0.1:%d%s" % (
                    m.group(1), site.port_for(port),
                    m.group(4)[len(addr):] + m.group(5))

        elif name in CERT_DIRECTIVES:
            line = "%s%s %s;" % (m.group(1), name,
                                 site.certs[CERT_DIRECTIVES[name]])

        elif name in LOG_DIRECTIVES:
            path = m.group(4).rstrip(";")
            if path.startswith("/"):
                new = os.path.join(site.logs, os.path.basename(path))
                line = line.replace(path, new, 1)

        elif name == "exchange_guard_rules":
            path = m.group(4).rstrip(";")
            line = line.replace(
                path, os.path.join(RULES, os.path.basename(path)), 1)

        out.append(line)

    return "\n".join(out) + "\n"


def write_conf(site, example_text, live):
    os.makedirs(site.logs, exist_ok=True)
    example = os.path.join(site.dir, "example.conf")
    with open(example, "w") as f:
        f.write(rewrite(example_text, site))

    temp = os.path.join(site.dir, "temp")
    os.makedirs(temp, exist_ok=True)
    conf = os.path.join(site.dir, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""\
load_module {module};
pid {dir}/nginx.pid;
error_log {dir}/logs/error.log info;
{user}
events {{
    worker_connections 256;
}}

http {{
    access_log {dir}/logs/access.log;
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;

    include {example};
}}
""".format(module=MODULE, dir=site.dir, temp=temp, example=example,
           user="user root;" if live and os.geteuid() == 0 else ""))
    return conf


def nginx_t(site, conf):
    p = subprocess.run([NGINX, "-t", "-p", site.dir, "-c", conf],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def guard_mode(text):
    """The server-level mode: the first exchange_guard directive."""
    for line in text.splitlines():
        m = re.match(r"\s*exchange_guard\s+(on|off|detect)\s*;", line)
        if m:
            return m.group(1)
    return "off"


# ---------------------------------------------------------------- upstream

class Upstream:
    """A TLS upstream that records the requests it receives."""

    def __init__(self, certs):
        self.seen = []
        up = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                rec = {"method": self.command, "target": self.path,
                       "version": self.request_version,
                       "headers": {k.lower(): v for k, v
                                   in self.headers.items()}, "body": b""}
                up.seen.append(rec)
                if self.command == "RPC_IN_DATA":
                    # the client declared 1 GB: answer on the first bytes
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self.close_connection = True
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    rec["body"] = self.rfile.read(length)
                body = ("upstream %s %s" % (self.command, self.path)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_HEAD = do_RPC_IN_DATA = handle_any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certs["cert"], certs["key"])
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                            server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def targets(self):
        return [r["target"] for r in self.seen]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---------------------------------------------------------------- client

class Response:
    def __init__(self, data):
        self.raw = data
        head, _, self.body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2) if data else []
        self.status = int(parts[1]) if len(parts) > 1 else 0
        self.headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            self.headers[k.strip().lower().decode()] = v.strip().decode()


def connect(port, tls):
    s = socket.create_connection(("127.0.0.1", port), TIMEOUT)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname=HOST)
    return s


def request(port, method, target, headers=(), body=b"", tls=True):
    """One request with Connection: close; the whole answer, or status 0
    when the connection is closed without one."""
    head = "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % (
        method, target, HOST)
    for k, v in headers:
        head += "%s: %s\r\n" % (k, v)
    if body:
        head += "Content-Length: %d\r\n" % len(body)
    s = connect(port, tls)
    try:
        s.sendall(head.encode("latin-1") + b"\r\n" + body)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                break
            if not chunk:
                break
            data += chunk
        return Response(data)
    finally:
        s.close()


# ---------------------------------------------------------------- nginx

class Nginx:
    def __init__(self, site, conf):
        self.site = site
        self.conf = conf
        self.proc = subprocess.Popen(
            [NGINX, "-p", site.dir, "-c", conf, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_lines(self, name):
        path = os.path.join(self.site.logs, name)
        if not os.path.exists(path):
            return []
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()

    def guard_entries(self, name):
        return [json.loads(l) for l in self.log_lines(name)]


def log_name(text, directive, default):
    m = re.search(r"^\s*%s\s+(/\S+?)[;\s]" % directive, text, re.M)
    return os.path.basename(m.group(1)) if m else default


# ---------------------------------------------------------------- tests

VDIRS = ["/OWA/", "/owa/auth/logon.aspx", "/Ecp/", "/EWS/Exchange.asmx",
         "/Microsoft-Server-ActiveSync?Cmd=Ping&User=u&DeviceId=d",
         "/microsoft-server-activesync/default.eas",
         "/Autodiscover/Autodiscover.xml", "/autodiscover/autodiscover.json"
         "?Email=u%40contoso.com&Protocol=ActiveSync&RedirectCount=1",
         "/mapi/emsmdb/?MailboxId=x%40contoso.com", "/RPC/rpcproxy.dll",
         "/OAB/", "/PowerShell/", "/api/v2.0/me/messages"]


def test_load(path, certs):
    workdir = tempfile.mkdtemp(prefix="eg-example-")
    try:
        with open(path) as f:
            text = f.read()
        site = Site(workdir, certs, free_port())
        conf = write_conf(site, text, live=False)
        rc, out = nginx_t(site, conf)
        check(rc == 0, "nginx -t failed:\n" + out)
        check("load_module modules/ngx_http_exchange_guard_module.so;"
              in text, "no load_module line for nginx.conf in the comments")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_live(path, certs):
    with open(path) as f:
        text = f.read()
    mode = guard_mode(text)
    check(mode in ("on", "detect"),
          "the port 443 server's guard is %s, not on or detect" % mode)
    guard_log = log_name(text, "exchange_guard_log", "exchange_guard.log")
    access_log = log_name(text, "access_log", "access.log")

    workdir = tempfile.mkdtemp(prefix="eg-example-")
    upstream = Upstream(certs)
    nginx = None
    try:
        site = Site(workdir, certs, upstream.port)
        conf = write_conf(site, text, live=True)
        rc, out = nginx_t(site, conf)
        check(rc == 0, "nginx -t failed:\n" + out)
        check(443 in site.ports, "no listen 443")
        https = site.ports[443]
        nginx = Nginx(site, conf)
        wait_port(https)
        run_live_checks(nginx, site, upstream, https, mode, guard_log,
                        access_log)
    finally:
        if nginx:
            nginx.stop()
        upstream.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def run_live_checks(nginx, site, upstream, https, mode, guard_log,
                    access_log):
    # every virtual directory, any case, reaches the upstream unchanged
    for target in VDIRS:
        r = request(https, "GET", target)
        check(r.status == 200 and r.body.startswith(b"upstream GET "),
              "GET %s: status %d, body %r" % (target, r.status, r.body[:80]))
        check(target in upstream.targets(),
              "GET %s reached the upstream as %s"
              % (target, upstream.targets()[-1:]))
        seen = upstream.seen[-1]
        check("x-forwarded-for" in seen["headers"],
              "no X-Forwarded-For to the upstream")
        check(seen["headers"].get("host") == HOST,
              "Host %s to the upstream" % seen["headers"].get("host"))
        # keepalive to the upstream: HTTP/1.1, no "Connection: close"
        check(seen["version"] == "HTTP/1.1"
              and "connection" not in seen["headers"],
              "upstream request %s, Connection: %s"
              % (seen["version"], seen["headers"].get("connection")))

    # Exchange's own backend cookie passes and is not logged
    before = len(nginx.log_lines(guard_log))
    r = request(https, "GET", "/ecp/default.aspx",
                [("Cookie", "X-BEResource=EX01.contoso.local~1942062522")])
    check(r.status == 200, "legitimate X-BEResource: status %d" % r.status)
    check(len(nginx.log_lines(guard_log)) == before,
          "legitimate X-BEResource was logged")

    # an ECP DDIService call, whose body the guard reads before proxying:
    # the body still reaches Exchange whole
    body = json.dumps({"properties": {"Parameters": {
        "ExternalUrl": "https://mail.contoso.com/OAB"}}}).encode()
    target = "/ecp/DDI/DDIService.svc/SetObject?schema=OABVirtualDirectory"
    r = request(https, "POST", target,
                [("Content-Type", "application/json")], body=body)
    check(r.status == 200 and upstream.seen[-1]["target"] == target
          and upstream.seen[-1]["body"] == body,
          "DDIService SetObject: status %d, upstream got %r"
          % (r.status, upstream.seen[-1]["body"][:80]))

    # ProxyLogon: refused with "on", passed and logged with "detect"
    target = "/ecp/y.js"
    n_up = len(upstream.seen)
    r = request(https, "POST", target,
                [("Cookie", "X-BEResource=localhost~1942062522"),
                 ("Content-Type", "text/xml")], body=b"<x/>")
    reached = len(upstream.seen) > n_up
    if mode == "on":
        check(r.status in (403, 0), "ProxyLogon: status %d" % r.status)
        check(not reached, "ProxyLogon reached the upstream")
    else:
        check(r.status == 200 and reached,
              "ProxyLogon in %s mode: status %d, reached %s"
              % (mode, r.status, reached))
    want = {"on": "blocked", "detect": "detected"}.get(mode)
    if want:
        time.sleep(0.05)
        entries = nginx.guard_entries(guard_log)
        check(entries, "no line in %s" % guard_log)
        e = entries[-1]
        ids = [m["id"] for m in e["exchange_guard"]["matches"]]
        check(e["event"]["action"] == want and "EG-PL-001" in ids,
              "guard log: action %s, matches %s"
              % (e["event"]["action"], ids))
        rid = e["http"]["request"]["id"]
        lines = [l for l in nginx.log_lines(access_log)
                 if "rid=" + rid in l]
        check(lines and "eg_action=" + want in lines[0]
              and "EG-PL-001" in lines[0],
              "access log line for %s: %s" % (rid, lines))

        # exchange_guard_backends is in force: a well-formed cookie naming
        # a host that is not a listed Exchange server is refused
        n_up = len(upstream.seen)
        r = request(https, "GET", "/ecp/x.js",
                    [("Cookie", "X-BEResource=ex99.contoso.local~1942062522")])
        time.sleep(0.05)
        e = nginx.guard_entries(guard_log)[-1]
        check(e["url"]["original"] == "/ecp/x.js"
              and e["rule"]["id"] == "EG-PL-001"
              and (mode != "on" or (r.status in (403, 0)
                                    and len(upstream.seen) == n_up)),
              "unlisted backend host: status %d, logged as %s %s"
              % (r.status, e["url"]["original"], e["rule"]["id"]))

        # a web-shell probe outside the virtual directories: the guard
        # logs it, nginx refuses it, Exchange never sees it
        n_up = len(upstream.seen)
        r = request(https, "GET", "/aspnet_client/shell.aspx")
        check(r.status in (403, 0) and len(upstream.seen) == n_up,
              "/aspnet_client/shell.aspx: status %d" % r.status)
        time.sleep(0.05)
        e = nginx.guard_entries(guard_log)[-1]
        check(e["rule"]["id"] == "EG-WS-001",
              "web shell logged as %s" % e["rule"]["id"])

        # logrotate's postrotate ("nginx -s reopen", SIGUSR1) reopens the
        # guard's log like an access log
        path = os.path.join(site.logs, guard_log)
        os.rename(path, path + ".1")
        nginx.proc.send_signal(signal.SIGUSR1)
        deadline = time.time() + 5
        while not os.path.exists(path) and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        request(https, "GET", "/aspnet_client/rotated.aspx")
        time.sleep(0.05)
        lines = nginx.log_lines(guard_log)
        check(len(lines) == 1 and "rotated.aspx" in lines[0],
              "after reopen, %s holds %d lines" % (guard_log, len(lines)))

    # not an Exchange virtual directory: refused, not proxied
    n_up = len(upstream.seen)
    for target in ("/owafoo", "/iisstart.htm", "/exchange"):
        r = request(https, "GET", target)
        check(r.status == 403, "GET %s: status %d" % (target, r.status))
    check(len(upstream.seen) == n_up, "a non-Exchange path was proxied")

    r = request(https, "GET", "/")
    check(r.status in (301, 302)
          and r.headers.get("location", "").endswith("/owa/"),
          "GET /: status %d, Location %s"
          % (r.status, r.headers.get("location")))

    if 80 in site.ports:
        r = request(site.ports[80], "GET", "/owa/", tls=False)
        check(r.status in (301, 302, 307, 308)
              and r.headers.get("location", "").startswith("https://"),
              "port 80: status %d" % r.status)

    # RPC over HTTP: a 1 GB RPC_IN_DATA is streamed to the upstream as it
    # arrives (no 413, no spooling of the body first)
    s = connect(https, True)
    try:
        s.sendall(("RPC_IN_DATA /Rpc/RpcProxy.dll?ex01.contoso.local:6001 "
                   "HTTP/1.1\r\nHost: %s\r\nContent-Length: 1073741824\r\n"
                   "Content-Type: application/rpc\r\n\r\n" % HOST).encode()
                  + b"\x05\x00\x14\x03" * 4)
        deadline = time.time() + 5
        while time.time() < deadline:
            if any(r["method"] == "RPC_IN_DATA" for r in upstream.seen):
                break
            time.sleep(0.02)
        seen = [r for r in upstream.seen if r["method"] == "RPC_IN_DATA"]
        check(seen, "RPC_IN_DATA with a 1 GB body did not reach the "
                    "upstream while the body was still arriving")
        check(seen[0]["headers"].get("content-length") == "1073741824",
              "RPC_IN_DATA Content-Length %s"
              % seen[0]["headers"].get("content-length"))
    finally:
        s.close()


def strip_conf(text):
    """Directives only: no comments, blank lines or indentation."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip() if not line.strip().startswith(
            "#") else ""
        if line:
            out.append(re.sub(r"\s+", " ", line))
    return out


def test_rollout_matches_front(certs):
    front = os.path.join(EXAMPLES, "exchange-front.conf")
    rollout = os.path.join(EXAMPLES, "detect-first-rollout.conf")
    with open(front) as f:
        a = strip_conf(f.read())
    with open(rollout) as f:
        b = strip_conf(f.read())
    check("exchange_guard detect;" in b, "rollout file is not in detect mode")
    b = ["exchange_guard on;" if l == "exchange_guard detect;" else l
         for l in b]
    if a != b:
        import difflib
        diff = "\n".join(difflib.unified_diff(a, b, "exchange-front.conf",
                                              "detect-first-rollout.conf",
                                              lineterm="", n=1))
        raise Failure("the two files differ beyond the mode:\n" + diff)


def main():
    only = sys.argv[1] if len(sys.argv) > 1 else None
    if not os.path.exists(MODULE):
        print("module %s missing: run auto/build" % MODULE)
        print("0 passed, 1 failed")
        return 1

    tests = []
    for path in sorted(glob.glob(os.path.join(EXAMPLES, "*.conf"))):
        name = os.path.basename(path)
        tests.append(("load " + name, lambda c, p=path: test_load(p, c)))
        tests.append(("live " + name, lambda c, p=path: test_live(p, c)))
    if os.path.exists(os.path.join(EXAMPLES, "detect-first-rollout.conf")):
        tests.append(("rollout file is the front file in detect mode",
                      test_rollout_matches_front))

    certdir = tempfile.mkdtemp(prefix="eg-example-certs-")
    passed = failed = 0
    try:
        certs = make_cert(certdir)
        for name, fn in tests:
            if only and only not in name:
                continue
            t0 = time.time()
            try:
                fn(certs)
                passed += 1
                print("ok   %-55s %.2fs" % (name, time.time() - t0))
            except Exception as e:     # a failure, or a broken harness
                failed += 1
                kind = "FAIL" if isinstance(e, Failure) else "ERROR"
                print("%s %s: %s" % (kind, name, e))
            sys.stdout.flush()
    finally:
        shutil.rmtree(certdir, ignore_errors=True)

    if not tests:
        failed += 1
        print("FAIL no .conf files in %s" % EXAMPLES)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
