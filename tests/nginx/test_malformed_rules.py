#!/usr/bin/env python3
"""Malformed rule files against the real nginx: one file per error class.

For every case:

  A. `nginx -t` with only the bad file fails with exit code 1 (no signal,
     no sanitizer abort), and its output names "<file>:<line>:" (or
     "<file>:" for an error about the whole file) with the expected phrase
     and the nginx.conf line of the directive;
  B. `nginx -t` with a good rule file loaded first and then the bad one
     fails as a whole, with the same message;
  C. a running nginx whose configuration is changed to good + bad and
     reloaded keeps its old configuration: the master survives, its
     workers are not replaced, the good rule still refuses, and the valid
     rule that the bad file holds before its mistake was never applied.

Boundary cases just inside each limit must load (`nginx -t` succeeds).

    tests/nginx/test_malformed_rules.py [NAME-SUBSTRING]

Ends with "N passed, N failed".
"""

import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
sys.dont_write_bytecode = True

import eg  # noqa: E402
from eg import check  # noqa: E402

suite = eg.Suite()

# nginx under valgrind needs far longer to start and to parse
SLOW = float(os.environ.get("EG_TIME_SCALE", "1"))


def rule(rid="T-1", name='"x"', cve="CVE-2021-26855", action="block",
         matches=("path prefix /x",)):
    """A valid rule as text, 5 + len(matches) lines."""
    out = "rule %s\n    name %s\n    cve %s\n    action %s\n" % (
        rid, name, cve, action)
    for m in matches:
        out += "    match %s\n" % m
    return out + "end\n"


def body(*lines):
    return "".join(l + "\n" for l in lines)


HEAD = 'rule T-1\n    name "x"\n    cve CVE-2021-26855\n    action block\n'

# (name, content or callable(dir) -> content, line or None, phrase)
# a line of None: the error concerns the whole file ("<file>: ...").
# `prefixable`: a valid rule may precede the content (variant C).
CASES = []


def case(name, content, line, phrase, prefixable=True, kind="file"):
    CASES.append(dict(name=name, content=content, line=line, phrase=phrase,
                      prefixable=prefixable, kind=kind))


# ---- tokenizer
case("unterminated_double_quote", HEAD.replace('"x"\n', '"x\n'), 2,
     "unterminated quoted string")
case("unterminated_single_quote",
     HEAD + "    match path regex '(a|b)\nend\n", 5,
     "unterminated quoted string")
case("missing_space_after_quote", HEAD.replace('"x"', '"x"y'), 2,
     "missing space after quoted string")
case("control_character", HEAD + "    match path is a\x01b\nend\n", 5,
     "control character in rule file")
case("control_character_del", HEAD + "    match path is a\x7fb\nend\n", 5,
     "control character in rule file")
case("nul_byte", rule() + "# comment\n" + HEAD + "    match path is a\0b\n"
     "end\n", 12, "NUL byte in rule file")
case("line_longer_than_64k", rule() + "# " + "x" * 65535 + "\n", 7,
     "line longer than 65536 bytes")
case("more_than_64_words",
     HEAD + "    match path is " + " ".join("w%d" % i for i in range(62))
     + "\nend\n", 5, "more than 64 words on a line")

# ---- structure
case("expected_rule", "# a comment\nname \"x\"\n", 2,
     'expected "rule", found "name"')
case("end_outside_rule", rule() + "end\n", 7, '"end" outside a rule')
case("rule_without_id", "rule\n", 1, '"rule" takes exactly one id')
case("rule_with_two_ids", "rule A B\n", 1, '"rule" takes exactly one id')
case("invalid_id_chars", "rule bad/id\n", 1, 'invalid rule id "bad/id"')
case("invalid_id_too_long", "rule " + "A" * 65 + "\n", 1,
     'invalid rule id "' + "A" * 65 + '"')
case("duplicate_id_in_file", rule("T-1") + rule("T-1"), 7,
     'duplicate rule id "T-1", first defined at {file}:{base1}')
case("duplicate_id_across_files", None, 1,
     'duplicate rule id "D-1", first defined at {dir}/first.rules:1',
     prefixable=False, kind="dup2")
case("unknown_keyword", HEAD + "    severity high\n", 5,
     'unknown keyword "severity" in rule "T-1"')
case("rule_not_closed_at_eof", HEAD + "    match path prefix /x\n", 1,
     'rule "T-1" is not closed with "end"')
