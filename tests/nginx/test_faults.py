#!/usr/bin/env python3
"""exchange_guard under faults, against the real nginx.

  disk_full_*:      the JSON log on a 64 KB tmpfs (mounted here; root) and
                    on /dev/full: refusals stay 403, error_log reports the
                    failed write at most once a second per worker, lines
                    are written again once space is freed, and the log
                    holds only whole JSON lines;
  reload_reopen_*:  `nginx -s reload` and `nginx -s reopen` ten times each
                    under a wrk load of benign + attack requests: no
                    benign request fails, every attack is refused and
                    logged once, RSS of master + workers stays put;
  kill_worker_*:    kill -9 of a worker under load: the master replaces it
                    and attacks are still refused.

    tests/nginx/test_faults.py [NAME-SUBSTRING]

Ends with "N passed, N failed".  Needs wrk (installed with apt-get if
missing) and, for the tmpfs test, root.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "soak"))
sys.dont_write_bytecode = True

import eg  # noqa: E402
import make_mix  # noqa: E402
import soaklib  # noqa: E402
from eg import check  # noqa: E402

suite = eg.Suite()

ATTACK = ("GET", "/ecp/y.js", [("Cookie", "X-BEResource=localhost~1"),
                               ("X-EG-Soak", "attack-fault")])
BENIGN = ("GET", "/owa/", [("X-EG-Soak", "benign-fault")])
WRITE_FAILED = "exchange_guard: writing to"

# RSS of master + workers after the reload/reopen loop, against before.
# Not checked under AddressSanitizer (auto/test-sanitized sets
# EG_RSS_CHECK=0): its quarantine keeps up to 256 MB of freed memory per
# process by design.
RSS_BOUND_PCT = 20
RSS_BOUND_MB = 10
RSS_CHECK = os.environ.get("EG_RSS_CHECK", "1") != "0"


def attack(port):
    return eg.request(port, *ATTACK)


def benign(port):
    return eg.request(port, *BENIGN)


def invalid_lines(path):
    """Lines of a guard log that are not one strict UTF-8 JSON object each
    (a last line without its newline counts as invalid)."""
    n, bad, examples, _ = soaklib.validate_guard_lines(
        soaklib.iter_lines(path))
    return n, bad, examples


class Servers:
    """The fast upstream and the guard in front of it."""

    def __init__(self, workdir, **kw):
        self.up = soaklib.FastUpstream(os.path.join(workdir, "upstream"))
        self.up.start()
        try:
            self.front = soaklib.Front(os.path.join(workdir, "guard"),
                                       self.up.port, **kw).start()
        except Exception:
            self.up.stop()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.front.stop()
        self.up.stop()


def write_failed_lines(front):
    return [l for l in front.error_log().splitlines() if WRITE_FAILED in l]


def mix_file(workdir, connection_close=False):
    path = os.path.join(workdir, "mix-table.lua")
    # nginx itself refuses this one with 400 before any module runs
    mix = make_mix.entries(["ws-evasion-percent-u-raw"], connection_close)
    make_mix.write_lua(path, mix)
    return path


# ---------------------------------------------------------------- (a)

def hammer(port, seconds, nthreads=2):
    """Attacks from nthreads clients for seconds; statuses seen."""
    statuses = {}
    lock = threading.Lock()
    stop = time.time() + seconds

    def run():
        while time.time() < stop:
            s = attack(port).status
            with lock:
                statuses[s] = statuses.get(s, 0) + 1

    ts = [threading.Thread(target=run) for _ in range(nthreads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return statuses


@contextlib.contextmanager
def tiny_disk(workdir):
    """A 64 KB tmpfs mounted under workdir, 40 KB of it taken by a filler
    file: yields the guard log's path on it and the filler's.  Afterwards
    the log is kept as workdir/guard.jsonl.from-tmpfs and the tmpfs goes."""
    if os.geteuid() != 0:
        raise eg.Failure("needs root to mount a tmpfs")
    tiny = os.path.join(workdir, "tiny")
    os.makedirs(tiny)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", tiny],
                   check=True)
    log = os.path.join(tiny, "guard.jsonl")
    filler = os.path.join(tiny, "filler")
    try:
        with open(filler, "wb") as f:
            f.write(b"\0" * 40 * 1024)
        yield log, filler
    finally:
        try:
            with open(log, "rb") as f, \
                    open(os.path.join(workdir, "guard.jsonl.from-tmpfs"),
                         "wb") as g:
                g.write(f.read())
        except OSError:
            pass
        if subprocess.run(["umount", tiny]).returncode != 0:
            subprocess.run(["umount", "-l", tiny])


@suite.test
def disk_full_tmpfs(workdir):
    with tiny_disk(workdir) as (log, filler), \
            Servers(workdir, guard_log=log) as servers:
        front = servers.front
        workers = len(front.workers())

        # until the disk is full: every refusal still 403
        sent, statuses = 0, {}
        while not write_failed_lines(front) and sent < 2000:
            s = attack(front.port).status
            statuses[s] = statuses.get(s, 0) + 1
            sent += 1
        check(write_failed_lines(front), "no write failure after %d "
              "attacks; log %d bytes" % (sent, os.path.getsize(log)))
        t0 = time.time()
        more = hammer(front.port, 4.0)
        elapsed = time.time() - t0
        for s, n in more.items():
            statuses[s] = statuses.get(s, 0) + n
        check(set(statuses) == {403}, "statuses while full: %s" % statuses)
        failed = write_failed_lines(front)
        bound = workers * (int(elapsed) + 2)
        check(1 <= len(failed) <= bound,
              "%d 'writing to ... failed' lines in %.1f s with %d workers "
              "(at most %d)" % (len(failed), elapsed, workers, bound))
        check("the request was still blocked" in failed[0], failed[0])
        print("     full: %d refusals, %d error_log lines in %.1f s, "
              "%d workers" % (sum(statuses.values()), len(failed), elapsed,
                              workers))
        check(benign(front.port).status == 200, "benign failed while full")

        # space again: new lines are written
        os.unlink(filler)
        n0 = sum(1 for _ in soaklib.iter_lines(log))
        size0 = os.path.getsize(log)
        for _ in range(5):
            check(attack(front.port).status == 403, "attack passed")
        time.sleep(0.1)
        tail = front.guard_lines(size0)
        check(len(tail) >= 5, "only %d new lines after freeing space"
              % len(tail))
        for l in tail[-5:]:
            e = json.loads(l.decode("utf-8"))
            check(e["rule"]["id"] == "EG-PL-001", "rule %s" % e["rule"])
        print("     after freeing: %d lines before, %d new" % (n0, len(tail)))
    return 4


@suite.test
def disk_full_leaves_only_whole_json_lines(workdir):
    """A write cut short by ENOSPC must not leave half a line that the next
    line is glued to: every line stays one JSON object."""
    with tiny_disk(workdir) as (log, filler), \
            Servers(workdir, guard_log=log, workers=1) as servers:
        front = servers.front
        # lines of varying length, so that one ends up cut at a page
        for i in range(200):
            r = eg.request(front.port, "GET", "/ecp/y.js", [
                ("Cookie", "X-BEResource=localhost~%d" % i),
                ("User-Agent", "ua-" + "u" * (i * 37 % 3000))])
            check(r.status == 403, "attack %d: %d" % (i, r.status))
        failed = write_failed_lines(front)
        check(failed, "the disk never filled")
        os.unlink(filler)
        for i in range(5):
            check(attack(front.port).status == 403, "attack passed")
        n, bad, examples = invalid_lines(log)
        partial = [l for l in failed if "(-1 of" not in l]
        check(bad == 0, "%d of %d lines are not whole JSON lines after a "
              "full disk; the short write was: %s; e.g. %s" % (
                  bad, n, partial[:1], examples[:1]))
    return 1


@suite.test
def disk_full_dev_full(workdir):
    with Servers(workdir, guard_log="/dev/full") as s:
        front = s.front
        t0 = time.time()
        statuses = hammer(front.port, 3.0)
        elapsed = time.time() - t0
        check(set(statuses) == {403}, "statuses: %s" % statuses)
        failed = write_failed_lines(front)
        workers = len(front.workers())
        bound = workers * (int(elapsed) + 2)
        check(1 <= len(failed) <= bound, "%d error_log lines in %.1f s "
              "(at most %d)" % (len(failed), elapsed, bound))
        check("No space left on device" in failed[0], failed[0])
        check(benign(front.port).status == 200, "benign request failed")
        print("     /dev/full: %d refusals, %d error_log lines in %.1f s"
              % (sum(statuses.values()), len(failed), elapsed))
    return 3


# ---------------------------------------------------------------- (b)

def warm(front, mix, seconds=3, conns=50):
    w = soaklib.start_wrk(front.port, mix, seconds, conns)
    w.communicate()


@suite.test
def reload_reopen_under_load(workdir):
    soaklib.ensure_wrk()
    # one request per connection: a keep-alive connection that an old
    # worker closes on its way out races the client's next request on it
    # (wrk counts a read error); that is HTTP keep-alive, not the guard
    mix = mix_file(workdir, connection_close=True)
    with Servers(workdir) as s:
        front = s.front
        warm(front, mix)
        time.sleep(0.5)
        rss0 = front.rss_kb()
        master0 = soaklib.rss_kb([front.master])
        acc0 = front.access_size()
        seconds = 40
        wout = open(os.path.join(workdir, "wrk.txt"), "wb")
        w = soaklib.start_wrk(front.port, mix, seconds, 50, out=wout)
        time.sleep(2)
        reloads = reopens = 0
        rotated = []
        try:
            for i in range(10):
                front.reload()
                reloads += 1
                time.sleep(0.3)
                moved = front.guard_log + ".%d" % i
                os.rename(front.guard_log, moved)
                rotated.append(moved)
                front.reopen()
                reopens += 1
                deadline = time.time() + 5
                while not os.path.exists(front.guard_log) \
                        and time.time() < deadline:
                    time.sleep(0.02)
                time.sleep(1.0)
            check(w.poll() is None, "the load ended before the loop did")
        finally:
            w.wait(seconds + 60)
            wout.close()
        with open(os.path.join(workdir, "wrk.txt"), "rb") as f:
            text = f.read().decode("utf-8", "replace")
        wr = soaklib.parse_wrk(text)
        time.sleep(1)
        rss1 = front.rss_kb()
        warm(front, mix)
        time.sleep(0.5)
        rss2 = front.rss_kb()
        master2 = soaklib.rss_kb([front.master])
        acc = front.access_stats(acc0)
        nlines = bad = 0
        for p in rotated + [front.guard_log]:
            n, b, ex = invalid_lines(p)
            nlines += n
            bad += b
        errlog = front.error_log()
        crashes = [l for l in errlog.splitlines() if "exited on signal" in l]
        print("     %d reloads, %d reopens during %d s of wrk: %d requests "
              "(%.0f/s), %d attacks sent, %d benign sent" % (
                  reloads, reopens, seconds, wr.get("requests", 0),
                  wr.get("rps", 0), wr.get("attack_sent", 0),
                  wr.get("benign_sent", 0)))
        print("     wrk socket errors %d, non-2xx %d (all 403 for attacks: "
              "%d); benign non-2xx %d" % (
                  wr.get("wrk_socket_errors", 0), wr.get("wrk_non2xx", 0),
                  wr.get("attack_403", 0), wr.get("benign_other", 0)))
        print("     RSS master+workers: before %d kB, right after %d kB, "
              "after a 3 s load %d kB (%+.1f%%); master %d -> %d kB" % (
                  rss0, rss1, rss2, 100.0 * (rss2 - rss0) / rss0,
                  master0, master2))
        all403 = sum(1 for l in soaklib.iter_lines(front.access_log)
                     if l.startswith(b"403 "))
        print("     guard log lines %d in %d files (rotated by reopen), "
              "403s in access_log %d (warm-ups included)" % (
                  nlines, len(rotated) + 1, all403))
        check(reloads == 10 and reopens == 10, "loop incomplete")
        check(wr.get("requests", 0) > 0 and wr.get("attack_sent", 0) > 0,
              "no load: %s" % text[-400:])
        check(wr.get("wrk_socket_errors", 1) == 0,
              "wrk socket errors: %s" % text[-600:])
        check(wr.get("benign_other", 1) == 0 and acc["benign_other"] == 0,
              "benign requests failed: wrk %s %s, access_log %s" % (
                  wr.get("benign_other"), wr.get("benign_bad"),
                  acc["bad_examples"][:5]))
        check(wr.get("attack_other", 1) == 0 and acc["attack_other"] == 0,
              "attacks not refused: %s %s" % (wr.get("attack_bad"),
                                               acc["bad_examples"][:5]))
        check(not crashes, "crash: %s" % crashes[:3])
        check(bad == 0, "%d invalid log lines" % bad)
        check(nlines == all403, "%d log lines for %d 403s (warm-ups "
              "included)" % (nlines, all403))
        for p in rotated[1:]:
            check(os.path.getsize(p) > 0, "%s is empty: reopen lost lines?"
                  % p)
        growth = rss2 - rss0
        check(not RSS_CHECK or growth < max(rss0 * RSS_BOUND_PCT / 100,
                                            RSS_BOUND_MB * 1024),
              "RSS grew from %d to %d kB (bound: < %d%% or < %d MB)" % (
                  rss0, rss2, RSS_BOUND_PCT, RSS_BOUND_MB))
        if not RSS_CHECK:
            print("     (RSS bound not checked: EG_RSS_CHECK=0)")
        check(front.alive() and len(front.workers()) == 2, "workers %s"
              % front.workers())
    return 8


# ---------------------------------------------------------------- (c)

@suite.test
def kill_worker_under_load(workdir):
    soaklib.ensure_wrk()
    mix = mix_file(workdir)
    with Servers(workdir) as s:
        front = s.front
        before = front.workers()
        w = soaklib.start_wrk(front.port, mix, 8, 50)
        time.sleep(3)
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        t0 = time.time()
        new, replaced_in = None, -1.0
        while time.time() - t0 < 10:
            ws = front.workers()
            if len(ws) == 2 and victim not in ws:
                new = ws
                replaced_in = time.time() - t0
                break
            time.sleep(0.05)
        out, _ = w.communicate()
        wr = soaklib.parse_wrk(out.decode("utf-8", "replace"))
        check(new is not None, "no replacement worker: %s" % front.workers())
        errlog = front.error_log()
        check("worker process %d exited on signal 9" % victim in errlog,
              "error_log does not say the worker was killed")
        size0 = front.guard_size()
        for i in range(40):
            r = attack(front.port)
            check(r.status == 403, "attack %d after the kill: %d"
                  % (i, r.status))
            check(benign(front.port).status == 200, "benign after the kill")
        time.sleep(0.1)
        check(len(front.guard_lines(size0)) == 40, "%d lines for 40 attacks"
              % len(front.guard_lines(size0)))
        n, bad, ex = invalid_lines(front.guard_log)
        check(bad == 0, "invalid log lines: %s" % ex)
        others = [l for l in errlog.splitlines() if "exited on signal" in l
                  and "signal 9" not in l]
        check(not others, "another crash: %s" % others)
        print("     killed %d, replaced by %s in %.2f s; wrk during the "
              "kill: %d requests, %d socket errors (the killed worker's "
              "connections), attacks 403 %d / other %d" % (
                  victim, sorted(set(new) - set(before)), replaced_in,
                  wr.get("requests", 0), wr.get("wrk_socket_errors", 0),
                  wr.get("attack_403", 0), wr.get("attack_other", 0)))
        check(wr.get("attack_other", 1) == 0, "an attack got through "
              "during the kill: %s" % wr.get("attack_bad"))
    return 5


if __name__ == "__main__":
    sys.exit(suite.run(sys.argv[1] if len(sys.argv) > 1 else None))
