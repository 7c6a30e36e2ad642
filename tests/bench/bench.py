#!/usr/bin/env python3
"""exchange_guard benchmarks: run them through auto/bench.

  1. callgrind: instructions per proxied benign request, nginx + the guard
     (every shipped rule) against the same nginx without it, per request
     type of the mix (tests/bench/gen_mix.py) and for the whole mix, with
     access_log off and with the default combined access_log.
  2. wrk: throughput of bare nginx, the guard, the guard in detect mode,
     EOMT in nginx and ModSecurity + CRS (+ the EOMT SecRules), all
     listening at once on loopback in front of one fast upstream;
     alternating rounds, each peer's run between two runs of the bare
     proxy and its requests/s as a ratio to their mean.
  3. attack flood: wrk with attack requests only against the guard:
     refusals per second against the benign throughput of the bare proxy
     runs around it; log lines against refusals.
  4. engine (tests/bench/eg_bench.c): ns and instructions per request over
     the corpora; ns against input size (cookie bytes, cookie count, URI,
     ECP JSON body), with log-log slopes; instructions per legitimate
     request against the number of rules it cannot match (RULE_KINDS).

Writes BENCHMARKS.md, docs/bench.png and build/bench/results.json (with
--quick: build/bench/quick/ and build/bench/results-quick.json); a full run
appends its key numbers to tests/bench/history.jsonl.

    bench.py [--quick] [--only callgrind,wrk,engine] [--no-write]
             [--out DIR] [--report-only]

Expects auto/bench to have built build/bench/ngx_http_exchange_guard_module.so
and build/bench/eg-bench.  Python 3 standard library only.
"""

import argparse
import datetime
import glob
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import eg       # noqa: E402
import gen_mix  # noqa: E402

ROOT = eg.ROOT
BUILD = os.path.join(ROOT, "build", "bench")
MODULE = os.path.join(BUILD, "ngx_http_exchange_guard_module.so")
EGBENCH = os.path.join(BUILD, "eg-bench")
RULES = os.path.join(ROOT, "rules")
PEERS_DIR = os.path.join(ROOT, "tests", "peers")
NGINX = "/usr/sbin/nginx"
MODSEC_MODULE = "/usr/lib/nginx/modules/ngx_http_modsecurity_module.so"

HISTORY = os.path.join(HERE, "history.jsonl")

PEERS = ["bare", "guard", "guard-detect", "eomt-nginx", "modsecurity-crs"]
FLOOD = "guard-flood"

# CPU placement on a 2-core machine: the proxy under test alone on one
# core, wrk and the upstream on the other.
CPU_PROXY = "1"
CPU_LOAD = "0"

FULL = dict(cg_n=200, cg_mix_cycles=20, rounds=5, duration=5,
            pairs=15, pair_duration=2, connections=50,
            sizes={"cookie-bytes": [1024, 2048, 4096, 8192, 16384, 32768,
                                    65536],
                   "cookie-count": [10, 30, 100, 250, 260, 300, 1000,
                                    2000],
                   "uri": [1024, 2048, 4096, 6144, 8192, 12288, 16384],
                   "json": [1024, 4096, 16384, 65536, 262144, 1048576]},
            rule_counts=[0, 10, 100, 1000, 4000],
            min_ms=20, repeat=5, cg_passes=5)
QUICK = dict(cg_n=20, cg_mix_cycles=2, rounds=1, duration=2,
             pairs=2, pair_duration=1, connections=50,
             sizes={"cookie-bytes": [1024, 8192, 65536],
                    "cookie-count": [10, 300, 2000],
                    "uri": [1024, 4096, 16384],
                    "json": [1024, 32768, 1048576]},
             rule_counts=[0, 1000],
             min_ms=5, repeat=3, cg_passes=1)

# rules a site adds that no legitimate request matches (eg_bench.c,
# rule_text()): what each costs a request that cannot match it
RULE_KINDS = [
    ("header", "`header:X-Block-N present` (the names past 32 are looked "
               "up by hash)"),
    ("path", "`path prefix /blockN/` (a path scope of its own)"),
    ("user-agent", "`header:User-Agent contains BadScannerN/`"),
    ("user-agent-regex", "`header:User-Agent regex 'BadScannerN/'` (its "
                         "literal, eg_regex_literals())"),
    ("query", "`query contains blockparamN=`"),
    ("cookie", "`cookie:BlockCookieN present`"),
    ("client", "`client is 203.0.X.Y` (an address block list)"),
]

SIZE_UNIT = {"cookie-bytes": "bytes", "cookie-count": "cookies",
             "uri": "bytes", "json": "bytes"}
SIZE_WHAT = {
    "cookie-bytes": "Cookie header, a real OWA cookie jar (17 cookies, "
                    "~1 KB) repeated",
    "cookie-count": "Cookie header of N cookies (the same jar cycled; the "
                    "shipped default exchange_guard_max_cookies is 256, "
                    "past it the module refuses by default)",
    "uri": "request-target, half path (/owa/prem/15.2.1118.7/folder%20N/..)"
           ", half query (pN=v%2FN%2Bx+y&..)",
    "json": "POST /ecp/DDI/DDIService.svc/SetObject?schema="
            "OABVirtualDirectory, JSON body (body read)",
}


def log(msg):
    print(msg, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, **kw)


# ------------------------------------------------------------ nginx

UPSTREAM_CONF = """
{user}
worker_processes 1;
error_log {dir}/error.log error;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""

FRONT_CONF = """
{load}
{user}
{procs}
worker_processes 1;
error_log {dir}/error.log error;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log {access_log};
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    large_client_header_buffers 4 64k;
    client_max_body_size 20m;
    keepalive_requests 1000000;
    {http}
    upstream backend {{
        server 127.0.0.1:{upstream};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        server_name mail.contoso.com;
        {server}
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_request_buffering off;
        }}
    }}
}}
"""


def peer_parts(name, d):
    """(load_module, http, server) of one peer: as tests/peers/compare.py,
    the guard in two modes."""
    if name == "bare":
        return "", "", ""
    if name in ("guard", "guard-detect"):
        http = ("exchange_guard %s;\n    exchange_guard_rules %s/*.rules;\n"
                "    exchange_guard_log %s/guard.jsonl;" % (
                    "on" if name == "guard" else "detect", RULES, d))
        return "load_module %s;" % MODULE, http, ""
    if name == "eomt-nginx":
        return "", "", "include %s;" % os.path.join(PEERS_DIR,
                                                    "eomt-nginx.conf")
    if name == "modsecurity-crs":
        files = (os.path.join(PEERS_DIR, "modsecurity", "modsecurity.conf"),
                 os.path.join(PEERS_DIR, "modsecurity", "crs.load"),
                 os.path.join(PEERS_DIR, "eomt.secrules"))
        http = "modsecurity on;\n" + "".join(
            "    modsecurity_rules_file %s;\n" % f for f in files)
        return "load_module %s;" % MODSEC_MODULE, http, ""
    raise ValueError(name)


def user_line():
    return "user root;" if os.geteuid() == 0 else ""


class Server:
    def __init__(self, name, d, text, port, cpu=None, valgrind=None):
        self.name = name
        self.dir = d
        self.port = port
        os.makedirs(os.path.join(d, "logs"), exist_ok=True)
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(text)
        self.cpu = cpu
        self.valgrind = valgrind
        self.proc = None

    def start(self, timeout=20):
        p = run([NGINX, "-t", "-p", self.dir, "-c", self.conf])
        if p.returncode != 0:
            raise RuntimeError("%s: nginx -t failed:\n%s" % (
                self.name, p.stdout.decode("utf-8", "replace")))
        cmd = [NGINX, "-p", self.dir, "-c", self.conf]
        if self.valgrind is None:
            cmd += ["-g", "daemon off;"]
        else:
            cmd = self.valgrind + cmd
        if self.cpu is not None:
            cmd = ["taskset", "-c", self.cpu] + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(
                                         self.dir, "stderr"), "wb"))
        eg.wait_port(self.port, timeout)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cpu_seconds(self):
        """user + system CPU time of the worker(s) so far"""
        total = 0
        try:
            with open("/proc/%d/task/%d/children" % (
                    self.proc.pid, self.proc.pid)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            kids = []
        for pid in kids:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    w = f.read().rsplit(")", 1)[1].split()
                total += int(w[11]) + int(w[12])
            except OSError:
                pass
        return total / os.sysconf("SC_CLK_TCK")

    def guard_lines(self):
        p = os.path.join(self.dir, "guard.jsonl")
        if not os.path.exists(p):
            return 0
        with open(p, "rb") as f:
            return f.read().count(b"\n")


def start_upstream(top):
    d = os.path.join(top, "upstream")
    port = eg.free_port()
    s = Server("upstream", d, UPSTREAM_CONF.format(
        user=user_line(), dir=d, port=port), port, cpu=CPU_LOAD)
    return s.start()


def front(top, name, upstream, access_log=False, callgrind=False,
          cpu=None, tag=""):
    d = os.path.join(top, name + tag)
    os.makedirs(d, exist_ok=True)
    port = eg.free_port()
    load, http, server = peer_parts(name, d)
    procs = "master_process off;\ndaemon off;" if callgrind else ""
    text = FRONT_CONF.format(
        load=load, user="" if callgrind else user_line(), procs=procs,
        dir=d, access_log=os.path.join(d, "access.log") if access_log
        else "off", http=http, server=server, upstream=upstream.port,
        port=port)
    vg = None
    if callgrind:
        vg = ["valgrind", "--tool=callgrind",
              "--callgrind-out-file=%s" % os.path.join(d, "cg.out")]
    return Server(name, d, text, port, cpu=cpu, valgrind=vg)


# ------------------------------------------------------------ client

class Conn:
    """One keep-alive connection; request() sends and reads one answer."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), 60)
        self.buf = b""

    def request(self, raw):
        self.s.sendall(raw)
        while b"\r\n\r\n" not in self.buf:
            c = self.s.recv(65536)
            if not c:
                raise ConnectionError("closed")
            self.buf += c
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        n = int(m.group(1)) if m else 0
        while len(rest) < n:
            c = self.s.recv(65536)
            if not c:
                raise ConnectionError("closed")
            rest += c
        self.buf = rest[n:]
        return status

    def close(self):
        self.s.close()


