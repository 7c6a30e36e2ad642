#!/usr/bin/env python3
"""Exchange front-end simulator, the upstream for exchange_guard's tests.

It answers the published ProxyLogon, ProxyShell, ProxyNotShell and OWASSRF
probes the way an UNPATCHED Exchange front end does, and echoes every other
request back as JSON.  With --record it appends one JSON line per request it
receives, so a test can prove what did, or did not, get past the guard.

    exchange_sim.py --listen 127.0.0.1:PORT [--record FILE] [--verbose]

PORT 0 picks a free port; the line "exchange_sim listening on HOST:PORT" on
stdout names it.  GET /__sim/health answers "ok" and is not recorded.

Python 3 standard library only.
"""

import argparse
import base64
import hashlib
import json
import re
import secrets
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, unquote_plus


FE_SERVER = "EXSIM-FE01"
BE_SERVER = "exsim-be01.contoso.local"
HEALTH_PATH = "/__sim/health"

RECORD_BODY_LIMIT = 64 * 1024
READ_BLOCK = 64 * 1024
MAX_LINE = 8192

# The extensions Microsoft.Exchange.HttpProxy treats as static resources.
STATIC_EXTENSIONS = (
    ".js", ".css", ".ico", ".flt", ".gif", ".png", ".jpg", ".htm", ".html",
    ".eot", ".ttf", ".woff", ".svg", ".axd", ".mp3", ".wav", ".msi", ".bin",
    ".dat", ".exe", ".mui", ".xap", ".skin", ".manifest",
)

ADMIN_LEGACY_DN = ("/o=First Organization/ou=Exchange Administrative Group "
                   "(FYDIBOHF23SPDLT)/cn=Recipients/cn=admin")
ADMIN_SID = "S-1-5-21-1234567890-1234567890-1234567890-500"

AUTODISCOVER_XML = f"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
    <User>
      <DisplayName>Administrator</DisplayName>
      <LegacyDN>{ADMIN_LEGACY_DN}</LegacyDN>
      <AutoDiscoverSMTPAddress>admin@contoso.local</AutoDiscoverSMTPAddress>
      <DeploymentId>6f8a2a4e-2c4b-4b0e-9d8e-1c0a5e7d3b21</DeploymentId>
    </User>
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
      <Protocol>
        <Type>EXCH</Type>
        <Server>6c7e3a52-9d3f-4c1b-a8e2-0f4d5b6a7c8d@contoso.local</Server>
        <ServerDN>/o=First Organization/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn=6c7e3a52-9d3f-4c1b-a8e2-0f4d5b6a7c8d@contoso.local</ServerDN>
        <ServerVersion>73C18880</ServerVersion>
        <AuthPackage>Kerb</AuthPackage>
      </Protocol>
    </Account>
  </Response>
