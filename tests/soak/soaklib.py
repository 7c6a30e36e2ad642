"""Helpers shared by the soak (tests/soak/soak.py) and the fault tests
(tests/nginx/test_faults.py): a fast nginx upstream, the guard's nginx as
configured for load, wrk with tests/soak/mix.lua, and process memory.

Python 3 standard library only; wrk from Debian.
"""

import os
import re
import resource
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.dont_write_bytecode = True

import eg  # noqa: E402

MIX_LUA = os.path.join(HERE, "mix.lua")
USER = "user root;" if os.geteuid() == 0 else ""
# worker_connections 4096 with an upstream connection each: 8192+ files
NOFILE = min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1])


# ---------------------------------------------------------------- processes

def children(pid):
    """Live (non-zombie) child pids of pid."""
    out = []
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
            out.append(int(name))
    return sorted(out)


def rss_kb(pids):
    """Sum of VmRSS (kB) of pids that still exist."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


# ---------------------------------------------------------------- nginx

class NginxProc:
    """An nginx master started in the foreground (daemon off)."""

    conf_text = ""

    def __init__(self, workdir):
        self.dir = workdir
        os.makedirs(os.path.join(workdir, "logs"), exist_ok=True)
        self.conf = os.path.join(workdir, "nginx.conf")
        self.port = eg.free_port()
        self.proc = None
        self.errlog = os.path.join(workdir, "error.log")

    def write_conf(self):
        with open(self.conf, "w") as f:
            f.write(self.conf_text)

    def test_config(self):
        p = subprocess.run([eg.NGINX, "-t", "-p", self.dir, "-c", self.conf],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return p.returncode == 0, p.stdout.decode("utf-8", "replace")

    def start(self):
        self.write_conf()
        ok, out = self.test_config()
        if not ok:
            raise RuntimeError("nginx -t failed:\n" + out)
        self.proc = subprocess.Popen(
            [eg.NGINX, "-p", self.dir, "-c", self.conf, "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        eg.wait_port(self.port, 30)
        self.wait_workers()
        return self

    @property
    def master(self):
        return self.proc.pid

    def workers(self):
        return children(self.master)

    def pids(self):
        return [self.master] + self.workers()

    def rss_kb(self):
        return rss_kb(self.pids())

    def wait_workers(self, n=None, old=(), timeout=30):
        """Until exactly n workers run, none of them in old."""
        n = n or self.nworkers
        deadline = time.time() + timeout
        while time.time() < deadline:
            w = self.workers()
            if len(w) == n and not set(w) & set(old):
                return w
            time.sleep(0.05)
        raise RuntimeError("workers: %s (want %d, none of %s)"
                           % (self.workers(), n, sorted(old)))

    def kill(self, sig):
        os.kill(self.master, sig)

    def reload(self, wait=True):
        old = self.workers()
        self.kill(signal.SIGHUP)
        if wait:
            return self.wait_workers(old=old)
        return None

    def reopen(self):
        self.kill(signal.SIGUSR1)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def error_log(self):
        try:
            with open(self.errlog, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


UPSTREAM_CONF = """
{user}
worker_processes {workers};
worker_rlimit_nofile {nofile};
error_log {dir}/error.log notice;
pid {dir}/nginx.pid;
events {{ worker_connections 8192; }}
http {{
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    large_client_header_buffers 4 128k;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    # records nothing but the requests tagged as attacks
    map $http_x_eg_soak $eg_soak_attack {{
        ~^attack- 1;
        default   0;
    }}
    log_format soak_up '$http_x_eg_soak $request_method "$request_uri"';
    access_log {dir}/attacks.log soak_up if=$eg_soak_attack;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            return 200 "ok\\n";
        }}
    }}
}}
"""


class FastUpstream(NginxProc):
    """nginx without the module, answering 200 "ok" to everything; it logs
    only requests tagged X-EG-Soak: attack-*, which must never arrive."""

    def __init__(self, workdir, workers=1):
        super().__init__(workdir)
        self.nworkers = workers
        self.attack_log = os.path.join(workdir, "attacks.log")
        self.conf_text = UPSTREAM_CONF.format(
            user=USER, workers=workers, dir=workdir, port=self.port,
            nofile=NOFILE)

    def attack_lines(self):
        try:
            with open(self.attack_log, "rb") as f:
                return f.read().splitlines()
        except OSError:
            return []


FRONT_CONF = """
load_module {module};
{user}
worker_processes {workers};
worker_rlimit_nofile {nofile};
error_log {dir}/error.log {level};
pid {dir}/nginx.pid;
events {{ worker_connections {connections}; }}
http {{
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    large_client_header_buffers 4 128k;
    log_format soak '$status $http_x_eg_soak $upstream_status '
                    '$exchange_guard_action';
    access_log {dir}/access.log soak;

    exchange_guard on;
    exchange_guard_rules {rules}/*.rules;
    exchange_guard_log {guard_log};
    {http}

    upstream exchange {{
        server 127.0.0.1:{upstream};
        keepalive 256;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        server_name mail.contoso.com;
        # tells wrk's response() what each answer was for, 403s included
        add_header X-EG-Soak $http_x_eg_soak always;
        location / {{
            proxy_pass http://exchange;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
    }}
}}
"""


class Front(NginxProc):
    """nginx with the module and every shipped rule, in front of an
    upstream port; access_log lines are "status tag upstream_status
    action"."""

    def __init__(self, workdir, upstream_port, workers=2, connections=4096,
                 guard_log=None, level="notice", http=""):
        super().__init__(workdir)
        self.nworkers = workers
        self.guard_log = guard_log or os.path.join(workdir, "guard.jsonl")
        self.access_log = os.path.join(workdir, "access.log")
        self.params = dict(
            module=eg.MODULE, user=USER, workers=workers, dir=workdir,
            nofile=NOFILE,
            level=level, connections=connections, rules=eg.RULES,
            guard_log=self.guard_log, http=http, upstream=upstream_port,
            port=self.port)
        self.conf_text = FRONT_CONF.format(**self.params)

    def set_upstream(self, port):
        """Point the guard at another upstream and reload."""
        self.params["upstream"] = port
        self.conf_text = FRONT_CONF.format(**self.params)
        self.write_conf()
        return self.reload()

    def guard_size(self):
        try:
            return os.path.getsize(self.guard_log)
        except OSError:
            return 0

    def guard_lines(self, offset=0):
        """The guard log's complete lines from byte offset, as a list; for
        small tails (use iter_lines for the whole load)."""
        return [l.rstrip(b"\n") for l in iter_lines(self.guard_log, offset)]

    def access_size(self):
        try:
            return os.path.getsize(self.access_log)
        except OSError:
            return 0

    def access_stats(self, offset=0, end=None):
        """Counts over access_log lines between byte offsets."""
        st = dict(lines=0, s403=0, attack=0, attack_403=0, attack_other=0,
                  benign=0, benign_2xx=0, benign_499=0, benign_other=0,
                  untagged=0, untagged_403=0, bad_examples=[])
        for line in iter_lines(self.access_log, offset, end):
            line = line.rstrip(b"\n")
            st["lines"] += 1
            parts = line.split(b" ")
            status = int(parts[0])
            tag = parts[1] if len(parts) > 1 else b"-"
            if status == 403:
                st["s403"] += 1
            if tag.startswith(b"attack-"):
                st["attack"] += 1
                if status == 403:
                    st["attack_403"] += 1
                else:
                    st["attack_other"] += 1
                    if len(st["bad_examples"]) < 10:
                        st["bad_examples"].append(line.decode("latin-1"))
            elif tag.startswith(b"benign-"):
                st["benign"] += 1
                if 200 <= status < 300:
                    st["benign_2xx"] += 1
                elif status == 499:
                    st["benign_499"] += 1
                else:
                    st["benign_other"] += 1
                    if len(st["bad_examples"]) < 10:
                        st["bad_examples"].append(line.decode("latin-1"))
            else:
                st["untagged"] += 1
                if status == 403:
                    st["untagged_403"] += 1
        return st


def iter_lines(path, offset=0, end=None):
    """The lines of path between byte offsets, each with its newline (a
    last line without one is yielded as it is)."""
    try:
        f = open(path, "rb")
    except OSError:
        return
    with f:
        f.seek(offset)
        pos = offset
        for line in f:
            if end is not None and pos >= end:
                return
            pos += len(line)
            yield line


def validate_guard_lines(lines):
    """Over an iterable of raw lines (with their newline): (count, number
    that are not one strict UTF-8 JSON object ending in a newline,
    examples, counts by event.action)."""
    import json
    n, bad, examples, actions = 0, 0, [], {}
    for l in lines:
        n += 1
        try:
            if not l.endswith(b"\n"):
                raise ValueError("no newline at the end")
            e = json.loads(l[:-1].decode("utf-8", "strict"))
            if not isinstance(e, dict):
                raise ValueError("not an object")
            a = e["event"]["action"]
            actions[a] = actions.get(a, 0) + 1
        except (ValueError, KeyError, TypeError) as exc:
            bad += 1
            if len(examples) < 3:
                examples.append("%s: %r" % (exc, l[:200]))
    return n, bad, examples, actions


# ---------------------------------------------------------------- wrk

def wrk_cmd(port, mix_path, seconds, connections, threads=2, timeout=10):
    return ["wrk", "-t%d" % threads, "-c%d" % connections,
            "-d%ds" % seconds, "--timeout", "%ds" % timeout,
            "-s", MIX_LUA, "http://127.0.0.1:%d/" % port, "--", mix_path]


def start_wrk(port, mix_path, seconds, connections, threads=2, out=None):
    return subprocess.Popen(
        wrk_cmd(port, mix_path, seconds, connections, threads),
        stdout=out or subprocess.PIPE, stderr=subprocess.STDOUT)


def parse_wrk(text):
    """The SOAK name=value lines of mix.lua's done(), plus wrk's own
    "Socket errors" and "Non-2xx" lines."""
    r = {}
    for m in re.finditer(r"^SOAK (\w+)=(.*)$", text, re.M):
        v = m.group(2).strip()
        r[m.group(1)] = int(v) if re.fullmatch(r"-?\d+", v) else v
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", text)
    r["wrk_socket_errors"] = sum(map(int, m.groups())) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    r["wrk_non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    r["rps"] = float(m.group(1)) if m else 0.0
    return r


def ensure_wrk():
    if subprocess.run(["sh", "-c", "command -v wrk"],
                      stdout=subprocess.DEVNULL).returncode == 0:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-qq",
                    "--no-install-recommends", "wrk"], env=env, check=True)


# ---------------------------------------------------------------- results

class Results:
    """Named checks; prints "ok"/"FAIL" lines and "N passed, N failed"."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            print("ok   %s%s" % (name, ("  (%s)" % detail) if detail else ""))
        else:
            self.failed += 1
            self.failures.append(name)
            print("FAIL %s: %s" % (name, detail))
        sys.stdout.flush()
        return cond

    def summary(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0