# ------------------------------------------------------------ 1. callgrind

def cg_total(path):
    with open(path, "rb") as f:
        for line in f:
            m = re.match(rb"^(?:summary|totals):\s+(\d+)", line)
            if m:
                return int(m.group(1))
    raise ValueError("no totals in %s" % path)


def cg_control(opt, pid):
    p = run(["callgrind_control", opt, str(pid)])
    if p.returncode != 0:
        raise RuntimeError("callgrind_control %s: %s" % (
            opt, p.stdout.decode("utf-8", "replace")))


def cg_newest(d, seen):
    files = [f for f in glob.glob(os.path.join(d, "cg.out.*"))
             if f not in seen]
    if not files:
        raise RuntimeError("callgrind wrote no dump in %s" % d)
    f = max(files, key=lambda f: int(f.rsplit(".", 1)[1]))
    seen.add(f)
    return f


def cg_measure(srv, reqs, n, seen):
    """Ir per request for n requests cycling through reqs, on one
    keep-alive connection opened and warmed before counting starts."""
    c = Conn(srv.port)
    for r in reqs:
        for _ in range(2):
            st = c.request(r)
    pid = srv.proc.pid
    cg_control("-z", pid)
    statuses = {}
    for i in range(n):
        st = c.request(reqs[i % len(reqs)])
        statuses[st] = statuses.get(st, 0) + 1
    time.sleep(0.1)             # the log phase of the last request
    cg_control("-d", pid)
    c.close()
    f = cg_newest(srv.dir, seen)
    return cg_total(f) / n, statuses, f


def bench_callgrind(top, upstream, P):
    types = [t for t, _, _ in gen_mix.MIX]
    mix = [r for _, _, r in gen_mix.mix_requests()]
    res = {}
    keep = {}
    for access_log in (False, True):
        for name in ("bare", "guard"):
            key = "%s/%s" % (name, "log" if access_log else "nolog")
            srv = front(top, name, upstream, access_log=access_log,
                        callgrind=True, tag="-cg-" + key.split("/")[1])
            srv.start(timeout=120)
            seen = set()
            try:
                c = Conn(srv.port)              # warm-up: 20 requests
                for i in range(20):
                    c.request(mix[i % len(mix)])
                c.close()
                out = {}
                for t in types:
                    ir, st, _ = cg_measure(srv, gen_mix.type_requests(t),
                                           P["cg_n"], seen)
                    out[t] = {"ir": ir, "status": st}
                ir, st, f = cg_measure(srv, mix,
                                       P["cg_mix_cycles"] * len(mix), seen)
                out["mix"] = {"ir": ir, "status": st}
                keep[key] = f
                out["guard_log_lines"] = srv.guard_lines()
            finally:
                srv.stop()
            res[key] = out
            log("  callgrind %-12s mix %8.0f Ir/request" % (key, ir))
    table = {}
    for lg in ("nolog", "log"):
        for t in types + ["mix"]:
            b = res["bare/" + lg][t]["ir"]
            g = res["guard/" + lg][t]["ir"]
            table.setdefault(lg, {})[t] = {"bare": b, "guard": g,
                                           "ratio": g / b,
                                           "extra": g - b}
    annotate = cg_annotate(keep["guard/nolog"])
    bare_annotate = cg_annotate(keep["bare/nolog"])
    statuses = {k: {t: v[t]["status"] for t in types + ["mix"]}
                for k, v in res.items()}
    # keep the dumps the annotations come from
    for k, f in keep.items():
        shutil.copy(f, os.path.join(BUILD, "callgrind-%s.out" %
                                    k.replace("/", "-")))
    return {"table": table, "annotate": annotate,
            "bare_annotate": bare_annotate, "statuses": statuses,
            "guard_log_lines": {k: v["guard_log_lines"]
                                for k, v in res.items()},
            "n": P["cg_n"], "mix_n": P["cg_mix_cycles"] * len(mix)}


def cg_annotate(path, top=30):
    """[(Ir, function, object)] by self cost, and Ir per object."""
    p = run(["callgrind_annotate", "--inclusive=no", "--threshold=100",
             "--auto=no", path])
    text = p.stdout.decode("utf-8", "replace")
    rows, objs = [], {}
    total = cg_total(path)
    for line in text.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)(\S.*?)"
                     r"(?:\s+\[(.*)\])?\s*$", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        ir = int(m.group(1).replace(",", ""))
        # a dump taken mid-run lists the frames on the stack (main, the
        # event loop) with the whole total: not self cost
        if ir >= 0.98 * total:
            continue
        fn = m.group(2)
        obj = os.path.basename(m.group(3)) if m.group(3) else "(inlined)"
        if ":" in fn:
            fn = fn.split(":", 1)[1]
        rows.append((ir, fn, obj))
        objs[obj] = objs.get(obj, 0) + ir
    rows.sort(reverse=True)
    return {"functions": rows[:top], "all": rows[:200], "objects": sorted(
        ((v, k) for k, v in objs.items()), reverse=True)}


# ------------------------------------------------------------ 2-3. wrk

def wrk(port, script, P, cpu=CPU_LOAD, duration=None):
    cmd = ["taskset", "-c", cpu, "wrk", "-t1", "-c%d" % P["connections"],
           "-d%ds" % (duration or P["duration"]), "--timeout", "5s", "-s",
           script,
           "http://127.0.0.1:%d/" % port]
    p = run(cmd)
    out = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0:
        raise RuntimeError("wrk failed: %s" % out)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in ", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    err = re.search(r"Socket errors:(.*)", out)
    lat = re.search(r"Latency\s+(\S+)", out)
    errs = sum(int(x) for x in re.findall(r"\d+", err.group(1))) \
        if err else 0
    return {"rps": float(m.group(1)), "requests": int(n.group(1)),
            "errors": errs,
            "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": err.group(1).strip() if err else "",
            "latency_avg": lat.group(1) if lat else ""}


def attack_candidates(max_body=2048):
    out = []
    for r in eg.load_corpora("attack"):
        if len(r.body) <= max_body:
            out.append(r)
    return out


def probe(srv, raws):
    """status and guard log lines of each request, one connection each"""
    out = []
    for raw in raws:
        before = srv.guard_lines()
        try:
            st = eg.send_raw(srv.port, raw, 10).status
        except OSError:
            st = 0
        time.sleep(0.003)
        out.append((st, srv.guard_lines() - before))
    return out