case("rule_not_closed_before_next",
     HEAD + "    match path prefix /x\n" + rule("T-2"), 6,
     'rule "T-1" is not closed with "end" before the next "rule"')
case("end_with_arguments", HEAD + "    match path prefix /x\nend T-1\n", 6,
     '"end" takes no arguments')
case("no_rules_in_file", "# only a comment\n\n   # and another\n", None,
     "no rules in file", prefixable=False)
case("empty_file", "", None, "no rules in file", prefixable=False)

# ---- name, cve, action
case("name_twice", HEAD + '    name "y"\n', 5,
     '"name" given twice in rule "T-1"')
case("name_empty", HEAD.replace('"x"', '""'), 2,
     '"name" takes one quoted text of 1 to 256 bytes')
case("name_too_long", HEAD.replace('"x"', '"%s"' % ("n" * 257)), 2,
     '"name" takes one quoted text of 1 to 256 bytes')
case("name_two_words", HEAD.replace('"x"', "two words"), 2,
     '"name" takes one quoted text')
case("cve_twice", HEAD + "    cve CVE-2021-27065\n", 5,
     '"cve" given twice in rule "T-1"')
case("cve_invalid", HEAD.replace("CVE-2021-26855", "CVE-21-1"), 3,
     'invalid CVE id "CVE-21-1"')
case("cve_lowercase", HEAD.replace("CVE-2021-26855", "cve-2021-26855"), 3,
     'invalid CVE id "cve-2021-26855"')
case("cve_none", HEAD.replace(" CVE-2021-26855", ""), 3,
     '"cve" takes 1 to 16 CVE ids')
case("cve_more_than_16",
     HEAD.replace("CVE-2021-26855", " ".join(
         "CVE-2021-%d" % (30000 + i) for i in range(17))), 3,
     '"cve" takes 1 to 16 CVE ids')
case("action_twice", HEAD + "    action log\n", 5,
     '"action" given twice in rule "T-1"')
case("action_unknown", HEAD.replace("block", "drop"), 4,
     '"action" takes "block", "log" or "note"')
case("action_empty", HEAD.replace(" block", ""), 4,
     '"action" takes "block", "log" or "note"')

# ---- missing parts at "end"
case("missing_name", HEAD.replace('    name "x"\n', "")
     + "    match path prefix /x\nend\n", 5, 'rule "T-1" has no "name"')
case("missing_cve", HEAD.replace("    cve CVE-2021-26855\n", "")
     + "    match path prefix /x\nend\n", 5, 'rule "T-1" has no "cve"')
case("missing_action", HEAD.replace("    action block\n", "")
     + "    match path prefix /x\nend\n", 5, 'rule "T-1" has no "action"')
case("missing_match", HEAD + "end\n", 5, 'rule "T-1" has no "match" line')

# ---- match: fields
case("match_too_short", HEAD + "    match path\n", 5,
     '"match" needs a field and an operator')
case("unknown_field", HEAD + "    match hostname is x\n", 5,
     'unknown field "hostname"')
case("keyed_field_without_name", HEAD + "    match cookie is x\n", 5,
     'field "cookie" needs a name')
case("keyed_field_empty_name", HEAD + "    match header: present\n", 5,
     'field "header" needs a name')
case("unkeyed_field_with_name", HEAD + "    match path:x is y\n", 5,
     'field "path" takes no name')
case("invalid_cookie_name_equals", HEAD + "    match cookie:a=b present\n",
     5, 'invalid name "a=b" in field "cookie"')
case("invalid_cookie_name_semicolon",
     HEAD + "    match cookie:a;b present\n", 5,
     'invalid name "a;b" in field "cookie"')
case("invalid_header_name_8bit",
     HEAD + "    match header:X-\xe9 present\n", 5,
     'in field "header"')

# ---- match: operators
case("unknown_operator", HEAD + "    match path equals /x\n", 5,
     'unknown operator "equals"')
case("not_without_operator", HEAD + "    match path not\n", 5,
     '"not" must be followed by an operator')
case("present_with_argument", HEAD + "    match cookie:a present yes\n", 5,
     'operator "present" takes no arguments')
case("present_on_path", HEAD + "    match path present\n", 5,
     'operator "present" applies only to')
case("backend_with_argument",
     HEAD + "    match cookie:X-BEResource backend ex01\n", 5,
     'operator "backend" takes no arguments')
case("backend_on_path", HEAD + "    match path backend\n", 5,
     'operator "backend" applies only to cookie: and header: fields')