</Autodiscover>
"""

EMSMDB_TEXT = (
    f"The user {ADMIN_LEGACY_DN} with SID {ADMIN_SID} and MasterAccountSid "
    " within the account forest is not authorized to connect as "
    "administrator@contoso.local.\r\n"
)

NSPI_HTML = (
    "<html><body>Exchange MAPI/HTTP Connectivity Endpoint<br><br>"
    "Version: 15.1.2176.2<br>Vdir Path: /mapi/nspi/<br><br>"
    "<b>User:</b> NT AUTHORITY\\SYSTEM<br>"
    "<b>UPN:</b> <br><b>SID:</b> S-1-5-18<br>"
    f"<b>Cafe:</b> {FE_SERVER}.contoso.local<br>"
    f"<b>Mailbox:</b> {BE_SERVER}<br></body></html>"
)

DDI_SETOBJECT_JSON = ('{"d":{"__type":"JsonDictionaryOfanyType:#Ecp",'
                      '"ErrorRecords":[],"Output":[]}}')


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list = field(default_factory=list)


@dataclass
class Body:
    length: int
    sha256: str
    head: bytes             # the first RECORD_BODY_LIMIT bytes


class BadRequestBody(Exception):
    pass


# ---------------------------------------------------------------------------
# How IIS, ASP.NET and Exchange read a request.  Pure functions.

def parse_cookies(header_values):
    """Cookie (name, value) pairs as ASP.NET reads them.

    Each Cookie header is split on ';' only (a ',' is part of a value), names
    and values are trimmed, a piece without '=' is a name with an empty
    value, and '$Path' / '$Domain' pieces are attributes of the cookie before.
    """
    pairs = []
    for header in header_values:
        for piece in header.split(";"):
            piece = piece.strip()
            if not piece:
                continue
            name, _, value = piece.partition("=")
            name = name.strip()
            if name.startswith("$") and pairs:
                continue
            pairs.append((name, value.strip()))
    return pairs


def cookie_get(pairs, name):
    """The first cookie of that name, compared case-insensitively, or None."""
    wanted = name.lower()
    for cookie_name, value in pairs:
        if cookie_name.lower() == wanted:
            return value
    return None


def split_target(target):
    """(path, query) of a request-target; absolute-form loses scheme and host."""
    match = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?]*", target)
    if match:
        target = target[match.end():] or "/"
    path, _, query = target.partition("?")
    return path, query


def query_values(query, name):
    """Every value of a query parameter, decoded the way ASP.NET does."""
    wanted = name.lower()
    values = []
    for piece in query.split("&"):
        key, sep, value = piece.partition("=")
        if sep and unquote_plus(key).lower() == wanted:
            values.append(unquote_plus(value))
    return values


def resolve_dot_segments(path):
    segments = path.split("/")
    resolved = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment in (".", ".."):
            if segment == ".." and len(resolved) > 1:
                resolved.pop()
            if last:
                resolved.append("")
            continue
        resolved.append(segment)
    return "/".join(resolved) or "/"


def iis_path(target):
    """The path Exchange sees: decoded once, '\\' read as '/', dots resolved."""
    path, _ = split_target(target)
    path = unquote(path, errors="replace").replace("\\", "/")
    return resolve_dot_segments(path)


def is_static_resource(path):
    return path.lower().endswith(STATIC_EXTENSIONS)


VERSION_RE = re.compile(r"\s*[+-]?[0-9]+\s*\Z")


def parse_backend_cookie(value):
    """(host, backend path) from an X-BEResource style value, or None.

    Unpatched BackEndServer.FromString only wants "<anything>~<int32>"; the
    proxy then builds https://<anything>:444/..., so the host is the URL
    authority without user info and port, and the rest is the backend path.
    """
    target, sep, version = value.rpartition("~")
    if not sep or not VERSION_RE.match(version):
        return None
    if not -2**31 <= int(version) < 2**31:
        return None
    authority = re.split(r"[/?#]", target, maxsplit=1)[0]
    host = authority.rpartition("@")[2]
    if host.startswith("[") and "]" in host:
        host = host[:host.index("]") + 1]
    else:
        host = host.split(":", 1)[0]
    if not host:
        return None
    rest = target[len(authority):]
    backend_path = re.split(r"[?#]", rest, maxsplit=1)[0]
    return host, backend_path


def routing_cookie(cookies, path):
    """(host, backend path) from the cookie Exchange would route this by.

    OWA routes anonymous resources by X-AnonResource-Backend, ECP by
    X-BEResource; a request carrying both is taken the way its vdir would.
    """
    anon = None
    if (cookie_get(cookies, "X-AnonResource") or "").lower() == "true":
        anon = cookie_get(cookies, "X-AnonResource-Backend")
    beresource = cookie_get(cookies, "X-BEResource")
    if path.lower().startswith("/owa/"):
        candidates = (anon, beresource)
    else:
        candidates = (beresource, anon)
    for value in candidates:
        parsed = parse_backend_cookie(value) if value is not None else None
        if parsed:
            return parsed
    return None


def remove_ignoring_case(text, part):
    if not part:
        return text
    return re.sub(re.escape(part), "", text, flags=re.IGNORECASE)


def explicit_logon_backend_path(target, path, cookies):
    """The backend path an unpatched explicit logon would proxy as SYSTEM.

    ProxyShell / ProxyNotShell: a path ending in autodiscover.json with
    "autodiscover" in the query or the Email cookie (or an '@' and a second
    path in the query); Exchange cuts "/<Email>" out of the URL and proxies
    what is left.  OWASSRF: /owa/<mailbox>@<domain>/powershell.
    Returns None for anything else, including legitimate explicit logons.
    """
    lower = path.lower()
    if lower.startswith("/owa/"):
        match = re.match(r"/owa/[^/]*@[^/]*(/powershell(?:/.*)?)\Z", path,
                         re.IGNORECASE)
        return match.group(1) if match else None
    if not (lower.startswith("/autodiscover/")
            and lower.endswith("autodiscover.json")):
        return None

    _, raw_query = split_target(target)
    query = unquote(raw_query, errors="replace")
    email_cookies = [value for name, value in cookies
                     if name.lower() == "email"]
    second_path = re.search(r"@[^/?&#]*(/[^?#]*)", query)
    if not ("autodiscover" in query.lower()
            or any("autodiscover" in value.lower() for value in email_cookies)
            or second_path):
        return None

    decoded = unquote(target, errors="replace")
    for email in query_values(raw_query, "Email") + email_cookies:
        stripped = remove_ignoring_case(decoded, "/" + email)
        if stripped != decoded:
            return split_target(stripped)[0] or "/"
    if second_path:
        return second_path.group(1)
    return "/autodiscover/autodiscover.json"


def is_ddi_setobject(path):
    return re.match(r"/ecp/ddi/ddiservice\.svc/setobject(?:/|\Z)",
                    path, re.IGNORECASE) is not None


# ---------------------------------------------------------------------------
# What the unpatched server answers.

def text_reply(status, text, content_type="text/html; charset=utf-8",
               headers=()):
    return Reply(status, text.encode("utf-8"), content_type, list(headers))


def backend_content(backend_path, headers):
    """The answer of a back-end page an SSRF reaches, or None if not special."""
    lower = backend_path.lower()
    if "/autodiscover/autodiscover.xml" in lower:
        return text_reply(200, AUTODISCOVER_XML, "text/xml; charset=utf-8",
                          headers)
    if "/mapi/emsmdb" in lower:
        return text_reply(200, EMSMDB_TEXT, "text/plain; charset=utf-8",
                          headers + [("X-ResponseCode", "0")])
    if "/ecp/ddi/ddiservice.svc/setobject" in lower:
        return text_reply(200, DDI_SETOBJECT_JSON,
                          "application/json; charset=utf-8", headers)
    if "/powershell" in lower:
        return text_reply(200, "<rps vulnerable/>\r\n",
                          "text/plain; charset=utf-8", headers)
    if "/mapi/nspi" in lower:
        return text_reply(200, NSPI_HTML, headers=headers)
    if "/ews/exchange.asmx" in lower:
        return text_reply(200, "<ews vulnerable/>\r\n",
                          "text/xml; charset=utf-8", headers)
    return None


def beresource_reply(host, backend_path):
    headers = [("X-CalculatedBETarget", host)]
    if backend_path.lower().endswith("/ecp/proxylogon.ecp"):
        session = secrets.token_hex(12)
        canary = secrets.token_urlsafe(57)
        headers += [
            ("Set-Cookie", f"ASP.NET_SessionId={session}; path=/; HttpOnly"),
            ("Set-Cookie", f"msExchEcpCanary={canary}; path=/ecp"),
        ]
        return Reply(241, b"", "text/html; charset=utf-8", headers)
    reply = backend_content(backend_path, headers)
    if reply:
        return reply
    if host.lower() == "localhost":
        return text_reply(500, "<html><body>NegotiateSecurityContext failed"
                          "</body></html>", headers=headers)
    return text_reply(200, f"<html><body>backend {host}</body></html>",
                      headers=headers)


def explicit_logon_reply(backend_path):
    headers = [("X-CalculatedBETarget", BE_SERVER)]
    reply = backend_content(backend_path, headers)
    if reply:
        return reply
    return text_reply(200, f"<html><body>{BE_SERVER} {backend_path}"
                      "</body></html>", headers=headers)


def echo_reply(method, target, headers, body):
    report = {
        "method": method,
        "path": target,
        "headers": [[name, value] for name, value in headers],
        "body_length": body.length,
        "body_sha256": body.sha256,
    }
    return Reply(200, json.dumps(report).encode("utf-8"), "application/json")


def route(method, target, headers, cookie_headers, body):
    """The reply an unpatched Exchange front end gives this request."""
    path = iis_path(target)
    cookies = parse_cookies(cookie_headers)
    if is_static_resource(path):
        backend = routing_cookie(cookies, path)
        if backend:
            return beresource_reply(*backend)
    backend_path = explicit_logon_backend_path(target, path, cookies)
    if backend_path is not None:
        return explicit_logon_reply(backend_path)
    if is_ddi_setobject(path):
        return text_reply(200, DDI_SETOBJECT_JSON,
                          "application/json; charset=utf-8")
    return echo_reply(method, target, headers, body)


# ---------------------------------------------------------------------------
# The HTTP server.

class Recorder:
    """Appends one JSON line per request; lines never interleave."""

    def __init__(self, path):
        self._file = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, entry):
        line = json.dumps(entry) + "\n"
        with self._lock:
            if not self._file.closed:
                self._file.write(line)
                self._file.flush()

    def close(self):
        with self._lock:
            self._file.close()


class ExchangeSimHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-IIS/10.0"
    # IIS has no HTTP/0.9: a malformed request line gets an HTTP/1.1 400.
    default_request_version = "HTTP/1.1"
    timeout = 120
    _replied = False

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):
        if self.server.verbose:
            super().log_message(format, *args)

    def __getattr__(self, name):
        # Every method is served, RPC_IN_DATA and garbage ones included.
        if name.startswith("do_"):
            return self.handle_any_method
        raise AttributeError(name)

    def send_response(self, code, message=None):
        super().send_response(code, message)
        self._replied = True
        self.send_header("X-FEServer", FE_SERVER)
        self.send_header("X-Exchange-Sim", "1")

    def parse_request(self):
        if super().parse_request():
            return True
        self.record(None, error="malformed request head")
        return False

    def handle_any_method(self):
        self._replied = False
        try:
            self.serve()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:
            self.close_connection = True
            print(f"exchange_sim: internal error on {self.requestline!r}: "
                  f"{exc!r}", file=sys.stderr, flush=True)
            if not self._replied:
                self.send_reply(text_reply(500, "simulator error\r\n",
                                           "text/plain"))

    def raw_target(self):
        # self.path has had a leading "//" collapsed by http.server.
        words = self.requestline.split()
        return words[1] if len(words) >= 2 else self.path

    def serve(self):
        target = self.raw_target()
        try:
            body = self.read_body()
        except BadRequestBody as exc:
            self.record(None, error=str(exc))
            self.close_connection = True
            self.send_reply(text_reply(400, f"{exc}\r\n", "text/plain"))
            return
        except (ConnectionError, TimeoutError) as exc:
            # Part of the request still reached the upstream: say so.
            self.record(None, error=f"incomplete body: {exc}")
            raise
        if self.command == "GET" and target == HEALTH_PATH:
            self.send_reply(text_reply(200, "ok", "text/plain"))
            return
        self.record(body)
        headers = self.headers.items()
        cookie_headers = self.headers.get_all("Cookie") or []
        self.send_reply(route(self.command, target, headers, cookie_headers,
                              body))

    def send_reply(self, reply):
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    # -- request bodies ----------------------------------------------------

    def read_body(self):
        digest = hashlib.sha256()
        head = bytearray()
        length = 0

        def take(data):
            nonlocal length
            digest.update(data)
            length += len(data)
            if len(head) < RECORD_BODY_LIMIT:
                head.extend(data[:RECORD_BODY_LIMIT - len(head)])

        codings = self.header_tokens("Transfer-Encoding")
        if codings:
            if codings[-1] != "chunked":
                raise BadRequestBody("unsupported Transfer-Encoding")
            self.read_chunked(take)
        else:
            self.read_exact(self.content_length(), take)
        return Body(length, digest.hexdigest(), bytes(head))

    def header_tokens(self, name):
        values = self.headers.get_all(name) or []
        return [token.strip().lower() for value in values
                for token in value.split(",") if token.strip()]

    def content_length(self):
        values = set(self.header_tokens("Content-Length"))
        if not values:
            return 0
        if len(values) != 1:
            raise BadRequestBody("conflicting Content-Length")
        value = values.pop()
        if not value.isdigit() or not value.isascii():
            raise BadRequestBody("invalid Content-Length")
        return int(value)

    def read_exact(self, size, take):
        while size > 0:
            data = self.rfile.read(min(size, READ_BLOCK))
            if not data:
                raise ConnectionError("body truncated")
            take(data)
            size -= len(data)

    def read_line(self):
        line = self.rfile.readline(MAX_LINE + 1)
        if not line:
            raise ConnectionError("body truncated")
        if len(line) > MAX_LINE or not line.endswith(b"\n"):
            raise BadRequestBody("chunk line too long")
        return line

    def read_chunked(self, take):
        while True:
            size_text = self.read_line().split(b";", 1)[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]{1,15}", size_text):
                raise BadRequestBody("invalid chunk size")
            size = int(size_text, 16)
            if size == 0:
                break
            self.read_exact(size, take)
            if self.read_line().strip():
                raise BadRequestBody("chunk not followed by CRLF")
        while self.read_line().strip():
            pass                    # trailer fields, ignored

    # -- recording ---------------------------------------------------------

    def record(self, body, error=None):
        recorder = self.server.recorder
        if recorder is None:
            return
        words = (getattr(self, "requestline", "") or "").split()
        headers = getattr(self, "headers", None)
        entry = {
            "time": round(time.time(), 6),
            "client": "%s:%s" % self.client_address[:2],
            "method": self.command,
            "target": words[1] if len(words) >= 2 else None,
            "headers": [[name, value] for name, value in
                        (headers.items() if headers else [])],
        }
        if body is not None:
            entry.update(
                body_length=body.length,
                body_sha256=body.sha256,
                body_b64=base64.b64encode(body.head).decode("ascii"),
                body_truncated=body.length > len(body.head),
            )
        if error:
            entry["error"] = error
        recorder.write(entry)


class ExchangeSimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, recorder=None, verbose=False):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.recorder = recorder
        self.verbose = verbose
        super().__init__(address, ExchangeSimHandler)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            print(f"exchange_sim: {client_address}: {exc!r}", file=sys.stderr)


def parse_listen(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Unpatched Exchange front-end simulator.")
    parser.add_argument("--listen", required=True, type=parse_listen,
                        metavar="HOST:PORT")
    parser.add_argument("--record", metavar="FILE",
                        help="append one JSON line per request to FILE")
    parser.add_argument("--verbose", action="store_true",
                        help="log every request to stderr")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    recorder = Recorder(args.record) if args.record else None
    server = ExchangeSimServer(args.listen, recorder, args.verbose)

    def stop(signum, frame):
        # shutdown() waits for serve_forever() to return, so not from here.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"exchange_sim listening on {shown}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        if recorder:
            recorder.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