def bench_wrk(top, upstream, P):
    servers = {}
    res = {"rounds": [], "sanity": {}, "flood": []}
    try:
        for name in PEERS:
            servers[name] = front(top, name, upstream, cpu=CPU_PROXY,
                                  tag="-wrk").start(timeout=60)
        mix_lua = gen_mix.write_mix_lua(os.path.join(BUILD, "mix.lua"))

        # every peer sees the mix: what does it answer?
        mix = gen_mix.mix_requests()
        for name, srv in servers.items():
            sts = {}
            for t, rid, raw in mix:
                try:
                    st = eg.send_raw(srv.port, raw, 10).status
                except OSError:
                    st = 0
                if st != 200:
                    sts[rid] = st
            res["sanity"][name] = sts

        # the flood: attacks the guard refuses with one log line each
        guard = servers["guard"]
        cands = attack_candidates()
        raws = [gen_mix.raw(r) for r in cands]
        pr = probe(guard, raws)
        kept = [(r, raw) for r, raw, (st, nl) in zip(cands, raws, pr)
                if st == 403 and nl == 1]
        res["flood_records"] = len(kept)
        res["flood_candidates"] = len(cands)
        res["flood_dropped"] = [(r.id, st, nl) for r, (st, nl) in
                                zip(cands, pr) if not (st == 403 and nl == 1)]
        attack_lua = os.path.join(BUILD, "attack.lua")
        with open(attack_lua, "w") as f:
            f.write(gen_mix.lua_script(
                [(r.id, raw) for r, raw in kept],
                "attack records of tests/corpus/attack/*.http with bodies "
                "<= 2 KB that the guard refuses (%d)" % len(kept)))

        # every run of a peer is bracketed by two runs of the bare proxy,
        # and its ratio taken to their mean: the machine's drift (requests/s
        # of one server can move by 20 % over a few minutes here) cancels
        # to first order instead of landing in the ratio
        order = PEERS[1:] + [FLOOD]

        def one(name):
            srv = guard if name == FLOOD else servers[name]
            cpu0 = srv.cpu_seconds()
            load0 = os.getloadavg()[0]
            if name == FLOOD:
                before = guard.guard_lines()
                r = wrk(guard.port, attack_lua, P)
                time.sleep(0.5)
                r["log_lines"] = guard.guard_lines() - before
            else:
                r = wrk(servers[name].port, mix_lua, P)
            r["cpu_us"] = (srv.cpu_seconds() - cpu0) * 1e6 / max(
                1, r["requests"])
            r["load"] = (load0 + os.getloadavg()[0]) / 2
            log("  round %d %-16s %9.0f req/s  %6.1f us CPU/req  "
                "load %.1f  non-2xx %d%s" % (
                    rnd + 1, name, r["rps"], r["cpu_us"], r["load"],
                    r["non2xx"],
                    "  log lines %d" % r["log_lines"]
                    if "log_lines" in r else ""))
            return r

        for rnd in range(P["rounds"]):
            k = rnd % len(order)
            this = order[k:] + order[:k]
            out = {}
            bares = [one("bare")]
            for name in this:
                r = one(name)
                bares.append(one("bare"))
                r["ref_rps"] = (bares[-2]["rps"] + bares[-1]["rps"]) / 2
                r["ref_cpu_us"] = (bares[-2]["cpu_us"]
                                   + bares[-1]["cpu_us"]) / 2
                out[name] = r
            out["bare"] = {
                "rps": statistics.median(b["rps"] for b in bares),
                "cpu_us": statistics.median(b["cpu_us"] for b in bares),
                "requests": sum(b["requests"] for b in bares),
                "non2xx": sum(b["non2xx"] for b in bares),
                "errors": sum(b["errors"] for b in bares),
                "load": statistics.mean(b["load"] for b in bares),
                "runs": len(bares)}
            res["rounds"].append(out)

        # the throughput target's own measurement: many short runs of the
        # guard, each between two runs of the bare proxy (B G B G ... B),
        # so that a ratio compares runs seconds apart, and enough of them
        # that their median is not one unlucky run
        def short(name):
            srv = servers[name]
            cpu0 = srv.cpu_seconds()
            r = wrk(srv.port, mix_lua, P, duration=P["pair_duration"])
            r["cpu_us"] = (srv.cpu_seconds() - cpu0) * 1e6 / max(
                1, r["requests"])
            return r

        pairs = []
        prev = short("bare")
        for i in range(P["pairs"]):
            g = short("guard")
            b = short("bare")
            pairs.append({"rps": g["rps"], "cpu_us": g["cpu_us"],
                          "non2xx": g["non2xx"], "errors": g["errors"],
                          "ref_rps": (prev["rps"] + b["rps"]) / 2,
                          "ref_cpu_us": (prev["cpu_us"] + b["cpu_us"]) / 2})
            log("  pair %2d guard %9.0f req/s, bare around it %9.0f: %.3f"
                % (i + 1, g["rps"], pairs[-1]["ref_rps"],
                   g["rps"] / pairs[-1]["ref_rps"]))
            prev = b
        res["pairs"] = pairs

        # log lines == refusals, exactly: every kept attack twice more
        before = guard.guard_lines()
        c403 = 0
        for _ in range(2):
            for _, raw in kept:
                try:
                    if eg.send_raw(guard.port, raw, 10).status == 403:
                        c403 += 1
                except OSError:
                    pass
        time.sleep(0.3)
        res["exact_check"] = {"sent": 2 * len(kept), "refused": c403,
                              "log_lines": guard.guard_lines() - before}
        res["guard_errors"] = tail(os.path.join(guard.dir, "error.log"))
    finally:
        for s in servers.values():
            s.stop()

    ratios = {p: [] for p in PEERS[1:] + [FLOOD]}
    cpu = {p: [] for p in PEERS[1:] + [FLOOD]}
    for r in res["rounds"]:
        for p in ratios:
            ratios[p].append(r[p]["rps"] / r[p]["ref_rps"])
            cpu[p].append(r[p]["cpu_us"] / r[p]["ref_cpu_us"])
    res["pair_ratios"] = stats([q["rps"] / q["ref_rps"]
                                for q in res["pairs"]])
    res["pair_cpu_ratios"] = stats([q["cpu_us"] / q["ref_cpu_us"]
                                    for q in res["pairs"]])
    res["ratios"] = {p: stats(v) for p, v in ratios.items()}
    res["cpu_ratios"] = {p: stats(v) for p, v in cpu.items()}
    res["cpu_us"] = {p: stats([r[p]["cpu_us"] for r in res["rounds"]])
                     for p in PEERS + [FLOOD]}
    res["load"] = stats([r[p]["load"] for r in res["rounds"]
                         for p in PEERS + [FLOOD]])
    res["rps"] = {p: stats([r[p]["rps"] for r in res["rounds"]])
                  for p in PEERS + [FLOOD]}
    return res


def tail(path, n=5):
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()[-n:]
    except OSError:
        return []


def stats(v):
    return {"min": min(v), "median": statistics.median(v), "max": max(v),
            "values": v}


# ------------------------------------------------------------ 4. engine

def engine_args(P):
    return [EGBENCH, "--rules", os.path.join(RULES, "*.rules"),
            "--min-ms", str(P["min_ms"]), "--repeat", str(P["repeat"])]


def corpus_files(kind):
    return sorted(glob.glob(os.path.join(ROOT, "tests", "corpus", kind,
                                         "*.http")))


