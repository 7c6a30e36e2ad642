#!/usr/bin/env python3
"""exchange_guard against other front proxies, over the same corpora.

Run it through auto/compare, which installs what it needs and builds the
module first.  Four real nginx instances on loopback, each proxying to its
own Exchange simulator (tests/sim/exchange_sim.py):

  bare             nginx and proxy_pass, nothing else
  eomt-nginx       Microsoft's EOMT + EOMTv2 rules as nginx "if"s
                   (tests/peers/eomt-nginx.conf)
  modsecurity-crs  ModSecurity v3 + OWASP CRS (Debian packages, paranoia
                   level 1) + the same Microsoft rules as SecRules
                   (tests/peers/modsecurity/, tests/peers/eomt.secrules)
  exchange_guard   the built module with every shipped rule, "on"

Every record of tests/corpus/attack/*.http and tests/corpus/legit/*.http
is sent to each peer on a connection of its own, with a header
X-EG-Test-Id naming it.  A request counts as refused when the simulator
behind that peer never recorded it, whatever the peer answered (403, a
closed connection, 400, 413, 500...).  The table (refused/total per corpus
file) goes to stdout and build/compare.md; build/compare-details.md lists
every attack that got through and every legitimate request refused, with
the status and the rule that refused it.

    compare.py [--quick] [--peers a,b] [--corpus DIR] [--keep]

Exit 0 with the report; 2 when a peer does not start or a corpus file
does not parse.  Python 3 stdlib.
"""

import argparse
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.dont_write_bytecode = True

import eg  # noqa: E402

PEERS = ("bare", "eomt-nginx", "modsecurity-crs", "exchange_guard")
MARK = "X-EG-Test-Id"
MODSEC_MODULE = "/usr/lib/nginx/modules/ngx_http_modsecurity_module.so"
CRS_LOAD = os.path.join(HERE, "modsecurity", "crs.load")
QUICK = 3               # records per file with --quick
TIMEOUT = 10.0          # seconds for one request

# The same for every peer; only {main}, {http} and {server} differ.
CONF = """
{main}
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
    large_client_header_buffers 4 64k;
    client_max_body_size 20m;
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
        }}
    }}
}}
"""


def peer_parts(name, workdir):
    """(main, http, server) configuration of one peer."""
    if name == "bare":
        return "", "", ""
    if name == "eomt-nginx":
        return "", "", "include %s;" % os.path.join(HERE, "eomt-nginx.conf")
    if name == "modsecurity-crs":
        files = (os.path.join(HERE, "modsecurity", "modsecurity.conf"),
                 CRS_LOAD, os.path.join(HERE, "eomt.secrules"))
        http = "modsecurity on;\n" + "".join(
            "    modsecurity_rules_file %s;\n" % f for f in files)
        return "load_module %s;" % MODSEC_MODULE, http, ""
    if name == "exchange_guard":
        http = eg.GUARD_HTTP.format(mode="on", rules=eg.RULES, dir=workdir)
        return "load_module %s;" % eg.MODULE, http, ""
    raise ValueError("unknown peer %s" % name)


