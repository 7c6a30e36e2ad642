#!/usr/bin/env python3
"""auto/compare --quick: the comparison runs and its table is sound.

Runs auto/compare once (four real nginx peers in front of the Exchange
simulator, the first 3 records of every corpus file) and checks the table
it prints: four peers, exchange_guard refuses every attack and no
legitimate request, bare nginx refuses nothing.

    tests/nginx/test_compare.py [NAME-SUBSTRING]
"""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
sys.dont_write_bytecode = True

import eg  # noqa: E402
from eg import check  # noqa: E402

suite = eg.Suite()
PEERS = ["bare", "eomt-nginx", "modsecurity-crs", "exchange_guard"]
_run = {}


def compare():
    """(exit status, stdout, stderr) of one auto/compare --quick, cached."""
    if not _run:
        p = subprocess.run([os.path.join(eg.ROOT, "auto", "compare"),
                            "--quick"], cwd=eg.ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=900)
        _run.update(rc=p.returncode,
                    out=p.stdout.decode("utf-8", "replace"),
                    err=p.stderr.decode("utf-8", "replace"))
    return _run["rc"], _run["out"], _run["err"]


def table():
    """{"peers": [...], (corpus, family): {peer: (refused, total)}}."""
    rc, out, err = compare()
    check(rc == 0, "auto/compare exited %d:\n%s" % (rc, err[-3000:]))
    rows, peers = {}, None
    for line in out.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[:2] == ["corpus", "family"]:
            peers = cells[2:]
            continue
        if peers is None or set(cells[0]) <= set("-:"):
            continue
        counts = {}
        for p, c in zip(peers, cells[2:]):
            m = re.search(r"(\d+)/(\d+)", c)
            check(m, "cell %r of %s is not refused/total" % (c, p))
            counts[p] = (int(m.group(1)), int(m.group(2)))
        rows[(cells[0], cells[1].strip("*"))] = counts
    check(peers is not None, "no table in the output:\n" + out[-2000:])
    rows["peers"] = peers
    return rows


@suite.test
def prints_a_table_of_the_four_peers(workdir):
    t = table()
    check(t["peers"] == PEERS, "peers %s, want %s" % (t["peers"], PEERS))
    check(("attack", "total") in t and ("legit", "total") in t,
          "no total rows: %s" % sorted(k for k in t if k != "peers"))
    with open(os.path.join(eg.ROOT, "build", "compare.md")) as f:
        saved = f.read()
    rc, out, err = compare()
    check(saved.strip() in out, "build/compare.md is not the printed table")
    return 1


@suite.test
def exchange_guard_refuses_every_quick_attack(workdir):
    refused, total = table()[("attack", "total")]["exchange_guard"]
    check(total > 0, "no attack records in tests/corpus/attack")
    check(refused == total, "exchange_guard refused %d of %d attacks"
          % (refused, total))
    return 1


@suite.test
def exchange_guard_refuses_no_legitimate_request(workdir):
    refused, total = table()[("legit", "total")]["exchange_guard"]
    check(total > 0, "no legitimate records in tests/corpus/legit")
    check(refused == 0, "exchange_guard refused %d of %d legitimate requests"
          % (refused, total))
    return 1


@suite.test
def bare_nginx_refuses_nothing(workdir):
    t = table()
    for kind in ("attack", "legit"):
        refused, total = t[(kind, "total")]["bare"]
        check(refused == 0, "bare nginx refused %d of %d %s requests"
              % (refused, total, kind))
    return 1


if __name__ == "__main__":
    sys.exit(suite.run(sys.argv[1] if len(sys.argv) > 1 else None))