def bench_engine(P):
    res = {"corpus": {}, "growth": {}}
    for kind in ("legit", "attack"):
        p = run(engine_args(P) + ["corpus"] + corpus_files(kind))
        out = p.stdout.decode()
        m = re.search(r"corpus (\d+) ([\d.]+) (\d+)", out)
        if not m:
            raise RuntimeError("eg-bench corpus: %s" % out)
        d = {"records": int(m.group(1)), "ns": float(m.group(2)),
             "blocked": int(m.group(3))}
        # instructions under callgrind
        tmp = tempfile.mkdtemp(prefix="eg-bench-cg-")
        cgf = os.path.join(tmp, "cg.out")
        p = run(["valgrind", "--tool=callgrind", "--collect-atstart=no",
                 "--toggle-collect=bench_pass",
                 "--callgrind-out-file=" + cgf] + engine_args(P)[:3] +
                ["--passes", str(P["cg_passes"]), "cgcorpus"] +
                corpus_files(kind))
        d["ir"] = cg_total(cgf) / (P["cg_passes"] * d["records"])
        if kind == "legit":
            res["annotate"] = cg_annotate(cgf, top=20)
            shutil.copy(cgf, os.path.join(BUILD, "callgrind-engine-legit.out"))
        shutil.rmtree(tmp, ignore_errors=True)
        res["corpus"][kind] = d
        log("  engine %-6s %d records %8.1f ns %8.0f Ir per request" % (
            kind, d["records"], d["ns"], d["ir"]))

    for kind, sizes in P["sizes"].items():
        p = run(engine_args(P) + ["growth", kind,
                                  ",".join(str(s) for s in sizes)])
        pts = []
        for line in p.stdout.decode().splitlines():
            w = line.split()
            if len(w) == 6 and w[0] == "growth":
                pts.append({"size": int(w[2]), "ns": float(w[3]),
                            "action": w[4], "limit": int(w[5])})
        if len(pts) != len(sizes):
            raise RuntimeError("eg-bench growth %s: %s" % (
                kind, p.stdout.decode()))
        # instructions for the same sizes: deterministic, whatever else
        # the machine runs
        tmp = tempfile.mkdtemp(prefix="eg-bench-cg-")
        cgf = os.path.join(tmp, "cg.out")
        p = run(["valgrind", "--tool=callgrind",
                 "--callgrind-out-file=" + cgf] + engine_args(P)[:3] +
                ["--passes", str(P["cg_passes"]), "cggrowth", kind,
                 ",".join(str(s) for s in sizes)])
        for j, q in enumerate(pts):
            q["ir"] = cg_total("%s.%d" % (cgf, j + 1)) / P["cg_passes"]
        shutil.rmtree(tmp, ignore_errors=True)

        g = analyze(pts)
        res["growth"][kind] = g
        log("  growth %-12s time slope %.2f (tail %.2f), Ir slope %.2f "
            "(tail %.2f): %s" % (kind, g["slope"], g["slope_tail"],
                                 g["ir_slope"], g["ir_slope_tail"],
                                 verdict(g)))

    # the legitimate corpus against the shipped rules plus N rules of a
    # kind it cannot match
    res["rules"] = {}
    counts = ",".join(str(n) for n in P["rule_counts"])
    for kind, _ in RULE_KINDS:
        tmp = tempfile.mkdtemp(prefix="eg-bench-cg-")
        cgf = os.path.join(tmp, "cg.out")
        p = run(["valgrind", "--tool=callgrind",
                 "--callgrind-out-file=" + cgf] + engine_args(P)[:3] +
                ["--passes", str(P["cg_passes"]), "cgrules", kind, counts] +
                corpus_files("legit"))
        pts = []
        for line in p.stdout.decode().splitlines():
            w = line.split()
            if len(w) == 5 and w[0] == "cgrules":
                pts.append({"count": int(w[2]),
                            "ir": cg_total("%s.%d" % (cgf, len(pts) + 1)) /
                            (int(w[3]) * int(w[4]))})
        shutil.rmtree(tmp, ignore_errors=True)
        if len(pts) != len(P["rule_counts"]):
            raise RuntimeError("eg-bench cgrules %s: %s" % (
                kind, p.stdout.decode()))
        res["rules"][kind] = pts
        log("  rules  %-12s %s: %s" % (kind, rules_line(pts),
                                       rules_verdict(pts)))
    return res


def per_rule(pts):
    """instructions per added rule at the largest count"""
    a, b = pts[0], pts[-1]
    return (b["ir"] - a["ir"]) / (b["count"] - a["count"])


def rules_line(pts):
    return "Ir/request %s; %.2f Ir per added rule" % (
        " ".join("%d:%.0f" % (q["count"], q["ir"]) for q in pts),
        per_rule(pts))


def rules_verdict(pts):
    # testing one rule costs 5 to 400 instructions (a need, a probe, a
    # contains on a header); below one per rule no rule is tested, only
    # the rule bit sets grow (one 64-bit word per 64 rules)
    return "indexed" if per_rule(pts) < 1.0 else "TESTED ONE BY ONE"