case("untrusted_with_argument", HEAD + "    match client untrusted x\n", 5,
     'operator "untrusted" takes no arguments')
case("untrusted_on_path", HEAD + "    match path untrusted\n", 5,
     'operator "untrusted" applies only to the client field')
case("regex_two_patterns", HEAD + "    match path regex a b\n", 5,
     'operator "regex" takes exactly one pattern')
case("regex_no_pattern", HEAD + "    match path regex\n", 5,
     'operator "regex" takes exactly one pattern')
case("regex_invalid", HEAD + "    match path regex '(unclosed'\n", 5,
     'invalid regex "(unclosed" at offset 9: missing closing parenthesis')
case("regex_empty", HEAD + "    match path regex ''\n", 5, "empty regex")
case("operator_without_values", HEAD + "    match path is\n", 5,
     'operator "is" needs at least one value')
case("empty_value", HEAD + '    match path contains a ""\n', 5,
     'empty value for operator "contains"')
case("more_than_16_match_lines",
     HEAD + "".join("    match path prefix /m%d\n" % i for i in range(17)),
     21, 'more than 16 "match" lines in rule "T-1"')

# ---- the file itself
case("file_larger_than_4mb",
     lambda d: rule() + ("#" + "x" * 1023 + "\n") * 4096, None,
     "file is larger than 4194304 bytes")
case("path_is_a_directory", None, None, "not a regular file",
     prefixable=False,
     kind="dir")
case("file_does_not_exist", None, None,
     "cannot open: No such file or directory", prefixable=False,
     kind="missing")
case("unreadable_file", None, None, "cannot open: Permission denied",
     prefixable=False, kind="unreadable")
case("path_is_a_fifo", None, None, "not a regular file",
     prefixable=False, kind="fifo")
case("glob_matches_nothing", None, None, "no rule file matches",
     prefixable=False, kind="glob")


# inside every limit: these must load
GOOD_BOUNDARIES = [
    ("id_of_64_chars", rule("A" * 64)),
    ("name_of_256_bytes", rule(name='"%s"' % ("n" * 256))),
    ("16_cves", rule(cve=" ".join("CVE-2021-%d" % (30000 + i)
                                  for i in range(16)))),
    ("16_match_lines", rule(matches=["path prefix /m%d" % i
                                     for i in range(16)])),
    ("64_words", rule(matches=["path is " + " ".join(
        "w%d" % i for i in range(61))])),
    ("line_of_65536_bytes", rule() + "#" + "x" * 65535 + "\n"),
    ("crlf_line_ends", rule().replace("\n", "\r\n")),
    ("quotes_and_escapes", rule(matches=[
        'header:X-A is "a \\" b" \'c " d\' e\\f'])),
    ("no_final_newline", rule().rstrip("\n")),
]


# ---------------------------------------------------------------- helpers

GOOD = rule("GOOD-1", matches=("header:X-Test is good",))


def materialize(c, d, prefix=""):
    """Write the case's files into d; (paths in load order, bad path,
    expected line or None, expected phrase)."""
    base = len(prefix.splitlines())
    bad = os.path.join(d, "bad-%s.rules" % c["name"])
    paths = []
    kind = c["kind"]
    if kind == "dir":
        os.makedirs(bad, exist_ok=True)
    elif kind == "missing":
        bad = os.path.join(d, "missing-%s.rules" % c["name"])
    elif kind == "glob":
        bad = os.path.join(d, "none-%s-*.rules" % c["name"])
    elif kind == "fifo":
        # a named pipe where a rule file should be: refused like a
        # directory, not waited on
        os.mkfifo(bad)
    elif kind == "unreadable":
        # root reads a mode-000 file anyway: nginx -t runs as nobody
        with open(bad, "w") as f:
            f.write(rule("U-1"))
        os.chmod(bad, 0)
    elif kind == "dup2":
        first = os.path.join(d, "first.rules")
        with open(first, "w") as f:
            f.write(rule("D-1"))
        paths.append(first)
        with open(bad, "w") as f:
            f.write(rule("D-1"))
    else:
        content = c["content"]
        if callable(content):
            content = content(d)
        with open(bad, "wb") as f:
            f.write((prefix + content).encode("latin-1"))
    paths.append(bad)
    line = c["line"]
    if line is not None:
        line += base
    phrase = c["phrase"].format(file=bad, dir=d, base1=1 + base)
    return paths, bad, line, phrase


