"""Shared harness for the daemon benchmarks (bans_100k.py, ingest.py, idle_cpu.py).

Each benchmark runs `portcullis run` inside a throwaway network namespace (its firewall is that
namespace's, never the host's), with state, socket, config and the tailed log in a temporary
directory. `Bench` is a context manager: the daemon is killed and the namespace and temporary
directory are removed on exit, also on exceptions and SIGTERM/SIGINT/SIGHUP.
"""
import json, os, shutil, signal, socket, subprocess, sys, tempfile, time

# Fail2Ban's numbers on this machine (/work/shared/design/brief.md section 5).
F2B_BANS_PER_SEC = 121.0
F2B_RESTORE_BANS, F2B_RESTORE_SECS = 2025, 9.7
F2B_INGEST_LINES_PER_SEC = 22_600.0


def need_root(name):
    if os.geteuid() != 0:
        sys.exit(f"{name}: needs root (network namespace, nftables)")


def load_line():
    with open("/proc/loadavg") as f:
        la = " ".join(f.read().split()[:3])
    nice = os.environ.get("PCBENCH_NICE")
    return f"load average {la} on {os.cpu_count()} CPUs" + (
        f"; daemon run with nice {nice}" if nice else "")


def proc_cpu_ticks(pid, children=False):
    """utime + stime of a process (all its threads), in clock ticks; with `children`, plus
    the waited-for children's (the nft/ipset processes the daemon ran)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    # fields after ")": state=0 ... utime=11 stime=12 cutime=13 cstime=14 (stat fields 14-17)
    ticks = int(rest[11]) + int(rest[12])
    if children:
        ticks += int(rest[13]) + int(rest[14])
    return ticks


TICKS_PER_SEC = os.sysconf("SC_CLK_TCK")


class Bench:
    def __init__(self, binary, jail_extra="", backend="nft", firewall_extra="", log_level=os.environ.get("PCBENCH_LOG", "warn"),
                 keep=bool(os.environ.get("PCBENCH_KEEP"))):
        self.binary = os.path.abspath(binary)
        if not os.access(self.binary, os.X_OK):
            sys.exit(f"no binary at {self.binary} (cargo build --release -p portcullis)")
        self.ns = f"pcdb{os.getpid()}"
        self.dir = tempfile.mkdtemp(prefix="pcdaemonbench")
        self.log = os.path.join(self.dir, "auth.log")
        self.socket = os.path.join(self.dir, "ctl.sock")
        self.cfg = os.path.join(self.dir, "portcullis.toml")
        self.daemon = None
        self.keep = keep
        open(self.log, "w").close()
        with open(self.cfg, "w") as f:
            f.write(
                f'[daemon]\nstate_dir = "{self.dir}/state"\nsocket = "{self.socket}"\n'
                f'log_level = "{log_level}"\n[firewall]\nbackend = "{backend}"\n{firewall_extra}'
                f'[jail.sshd]\nsources = [{{ file = "{self.log}" }}]\n{jail_extra}\n'
            )

    def __enter__(self):
        for s in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, lambda *_: sys.exit(130))
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        self.nsexec(["ip", "link", "set", "lo", "up"], check=True)
        return self

    def __exit__(self, *exc):
        self.kill9()
        subprocess.run(["ip", "netns", "del", self.ns], stderr=subprocess.DEVNULL)
        failed = exc[0] is not None and not (exc[0] is SystemExit and exc[1].code in (0, None))
        if failed or self.keep:
            print(f"(daemon log kept in {self.dir}/daemon.log)", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def nsexec(self, argv, **kw):
        return subprocess.run(["ip", "netns", "exec", self.ns] + argv, **kw)

    def nft(self, *args):
        return self.nsexec(["nft", *args], capture_output=True, text=True)

    def start(self, wait=True, timeout=60.0):
        """Start the daemon with NOTIFY_SOCKET set (as systemd would). With `wait`, return the
        seconds until it sends READY=1 (the firewall holds the stored bans and the control
        socket is up); else call `wait_ready` later."""
        self.t_spawn = time.perf_counter()
        notify_path = os.path.join(self.dir, "notify.sock")
        if os.path.exists(notify_path):
            os.remove(notify_path)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(notify_path)
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        env.pop("WATCHDOG_USEC", None)
        self.daemon = subprocess.Popen(
            ["ip", "netns", "exec", self.ns]
            # PCBENCH_NICE=-10: give the daemon (and the nft it runs) CPU priority over other
            # load, to approximate an idle machine on a shared one (reported with the numbers).
            + (["nice", "-n", os.environ["PCBENCH_NICE"]] if os.environ.get("PCBENCH_NICE") else [])
            + os.environ.get("PCBENCH_WRAP", "").split()  # e.g. "perf record -g -o FILE --"
            + [self.binary, "run", "--config", self.cfg],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "daemon.log"), "a"),
            env=env,
        )
        if not wait:
            return None
        return self.wait_ready(timeout)

    def wait_ready(self, timeout=60.0):
        """Seconds from the spawn until READY=1."""
        self.notify.settimeout(0.05)
        while time.perf_counter() - self.t_spawn < timeout:
            try:
                msg = self.notify.recv(4096).decode()
            except socket.timeout:
                if self.daemon.poll() is not None:
                    raise RuntimeError(f"daemon exited at start:\n{self.daemon_log()}")
                continue
            if "READY=1" in msg.splitlines():
                return time.perf_counter() - self.t_spawn
        raise RuntimeError(f"no READY=1 within {timeout}s:\n{self.daemon_log()}")

    def cpu_secs(self):
        """CPU seconds the daemon (and the tools it ran) used so far."""
        try:
            return proc_cpu_ticks(self.daemon.pid, children=True) / TICKS_PER_SEC
        except (OSError, AttributeError):
            return 0.0

    def profile(self, name, secs):
        """With env PCBENCH_PERF=DIR, attach `perf record -g` to the daemon for `secs` seconds
        (DIR/NAME.data); returns the perf process (or None) for `end_profile`."""
        out = os.environ.get("PCBENCH_PERF")
        trace = os.environ.get("PCBENCH_STRACE")  # DIR: syscall timing of fsync/exec instead
        if trace:
            p = subprocess.Popen(["timeout", str(secs), "strace", "-f", "--seccomp-bpf", "-tt",
                                  "-T", "-e", "trace=fsync,fdatasync,execve,wait4",
                                  "-o", os.path.join(trace, name + ".strace"),
                                  "-p", str(self.daemon.pid)], stderr=subprocess.DEVNULL)
        elif out:
            p = subprocess.Popen(["perf", "record", "-F", "1999", "-g", "-o",
                                  os.path.join(out, name + ".data"), "-p", str(self.daemon.pid),
                                  "--", "sleep", str(secs)], stderr=subprocess.DEVNULL)
        else:
            return None
        time.sleep(0.5)
        return p

    @staticmethod
    def end_profile(p):
        if p:
            p.wait()

    def kill9(self):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait()
        self.daemon = None
        if getattr(self, "notify", None):
            self.notify.close()
            self.notify = None

    def daemon_log(self):
        try:
            with open(os.path.join(self.dir, "daemon.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def ctl(self, *args):
        return subprocess.run([self.binary, *args, "--socket", self.socket],
                              capture_output=True, text=True)

    def status(self):
        out = self.ctl("status", "--json")
        if out.returncode != 0:
            raise RuntimeError(f"status failed: {out.stderr}")
        v = json.loads(out.stdout)
        return v.get("data", v)

    def set_count(self, name):
        """Elements in `inet portcullis NAME` (one full listing: call sparingly)."""
        out = self.nft("list", "set", "inet", "portcullis", name)
        if out.returncode != 0:
            return 0
        # One element per line in nft's listing ("elements = { a timeout …,\n b …,").
        body = out.stdout.split("elements = {", 1)
        if len(body) < 2:
            return 0
        return body[1].count(",") + 1

    def has_element(self, name, addr):
        out = self.nft("get", "element", "inet", "portcullis", name, "{ " + addr + " }")
        return out.returncode == 0