def analyze(pts):
    """slopes of time and instructions on log-log: over all sizes, over
    the larger half ("upper") and over the 3 largest ("tail"); steps =
    consecutive sizes where the instructions per unit jump by > 25 %."""
    g = {"points": pts}
    h = max(3, (len(pts) + 1) // 2) if len(pts) > 3 else len(pts)
    for key, val in (("slope", "ns"), ("ir_slope", "ir")):
        xs, ys = [q["size"] for q in pts], [q[val] for q in pts]
        g[key] = slope(xs, ys)
        g[key + "_upper"] = slope(xs[-h:], ys[-h:])
        g[key + "_tail"] = slope(xs[-3:], ys[-3:])
    g["steps"] = []
    for a, b in zip(pts, pts[1:]):
        r = (b["ir"] / b["size"]) / (a["ir"] / a["size"])
        if r > 1.25:
            g["steps"].append((a["size"], b["size"], r))
    g["superlinear"] = g["ir_slope_tail"] > 1.15 or g["ir_slope"] > 1.15
    g["superlinear_time"] = not g["superlinear"] and (
        g["slope_tail"] > 1.15 or g["slope"] > 1.15)
    return g


def verdict(g):
    if g["superlinear"]:
        return "SUPERLINEAR"
    v = "linear" if g["ir_slope_tail"] >= 0.85 else "sublinear"
    if g["steps"]:
        v += ", with a step"
    if g["superlinear_time"]:
        v += "; superlinear in time only"
    return v


def slope(xs, ys):
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = statistics.mean(lx), statistics.mean(ly)
    den = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / den


# ------------------------------------------------------------ report

def machine():
    info = {"nproc": run(["nproc"]).stdout.decode().strip()}
    ls = run(["lscpu"]).stdout.decode()
    keep = ("Architecture", "Model name", "CPU(s)", "Thread(s) per core",
            "Hypervisor vendor", "L1d cache", "L2 cache", "L3 cache",
            "CPU max MHz", "BogoMIPS")
    info["lscpu"] = [l.strip() for l in ls.splitlines()
                     if l.split(":")[0].strip() in keep]
    info["nginx"] = run([NGINX, "-v"]).stdout.decode().strip()
    info["wrk"] = run(["wrk", "-v"]).stdout.decode().splitlines()[0:1]
    info["valgrind"] = run(["valgrind", "--version"]).stdout.decode().strip()
    info["kernel"] = run(["uname", "-sr"]).stdout.decode().strip()
    for pkg in ("libnginx-mod-http-modsecurity", "libmodsecurity3",
                "modsecurity-crs", "libpcre2-8-0"):
        v = run(["dpkg-query", "-W", "-f=${Version}", pkg]).stdout.decode()
        info.setdefault("packages", {})[pkg] = v
    return info


def module_hash():
    """sha256 of module/*.c and *.h (what this run measured)"""
    import hashlib
    h = hashlib.sha256()
    for f in sorted(glob.glob(os.path.join(ROOT, "module", "*.[ch]"))):
        with open(f, "rb") as fh:
            h.update(os.path.basename(f).encode() + b"\0" + fh.read())
    return h.hexdigest()[:16]


def fmt_ir(x):
    return "{:,.0f}".format(x)


def fmt_ns(x):
    if x >= 1e6:
        return "%.2f ms" % (x / 1e6)
    if x >= 1e3:
        return "%.1f µs" % (x / 1e3)
    return "%.0f ns" % x


def size_label(s, unit):
    if unit == "cookies":
        return str(s)
    if s >= 1 << 20:
        return "%g MB" % (s / (1 << 20))
    if s >= 1024:
        return "%g KB" % (s / 1024)
    return "%d B" % s


def report(R, P, quick, elapsed, chart):
    L = []
    a = L.append
    a("# exchange_guard benchmarks%s" % (" (--quick)" if quick else ""))
    a("")
    a("Measured by `auto/bench%s` on %s; the whole run took %.0f s. "
      "Numbers are as measured; each target is marked **met** or "
      "**missed** next to its measurement." % (
          " --quick" if quick else "", R["date"], elapsed))
    a("")
    if chart:
        a("![throughput ratios and growth curves](%s)" % chart)
        a("")
    a("## Machine")
    a("")
    m = R["machine"]
    a("- module sources measured: sha256 of `module/*.[ch]` = `%s` "
      "(`tests/bench/bench.py`, `module_hash`)" % R["module_sha256"])
    a("- `nproc`: %s; kernel %s" % (m["nproc"], m["kernel"]))
    for l in m["lscpu"]:
        a("- `lscpu` %s" % re.sub(r"\s+", " ", l))
    a("- %s, %s, %s" % (m["nginx"], " ".join(m["wrk"]), m["valgrind"]))
    a("- packages: " + ", ".join("%s %s" % (k, v)
                                  for k, v in m["packages"].items()))
    a("")
    a("All servers run on loopback. The upstream is one plain nginx worker "
      "answering `return 200 \"ok\\n\"`, reached through an `upstream` "
      "block with `keepalive 64`. The front proxies share one "
      "configuration (`tests/bench/bench.py`, `FRONT_CONF`: "
      "`large_client_header_buffers 4 64k; client_max_body_size 20m; "
      "keepalive_requests 1000000; proxy_http_version 1.1; "
      "proxy_request_buffering off;`, one worker) and differ only in the "
      "filter: nothing (`bare`), `exchange_guard on|detect` with "
      "`exchange_guard_rules rules/*.rules; exchange_guard_log ...;`, "
      "`include tests/peers/eomt-nginx.conf;` in the server block, or "
      "ModSecurity v3 with `tests/peers/modsecurity/modsecurity.conf`, "
      "`crs.load` and `eomt.secrules` (as `auto/compare` loads them).")
    a("")
    a("The benign mix (`tests/bench/gen_mix.py`, `MIX`; the wrk script "
      "`tests/bench/mix.lua` is generated from it) is two records of "
      "`tests/corpus/legit/*.http` per request type, sent round robin:")
    a("")
    a("| type | what | records |")
    a("|---|---|---|")
    for t, what, ids in gen_mix.MIX:
        a("| %s | %s | %s |" % (t, what, ", ".join("`%s`" % i for i in ids)))
    a("")

    # 1
    C = R.get("callgrind")
    if C:
        a("## 1. Instructions per proxied request (callgrind)")
        a("")
        a("nginx (`master_process off; daemon off;`) under `valgrind "
          "--tool=callgrind`; 20 warm-up requests; then per type one "
          "keep-alive connection, each request of the type sent twice, "
          "`callgrind_control -z`, %d requests (the mix: %d, round robin), "
          "`callgrind_control -d`; Ir per request = the dump's total / "
          "requests. Everything the nginx process executes is counted: "
          "reading, parsing, proxying, the upstream answer, logging. "
          "Target: guard/bare <= 1.03." % (C["n"], C["mix_n"]))
        a("")
        for lg, title in (("nolog", "access_log off"),
                          ("log", "access_log on (default `combined` "
                                  "format, both configurations)")):
            a("### %s" % title)
            a("")
            a("| type | bare Ir/request | guard Ir/request | guard - bare "
              "| guard/bare | target <= 1.03 |")
            a("|---|---:|---:|---:|---:|---|")
            for t in [x for x, _, _ in gen_mix.MIX] + ["mix"]:
                c = C["table"][lg][t]
                a("| %s | %s | %s | %s | **%.3f** | %s |" % (
                    "**mix**" if t == "mix" else t, fmt_ir(c["bare"]),
                    fmt_ir(c["guard"]), fmt_ir(c["extra"]), c["ratio"],
                    "met" if c["ratio"] <= 1.03 else "missed"))
            a("")
        bad = {k: {t: s for t, s in v.items()
                   if set(int(x) for x in s) != {200}}
               for k, v in C["statuses"].items()}
        bad = {k: v for k, v in bad.items() if v}
        a("Every measured request was answered 200%s. Guard log lines "
          "written during the callgrind runs (benign traffic): %s." % (
              "" if not bad else " except: %s" % json.dumps(bad),
              ", ".join("%s %d" % (k, v) for k, v in
                        C["guard_log_lines"].items() if k.startswith("guard"))))
        a("")
        a("### Where the guard's instructions go")
        a("")
        a("`callgrind_annotate --inclusive=no` of the guard, access_log "
          "off, the mix dump (%d requests; kept as "
          "`build/bench/callgrind-guard-nolog.out`). Per object:" %
          C["mix_n"])
        a("")
        a("| object | guard Ir/request | bare Ir/request |")
        a("|---|---:|---:|")
        bo = {o: v for v, o in C["bare_annotate"]["objects"]}
        for v, o in C["annotate"]["objects"][:8]:
            a("| %s | %s | %s |" % (o, fmt_ir(v / C["mix_n"]),
                                    fmt_ir(bo.get(o, 0) / C["mix_n"])))
        a("")
        a("`(inlined)`: code inlined from a header (`module/eg_internal.h`"
          "), which callgrind names by file only; `???`: code without a "
          "symbol, in the guard run PCRE2's JIT-compiled patterns.")
        a("")
        a("Top functions by self cost (guard, per request):")
        a("")
        a("| Ir/request | function | object |")
        a("|---:|---|---|")
        for ir, fn, obj in C["annotate"]["functions"][:25]:
            a("| %s | `%s` | %s |" % (fmt_ir(ir / C["mix_n"]), fn, obj))
        a("")

        a("The guard's own code only (the module, inlined helpers, PCRE2 "
          "and its JIT code), per request:")
        a("")
        a("| Ir/request | function | object |")
        a("|---:|---|---|")
        own = [r for r in C["annotate"]["all"] if r[2] in (
            "ngx_http_exchange_guard_module.so", "(inlined)", "???")
            or r[2].startswith("libpcre2")]
        for ir, fn, obj in own[:20]:
            a("| %s | `%s` | %s |" % (fmt_ir(ir / C["mix_n"]), fn, obj))
        a("")

        a("Largest differences guard - bare, per request, any object "
          "(what the module costs including what it makes nginx do: "
          "reading a body, pool allocations...):")
        a("")
        a("| guard - bare Ir/request | function | object |")
        a("|---:|---|---|")
        diff = {}
        for ir, fn, obj in C["annotate"]["all"]:
            diff[(fn, obj)] = diff.get((fn, obj), 0) + ir
        for ir, fn, obj in C["bare_annotate"]["all"]:
            diff[(fn, obj)] = diff.get((fn, obj), 0) - ir
        rows = sorted(((v, k) for k, v in diff.items() if not
                       re.match(r"0x[0-9a-f]+$", k[0])), reverse=True)
        for v, (fn, obj) in rows[:15]:
            a("| %s | `%s` | %s |" % (fmt_ir(v / C["mix_n"]), fn, obj))
        a("")

    # 2, 3
    W = R.get("wrk")
    if W:
        a("## 2. Throughput (wrk)")
        a("")
        a("`wrk -t1 -c%d -d%ds --timeout 5s -s tests/bench/mix.lua` "
          "(Debian's wrk), %d round(s); in each round every peer once, the "
          "order rotated from round to round, and each peer's run between "
          "two runs of the bare proxy: its requests/s (and worker CPU per "
          "request) divided by the mean of those two, so that the "
          "machine's slow drift cancels instead of entering the ratio. The "
          "bare column is the median of its runs. All five peers "
          "listen at the same time, each its own nginx (master + 1 "
          "worker) pinned with `taskset` to CPU %s; wrk and the upstream "
          "are pinned to CPU %s. access_log off in every peer. Target: "
          "guard >= 0.97 of bare." % (
              P["connections"], P["duration"], P["rounds"], CPU_PROXY,
              CPU_LOAD))
        a("")
        a("| peer | requests/s median | ratio to bare: min | median | max "
          "| non-2xx / socket errors | target | worker CPU µs/request median | "
          "CPU ratio to bare: min | median | max |")
        a("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
        for p in PEERS:
            rps = W["rps"][p]
            cu = W["cpu_us"][p]["median"]
            nb = "%d / %d" % (sum(r[p]["non2xx"] for r in W["rounds"]),
                              sum(r[p].get("errors", 0) for r in W["rounds"]))
            if p == "bare":
                a("| bare | %.0f | 1 | 1 | 1 | %s | | %.1f | 1 | 1 | 1 |" % (
                    rps["median"], nb, cu))
                continue
            q = W["ratios"][p]
            c = W["cpu_ratios"][p]
            tgt = ""
            if p == "guard":
                tgt = "see below"
            a("| %s | %.0f | %.3f | **%.3f** | %.3f | %s | %s | %.1f | %.3f "
              "| %.3f | %.3f |" % (
                  p, rps["median"], q["min"], q["median"], q["max"], nb, tgt,
                  cu, c["min"], c["median"], c["max"]))
        a("")
        Q, QC = W["pair_ratios"], W["pair_cpu_ratios"]
        a("The throughput target is judged on its own measurement, made "
          "after the rounds: %d runs of the guard of %d s each, each "
          "between two runs of the bare proxy (bare, guard, bare, guard, "
          "..., bare), each guard run's requests/s divided by the mean of "
          "the two bare runs around it. Short runs side by side compare "
          "the two proxies seconds apart; %d of them give a median that "
          "one unlucky run cannot move." % (
              len(W["pairs"]), P["pair_duration"], len(W["pairs"])))
        a("")
        a("| guard against bare | runs | ratio: min | median | max | "
          "target >= 0.97 | CPU/request ratio: min | median | max |")
        a("|---|---:|---:|---:|---:|---|---:|---:|---:|")
        a("| %d × %d s | %d | %.3f | **%.3f** | %.3f | %s | %.3f | %.3f | "
          "%.3f |" % (
              len(W["pairs"]), P["pair_duration"], len(W["pairs"]),
              Q["min"], Q["median"], Q["max"],
              "met" if Q["median"] >= 0.97 else "missed",
              QC["min"], QC["median"], QC["max"]))
        a("")
        a("Each run (requests/s):")
        a("")
        a("| run | guard | bare before and after (mean) | ratio |")
        a("|---:|---:|---:|---:|")
        for i, q in enumerate(W["pairs"]):
            a("| %d | %.0f | %.0f | %.3f |" % (
                i + 1, q["rps"], q["ref_rps"], q["rps"] / q["ref_rps"]))
        a("")
        a("Worker CPU µs/request = the user + system CPU time the peer's "
          "nginx worker used during the run (from `/proc/PID/stat`) / the "
          "requests wrk counted; it depends much less than requests/s on "
          "what else the machine runs. Load average during the runs: "
          "min %.1f, median %.1f, max %.1f on %s CPUs (wrk, the upstream "
          "and the proxy under test keep both CPUs busy: about 2 is this "
          "benchmark's own load)%s." % (
              W["load"]["min"], W["load"]["median"], W["load"]["max"],
              R["machine"]["nproc"],
              " — more than that: the machine was shared with other work, "
              "so requests/s ratios are noisier than usual; trust the "
              "medians and the CPU column more than single rounds"
              if W["load"]["median"] > 2.5 else ""))
        a("")
        odd = {k: v for k, v in W["sanity"].items() if v}
        a("Mix sanity check before the rounds (each mix record once to "
          "each peer): %s." % (
              "every peer answered 200 to all of it" if not odd else
              "; ".join("%s answered %s" % (k, ", ".join(
                  "%s to %s" % (s, rid) for rid, s in v.items()))
                  for k, v in odd.items())))
        a("A peer that refuses part of the mix answers those requests "
          "without proxying them (403), or closes the connection (444: a "
          "socket error for wrk, which then reconnects); the non-2xx / "
          "socket errors column counts them. Refusing is cheaper than "
          "proxying and flatters requests/s; reconnecting costs.")
        a("")
        a("Per round, requests/s:")
        a("")
        a("| round | " + " | ".join(PEERS + [FLOOD]) + " |")
        a("|---|" + "---:|" * (len(PEERS) + 1))
        for i, r in enumerate(W["rounds"]):
            a("| %d | %s |" % (i + 1, " | ".join(
                "%.0f" % r[p]["rps"] for p in PEERS + [FLOOD])))
        a("")
        a("## 3. Attack flood")
        a("")
        fl = W["ratios"][FLOOD]
        a("wrk with only attack requests against the guard (`on`), in the "
          "same rounds: %d records of `tests/corpus/attack/*.http` (those "
          "with a body of at most 2 KB, %d candidates; kept: the ones the "
          "guard answered 403 with one log line when sent once; generated "
          "into `build/bench/attack.lua`), same wrk options. Refusals/s "
          "divided by the mean of the bare proxy's benign requests/s in "
          "the runs just before and after. Target >= 1.0." % (
              W["flood_records"], W["flood_candidates"]))
        a("")
        a("| refusals/s median | ratio to bare benign: min | median | max "
          "| target |")
        a("|---:|---:|---:|---:|---|")
        a("| %.0f | %.3f | **%.3f** | %.3f | %s |" % (
            W["rps"][FLOOD]["median"], fl["min"], fl["median"], fl["max"],
            "met" if fl["median"] >= 1.0 else "missed"))
        a("")
        if W["flood_dropped"]:
            a("Left out of the flood (status, log lines when sent once): " +
              ", ".join("`%s` (%s, %d)" % (i, s, n)
                        for i, s, n in W["flood_dropped"]) + ".")
            a("")
        a("Log lines against refusals:")
        a("")
        a("| round | responses counted by wrk | of which non-2xx | "
          "guard log lines written | lines - responses |")
        a("|---|---:|---:|---:|---:|")
        for i, r in enumerate(W["rounds"]):
            f = r[FLOOD]
            a("| %d | %d | %d | %d | %d |" % (
                i + 1, f["requests"], f["non2xx"], f["log_lines"],
                f["log_lines"] - f["requests"]))
        a("")
        e = W["exact_check"]
        a("wrk counts only the answers it read before its timer ran out; "
          "requests still in flight (at most one per connection, %d) were "
          "refused and logged too, so lines - responses should lie in "
          "[0, %d]. Exact check afterwards, each kept attack sent twice on "
          "connections of its own: %d sent, %d refused with 403, %d log "
          "lines: %s." % (
              P["connections"], P["connections"], e["sent"], e["refused"],
              e["log_lines"],
              "lines == refusals" if e["log_lines"] == e["refused"]
              else "MISMATCH"))
        a("")

    # 4
    E = R.get("engine")
    if E:
        a("## 4. Engine (tests/bench/eg_bench.c)")
        a("")
        a("The engine alone (`module/eg_*.c`, `-O2`, PCRE2 with JIT as the "
          "engine sets it up), every shipped rule, no nginx. Requests are "
          "evaluated as the module does: headers first, the body only when "
          "a rule asks for it and nothing refused the request yet. Memory "
          "from a bump arena reset after each request. Time: the fastest of %d "
          "runs of >= %g ms each. Instructions: `valgrind --tool=callgrind "
          "--toggle-collect=bench_pass`, %d pass(es) over the corpus." % (
              P["repeat"], P["min_ms"], P["cg_passes"]))
        a("")
        a("| corpus | records | refused | ns/request | Ir/request |")
        a("|---|---:|---:|---:|---:|")
        for k, d in E["corpus"].items():
            a("| %s | %d | %d | %.0f | %s |" % (
                k, d["records"], d["blocked"], d["ns"], fmt_ir(d["ir"])))
        a("")
        a("Top functions by self cost, legitimate corpus (Ir per request):")
        a("")
        a("| Ir/request | function | object |")
        a("|---:|---|---|")
        nrec = E["corpus"]["legit"]["records"] * P["cg_passes"]
        for ir, fn, obj in E["annotate"]["functions"][:15]:
            a("| %s | `%s` | %s |" % (fmt_ir(ir / nrec), fn, obj))
        a("")
        a("### Growth curves")
        a("")
        a("Time and instructions of one evaluation against input size; "
          "`max_cookies` 100000 and `max_header_bytes` 1 GB so that no "
          "limit stops the work (the `limit` column would say). Time: the "
          "fastest of %d runs; instructions: callgrind, %d evaluation(s) "
          "per size between `CALLGRIND_ZERO_STATS` and "
          "`CALLGRIND_DUMP_STATS_AT` (`eg-bench cggrowth`), deterministic "
          "whatever else the machine runs. Slope = least-squares slope of "
          "log(cost) on log(size): 1 is linear, below 1 means fixed costs "
          "still weigh, above 1 is superlinear. SUPERLINEAR is flagged "
          "when the instruction slope over all sizes or over the 3 "
          "largest exceeds 1.15; a step is a jump of more than 25 %% in "
          "instructions per unit between two consecutive sizes; \"in time "
          "only\" when only the clock is superlinear (caches, or a busy "
          "machine)." % (
              P["repeat"], P["cg_passes"]))
        a("")
        for kind, g in E["growth"].items():
            unit = SIZE_UNIT[kind]
            g = analyze(g["points"])
            a("**%s**: %s. Instructions: slope %.2f over all sizes, %.2f "
              "over the 3 largest; time: %.2f, %.2f. **%s**%s." % (
                  kind, SIZE_WHAT[kind], g["ir_slope"], g["ir_slope_tail"],
                  g["slope"], g["slope_tail"], verdict(g),
                  "".join("; step between %s and %s: instructions per %s "
                          "x%.2f, constant again after" % (
                              size_label(x, unit), size_label(y, unit),
                              "cookie" if unit == "cookies" else "KB", r)
                          for x, y, r in g["steps"])))
            a("")
            per = "cookie" if unit == "cookies" else "KB"
            a("| size | time | ns per %s | Ir | Ir per %s | verdict | limit |"
              % (per, per))
            a("|---:|---:|---:|---:|---:|---|---:|")
            for q in g["points"]:
                f = 1.0 if unit == "cookies" else 1024.0
                a("| %s | %s | %.0f | %s | %s | %s | %d |" % (
                    size_label(q["size"], unit), fmt_ns(q["ns"]),
                    q["ns"] / q["size"] * f, fmt_ir(q["ir"]),
                    fmt_ir(q["ir"] / q["size"] * f), q["action"],
                    q["limit"]))
            a("")

    if "engine" in R and R["engine"].get("rules"):
        E = R["engine"]
        a("### Rules a request cannot match")
        a("")
        a("The legitimate corpus (%d records) against the shipped rules "
          "plus N rules a site might add, none of which it matches "
          "(`eg-bench cgrules KIND N`, callgrind, %d pass(es) per count). "
          "Testing a rule one by one costs 5 to 400 instructions; "
          "**indexed** means under one instruction per added rule: the "
          "request looks at no rule it cannot match (path scope, header "
          "and cookie gates, grams of the values: `rules/README.md`); "
          "what still grows is the rule bit sets, one 64-bit word per 64 "
          "rules, about half an instruction per rule. Up to 64 rules with "
          "no gate worth having, each rule's needs are tested instead "
          "(cheaper there)." % (E["corpus"]["legit"]["records"],
                                 P["cg_passes"]))
        a("")
        a("| added rules | " + " | ".join(
            "N = %d" % n for n in P["rule_counts"]) +
          " | Ir per added rule | verdict |")
        a("|---|" + "---:|" * len(P["rule_counts"]) + "---:|---|")
        for kind, what in RULE_KINDS:
            pts = E["rules"][kind]
            a("| %s | %s | %.2f | **%s** |" % (
                what, " | ".join(fmt_ir(q["ir"]) for q in pts),
                per_rule(pts), rules_verdict(pts)))
        a("")

    H = history()
    if H and not quick:
        a("## Full runs so far")
        a("")
        a("Every full `auto/bench` appends a line to "
          "`tests/bench/history.jsonl`. The module changes between runs "
          "(see its hash); on this shared machine the wrk ratios move by "
          "much more than the 3 % the targets ask to resolve, the "
          "callgrind and CPU-time ratios much less.")
        a("")
        a("| date | module | callgrind mix off / on | wrk guard (CPU ratio) | "
          "wrk guard, short runs | detect | eomt | modsec | flood | "
          "engine Ir legit / attack | load |")
        a("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for h in H[-10:]:
            a("| %s | `%s` | %.3f / %.3f | %.3f (%.3f) | %s | %.3f | %.3f | "
              "%.3f | %.3f | %s / %s | %.1f |" % (
                  h["date"], h["module_sha256"], h["cg_mix_nolog"],
                  h["cg_mix_log"], h["wrk_guard"], h["wrk_guard_cpu"],
                  "%.3f" % h["wrk_guard_pairs"] if "wrk_guard_pairs" in h
                  else "—",
                  h["wrk_guard_detect"], h["wrk_eomt"], h["wrk_modsec"],
                  h["flood"], fmt_ir(h["engine_legit_ir"]),
                  fmt_ir(h["engine_attack_ir"]), h["load"]))
        a("")

    a("## Reproduce")
    a("")
    a("```")
    a("auto/bench            # everything, ~10 minutes; writes BENCHMARKS.md "
      "and docs/bench.png")
    a("auto/bench --quick    # fewer requests, 1 short round, 3 sizes: "
      "< 2 minutes; writes build/bench/quick/")
    a("auto/bench --only engine        # or callgrind, wrk (a partial "
      "report)")
    a("python3 tests/bench/bench.py --report-only   # rewrite the report "
      "from build/bench/results.json")
    a("tests/bench/test_bench_quick.sh # runs --quick, checks its output")
    a("```")
    a("")
    a("`auto/bench` installs what is missing (wrk, valgrind, gnuplot-nox, "
      "libnginx-mod-http-modsecurity, modsecurity-crs), runs `auto/build`, "
      "copies the module to `build/bench/` (a concurrent "
      "`EG_SANITIZE=1 auto/build` cannot swap it mid-run), builds "
      "`build/bench/eg-bench` and runs `tests/bench/bench.py`. Raw "
      "results: `build/bench/results.json` (`--quick`: "
      "`results-quick.json`); callgrind dumps: "
      "`build/bench/callgrind-*.out` (open with `callgrind_annotate` or "
      "kcachegrind). By hand:")
    a("")
    a("```")
    a("valgrind --tool=callgrind nginx -p DIR -c DIR/nginx.conf   "
      "# master_process off; daemon off;")
    a("callgrind_control -z PID; <send N requests>; callgrind_control -d PID")
    a("taskset -c 0 wrk -t1 -c50 -d5s --timeout 5s -s tests/bench/mix.lua "
      "http://127.0.0.1:PORT/")
    a("build/bench/eg-bench --rules 'rules/*.rules' corpus "
      "tests/corpus/legit/*.http")
    a("build/bench/eg-bench --rules 'rules/*.rules' growth json "
      "1024,65536,1048576")
    a("valgrind --tool=callgrind build/bench/eg-bench --rules "
      "'rules/*.rules' --passes 5 cgrules user-agent 0,1000,4000 "
      "tests/corpus/legit/*.http   # one dump per count")
    a("```")
    a("")
    return "\n".join(L)


def chart(R, path):
    """gnuplot PNG: throughput ratios per peer and the growth curves."""
    W, E, C = R.get("wrk"), R.get("engine"), R.get("callgrind")
    d = tempfile.mkdtemp(prefix="eg-bench-plot-")
    g = ["set terminal pngcairo size 1400,1000 font 'Sans,10'"
         if has_pngcairo() else "set terminal png size 1400,1000",
         "set output '%s'" % path, "set termoption noenhanced",
         "set multiplot layout 2,2 title "
         "'exchange_guard benchmarks (%s)'" % R["date"]]
    if W:
        with open(os.path.join(d, "ratio.dat"), "w") as f:
            for i, p in enumerate(PEERS[1:] + [FLOOD]):
                q = W["ratios"][p]
                f.write("%d \"%s\" %f %f %f\n" % (i, p, q["median"],
                                                  q["min"], q["max"]))
        g += ["set title 'wrk requests/s, ratio to bare (median, min-max)'",
              "set style fill solid 0.6", "set boxwidth 0.6",
              "set yrange [0:*]", "set grid ytics", "unset logscale",
              "set xtics rotate by -20",
              "set arrow 1 from graph 0, first 0.97 to graph 1, first 0.97 "
              "nohead dt 2 lc rgb 'red'",
              "plot '%s' using 1:3:xtic(2) with boxes lc rgb '#4477aa' "
              "notitle, '' using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0 "
              "notitle" % os.path.join(d, "ratio.dat"), "unset arrow 1",
              "unset xtics", "set xtics"]
    else:
        g += ["set multiplot next"]
    if C:
        with open(os.path.join(d, "cg.dat"), "w") as f:
            for i, t in enumerate([x for x, _, _ in gen_mix.MIX] + ["mix"]):
                f.write("%d \"%s\" %f %f\n" % (
                    i, t, C["table"]["nolog"][t]["ratio"],
                    C["table"]["log"][t]["ratio"]))
        top = max(max(C["table"][lg][t]["ratio"] for t in C["table"][lg])
                  for lg in ("nolog", "log"))
        g += ["set title 'callgrind Ir per request, guard / bare'",
              "set style data histogram", "set style histogram cluster "
              "gap 1", "set style fill solid 0.6",
              "set yrange [0.9:%f]" % (top * 1.08), "set key top left",
              "set xtics rotate by -20",
              "set arrow 2 from graph 0, first 1.03 to graph 1, first 1.03 "
              "nohead dt 2 lc rgb 'red'",
              "plot '%s' using 3:xtic(2) title 'access_log off', '' using 4 "
              "title 'access_log on'" % os.path.join(d, "cg.dat"),
              "unset arrow 2", "set style data lines", "set xtics norotate"]
    else:
        g += ["set multiplot next"]
    if E:
        plots = []
        for kind in ("cookie-bytes", "uri", "json"):
            fn = os.path.join(d, kind + ".dat")
            with open(fn, "w") as f:
                for q in E["growth"][kind]["points"]:
                    f.write("%d %f %f\n" % (q["size"], q["ir"], q["ns"]))
            an = analyze(E["growth"][kind]["points"])
            plots.append("'%s' using 1:2 with linespoints title '%s "
                         "(slope %.2f)'" % (fn, kind, an["ir_slope"]))
        g += ["set title 'engine: instructions per request against input "
              "size (callgrind; times in BENCHMARKS.md)'",
              "set logscale xy", "set xlabel 'bytes'",
              "set ylabel 'instructions'", "set format y '%.0s%c'",
              "set yrange [*:*]", "set key top left", "set grid",
              "plot " + ", ".join(plots)]
        fn = os.path.join(d, "cc.dat")
        with open(fn, "w") as f:
            for q in E["growth"]["cookie-count"]["points"]:
                f.write("%d %f\n" % (q["size"], q["ir"]))
        an = analyze(E["growth"]["cookie-count"]["points"])
        g += ["set title 'engine: instructions per request against cookie "
              "count'", "set xlabel 'cookies'",
              "plot '%s' using 1:2 with linespoints title 'cookie-count "
              "(slope %.2f)'" % (fn, an["ir_slope"])]
    g += ["unset multiplot"]
    with open(os.path.join(d, "plot.gp"), "w") as f:
        f.write("\n".join(g) + "\n")
    p = run(["gnuplot", os.path.join(d, "plot.gp")])
    shutil.rmtree(d, ignore_errors=True)
    if p.returncode != 0 or not os.path.exists(path):
        log("gnuplot failed: %s" % p.stdout.decode("utf-8", "replace"))
        return False
    return True


def has_pngcairo():
    p = run(["gnuplot", "-e", "set terminal"])
    return b"pngcairo" in p.stdout


# ------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="callgrind,wrk,engine")
    ap.add_argument("--no-write", action="store_true",
                    help="print only; leave BENCHMARKS.md and the chart")
    ap.add_argument("--out", help="write BENCHMARKS.md and bench.png here "
                    "(default: the repository's BENCHMARKS.md and "
                    "docs/bench.png; with --quick build/bench/quick/)")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite the report and chart from "
                    "build/bench/results.json (with --quick: "
                    "results-quick.json), measure nothing")
    args = ap.parse_args()
    if args.report_only:
        with open(results_path(args.quick)) as f:
            R = json.load(f)
        args.quick = R["quick"]
        P = QUICK if args.quick else FULL
        return write(R, P, args, R.get("elapsed", 0))
    P = QUICK if args.quick else FULL
    only = set(args.only.split(","))
    for n in (MODULE, EGBENCH):
        if not os.path.exists(n):
            print("bench.py: %s is missing; run auto/bench" % n,
                  file=sys.stderr)
            return 2

    t0 = time.time()
    R = {"date": datetime.datetime.now().astimezone().strftime(
        "%Y-%m-%d %H:%M %Z").strip(), "quick": args.quick,
         "machine": machine(), "module_sha256": module_hash()}
    top = tempfile.mkdtemp(prefix="eg-bench-")
    upstream = None
    try:
        if "callgrind" in only or "wrk" in only:
            upstream = start_upstream(top)
        if "callgrind" in only:
            log("1. callgrind")
            R["callgrind"] = bench_callgrind(top, upstream, P)
        if "wrk" in only:
            log("2-3. wrk")
            R["wrk"] = bench_wrk(top, upstream, P)
        if "engine" in only:
            log("4. engine")
            R["engine"] = bench_engine(P)
    finally:
        if upstream:
            upstream.stop()
        shutil.rmtree(top, ignore_errors=True)
    elapsed = time.time() - t0

    # the summary
    log("")
    log("summary%s (%.0f s)" % (" --quick" if args.quick else "", elapsed))
    if "callgrind" in R:
        for lg in ("nolog", "log"):
            t = R["callgrind"]["table"][lg]
            log("  callgrind guard/bare, access_log %-3s: mix %.3f; %s" % (
                "off" if lg == "nolog" else "on", t["mix"]["ratio"],
                " ".join("%s %.3f" % (k, v["ratio"]) for k, v in t.items()
                         if k != "mix")))
    if "wrk" in R:
        for p, q in R["wrk"]["ratios"].items():
            c = R["wrk"]["cpu_ratios"][p]
            log("  wrk %-16s ratio to bare: min %.3f median %.3f max %.3f"
                "   CPU/request ratio: min %.3f median %.3f max %.3f"
                % (p, q["min"], q["median"], q["max"], c["min"],
                   c["median"], c["max"]))
        q, c = R["wrk"]["pair_ratios"], R["wrk"]["pair_cpu_ratios"]
        log("  wrk guard, %d short runs  ratio to bare: min %.3f median %.3f"
            " max %.3f   CPU/request ratio: median %.3f   target >= 0.97: %s"
            % (len(R["wrk"]["pairs"]), q["min"], q["median"], q["max"],
               c["median"], "met" if q["median"] >= 0.97 else "missed"))
        e = R["wrk"]["exact_check"]
        log("  flood log check: %d refused, %d log lines" % (
            e["refused"], e["log_lines"]))
    if "engine" in R:
        for k, d in R["engine"]["corpus"].items():
            log("  engine %-6s %.0f ns, %.0f Ir per request" % (
                k, d["ns"], d["ir"]))
        for k, g in R["engine"]["growth"].items():
            log("  growth %-12s slope %.2f (tail %.2f); Ir slope %.2f (tail "
                "%.2f): %s" % (k, g["slope"], g["slope_tail"], g["ir_slope"],
                               g["ir_slope_tail"], verdict(g)))
        for k, pts in R["engine"].get("rules", {}).items():
            log("  rules  %-12s %s: %s" % (k, rules_line(pts),
                                           rules_verdict(pts)))

    R["elapsed"] = elapsed
    if not args.quick and only == {"callgrind", "wrk", "engine"} \
            and not args.no_write:
        add_history(R)
    os.makedirs(BUILD, exist_ok=True)
    with open(results_path(args.quick), "w") as f:
        json.dump(R, f, indent=1, default=str)
    if args.no_write:
        return 0
    return write(R, P, args, elapsed)


def results_path(quick):
    return os.path.join(BUILD, "results-quick.json" if quick
                        else "results.json")


def add_history(R):
    """one line per full run in tests/bench/history.jsonl"""
    C, W, E = R["callgrind"], R["wrk"], R["engine"]
    h = {"date": R["date"], "module_sha256": R["module_sha256"],
         "cg_mix_nolog": round(C["table"]["nolog"]["mix"]["ratio"], 3),
         "cg_mix_log": round(C["table"]["log"]["mix"]["ratio"], 3),
         "wrk_guard": round(W["ratios"]["guard"]["median"], 3),
         "wrk_guard_cpu": round(W["cpu_ratios"]["guard"]["median"], 3),
         "wrk_guard_pairs": round(W["pair_ratios"]["median"], 3),
         "wrk_guard_detect": round(W["ratios"]["guard-detect"]["median"], 3),
         "wrk_eomt": round(W["ratios"]["eomt-nginx"]["median"], 3),
         "wrk_modsec": round(W["ratios"]["modsecurity-crs"]["median"], 3),
         "flood": round(W["ratios"][FLOOD]["median"], 3),
         "engine_legit_ir": round(E["corpus"]["legit"]["ir"]),
         "engine_attack_ir": round(E["corpus"]["attack"]["ir"]),
         "load": round(W["load"]["median"], 1)}
    with open(HISTORY, "a") as f:
        f.write(json.dumps(h) + "\n")


def history():
    try:
        with open(HISTORY) as f:
            return [json.loads(l) for l in f if l.strip()]
    except OSError:
        return []


def write(R, P, args, elapsed):
    if args.out:
        md = os.path.join(args.out, "BENCHMARKS.md")
        png, ref = os.path.join(args.out, "bench.png"), "bench.png"
    elif args.quick:
        md = os.path.join(BUILD, "quick", "BENCHMARKS.md")
        png, ref = os.path.join(BUILD, "quick", "bench.png"), "bench.png"
    else:
        md = os.path.join(ROOT, "BENCHMARKS.md")
        png, ref = os.path.join(ROOT, "docs", "bench.png"), "docs/bench.png"
    os.makedirs(os.path.dirname(png), exist_ok=True)
    os.makedirs(os.path.dirname(md), exist_ok=True)
    ok = chart(R, png)
    with open(md, "w") as f:
        f.write(report(R, P, args.quick, elapsed, ref if ok else None))
    log("wrote %s%s" % (md, ", " + png if ok else " (no chart)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
