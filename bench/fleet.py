#!/usr/bin/env python3
"""Fleet propagation: a ban published on the stream -> the element in another node's kernel set.

Many simulated nodes on loopback, in one throwaway network namespace (never the host's
firewall): Debian's nats-server with JetStream, the stream made by `portcullis fleet init`,
and --nodes real `portcullis run` daemons, each with its own nftables table (pcf0, pcf1, ...),
state and socket, all consuming the stream. A load generator speaks the NATS protocol on a
plain socket and publishes --rate reports per second in the names of the nodes (node k's
report goes to PREFIX.ban.nK.KEY; every other node must apply it), each for a fresh address,
for --seconds. `nft monitor elements` (netlink events, no polling) stops the clock when the
element reaches the kernel table of the measured node (n1 by default: it receives the
reports of all others). In the same run a bare NATS subscriber on the same subjects gives the
broker's own delivery latency (the floor), and the ratio to it is printed.

Target (issue 16): p99 <= 100 ms with 10 nodes and 10k bans/s fan-out.

usage: sudo bench/fleet.py [--nodes 10] [--rate 10000] [--seconds 5] [--bin target/release/portcullis]
"""
import argparse, json, os, select, signal, socket, subprocess, sys, tempfile, threading, time, ctypes

ap = argparse.ArgumentParser()
ap.add_argument("--nodes", type=int, default=10)
ap.add_argument("--rate", type=int, default=10000, help="reports published per second, all nodes")
ap.add_argument("--seconds", type=float, default=5.0)
ap.add_argument("--measure", type=int, default=1, help="the node whose kernel is watched")
ap.add_argument("--bin", default="target/release/portcullis")
args = ap.parse_args()
if os.geteuid() != 0:
    sys.exit("fleet.py needs root (network namespace, nftables)")
PREFIX, PORT = "pc", 14222


def enter(ns):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
        raise OSError(ctypes.get_errno(), "setns")
    os.close(fd)


def addr(i):
    """A fresh address per report, from the documentation range 2001:db8::/32."""
    return f"2001:db8:{(i >> 16) & 0xffff:x}:{i & 0xffff:x}::1"


def key(a):
    return a.replace(".", "-").replace(":", "-") + ("_32" if "." in a else "_128")


def canon_key(a):
    import ipaddress
    ip = ipaddress.ip_address(a)
    return key(str(ip))