def mk_nginx(c, d, paths):
    n = eg.Nginx(d, 1, http=conf_for(d, paths))
    n.unprivileged = c["kind"] == "unreadable"
    return n


def conf_for(d, paths, extra_http=""):
    http = "exchange_guard on;\n"
    for p in paths:
        http += "    exchange_guard_rules %s;\n" % p
    http += "    exchange_guard_log %s/guard.jsonl;\n" % d
    return http + extra_http


def nginx_t(n):
    cmd = [eg.NGINX, "-t", "-p", n.dir, "-c", n.conf]
    if getattr(n, "unprivileged", False):
        for d, _, files in os.walk(n.dir):
            os.chmod(d, 0o777)
            for f in files:
                p = os.path.join(d, f)
                if os.stat(p).st_mode & 0o777:
                    os.chmod(p, 0o644)
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup",
               "--clear-groups"] + cmd
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10 * SLOW)
    except subprocess.TimeoutExpired as e:
        raise eg.Failure("nginx -t hung for %ds and was killed; output: %s"
                         % (e.timeout, (e.output or b"").decode(
                             "utf-8", "replace").strip()))
    return p.returncode, p.stdout.decode("utf-8", "replace")


def expect_failure(n, bad, line, phrase):
    rc, out = nginx_t(n)
    errs = []
    if rc < 0:
        errs.append("nginx -t killed by signal %d" % -rc)
    elif rc != 1:
        errs.append("nginx -t exit code %d, want 1" % rc)
    where = "%s:%d: " % (bad, line) if line is not None else "%s: " % bad
    if where not in out:
        errs.append("no %r" % where)
    if phrase not in out:
        errs.append("no %r" % phrase)
    if not re.search(r" in %s:\d+" % re.escape(n.conf), out):
        errs.append("no nginx.conf:LINE")
    if "test failed" not in out:
        errs.append("no 'test failed'")
    if "AddressSanitizer" in out or "runtime error" in out:
        errs.append("sanitizer report")
    check(not errs, "%s\n    output: %s" % ("; ".join(errs), out.strip()))


# ---------------------------------------------------------------- A and B

def make_alone(c):
    def test(workdir):
        paths, bad, line, phrase = materialize(c, workdir)
        if c["kind"] == "glob":
            # the glob's own message: no file, no line
            n = mk_nginx(c, workdir, paths)
            rc, out = nginx_t(n)
            check(rc == 1 and phrase in out and bad in out
                  and "nginx.conf:" in out, "rc %d: %s" % (rc, out))
            return 1
        n = mk_nginx(c, workdir, paths)
        expect_failure(n, bad, line, phrase)
        return 1
    test.__name__ = "alone_" + c["name"]
    return test


def make_after_good(c):
    def test(workdir):
        good = os.path.join(workdir, "good.rules")
        with open(good, "w") as f:
            f.write(GOOD)
        paths, bad, line, phrase = materialize(c, workdir)
        n = mk_nginx(c, workdir, [good] + paths)
        if c["kind"] == "glob":
            rc, out = nginx_t(n)
            check(rc == 1 and phrase in out, "rc %d: %s" % (rc, out))
            return 1
        expect_failure(n, bad, line, phrase)
        return 1
    test.__name__ = "after_good_" + c["name"]
    return test


for _c in CASES:
    suite.test(make_alone(_c))
for _c in CASES:
    suite.test(make_after_good(_c))


def make_boundary(name, content):
    def test(workdir):
        p = os.path.join(workdir, "ok.rules")
        with open(p, "w", newline="") as f:
            f.write(content)
        n = eg.Nginx(workdir, 1, http=conf_for(workdir, [p]))
        n.unprivileged = False
        rc, out = nginx_t(n)
        check(rc == 0, "a valid file was refused (rc %d): %s" % (rc, out))
        return 1
    test.__name__ = "boundary_loads_" + name
    return test


for _name, _content in GOOD_BOUNDARIES:
    suite.test(make_boundary(_name, _content))


@suite.test
def glob_with_good_then_bad_file_fails_whole(workdir):
    d = os.path.join(workdir, "rules.d")
    os.makedirs(d)
    with open(os.path.join(d, "a.rules"), "w") as f:
        f.write(GOOD)
    with open(os.path.join(d, "b.rules"), "w") as f:
        f.write(rule("B-1") + HEAD + "    match path regex '('\nend\n")
    n = eg.Nginx(workdir, 1, http=conf_for(workdir, [d + "/*.rules"]))
    expect_failure(n, os.path.join(d, "b.rules"), 11, "invalid regex")
    return 1


