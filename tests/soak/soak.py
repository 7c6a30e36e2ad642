#!/usr/bin/env python3
"""exchange_guard soak: the real nginx with the module under a mixed load.

    tests/soak/soak.py [SECONDS [CONNECTIONS]]     (auto/soak is the wrapper)

The guard (every shipped rule, logging on, worker_processes 2,
worker_connections 4096, upstream keepalive) stands in front of a fast
upstream (a second nginx returning 200 "ok" that logs only requests tagged
as attacks).  wrk with tests/soak/mix.lua cycles through the benign and
attack records of tests/corpus (tests/soak/make_mix.py), each tagged
X-EG-Soak: benign-<n> | attack-<n>.  Then ~20 requests with hostile bytes in
every logged field, then a last pass of the whole mix through the Python
Exchange simulator (the guard reloaded onto it).

Checks: every attack refused (403) and none reaching the upstream, no
benign request failing, no worker crash, log lines == 403s exactly and all
strict UTF-8 JSON, RSS of the nginx processes stable.  Prints a summary
table and "N passed, N failed"; exits non-zero on any failure.  The run's
files stay in build/soak/last/ (the big logs only after a failure, or with
EG_SOAK_KEEP=1).
"""

import os
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.dont_write_bytecode = True

import eg  # noqa: E402
import hostile  # noqa: E402
import make_mix  # noqa: E402
import soaklib  # noqa: E402

RSS_GROWTH_MB = 10          # allowed growth during the load ...
RSS_GROWTH_PCT = 20         # ... or this much of the early figure


def preflight(front, mix_all, res):
    """Each request alone: attacks 403 with one log line, benign 2xx.
    Returns the ids to leave out of the load (nginx itself refuses them
    before any module runs: 400 and no log line)."""
    exclude, excluded, bad_attack, bad_benign = set(), [], [], []
    seen = set()
    for e in mix_all:
        if e.tag in seen:
            continue
        seen.add(e.tag)
        off = front.guard_size()
        r = eg.send_raw(front.port, e.raw)
        time.sleep(0.002)
        new = len(front.guard_lines(off))
        if e.kind == "attack":
            if r.status == 403 and new == 1:
                continue
            if r.status == 400 and new == 0:
                exclude.add(e.id)
                excluded.append("%s (nginx: 400)" % e.id)
                continue
            bad_attack.append("%s: %d, %d lines" % (e.id, r.status, new))
        else:
            if 200 <= r.status < 300 and new == 0:
                continue
            if r.status == 400 and new == 0:
                exclude.add(e.id)
                excluded.append("%s (nginx: 400)" % e.id)
                continue
            bad_benign.append("%s: %d, %d lines" % (e.id, r.status, new))
            exclude.add(e.id)
    n_a = sum(1 for t in seen if t.startswith("attack-"))
    res.check("preflight: every attack record refused alone (403, 1 line)",
              not bad_attack, "%d attack records; wrong: %s" % (
                  n_a, "; ".join(bad_attack[:10]) or "none"))
    res.check("preflight: every benign record passes alone (2xx, no line)",
              not bad_benign, "%d benign records; wrong: %s" % (
                  len(seen) - n_a, "; ".join(bad_benign[:10]) or "none"))
    if excluded:
        print("     left out of the load, refused by nginx before the "
              "guard: %s" % ", ".join(excluded))
    return exclude