ns = f"pcfleet{os.getpid()}"
nsm = f"pcfleetm{os.getpid()}"
subprocess.run(["ip", "netns", "add", ns], check=True)
subprocess.run(["ip", "netns", "add", nsm], check=True)
procs = []
stop = threading.Event()
published = {}  # address -> perf_counter at publish
seen_kernel = {}
seen_sub = {}
try:
    # The measured node has a namespace (and kernel ruleset) of its own, so the monitor sees
    # its elements only; a veth joins it to the broker's.
    sh = lambda n, *a: subprocess.run(["ip", "netns", "exec", n, *a], check=True)
    sh(ns, "ip", "link", "set", "lo", "up")
    sh(nsm, "ip", "link", "set", "lo", "up")
    subprocess.run(["ip", "link", "add", "fb0", "netns", ns, "type", "veth", "peer", "name", "fb1",
                    "netns", nsm], check=True)
    sh(ns, "ip", "addr", "add", "198.51.100.1/24", "dev", "fb0")
    sh(nsm, "ip", "addr", "add", "198.51.100.2/24", "dev", "fb1")
    sh(ns, "ip", "link", "set", "fb0", "up")
    sh(nsm, "ip", "link", "set", "fb1", "up")
    d = tempfile.mkdtemp(prefix="pcfleet")
    conf = os.path.join(d, "nats.conf")
    with open(conf, "w") as f:
        f.write(f'port: {PORT}\nhost: "0.0.0.0"\njetstream {{\n  store_dir: "{d}/js"\n}}\n')
    procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "nats-server", "-c", conf],
                                  stdout=subprocess.DEVNULL, stderr=open(f"{d}/nats.log", "w")))
    time.sleep(0.5)
    plain = os.path.join(d, "plain.toml")
    with open(plain, "w") as f:
        f.write(f'[fleet]\nprefix = "{PREFIX}"\nservers = ["nats://127.0.0.1:{PORT}"]\n')
    subprocess.run(["ip", "netns", "exec", ns, args.bin, "fleet", "--config", plain, "init",
                    "--max-age", "1d"], check=True, stdout=subprocess.DEVNULL)
    open(f"{d}/auth.log", "w").close()
    daemons = []
    for k in range(args.nodes):
        nd = f"{d}/n{k}"
        os.makedirs(nd)
        cfg = f"{nd}/cfg.toml"
        node_ns, broker = (nsm, "198.51.100.1") if k == args.measure else (ns, "127.0.0.1")
        with open(cfg, "w") as f:
            f.write(f'[daemon]\nstate_dir = "{nd}/state"\nsocket = "{nd}/ctl.sock"\nlog_level = "warn"\n'
                    f'[firewall]\nbackend = "nft"\ntable = "pcf{k}"\n'
                    f'[jail.sshd]\nsources = [{{ file = "{d}/auth.log" }}]\n'
                    f'[fleet]\nenabled = true\nservers = ["nats://{broker}:{PORT}"]\nnode = "n{k}"\n'
                    f'prefix = "{PREFIX}"\nrate = 1000000\nmax_ban = "1h"\npermanent_after_nodes = false\n')
        daemons.append(subprocess.Popen(["ip", "netns", "exec", node_ns, args.bin, "run", "--config", cfg],
                                        stderr=open(f"{nd}/daemon.log", "w")))
        procs.append(daemons[-1])
    for k in range(args.nodes):
        for _ in range(200):
            if os.path.exists(f"{d}/n{k}/ctl.sock"):
                break
            time.sleep(0.05)
    time.sleep(2.0)  # connected and consuming

    table = f"pcf{args.measure}".encode()
    monitor = subprocess.Popen(["ip", "netns", "exec", nsm, "nft", "monitor", "elements"],
                               stdout=subprocess.PIPE, bufsize=0)
    procs.append(monitor)

    def watch_kernel():
        buf = b""
        while not stop.is_set():
            r, _, _ = select.select([monitor.stdout], [], [], 0.2)
            if not r:
                continue
            chunk = os.read(monitor.stdout.fileno(), 1 << 20)
            if not chunk:
                return
            t = time.perf_counter()
            buf += chunk
            lines = buf.split(b"\n")
            buf = lines.pop()
            for ln in lines:
                if b"add element" not in ln or b" " + table + b" " not in ln:
                    continue
                inner = ln.split(b"{", 1)[-1].split(b"}", 1)[0]
                for el in inner.split(b","):
                    a = el.strip().split(b" ", 1)[0].decode()
                    if a and a not in seen_kernel:
                        seen_kernel[a] = t

    def subscriber():
        enter(ns)
        s = socket.create_connection(("127.0.0.1", PORT))
        s.recv(4096)
        s.sendall(f'CONNECT {{"verbose":false}}\r\nSUB {PREFIX}.ban.> 1\r\nPING\r\n'.encode())
        buf = b""
        while not stop.is_set():
            r, _, _ = select.select([s], [], [], 0.2)
            if not r:
                continue
            chunk = s.recv(1 << 20)
            if not chunk:
                return
            t = time.perf_counter()
            buf += chunk
            while True:
                i = buf.find(b"\r\n")
                if i < 0:
                    break
                head = buf[:i].split(b" ")
                if head[0] == b"MSG":
                    n = int(head[-1])
                    if len(buf) < i + 2 + n + 2:
                        break
                    subj = head[1].decode()
                    buf = buf[i + 2 + n + 2:]
                    a = subj.rsplit(".", 1)[-1]
                    if a not in seen_sub:
                        seen_sub[a] = t
                else:
                    if head[0] == b"PING":
                        s.sendall(b"PONG\r\n")
                    buf = buf[i + 2:]

    def publisher():
        enter(ns)
        s = socket.create_connection(("127.0.0.1", PORT))
        s.recv(4096)
        s.sendall(b'CONNECT {"verbose":false}\r\n')
        per_tick = max(1, args.rate // 100)
        total = int(args.rate * args.seconds)
        until = int((time.time() + 3600) * 1_000_000)
        body = json.dumps({"until_us": until}).encode()
        i = 0
        t_next = time.perf_counter()
        while i < total and not stop.is_set():
            out = []
            stamps = []
            for _ in range(per_tick):
                a = addr(i)
                node = i % args.nodes
                if node == args.measure:
                    node = (node + 1) % args.nodes  # every report is another node's
                subj = f"{PREFIX}.ban.n{node}.{canon_key(a)}"
                out.append(f"PUB {subj} {len(body)}\r\n".encode() + body + b"\r\n")
                stamps.append(a)
                i += 1
            t = time.perf_counter()
            s.sendall(b"".join(out))
            for a in stamps:
                published[a] = t
            t_next += 0.01
            time.sleep(max(0.0, t_next - time.perf_counter()))
        s.sendall(b"PING\r\n")
        s.recv(4096)

    threads = [threading.Thread(target=watch_kernel, daemon=True),
               threading.Thread(target=subscriber, daemon=True)]
    for t in threads:
        t.start()
    time.sleep(0.3)

    def cpu(p):
        # `ip netns exec` execs the daemon: same pid. utime + stime, seconds.
        f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    cpu0 = [cpu(p) for p in daemons]
    t0 = time.perf_counter()
    publisher()
    pub_secs = time.perf_counter() - t0
    deadline = time.time() + 15
    while time.time() < deadline and len(seen_kernel) < len(published):
        time.sleep(0.2)
    stop.set()
    wall = time.perf_counter() - t0
    cpus = [cpu(p) - c for p, c in zip(daemons, cpu0)]

    def stats(seen, keymap):
        lat = sorted((seen[keymap(a)] - t) * 1000 for a, t in published.items() if keymap(a) in seen)
        if not lat:
            return {"seen": 0}
        p = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 2)
        return {"seen": len(lat), "p50_ms": p(0.5), "p90_ms": p(0.9), "p99_ms": p(0.99), "max_ms": round(lat[-1], 2)}

    import ipaddress
    kern = stats(seen_kernel, lambda a: str(ipaddress.ip_address(a)))
    floor = stats(seen_sub, canon_key)
    out = {"nodes": args.nodes, "rate": args.rate, "seconds": args.seconds, "published": len(published),
           "published_per_s": round(len(published) / pub_secs), "kernel": kern, "broker_floor": floor,
           "daemon_cpu_s_mean": round(sum(cpus) / len(cpus), 2),
           "measured_daemon_cpu_us_per_applied": round(cpus[args.measure] * 1e6 / max(1, kern.get("seen", 0)), 1),
           "wall_s": round(wall, 2), "load_avg": os.getloadavg()[0]}
    print(json.dumps(out))
    if kern.get("seen") and floor.get("seen"):
        print(f"propagation to n{args.measure}'s kernel: p50 {kern['p50_ms']} ms, p99 {kern['p99_ms']} ms "
              f"(target p99 <= 100 ms: {'met' if kern['p99_ms'] <= 100 else 'MISSED'}); broker delivery floor "
              f"p99 {floor['p99_ms']} ms: {kern['p99_ms'] / max(floor['p99_ms'], 0.01):.1f}x; "
              f"{kern['seen']}/{len(published)} elements seen")
finally:
    stop.set()
    for p in reversed(procs):
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(5)
        except Exception:
            p.kill()
    subprocess.run(["ip", "netns", "del", ns])
    subprocess.run(["ip", "netns", "del", nsm])
