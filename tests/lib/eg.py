"""Shared helpers for exchange_guard's real-nginx tests.

Starts the real nginx binary with the built module, the shipped rules and
the Exchange simulator as upstream, and talks to it with raw HTTP over TCP.
Python 3 standard library only.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
NGINX = os.path.abspath(os.environ.get("EG_NGINX", "/usr/sbin/nginx"))
MODULE = os.path.abspath(os.environ.get(
    "EG_MODULE",
    os.path.join(ROOT, "build", "ngx_http_exchange_guard_module.so")))
RULES = os.path.join(ROOT, "rules")
SIM = os.path.join(ROOT, "tests", "sim", "exchange_sim.py")
DEFAULT_HOST = "mail.contoso.com"


# ---------------------------------------------------------------- corpus

class Record:
    def __init__(self, path, rid, flags, head, body):
        self.path = path
        self.id = rid
        self.flags = flags
        self.expect = flags.get("expect")
        self.cves = [c for c in flags.get("cve", "").split(",") if c]
        self.method, self.target, self.headers = head
        self.body = body

    def raw(self, extra_headers=()):
        """The request bytes: CRLF head, Host and Content-Length added."""
        names = {n.lower() for n, _ in self.headers}
        headers = list(self.headers)
        if "host" not in names:
            headers.insert(0, ("Host", DEFAULT_HOST.encode()))
        if self.body and "content-length" not in names \
                and "transfer-encoding" not in names:
            headers.append(("Content-Length", b"%d" % len(self.body)))
        headers.extend(extra_headers)
        head = b"%s %s HTTP/1.1\r\n" % (self.method, self.target)
        for n, v in headers:
            head += n.encode("latin-1") + b": " + v + b"\r\n"
        return head + b"\r\n" + self.body

    def header(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]


def _unescape(text):
    def repl(m):
        s = m.group(0)
        return {"\\r": "\r", "\\n": "\n", "\\t": "\t", "\\\\": "\\"}.get(
            s) or chr(int(s[2:], 16))
    return re.sub(r"\\x[0-9a-fA-F]{2}|\\[rnt\\]", repl, text)


def load_corpus(path):
    """Records of one .http file, in order."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    records = []
    chunks = re.split(r"^### ", text, flags=re.M)
    for chunk in chunks[1:]:
        first, _, rest = chunk.partition("\n")
        words = first.split()
        rid, flags = words[0], {}
        for w in words[1:]:
            k, _, v = w.partition("=")
            flags[k] = v if v else True
        if rest.endswith("\n"):
            rest = rest[:-1]
        if "escapes" in flags:
            rest = _unescape(rest)
        head, sep, body = rest.partition("\n\n")
        lines = [l for l in head.split("\n") if l.strip() != ""]
        if not lines:
            raise ValueError("%s: record %s has no request line" % (path, rid))
        reqline = lines[0].encode("utf-8")
        parts = reqline.split(b" ")
        if len(parts) < 3:
            raise ValueError("%s: record %s: bad request line" % (path, rid))
        method, target = parts[0], b" ".join(parts[1:-1])
        headers = []
        for l in lines[1:]:
            n, _, v = l.partition(":")
            headers.append((n.strip(), v.strip().encode("utf-8")))
        body = body.encode("utf-8") if sep else b""
        if "escapes" in flags:
            method = method.decode("utf-8").encode("latin-1")
            target = target.decode("utf-8").encode("latin-1")
            headers = [(n, v.decode("utf-8").encode("latin-1"))
                       for n, v in headers]
            body = body.decode("utf-8").encode("latin-1")
        records.append(Record(path, rid, flags, (method, target, headers),
                              body))
    return records


def load_corpora(kind):
    """Every record of tests/corpus/<kind>/*.http."""
    d = os.path.join(ROOT, "tests", "corpus", kind)
    out = []
    for name in sorted(os.listdir(d)):
        if name.endswith(".http"):
            out.extend(load_corpus(os.path.join(d, name)))
    return out


# ---------------------------------------------------------------- network

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nothing listens on port %d" % port)


class Response:
    def __init__(self, status, headers, body):
        self.status = status          # 0: closed without a response
        self.headers = headers
        self.body = body

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None