def sampler(front, samples, stop):
    t0 = time.time()
    while not stop.is_set():
        samples.append((time.time() - t0, front.rss_kb(),
                        len(front.workers())))
        stop.wait(1.0)


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    conns = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    soaklib.ensure_wrk()
    res = soaklib.Results()
    out = os.path.join(eg.ROOT, "build", "soak", "last")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    print("soak: %d s, %d connections, files in %s" % (seconds, conns, out))
    print("nginx %s, module %s" % (eg.NGINX, eg.MODULE))

    up = soaklib.FastUpstream(os.path.join(out, "upstream"))
    front = soaklib.Front(os.path.join(out, "guard"), up.port, workers=2,
                          connections=4096)
    sim = None
    fig = {}
    try:
        up.start()
        front.start()

        # -------------------------------------------------- preflight + mix
        exclude = preflight(front, make_mix.entries(), res)
        mix = make_mix.entries(exclude)
        mix_path = os.path.join(out, "mix-table.lua")
        make_mix.write_lua(mix_path, mix)
        fig["mix"] = "%d requests (%d attacks, %d benign)" % (
            len(mix), sum(e.kind == "attack" for e in mix),
            sum(e.kind == "benign" for e in mix))

        # -------------------------------------------------- the load
        time.sleep(0.5)
        rss_before = front.rss_kb()
        acc_off = front.access_size()
        log_off = front.guard_size()
        samples, stop = [], threading.Event()
        th = threading.Thread(target=sampler, args=(front, samples, stop))
        th.start()
        with open(os.path.join(out, "wrk.txt"), "wb") as wout:
            w = soaklib.start_wrk(front.port, mix_path, seconds, conns,
                                  threads=2, out=wout)
            try:
                w.wait(seconds + 120)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
        stop.set()
        th.join()
        time.sleep(1.0)
        rss_after = front.rss_kb()
        acc_end = front.access_size()
        log_end = front.guard_size()
        with open(os.path.join(out, "wrk.txt"), "rb") as f:
            wtext = f.read().decode("utf-8", "replace")
        print("---- wrk\n" + "\n".join(
            l for l in wtext.splitlines() if not l.startswith("SOAK ")))
        wr = soaklib.parse_wrk(wtext)

        acc = front.access_stats(acc_off, acc_end)
        nload, bad, examples, actions = soaklib.validate_guard_lines(
            soaklib.iter_lines(front.guard_log, log_off, log_end))
        errlog = front.error_log()
        crashes = [l for l in errlog.splitlines() if "exited on signal" in l]
        alerts = [l for l in errlog.splitlines()
                  if "[alert]" in l or "[crit]" in l or "[emerg]" in l]
        up_attacks = up.attack_lines()

        early = [s for s in samples if s[0] >= max(5, seconds * 0.2)]
        rss_early = early[0][1] if early else rss_before
        rss_end = samples[-1][1] if samples else rss_after
        rss_peak = max(s[1] for s in samples) if samples else rss_after

        fig.update(
            requests_wrk=wr.get("requests", 0), rps=wr.get("rps", 0),
            attack_sent=wr.get("attack_sent", 0),
            benign_sent=wr.get("benign_sent", 0),
            wrk_attack_403=wr.get("attack_403", 0),
            wrk_attack_other=wr.get("attack_other", 0),
            wrk_benign_2xx=wr.get("benign_2xx", 0),
            wrk_benign_other=wr.get("benign_other", 0),
            wrk_untagged=wr.get("untagged", 0),
            wrk_socket_errors=wr.get("wrk_socket_errors", 0),
            wrk_non2xx=wr.get("wrk_non2xx", 0),
            latency_p99_ms=wr.get("latency_p99_us", 0) / 1000.0,
            latency_max_ms=wr.get("latency_max_us", 0) / 1000.0,
            access_lines=acc["lines"], access_403=acc["s403"],
            access_attack=acc["attack"], access_attack_403=acc["attack_403"],
            access_attack_other=acc["attack_other"],
            access_benign=acc["benign"], access_benign_2xx=acc["benign_2xx"],
            access_benign_499=acc["benign_499"],
            access_benign_other=acc["benign_other"],
            access_untagged=acc["untagged"],
            log_lines=nload, log_invalid=bad,
            log_actions=actions, worker_crashes=len(crashes),
            error_log_alerts=len(alerts), upstream_attacks=len(up_attacks),
            rss_before_kb=rss_before, rss_early_kb=rss_early,
            rss_end_kb=rss_end, rss_peak_kb=rss_peak,
            rss_after_kb=rss_after)

        res.check("wrk ran and counted", wr.get("requests", 0) > 0
                  and "attack_sent" in wr, "%d requests" % wr.get("requests", 0))
        res.check("attack requests were sent", wr.get("attack_sent", 0) > 0,
                  "%d" % wr.get("attack_sent", 0))
        res.check("wrk: no socket errors (connect/read/write/timeout)",
                  wr.get("wrk_socket_errors", 1) == 0,
                  "%s" % wr.get("wrk_socket_errors"))
        res.check("wrk: every attack answered 403",
                  wr.get("attack_other", 1) == 0 and wr.get("attack_403", 0)
                  > 0, "%d x 403, %d other %s" % (
                      wr.get("attack_403", 0), wr.get("attack_other", 0),
                      wr.get("attack_bad", "")))
        res.check("wrk: every benign answered 2xx",
                  wr.get("benign_other", 1) == 0 and wr.get("benign_2xx", 0)
                  > 0, "%d x 2xx, %d other %s" % (
                      wr.get("benign_2xx", 0), wr.get("benign_other", 0),
                      wr.get("benign_bad", "")))
        res.check("wrk: every response tagged", wr.get("untagged", 1) == 0,
                  "%s untagged" % wr.get("untagged"))
        res.check("access_log: every attack refused with 403",
                  acc["attack_other"] == 0 and acc["attack"] > 0,
                  "%d attacks, %d not 403 %s" % (
                      acc["attack"], acc["attack_other"],
                      acc["bad_examples"][:3]))
        res.check("access_log: no benign request failed (non-2xx)",
                  acc["benign_other"] == 0 and acc["benign"] > 0,
                  "%d benign, %d non-2xx, %d closed by wrk at the end (499) %s"
                  % (acc["benign"], acc["benign_other"], acc["benign_499"],
                     acc["bad_examples"][:3]))
        res.check("access_log: 499s only from wrk stopping (<= connections)",
                  acc["benign_499"] <= conns, "%d" % acc["benign_499"])
        res.check("no worker crash (error_log 'exited on signal')",
                  not crashes, "; ".join(crashes[:3]))
        res.check("no [alert]/[crit]/[emerg] in error_log", not alerts,
                  "; ".join(alerts[:3]))
        res.check("log lines == 403s exactly",
                  nload == acc["s403"],
                  "%d lines, %d x 403" % (nload, acc["s403"]))
        res.check("every log line strict UTF-8 JSON", bad == 0,
                  "%d invalid %s" % (bad, examples))
        res.check("every log line 'blocked'",
                  set(actions) <= {"blocked"}, "%s" % actions)
        res.check("no attack reached the upstream", not up_attacks,
                  "%d, e.g. %s" % (len(up_attacks), up_attacks[:3]))
        growth = rss_end - rss_early
        bound = max(RSS_GROWTH_MB * 1024, rss_early * RSS_GROWTH_PCT / 100)
        res.check("RSS stable under load (end - early < max(%d MB, %d%%))"
                  % (RSS_GROWTH_MB, RSS_GROWTH_PCT), growth < bound,
                  "early %d kB -> end %d kB (%+d kB)" % (
                      rss_early, rss_end, growth))
        res.check("workers still 2 and master alive",
                  front.alive() and len(front.workers()) == 2,
                  "%s" % front.workers())

        # -------------------------------------------------- hostile bytes
        h0 = front.guard_size()
        hres = hostile.run(front.port, lambda: front.guard_lines(h0))
        hbad = [(n, d) for n, ok, d in hres if not ok]
        fig["hostile_sent"] = len(hres)
        fig["hostile_lines"] = len(front.guard_lines(h0))
        res.check("hostile bytes: one valid UTF-8 JSON line each (%d "
                  "requests)" % len(hres), not hbad,
                  "; ".join("%s: %s" % x for x in hbad[:5]))
        for n, d in hbad:
            print("     hostile %s: %s" % (n, d))

        # -------------------------------------------------- simulator
        os.makedirs(os.path.join(out, "sim"))
        sim = eg.Simulator(os.path.join(out, "sim"))
        front.set_upstream(sim.port)
        sim_bad = []
        n_sent = 0
        seen = set()
        for e in mix:
            if e.tag in seen:
                continue
            seen.add(e.tag)
            off = front.guard_size()
            r = eg.send_raw(front.port, e.raw)
            n_sent += 1
            new = len(front.guard_lines(off))
            if e.kind == "attack" and (r.status != 403 or new != 1):
                sim_bad.append("%s: %d, %d lines" % (e.id, r.status, new))
            if e.kind == "benign" and (r.status in (0, 403) or new != 0):
                sim_bad.append("%s: %d, %d lines" % (e.id, r.status, new))
        time.sleep(0.2)
        got = {}
        for rec in sim.received():
            for n, v in rec.get("headers", []):
                if n.lower() == "x-eg-soak":
                    got[v] = rec
        reached = sorted(t for t in got if t.startswith("attack-"))
        missing = sorted(t for t in seen
                         if t.startswith("benign-") and t not in got)
        fig["sim_sent"] = n_sent
        res.check("simulator pass: attacks refused, benign answered",
                  not sim_bad, "; ".join(sim_bad[:5]))
        res.check("simulator pass: no attack reached it, every benign did",
                  not reached and not missing,
                  "reached %s, missing %s" % (reached[:5], missing[:5]))

        # -------------------------------------------------- whole run
        # before the load + the load (checked above) + after it
        npre, bad1, ex1, _ = soaklib.validate_guard_lines(
            soaklib.iter_lines(front.guard_log, 0, log_off))
        npost, bad2, ex2, _ = soaklib.validate_guard_lines(
            soaklib.iter_lines(front.guard_log, log_end))
        total403 = 0
        for a, b in ((0, acc_off), (acc_end, None)):
            total403 += sum(1 for l in soaklib.iter_lines(
                front.access_log, a, b) if l.startswith(b"403 "))
        total403 += acc["s403"]
        nall = npre + nload + npost
        res.check("whole run: log lines == 403s exactly", nall == total403,
                  "%d lines, %d x 403" % (nall, total403))
        res.check("whole run: every line before and after the load strict "
                  "UTF-8 JSON", bad1 + bad2 == 0, "%s" % (ex1 + ex2))
        crashes = [l for l in front.error_log().splitlines()
                   if "exited on signal" in l]
        res.check("whole run: no worker crash", not crashes,
                  "; ".join(crashes[:3]))
        fig["log_lines_total"] = nall
        fig["access_403_total"] = total403
        fig["rss_final_kb"] = front.rss_kb()
    finally:
        front.stop()
        up.stop()
        if sim:
            sim.stop()

    print()
    print("---- summary (%d s, %d connections)" % (seconds, conns))
    rows = [
        ("mix", fig.get("mix")),
        ("requests (wrk, completed)", fig.get("requests_wrk")),
        ("requests/s", "%.0f" % fig.get("rps", 0)),
        ("latency p99 / max (ms)", "%.1f / %.1f" % (
            fig.get("latency_p99_ms", 0), fig.get("latency_max_ms", 0))),
        ("attack requests sent (wrk)", fig.get("attack_sent")),
        ("benign requests sent (wrk)", fig.get("benign_sent")),
        ("attack responses 403 / other (wrk)", "%s / %s" % (
            fig.get("wrk_attack_403"), fig.get("wrk_attack_other"))),
        ("benign responses 2xx / other (wrk)", "%s / %s" % (
            fig.get("wrk_benign_2xx"), fig.get("wrk_benign_other"))),
        ("wrk socket errors / non-2xx", "%s / %s" % (
            fig.get("wrk_socket_errors"), fig.get("wrk_non2xx"))),
        ("access_log lines (load)", fig.get("access_lines")),
        ("refusals: 403 in access_log (load)", fig.get("access_403")),
        ("attacks in access_log: 403 / other", "%s / %s" % (
            fig.get("access_attack_403"), fig.get("access_attack_other"))),
        ("benign in access_log: 2xx / 499 / other", "%s / %s / %s" % (
            fig.get("access_benign_2xx"), fig.get("access_benign_499"),
            fig.get("access_benign_other"))),
        ("guard log lines (load)", fig.get("log_lines")),
        ("guard log lines invalid", fig.get("log_invalid")),
        ("guard log lines by action", fig.get("log_actions")),
        ("worker crashes", fig.get("worker_crashes")),
        ("error_log alert/crit/emerg", fig.get("error_log_alerts")),
        ("attacks that reached the upstream", fig.get("upstream_attacks")),
        ("RSS kB: before / early / peak / end / after",
         "%s / %s / %s / %s / %s" % (
             fig.get("rss_before_kb"), fig.get("rss_early_kb"),
             fig.get("rss_peak_kb"), fig.get("rss_end_kb"),
             fig.get("rss_after_kb"))),
        ("hostile requests / log lines", "%s / %s" % (
            fig.get("hostile_sent"), fig.get("hostile_lines"))),
        ("simulator pass requests", fig.get("sim_sent")),
        ("whole run: guard log lines / 403s", "%s / %s" % (
            fig.get("log_lines_total"), fig.get("access_403_total"))),
        ("RSS kB at the end (after reload)", fig.get("rss_final_kb")),
    ]
    for k, v in rows:
        print("  %-44s %s" % (k, v))
    print()
    if res.failed == 0 and os.environ.get("EG_SOAK_KEEP") != "1":
        # gigabytes after a long run; kept when something failed
        for p in (front.guard_log, front.access_log):
            try:
                os.unlink(p)
            except OSError:
                pass
        print("(all passed: guard and access logs removed from %s; "
              "EG_SOAK_KEEP=1 keeps them)" % out)
    return res.summary()


if __name__ == "__main__":
    sys.exit(main())
