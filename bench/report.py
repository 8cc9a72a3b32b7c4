#!/usr/bin/env python3
"""report.py - summarise bench/out/results.tsv: table, targets, chart.

Usage: report.py RESULTS.tsv OUTDIR "machine description"

Figures are medians over repetitions with [min-max].  Ratios are paired:
the ratio of two configurations inside the same repetition, then the
median of those, so a slow moment of the shared machine that hits both
cancels out.  Added latency is relay minus direct in the same repetition.
Writes OUTDIR/summary.tsv and, when gnuplot exists, OUTDIR/chart.png.
"""
import collections
import os
import shutil
import statistics
import subprocess
import sys

PEERS = ["socat", "haproxy"]
ORDER = ["direct", "relayd", "shim", "socat", "haproxy",
         "nginx-direct", "nginx-shim"]
TPUT = [("tput1up", "1 stream up"), ("tput4up", "4 streams up"),
        ("tput1down", "1 stream down"), ("tput4down", "4 streams down")]


def load(path):
    """rows[(workload, config, metric)] = {rep: value}"""
    rows = collections.defaultdict(dict)
    text = {}
    with open(path) as f:
        next(f)
        for line in f:
            rep, w, c, m, v = line.rstrip("\n").split("\t")
            try:
                rows[(w, c, m)][int(rep)] = float(v)
            except ValueError:
                text[(w, c, m)] = v
    return rows, text


def med(vals):
    return statistics.median(vals) if vals else None


def fmt(v, nd=2):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{nd}f}"


def signed(v, nd=2):
    """A difference with its sign: +1.00, -40.00."""
    if v is None:
        return "-"
    return ("+" if v >= 0 else "-") + fmt(abs(v), nd)


def spread(d, nd=2):
    if not d:
        return "-"
    v = list(d.values())
    return f"{fmt(med(v), nd)} [{fmt(min(v), nd)}-{fmt(max(v), nd)}]"


def paired(a, b, op):
    """median over reps present in both of op(a[rep], b[rep])"""
    out = [op(a[r], b[r]) for r in a if r in b and b[r] != 0]
    return med(out)


def configs(rows, workload):
    present = {c for (w, c, m) in rows if w == workload}
    return [c for c in ORDER if c in present] + \
        sorted(present - set(ORDER))