def send_raw(port, data, timeout=10.0):
    """Send bytes on a fresh connection, read one response (or a close)."""
    s = socket.create_connection(("127.0.0.1", port), timeout)
    try:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                if not buf:
                    return Response(0, [], b"")
                break
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = []
        for l in lines[1:]:
            n, _, v = l.partition(b":")
            headers.append((n.decode("latin-1").strip(),
                            v.decode("latin-1").strip()))
        length = None
        chunked = False
        if data.startswith(b"HEAD ") or status in (204, 304) \
                or 100 <= status < 200:
            return Response(status, headers, b"")
        for n, v in headers:
            if n.lower() == "content-length":
                length = int(v)
            if n.lower() == "transfer-encoding" and "chunked" in v.lower():
                chunked = True
        if length is not None:
            while len(body) < length:
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
        elif chunked:
            while not body.endswith(b"0\r\n\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
        return Response(status, headers, body)
    except (ConnectionResetError, BrokenPipeError):
        return Response(0, [], b"")
    finally:
        s.close()


def request(port, method, target, headers=(), body=b""):
    head = "%s %s HTTP/1.1\r\n" % (method, target)
    names = {n.lower() for n, _ in headers}
    hs = list(headers)
    if "host" not in names:
        hs.insert(0, ("Host", DEFAULT_HOST))
    if body and "content-length" not in names:
        hs.append(("Content-Length", str(len(body))))
    raw = head.encode("latin-1")
    for n, v in hs:
        raw += n.encode("latin-1") + b": " + (
            v if isinstance(v, bytes) else v.encode("latin-1")) + b"\r\n"
    return send_raw(port, raw + b"\r\n" + body)


# ---------------------------------------------------------------- servers

class Simulator:
    def __init__(self, workdir):
        self.record = os.path.join(workdir, "upstream.jsonl")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, SIM, "--listen", "127.0.0.1:%d" % self.port,
             "--record", self.record],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def received(self):
        if not os.path.exists(self.record):
            return []
        with open(self.record, encoding="utf-8") as f:
            return [json.loads(l) for l in f if l.strip()]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


BASE_CONF = """
load_module {module};
{user}
worker_processes 1;
error_log {dir}/error.log info;
pid {dir}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    large_client_header_buffers 4 256k;
    {http}
    server {{
        listen 127.0.0.1:{port};
        server_name mail.contoso.com;
        {server}
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_request_buffering off;
            {location}
        }}
        {locations}
    }}
}}
"""

GUARD_HTTP = """
    exchange_guard {mode};
    exchange_guard_rules {rules}/*.rules;
    exchange_guard_log {dir}/guard.jsonl;
"""


def rules_file(workdir, name, text):
    """text written to workdir/name; its path."""
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def rule_text(rid, name, match):
    """One blocking rule of one match line, as a site's rule file has it."""
    return ("rule %s\n    name \"%s\"\n    cve CVE-2021-26855\n"
            "    action block\n    match %s\nend\n" % (rid, name, match))


class Nginx:
    """A real nginx with the module, in its own directory and port."""

    def __init__(self, workdir, upstream_port, mode="on", http=None,
                 server="", location="", locations=""):
        self.dir = workdir
        # a prefix of its own: nginx opens <prefix>/logs/error.log early
        os.makedirs(os.path.join(workdir, "logs"), exist_ok=True)
        self.port = free_port()
        self.log = os.path.join(workdir, "guard.jsonl")
        if http is None:
            http = GUARD_HTTP.format(mode=mode, rules=RULES, dir=workdir)
        self.conf = os.path.join(workdir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(BASE_CONF.format(
                module=MODULE, dir=workdir, port=self.port,
                upstream=upstream_port, http=http, server=server,
                location=location, locations=locations,
                user="user root;" if os.geteuid() == 0 else ""))
        self.proc = None

    def test_config(self):
        """(ok, output) of nginx -t."""
        p = subprocess.run([NGINX, "-t", "-p", self.dir, "-c", self.conf],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return p.returncode == 0, p.stdout.decode("utf-8", "replace")

    def start(self):
        ok, out = self.test_config()
        if not ok:
            raise RuntimeError("nginx -t failed:\n" + out)
        self.proc = subprocess.Popen(
            [NGINX, "-p", self.dir, "-c", self.conf, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        return self

    def signal(self, sig):
        subprocess.run([NGINX, "-p", self.dir, "-c", self.conf, "-s", sig],
                       check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def lines(self, path=None):
        path = path or self.log
        if not os.path.exists(path):
            return []
        with open(path, "rb") as f:
            return f.read().split(b"\n")[:-1]

    def entries(self, path=None):
        """Parsed log lines; each line must be UTF-8 JSON or this raises."""
        return [json.loads(l.decode("utf-8")) for l in self.lines(path)]

    def error_log(self):
        with open(os.path.join(self.dir, "error.log"), errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


# ---------------------------------------------------------------- runner

class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


class Suite:
    """Named test functions, each run with a fresh work directory."""

    def __init__(self):
        self.tests = []
        self.passed = 0
        self.failed = 0

    def test(self, fn):
        self.tests.append(fn)
        return fn

    def run(self, only=None):
        for fn in self.tests:
            if only and only not in fn.__name__:
                continue
            workdir = tempfile.mkdtemp(prefix="eg-test-")
            t0 = time.time()
            try:
                n = fn(workdir)
                self.passed += n if isinstance(n, int) else 1
                print("ok   %-50s %.2fs" % (fn.__name__, time.time() - t0))
                shutil.rmtree(workdir, ignore_errors=True)
            except Exception as e:   # a failure, or a broken harness
                self.failed += 1
                kind = "FAIL" if isinstance(e, Failure) else "ERROR"
                print("%s %s (%s): %s" % (kind, fn.__name__, workdir, e))
            sys.stdout.flush()
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0