# ---------------------------------------------------------------- C: reload

def nginx_children(pid):
    out = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rfind(")") + 2:].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            out.add(int(name))
    return out


def set_rules(n, paths):
    """Replace the exchange_guard_rules lines of n's nginx.conf."""
    with open(n.conf) as f:
        conf = f.read()
    lines = "".join("    exchange_guard_rules %s;\n" % p for p in paths)
    conf = re.sub(r"(    exchange_guard_rules [^;]*;\n)+", lambda m: lines,
                  conf)
    with open(n.conf, "w") as f:
        f.write(conf)


@suite.test
def reload_with_bad_file_keeps_old_config(workdir):
    sim = eg.Simulator(workdir)
    good = os.path.join(workdir, "good.rules")
    with open(good, "w") as f:
        f.write(GOOD)
    n = eg.Nginx(workdir, sim.port, http=conf_for(workdir, [good]))
    failures = []
    done = 0
    try:
        n.start()
        master = n.proc.pid
        time.sleep(0.3 * SLOW)
        workers = nginx_children(master)
        errlog = os.path.join(workdir, "error.log")
        check(eg.request(n.port, "GET", "/owa/", [("X-Test", "good")]).status
              == 403, "good rule not active at start")
        for i, c in enumerate(CASES):
            if c["kind"] == "unreadable":
                continue    # the master is root: it reads a mode-000 file
            if c["kind"] == "fifo":
                continue    # would block the master for good (see alone_)
            prefix = ""
            marker = "half-%d" % i
            if c["prefixable"]:
                prefix = rule("HALF-%d" % i,
                              matches=("header:X-Test is %s" % marker,))
            sub = os.path.join(workdir, "c%d" % i)
            os.makedirs(sub)
            paths, bad, line, phrase = materialize(c, sub, prefix)
            with open(errlog, "rb") as f:
                before = f.read().count(b"[emerg]")
            set_rules(n, [good] + paths)
            # "nginx -s reload" would parse the bad file itself and stop
            os.kill(master, signal.SIGHUP)
            deadline = time.time() + 10 * SLOW
            text = b""
            while time.time() < deadline:
                with open(errlog, "rb") as f:
                    text = f.read()
                if text.count(b"[emerg]") > before:
                    break
                time.sleep(0.02)
            text = text.decode("utf-8", "replace")
            last = [l for l in text.splitlines() if "[emerg]" in l]
            errs = []
            if text.count("[emerg]") <= before:
                errs.append("no [emerg] after reload")
            elif phrase not in last[-1] or bad not in last[-1]:
                errs.append("emerg %r" % last[-1])
            if n.proc.poll() is not None:
                errs.append("master exited with %s" % n.proc.returncode)
                failures.append("%s: %s" % (c["name"], "; ".join(errs)))
                break
            time.sleep(0.05)
            if nginx_children(master) != workers:
                errs.append("workers were replaced: %s -> %s"
                            % (sorted(workers), sorted(nginx_children(master))))
            r = eg.request(n.port, "GET", "/owa/", [("X-Test", "good")])
            if r.status != 403:
                errs.append("good rule lost: %d" % r.status)
            if c["prefixable"]:
                r = eg.request(n.port, "GET", "/owa/", [("X-Test", marker)])
                if r.status == 403:
                    errs.append("the bad file's first rule was applied")
            if errs:
                failures.append("%s: %s" % (c["name"], "; ".join(errs)))
            else:
                done += 1
        # a good configuration still reloads afterwards
        set_rules(n, [good])
        n.signal("reload")
        deadline = time.time() + 10 * SLOW
        while time.time() < deadline and nginx_children(master) == workers:
            time.sleep(0.05)
        check(nginx_children(master) != workers,
              "a good reload did not start new workers")
        check(eg.request(n.port, "GET", "/owa/", [("X-Test", "good")]).status
              == 403, "good rule not active after the final reload")
        with open(errlog, errors="replace") as f:
            text = f.read()
        check("exited on signal" not in text, "a process crashed:\n" + "\n".join(
            l for l in text.splitlines() if "exited on signal" in l))
    finally:
        n.stop()
        sim.stop()
    check(not failures, "%d of %d reloads wrong:\n  %s" % (
        len(failures), done + len(failures), "\n  ".join(failures)))
    return done


if __name__ == "__main__":
    sys.exit(suite.run(sys.argv[1] if len(sys.argv) > 1 else None))