class Peer(eg.Nginx):
    """One front proxy: eg.Nginx with this comparison's configuration."""

    def __init__(self, name, workdir, upstream_port):
        self.name = name
        self.dir = workdir
        os.makedirs(os.path.join(workdir, "logs"), exist_ok=True)
        self.port = eg.free_port()
        main, http, server = peer_parts(name, workdir)
        # where the peer says why it refused: the guard's JSON log, or
        # ModSecurity's messages in the error log
        self.log = os.path.join(workdir, "guard.jsonl" if name ==
                                "exchange_guard" else "error.log")
        self.conf = os.path.join(workdir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(CONF.format(
                main=main, http=http, server=server, dir=workdir,
                port=self.port, upstream=upstream_port,
                user="user root;" if os.geteuid() == 0 else ""))
        self.proc = None

    def log_size(self):
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def log_since(self, offset):
        try:
            with open(self.log, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def reason(self, text):
        """The rule(s) a peer names in its log lines for one request."""
        if self.name == "exchange_guard":
            ids = []
            for line in text.splitlines():
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("event", {}).get("action") == "blocked":
                    ids.append(e.get("rule", {}).get("id", "?"))
            return ids
        if self.name == "modsecurity-crs":
            ids = []
            for m in re.finditer(r'\[id "(\d+)"\]', text):
                # the anomaly-score verdict rules add nothing to the list
                if m.group(1) not in ("949110", "980130") \
                        and m.group(1) not in ids:
                    ids.append(m.group(1))
            return ids
        return []


# ---------------------------------------------------------------- corpora

def load(corpus_dir, kind, quick):
    """[(family, [records])] of <corpus_dir>/<kind>/*.http, sorted."""
    d = os.path.join(corpus_dir, kind)
    out = []
    if not os.path.isdir(d):
        return out
    for name in sorted(os.listdir(d)):
        if not name.endswith(".http"):
            continue
        recs = eg.load_corpus(os.path.join(d, name))
        if quick:
            recs = recs[:QUICK]
        out.append((name[:-len(".http")], recs))
    return out


class Item:
    """One request to send: a record, its corpus and its unique mark."""

    def __init__(self, kind, family, rec, mark):
        self.kind = kind
        self.family = family
        self.rec = rec
        self.mark = mark
        self.raw = rec.raw([(MARK, mark.encode("latin-1"))])


def items_of(corpora):
    items, seen = [], {}
    for kind, families in corpora:
        for family, recs in families:
            for rec in recs:
                mark = rec.id
                seen[mark] = seen.get(mark, 0) + 1
                if seen[mark] > 1:
                    mark = "%s#%d" % (mark, seen[mark])
                items.append(Item(kind, family, rec, mark))
    return items


# ---------------------------------------------------------------- running

def send(port, item, timeout):
    """The status the peer answered: 0 closed, None no answer in time."""
    try:
        return eg.send_raw(port, item.raw, timeout).status
    except (socket.timeout, TimeoutError):
        return None
    except (OSError, ValueError, IndexError):
        return 0


def run_peer(peer, items, timeout, results):
    """Send every item, one connection each; results[mark] = (status, ids)."""
    for item in items:
        before = peer.log_size()
        status = send(peer.port, item, timeout)
        time.sleep(0.002)       # the worker writes its log line first
        results[item.mark] = (status, peer.reason(peer.log_since(before)))


def marks_seen(sim):
    seen = set()
    for r in sim.received():
        for n, v in r.get("headers", []):
            if n.lower() == MARK.lower():
                seen.add(v)
    return seen


# ---------------------------------------------------------------- report

def cell(refused, total, pct=False):
    s = "%d/%d" % (refused, total)
    if pct and total:
        s += " (%d%%)" % round(100.0 * refused / total)
    return s


def table(peers, corpora, items, refused):
    """Markdown: one row per corpus file and a total per kind."""
    lines = ["| corpus | family | " + " | ".join(peers) + " |",
             "|---|---|" + "---:|" * len(peers)]
    for kind, families in corpora:
        totals = {p: [0, 0] for p in peers}
        for family, _ in families:
            marks = [it.mark for it in items
                     if it.kind == kind and it.family == family]
            row = []
            for p in peers:
                n = sum(1 for m in marks if m in refused[p])
                totals[p][0] += n
                totals[p][1] += len(marks)
                row.append(cell(n, len(marks)))
            lines.append("| %s | %s | %s |" % (kind, family, " | ".join(row)))
        lines.append("| %s | **total** | %s |" % (kind, " | ".join(
            "**%s**" % cell(totals[p][0], totals[p][1], True)
            for p in peers)))
    return "\n".join(lines)


def status_text(status):
    if status is None:
        return "no answer"
    return "closed" if status == 0 else "status %d" % status


def details(peers, items, outcome):
    """Markdown: the attacks each peer let through, the legitimate
    requests it refused, with status and rule."""
    out = ["# auto/compare: details", ""]
    for p in peers:
        out.append("## %s" % p)
        # what refused: a rule id, or the status when the peer names none
        why = {}
        for it in items:
            status, ids, refused = outcome[p][it.mark]
            if refused:
                for r in ids or [status_text(status)]:
                    why.setdefault(r, {"attack": 0, "legit": 0})[it.kind] += 1
        if why:
            out.append("")
            out.append("| refused by | attacks | legitimate |")
            out.append("|---|---:|---:|")
            for r in sorted(why, key=lambda r: (-why[r]["attack"],
                                                -why[r]["legit"], r)):
                out.append("| %s | %d | %d |" % (r, why[r]["attack"],
                                                 why[r]["legit"]))
        for kind, title, want in (
                ("attack", "attacks that reached Exchange", False),
                ("legit", "legitimate requests refused", True)):
            rows = []
            for it in items:
                if it.kind != kind:
                    continue
                status, ids, refused = outcome[p][it.mark]
                if refused != want:
                    continue
                st = status_text(status)
                req = "%s %s" % (it.rec.method.decode("latin-1"),
                                 it.rec.target.decode("latin-1")[:80])
                rows.append("| %s |" % " | ".join(
                    c.replace("|", "\\|") for c in (
                        it.family, it.rec.id, st, " ".join(ids) or "-",
                        "`%s`" % req)))
            out.append("")
            out.append("### %s: %d" % (title, len(rows)))
            if rows:
                out.append("")
                out.append("| family | record | status | rule | request |")
                out.append("|---|---|---|---|---|")
                out.extend(rows)
        # answered without reaching Exchange: a 2xx/3xx made up by the peer
        odd = [it.rec.id for it in items
               if outcome[p][it.mark][2]
               and (outcome[p][it.mark][0] or 0) in range(100, 400)]
        if odd:
            out.append("")
            out.append("Answered 1xx-3xx without reaching Exchange: "
                       + ", ".join(odd))
        out.append("")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="only the first %d records of each file" % QUICK)
    ap.add_argument("--peers", default=",".join(PEERS),
                    help="comma-separated subset of: " + ", ".join(PEERS))
    ap.add_argument("--corpus", default=os.path.join(eg.ROOT, "tests",
                                                     "corpus"),
                    help="directory holding attack/ and legit/")
    ap.add_argument("--timeout", type=float, default=TIMEOUT,
                    help="seconds to wait for one answer")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory (configs, logs)")
    args = ap.parse_args()
    peers = [p for p in args.peers.split(",") if p]
    for p in peers:
        if p not in PEERS:
            ap.error("unknown peer %s" % p)

    t0 = time.time()
    try:
        corpora = [(kind, load(args.corpus, kind, args.quick))
                   for kind in ("attack", "legit")]
    except (OSError, ValueError) as e:
        print("auto/compare: corpus: %s" % e, file=sys.stderr)
        return 2
    items = items_of(corpora)
    top = tempfile.mkdtemp(prefix="eg-compare-")
    sims, running, failed = {}, {}, []
    try:
        for p in peers:
            d = os.path.join(top, p)
            os.makedirs(d)
            sims[p] = eg.Simulator(d)
            peer = Peer(p, d, sims[p].port)
            ok, out = peer.test_config()
            if not ok:
                failed.append("%s: nginx -t failed:\n%s" % (p, out))
                continue
            try:
                running[p] = peer.start()
            except Exception as e:     # nginx -t passed but it did not run
                failed.append("%s: %s\n%s" % (p, e, peer.error_log()))
        if failed:
            for f in failed:
                print("auto/compare: peer %s" % f, file=sys.stderr)
            return 2

        results = {p: {} for p in peers}
        threads = [threading.Thread(target=run_peer, args=(
            running[p], items, args.timeout, results[p])) for p in peers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(0.5)         # an aborted upstream request gets recorded

        refused = {p: set() for p in peers}
        outcome = {p: {} for p in peers}
        for p in peers:
            seen = marks_seen(sims[p])
            for it in items:
                status, ids = results[p][it.mark]
                r = it.mark not in seen
                outcome[p][it.mark] = (status, ids, r)
                if r:
                    refused[p].add(it.mark)
    finally:
        for peer in running.values():
            peer.stop()
        for sim in sims.values():
            sim.stop()
        if args.keep or failed:
            print("auto/compare: work directory %s" % top, file=sys.stderr)
        else:
            shutil.rmtree(top, ignore_errors=True)

    n_att = sum(1 for it in items if it.kind == "attack")
    n_leg = len(items) - n_att
    report = "\n".join([
        "# exchange_guard and other front proxies%s" % (
            " (--quick)" if args.quick else ""),
        "",
        "Requests refused by each front proxy / requests sent (%d attack, "
        "%d legitimate). Refused = never reached the Exchange simulator. "
        "Attacks should be refused, legitimate requests should not."
        % (n_att, n_leg),
        "",
        table(peers, corpora, items, refused),
        ""])
    print(report)
    build = os.path.join(eg.ROOT, "build")
    os.makedirs(build, exist_ok=True)
    with open(os.path.join(build, "compare.md"), "w") as f:
        f.write(report)
    with open(os.path.join(build, "compare-details.md"), "w") as f:
        f.write(details(peers, items, outcome))
    print("%d requests x %d peers in %.1fs; details in "
          "build/compare-details.md" % (len(items), len(peers),
                                        time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