class Report:
    def __init__(self, rows, text):
        self.rows, self.text = rows, text
        self.lines = []
        self.summary = []
        self.targets = []

    def out(self, s=""):
        self.lines.append(s)

    def val(self, w, c, m):
        return self.rows.get((w, c, m), {})

    def failures(self, w, c):
        """runs that reported errors (failed connections for connrate)"""
        if w == "connrate":
            return int(sum(self.val(w, c, "conn_err").values()))
        return len(self.val(w, c, "failed"))

    def ratio_table(self, w, label, metric, unit, nd=2, higher=True):
        cs = configs(self.rows, w)
        direct = self.val(w, "direct", metric)
        for c in cs:
            d = self.val(w, c, metric)
            if not d:
                continue
            x = {"direct": paired(d, direct, lambda a, b: a / b)}
            for p in PEERS:
                x[p] = paired(d, self.val(w, p, metric), lambda a, b: a / b)
            fail = self.failures(w, c)
            cells = [f"{label:<15}", f"{c:<9}", f"{spread(d, nd):<26}"]
            cells += [f"{fmt(x[k]):>8}" for k in ["direct"] + PEERS]
            if fail:
                what = "failed connections" if w == "connrate" else \
                    "failed runs"
                cells.append(f"  ({fail} {what})")
            self.out(" ".join(cells))
            label = ""
            v = list(d.values())
            self.summary.append([w, c, metric, med(v), min(v), max(v),
                                 len(v), x["direct"]])

    def section_tput(self):
        self.out("Throughput, Gbit/s: median [min-max]; x = paired ratio")
        self.out(f"{'workload':<15} {'config':<9} {'median [min-max]':<26}"
                 f" {'x direct':>8} {'x socat':>8} {'x haproxy':>8}")
        for w, label in TPUT:
            self.ratio_table(w, label, "gbps", "Gbit/s")
        self.out()

    def section_lat(self):
        w = "lat"
        self.out("1-byte round trip, us: median [min-max] over reps; "
                 "added = config - direct in the same rep")
        self.out(f"{'config':<9} {'p50':<22} {'p99':<24} {'added p50':>9}"
                 f" {'added p99':>9} {'p50 x direct':>12}")
        d50 = self.val(w, "direct", "p50_us")
        d99 = self.val(w, "direct", "p99_us")
        for c in configs(self.rows, w):
            p50, p99 = self.val(w, c, "p50_us"), self.val(w, c, "p99_us")
            if not p50:
                continue
            a50 = paired(p50, d50, lambda a, b: a - b)
            a99 = paired(p99, d99, lambda a, b: a - b)
            x = paired(p50, d50, lambda a, b: a / b)
            self.out(f"{c:<9} {spread(p50, 1):<22} {spread(p99, 1):<24}"
                     f" {fmt(a50, 1):>9} {fmt(a99, 1):>9} {fmt(x):>12}")
            for m, d in (("p50_us", p50), ("p99_us", p99)):
                v = list(d.values())
                self.summary.append([w, c, m, med(v), min(v), max(v),
                                     len(v), x])
        self.out()

    def section_conn(self):
        self.out("New connections per second (8 threads: connect, 1 byte "
                 "each way, close)")
        self.out(f"{'workload':<15} {'config':<9} {'median [min-max]':<26}"
                 f" {'x direct':>8} {'x socat':>8} {'x haproxy':>8}")
        self.ratio_table("connrate", "TCP conn/s", "cps", "conn/s", 0)
        if any(w == "http" for (w, c, m) in self.rows):
            self.out()
            self.out("HTTP through nginx, wrk -t1 -c8 "
                     "-H 'Connection: close', req/s")
            for c in ("nginx-direct", "nginx-shim"):
                d = self.val("http", c, "rps")
                if d:
                    self.out(f"{'':<15} {c:<13} {spread(d, 0)}")
        self.out()

    def relay_cpu(self, c):
        """(s/GB over every throughput run, us per connection)"""
        cpu = sum(sum(self.val(w, c, "cpu_s").values()) for w, _ in TPUT)
        gb = sum(sum(self.val(w, c, "bytes").values()) for w, _ in TPUT)
        ccpu = sum(self.val("connrate", c, "cpu_s").values())
        conns = sum(self.val("connrate", c, "conns").values())
        return (cpu / (gb / 1e9) if gb else None,
                ccpu / conns * 1e6 if conns else None)

    def section_conn_cpu(self):
        """Where a new connection's CPU goes, process by process."""
        roles = [("client", "cpu_s_client"), ("server", "cpu_s_server"),
                 ("helper", "cpu_s_helper"), ("relay", "cpu_s")]
        rows = []
        for c in ["direct", "relayd", "shim"]:
            conns = sum(self.val("connrate", c, "conns").values())
            if not conns:
                continue
            us = [sum(self.val("connrate", c, m).values()) / conns * 1e6
                  if self.val("connrate", c, m) else None for _, m in roles]
            rows.append((c, us))
        if not rows:
            return
        self.out("CPU per new connection (connrate), us, by process")
        self.out("  config    " + "".join(f"{r:>9}" for r, _ in roles) +
                 "    total")
        for c, us in rows:
            total = sum(u for u in us if u is not None)
            self.out(f"  {c:<9} " + "".join(
                f"{fmt(u, 0) if u is not None else '-':>9}" for u in us) +
                f"{fmt(total, 0):>9}")
        self.out()

    def section_cpu_mem(self):
        self.out("Relay CPU (user+system, children included), summed over "
                 "all runs")
        for c in ["relayd", "shim", "socat", "haproxy"]:
            sgb, uc = self.relay_cpu(c)
            if sgb is None and uc is None:
                continue
            self.out(f"  {c:<9} {fmt(sgb)} s/GB   {fmt(uc, 0)} us/conn")
        self.out()
        self.section_conn_cpu()
        h = {m: next(iter(self.val("hold", "relayd", m).values()), None)
             for m in ("asked", "tried", "held", "hold_err", "rss_idle_kb",
                       "rss_held_kb", "fds", "fd_limit", "private_idle_kb",
                       "pss_idle_kb", "rss_floor_kb")}
        if h["rss_idle_kb"] is not None:
            self.out(f"relayd memory: idle RSS {fmt(h['rss_idle_kb'], 0)} "
                     f"KiB")
        if h["private_idle_kb"] is not None:
            self.out(f"  of which private {fmt(h['private_idle_kb'], 0)} "
                     f"KiB (PSS {fmt(h['pss_idle_kb'], 0)} KiB); the rest "
                     f"is shared library pages; for scale, coreutils "
                     f"sleep: {fmt(h['rss_floor_kb'], 0)} KiB")
        if h["held"] is not None and h["rss_held_kb"] is not None:
            per = ((h["rss_held_kb"] - h["rss_idle_kb"]) * 1024 / h["held"]
                   if h["held"] else None)
            self.out(f"  {fmt(h['held'], 0)} of {fmt(h['tried'], 0)} idle "
                     f"sessions held (asked {fmt(h['asked'], 0)}, fd hard "
                     f"limit {fmt(h['fd_limit'], 0)}), RSS "
                     f"{fmt(h['rss_held_kb'], 0)} KiB, {fmt(h['fds'], 0)} "
                     f"fds: {fmt(per, 0)} bytes per session")
        self.hold = h
        self.out()

    def section_wan(self):
        d = self.val("wan", "direct", "ttfb_ms")
        r = self.val("wan", "relayd", "ttfb_ms")
        rtt = self.val("wan", "relay-server", "rtt_ms")
        self.wan = None
        self.wan_pool = None
        self.wan_nopool = None
        self.stall = None
        if not d or not r:
            reason = self.text.get(("skip", "wan", "reason"))
            self.out(f"WAN profile: SKIP ({reason or 'no result'})")
            self.out()
            return
        d, r = med(list(d.values())), med(list(r.values()))
        rtt = med(list(rtt.values())) if rtt else None
        self.wan = (d, r, rtt)
        link = self.text.get(("meta", "wan", "link"), "?")
        self.out(f"WAN profile (netns client - relay - server; relay<->"
                 f"server link: {link})")
        self.out(f"  relay<->server RTT {fmt(rtt)} ms; time to first byte "
                 f"for a new client: direct {fmt(d)} ms, relayd {fmt(r)} ms "
                 f"(+{fmt(r - d)} ms)")
        for name, what in (("shim-pool", "shim + relayd, pooled data "
                            "connections"),
                           ("shim-nopool", "shim + relayd, RELAY_POOL=0"),
                           ("shim-nopool-notfo", "shim + relayd, "
                            "RELAY_POOL=0 RELAY_FASTOPEN=0")):
            v = self.val("wan", name, "ttfb_ms")
            if v:
                v = med(list(v.values()))
                self.out(f"  time to first byte, {what}: {fmt(v)} ms "
                         f"({signed(v - d)} ms over direct)")
                if name == "shim-pool":
                    self.wan_pool = v
                elif name == "shim-nopool":
                    self.wan_nopool = v
        q = self.val("wan-stall", "shim", "quiet_p50_ms")
        b = self.val("wan-stall", "shim", "busy_max_ms")
        self.stall = None
        if q and b:
            q, b = med(list(q.values())), med(list(b.values()))
            self.stall = (q, b)
            self.out(f"  event-loop server under the shim: existing client's "
                     f"RTT {fmt(q)} ms alone, at most {fmt(b)} ms while new "
                     f"clients arrive")
        self.out()

    def target(self, name, ok, detail):
        status = "SKIP" if ok is None else ("PASS" if ok else "MISS")
        self.targets.append((status, name, detail))

    def section_targets(self):
        for w, label in TPUT:
            rd = self.val(w, "relayd", "gbps")
            x = paired(rd, self.val(w, "direct", "gbps"), lambda a, b: a / b)
            self.target(f"relayd {label} >= 0.5 x direct",
                        None if x is None else x >= 0.5, f"{fmt(x)} x")
            x = paired(rd, self.val(w, "haproxy", "gbps"), lambda a, b: a / b)
            self.target(f"relayd {label} >= 1.1 x haproxy splice",
                        None if x is None else x >= 1.1, f"{fmt(x)} x")
        d50 = self.val("lat", "direct", "p50_us")
        d99 = self.val("lat", "direct", "p99_us")
        ar = paired(self.val("lat", "relayd", "p50_us"), d50,
                    lambda a, b: a - b)
        ah = paired(self.val("lat", "haproxy", "p50_us"), d50,
                    lambda a, b: a - b)
        self.target("relayd added RTT p50 <= 0.75 x haproxy's",
                    None if ar is None or ah is None else ar <= 0.75 * ah,
                    f"+{fmt(ar, 1)} us vs haproxy +{fmt(ah, 1)} us")
        ar = paired(self.val("lat", "relayd", "p99_us"), d99,
                    lambda a, b: a - b)
        ah = paired(self.val("lat", "haproxy", "p99_us"), d99,
                    lambda a, b: a - b)
        self.target("relayd added RTT p99 no worse than haproxy's",
                    None if ar is None or ah is None else ar <= ah,
                    f"+{fmt(ar, 1)} us vs haproxy +{fmt(ah, 1)} us")
        x = paired(self.val("connrate", "shim", "cps"),
                   self.val("connrate", "direct", "cps"), lambda a, b: a / b)
        why = self.text.get(("skip", "shim", "reason"), "no result")
        self.target("shim + relayd TCP conn/s >= 0.6 x direct",
                    None if x is None else x >= 0.6,
                    f"{fmt(x)} x" if x is not None else why)
        x = paired(self.val("http", "nginx-shim", "rps"),
                   self.val("http", "nginx-direct", "rps"),
                   lambda a, b: a / b)
        why = self.text.get(("skip", "nginx", "reason"), "no result")
        self.target("nginx under shim + relayd HTTP conn/s >= 0.6 x direct",
                    None if x is None else x >= 0.6,
                    f"{fmt(x)} x" if x is not None else why)
        h = self.hold
        idle = h.get("rss_idle_kb")
        self.target("relayd idle RSS < 2 MB",
                    None if idle is None else idle < 2048,
                    f"{fmt(idle, 0)} KiB")
        held, tried, asked = h.get("held"), h.get("tried"), h.get("asked")
        if held is None:
            self.target("10,000 idle sessions held without errors", None,
                        "no result")
        else:
            note = f"{fmt(held, 0)} of {fmt(asked, 0)} held"
            if tried is not None and asked and tried < asked:
                note += (f"; only {fmt(tried, 0)} tried: fd hard limit "
                         f"{fmt(h['fd_limit'], 0)} is below relayd's 2 fds "
                         f"per session")
            self.target(f"{fmt(asked, 0)} idle sessions held without errors",
                        held == asked and not h.get("hold_err"), note)
            per = ((h["rss_held_kb"] - idle) / held
                   if held and h.get("rss_held_kb") is not None else None)
            self.target("relayd RSS per idle session < 8 KiB",
                        None if per is None else per < 8,
                        f"{fmt(per)} KiB over {fmt(held, 0)} sessions")
        skip = self.text.get(("skip", "wan", "reason"), "no result")
        d, r, rtt = self.wan or (None, None, None)
        for label, v in (("original-protocol server", r),
                         ("shim, no pool", self.wan_nopool)):
            name = f"WAN first byte <= direct + 1 relay-server RTT, {label}"
            if v is None:
                self.target(name, None, skip)
                continue
            self.target(name, None if rtt is None else v - d <= rtt,
                        f"{signed(v - d)} ms vs RTT {fmt(rtt)} ms")
        if self.wan is not None and self.wan_pool is not None:
            d, r, rtt = self.wan
            self.target("WAN first byte with a pool < relayd without one",
                        self.wan_pool < r,
                        f"{signed(self.wan_pool - d)} ms vs {signed(r - d)} "
                        f"ms over direct")
        why = self.text.get(("skip", "wan-stall", "reason"), "no result")
        if self.stall is None or self.wan is None or self.wan[2] is None:
            self.target("WAN: event-loop server under the shim not stalled "
                        "by new clients", None, why)
        else:
            q, b = self.stall
            rtt = self.wan[2]
            self.target("WAN: event-loop server under the shim not stalled "
                        "by new clients", b < q + rtt / 2,
                        f"max {fmt(b)} ms vs {fmt(q)} ms alone "
                        f"(stall bound: +half an RTT)")
        self.out("Targets (issue 5), on ratios measured in this run")
        for status, name, detail in self.targets:
            self.out(f"  {status:<4}  {name:<55} {detail}")


def chart(rep, outdir):
    if not shutil.which("gnuplot"):
        print("chart: SKIP (gnuplot not installed)")
        return
    cs = [c for c in ["direct", "relayd", "shim", "socat", "haproxy"]
          if any(k[1] == c for k in rep.rows)]
    with open(os.path.join(outdir, "chart_tput.dat"), "w") as f:
        f.write("workload " + " ".join(cs) + "\n")
        for w, label in TPUT:
            vals = [med(list(rep.val(w, c, "gbps").values())) for c in cs]
            f.write('"%s" %s\n' % (label, " ".join(
                "%.3f" % v if v is not None else "NaN" for v in vals)))
    with open(os.path.join(outdir, "chart_lat.dat"), "w") as f:
        for c in cs:
            p50 = med(list(rep.val("lat", c, "p50_us").values()))
            p99 = med(list(rep.val("lat", c, "p99_us").values()))
            f.write("%s %s %s\n" % (c, fmt(p50, 1).replace(",", "")
                                    if p50 is not None else "NaN",
                                    fmt(p99, 1).replace(",", "")
                                    if p99 is not None else "NaN"))
    with open(os.path.join(outdir, "chart_conn.dat"), "w") as f:
        for c in cs:
            v = med(list(rep.val("connrate", c, "cps").values()))
            f.write("%s %s\n" % (c, "%.0f" % v if v is not None else "NaN"))
    ncols = len(cs)
    script = f"""
set terminal pngcairo size 1500,520 font 'DejaVu Sans,10'
set output '{outdir}/chart.png'
set datafile missing 'NaN'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key top right
set grid ytics
set multiplot layout 1,3 title 'relay benchmark, loopback, medians ({rep.machine})'
set title 'bulk throughput (Gbit/s, higher is better)'
set yrange [0:*]
set xtics rotate by -20
plot for [i=2:{ncols + 1}] '{outdir}/chart_tput.dat' using i:xtic(1) title columnheader(i)
set title '1-byte round trip (us, lower is better)'
set xtics norotate
plot '{outdir}/chart_lat.dat' using 2:xtic(1) title 'p50', '' using 3 title 'p99'
set title 'new TCP connections/s (higher is better)'
set logscale y
set yrange [100:*]
plot '{outdir}/chart_conn.dat' using 2:xtic(1) title 'conn/s' lc rgb '#4477aa'
unset multiplot
"""
    r = subprocess.run(["gnuplot"], input=script, text=True,
                       capture_output=True)
    if r.returncode != 0:
        print("chart: gnuplot failed:\n" + r.stderr)
    else:
        print(f"chart: {outdir}/chart.png")


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: report.py RESULTS.tsv OUTDIR [machine]")
    rows, text = load(sys.argv[1])
    outdir = sys.argv[2]
    rep = Report(rows, text)
    rep.machine = sys.argv[3] if len(sys.argv) > 3 else ""
    reps = max((r for d in rows.values() for r in d), default=0)
    rep.out(f"== relay benchmark: {rep.machine}; {reps} repetition(s) ==")
    rep.out()
    rep.section_tput()
    rep.section_lat()
    rep.section_conn()
    rep.section_cpu_mem()
    rep.section_wan()
    rep.section_targets()
    text_out = "\n".join(rep.lines) + "\n"
    sys.stdout.write(text_out)
    with open(os.path.join(outdir, "table.txt"), "w") as f:
        f.write(text_out)
    with open(os.path.join(outdir, "summary.tsv"), "w") as f:
        f.write("workload\tconfig\tmetric\tmedian\tmin\tmax\treps\t"
                "x_direct\n")
        for row in rep.summary:
            f.write("\t".join("" if v is None else
                              (f"{v:.4g}" if isinstance(v, float) else str(v))
                              for v in row) + "\n")
    chart(rep, outdir)


if __name__ == "__main__":
    main()
