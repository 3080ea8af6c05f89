"""The load benchmark's report (scripts/loadbench.py): first one table of every case against every
peer, then the details per variant, memory, and the issues' targets against this run."""

NAMES = {"switchyard": "Switchyard", "switchyard-t1": "Switchyard, 1 thread", "haproxy-mlb": "HAProxy as MLB",
         "haproxy-map": "HAProxy map", "nginx": "nginx", "pingora": "Pingora"}
# The peers a target names ("the best of HAProxy and nginx"); Pingora is shown, not a target.
TARGET_PEERS = ("haproxy-mlb", "haproxy-map", "nginx")
# A load core busier than this during a run bounds its req/s: compare CPU per request instead.
SATURATED = 0.95


def known(x):
    return x == x  # NaN is not


def key_of(row):
    return "mib_s" if row["unit"] == "MiB/s" else "rps"


def cpu_us(row):
    """The proxy's CPU per request (or handshake), in microseconds."""
    return row["cpu_per_100k"] * 10


def cell(row):
    """Throughput · p99 · CPU per request (or per GiB), one peer's figures for one case."""
    if key_of(row) == "mib_s":
        return f"{row['mib_s']:,.0f} MiB/s · {row['cpu_per_gib']:.2f} s/GiB"
    p99 = f"{row['p99']:.2f} ms" if known(row["p99"]) else "-"
    errors = f" · **{row['errors']} errors**" if row["errors"] else ""
    return f"{row['rps']:,.0f}/s · {p99} · {cpu_us(row):.1f} µs{errors}"


def best_peer(rows, case, among=None):
    """The row of the peer (not Switchyard) with the highest throughput in `case`."""
    others = [r for (c, p), r in rows.items() if c == case and not p.startswith("switchyard")
              and (among is None or p in among) and r[key_of(r)] > 0]
    return max(others, key=lambda r: r[key_of(r)], default=None)


def by_case(variant):
    return {(r["case"], r["peer"]): r for r in variant["rows"]}


def summary_table(report):
    """One table: every case (rows; variant 2's marked) x every peer (columns)."""
    peers = list(dict.fromkeys(r["peer"] for v in report["variants"] for r in v["rows"]))
    print("\n## Every case against every peer (medians; throughput · p99 · proxy CPU per request, "
          "handshake or GiB)\n")
    print("| case | " + " | ".join(NAMES.get(p, p) for p in peers) + " | Switchyard / best peer (medians, paired) | load core busy; load tool µs per request (Switchyard, best) |")
    print("|---|" + "---|" * (len(peers) + 2))
    for v in report["variants"]:
        rows = by_case(v)
        for case in dict.fromkeys(r["case"] for r in v["rows"]):
            label = case if v["cores"] == 1 else f"{case} (2 threads, unpinned)"
            cells = [cell(rows[(case, p)]) if (case, p) in rows else "" for p in peers]
            ours, best = rows.get((case, "switchyard")), best_peer(rows, case)
            ratio = busy = ""
            if ours and best:
                k = key_of(ours)
                ratio = f"{ours[k] / best[k]:.2f}×, {best['paired_ratio']:.2f}× {NAMES[best['peer']]}"
                parts = []
                if known(ours["load_busy"]):
                    parts.append(f"{ours['load_busy']:.2f}, {best['load_busy']:.2f}")
                if k == "rps" and "load_cpu_per_100k" in ours:
                    parts.append(f"{ours['load_cpu_per_100k'] * 10:.1f}, {best['load_cpu_per_100k'] * 10:.1f} µs")
                busy = "; ".join(parts)
            print(f"| {label} | " + " | ".join(cells) + f" | {ratio} | {busy} |")
    ratios = thread_ratios(report)
    if ratios:
        print("\nSwitchyard's CPU per request, --threads 2 / --threads 1 (variant 2, same load): "
              + "; ".join(f"{case} {r:.2f}×" for case, r in ratios.items()))


def thread_ratios(report):
    v2 = next((v for v in report["variants"] if v["cores"] == 2), None)
    if not v2:
        return {}
    rows = by_case(v2)
    out = {}
    for case in ("keep-alive, 50 conns", "HTTPS keep-alive, 50 conns"):
        two, one = rows.get((case, "switchyard")), rows.get((case, "switchyard-t1"))
        if two and one and one["cpu_per_100k"]:
            out[case] = two["cpu_per_100k"] / one["cpu_per_100k"]
    return out


def details(report):
    for v in report["variants"]:
        label = "proxy on 1 core (taskset), load + backends on the other" if v["cores"] == 1 \
            else "2 threads per proxy (and Switchyard with 1), all unpinned"
        print(f"\n## {label}\nidle RSS (MiB): " + ", ".join(f"{k} {x:.1f}" for k, x in v["idle_rss_mib"].items()))
        print("\n| case | proxy | throughput | p50 ms | p99 ms | p99.9 ms | proxy CPU s per 100k req (or per GiB) | RSS under load MiB | load core busy | load tool CPU s per 100k | errors | Switchyard / this (medians) | (paired rounds) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        rows = by_case(v)
        for r in v["rows"]:
            ours = rows.get((r["case"], "switchyard"))
            key = key_of(r)
            ratio = f"{ours[key] / r[key]:.2f}x" if ours and r[key] and r["peer"] != "switchyard" else ""
            paired = f"{r['paired_ratio']:.2f}x" if known(r["paired_ratio"]) else ""
            busy = f"{r['load_busy']:.2f}" if known(r["load_busy"]) else ""
            tool = f"{r['load_cpu_per_100k']:.2f}" if key == "rps" and "load_cpu_per_100k" in r else ""
            thr = f"{r['mib_s']:.0f} MiB/s" if key == "mib_s" else f"{r['rps']:.0f} {r['unit']}"
            cpu = f"{r['cpu_per_gib']:.2f} s/GiB" if key == "mib_s" else f"{r['cpu_per_100k']:.2f}"
            print(f"| {r['case']} | {r['peer']} | {thr} | {r['p50']:.2f} | {r['p99']:.2f} | {r.get('p999', float('nan')):.2f} | "
                  f"{cpu} | {r['rss_load']:.1f} | {busy} | {tool} | "
                  f"{r['errors']} | {ratio} | {paired} |")
        handshakes = [r for r in v["rows"] if "full" in r]
        if handshakes:
            print("\nTLS handshakes per run, as the client's rustls saw them (medians): full / resumed "
                  "(full after a HelloRetryRequest)")
            for r in handshakes:
                print(f"  {r['case']:<58} {r['peer']:<14} {r['full']:>9.0f} / {r['resumed']:.0f} "
                      f"({r.get('hello_retries', 0):.0f})")


def memory(report):
    if "rss_2500_apps_mib" in report:
        print(f"\nSwitchyard idle RSS with 2,500 apps x 3 tasks: {report['rss_2500_apps_mib']:.1f} MiB")
    if "memory_per_connection" in report:
        print("\nRSS per extra active keep-alive connection (each proxy fresh, one core; MiB at 50 and 1,000 connections):")
        for name, m in report["memory_per_connection"].items():
            print(f"  {name:<12} {m['rss_50']:.1f} -> {m['rss_1000']:.1f} MiB: {m['kib_per_conn']:.1f} KiB per connection")
    if "memory_per_idle_tls" in report:
        print("\nRSS per idle connection over TLS, after one request each (each proxy fresh, one core):")
        for name, got in report["memory_per_idle_tls"].items():
            for proto, m in got.items():
                what = "HTTP/1.1" if proto == "tls" else "HTTP/2  "
                if "error" in m:
                    print(f"  {name:<12} {what} not measured: {m['error']}")
                else:
                    print(f"  {name:<12} {what} {m['rss_base']:.1f} -> {m['rss_more']:.1f} MiB: "
                          f"{m['kib_per_conn']:.1f} KiB per connection")
    pingora = report.get("pingora", {})
    if "error" in pingora:
        print(f"\nPingora peer: not run: {pingora['error']}")


def verdicts(report):
    """Issue 26's targets (and issue 8's that still stand) against this run: (target, figure,
    met). A ratio target is met when both the ratio of medians and the median of paired rounds
    reach it. Variant 1 (one core each) unless the target says two threads."""
    v1 = next((v for v in report["variants"] if v["cores"] == 1), None)
    v2 = next((v for v in report["variants"] if v["cores"] == 2), None)
    rows = by_case(v1) if v1 else {}
    out = []

    def against(rows, case, peer_row, target, strict=False):
        ours = rows.get((case, "switchyard"))
        if not (ours and peer_row):
            return None
        k = key_of(ours)
        medians, paired = ours[k] / peer_row[k], peer_row["paired_ratio"]
        met = (medians > target and paired > target) if strict else (medians >= target and paired >= target)
        return ours, f"{medians:.2f}x / {paired:.2f}x {peer_row['peer']}", met

    def lowest(case, field):
        got = [rows[(case, p)][field] for p in TARGET_PEERS if (case, p) in rows and known(rows[(case, p)][field])]
        return min(got, default=float("nan"))

    case = "HTTPS keep-alive, 50 conns"
    got = against(rows, case, best_peer(rows, case, TARGET_PEERS), 1.1)
    if got:
        ours, figure, met = got
        out.append((f"{case}: >= 1.1x the best of HAProxy and nginx (medians / paired)", figure, met))
        out.append((f"{case}: p99 no worse than the best", f"{ours['p99']:.2f} ms vs {lowest(case, 'p99'):.2f}",
                    ours["p99"] <= lowest(case, "p99")))
        out.append((f"{case}: less CPU per request", f"{cpu_us(ours):.1f} µs vs {lowest(case, 'cpu_per_100k') * 10:.1f}",
                    ours["cpu_per_100k"] < lowest(case, "cpu_per_100k")))
    for case in dict.fromkeys(r["case"] for r in rows.values() if r["unit"] == "handshakes/s"):
        best = best_peer(rows, case, TARGET_PEERS)
        got = against(rows, case, best, 1.1)
        if got:
            ours, figure, met = got
            out.append((f"{case}: >= 1.1x the best in handshakes/s",
                        f"{figure}; CPU {cpu_us(ours):.0f} vs {cpu_us(best):.0f} µs per handshake; "
                        f"load core {ours['load_busy']:.2f}, {best['load_busy']:.2f}", met))
    for case in ("HTTP/2 over TLS (h2load, 50 conns x 10 streams)", "HTTP/2 (h2load, 50 conns x 10 streams)"):
        for peer, target, strict in (("haproxy-map", 1.0, False), ("nginx", 1.0, True)):
            got = against(rows, case, rows.get((case, peer)), target, strict)
            if got:
                out.append((f"{case}: {'>= 1.0x' if not strict else 'ahead of'} {peer}", *got[1:]))
    case = "keep-alive, 50 conns"
    best = best_peer(rows, case, TARGET_PEERS)
    ours = rows.get((case, "switchyard"))
    if ours and best:
        rps = ours["rps"] / best["rps"]
        cpu = best["cpu_per_100k"] / ours["cpu_per_100k"] if ours["cpu_per_100k"] else float("nan")
        saturated = min(ours["load_busy"], best["load_busy"]) >= SATURATED
        met = (rps >= 1.1 and best["paired_ratio"] >= 1.1) or (saturated and cpu >= 1.1)
        out.append((f"{case}: >= 1.1x the best in req/s, or >= 1.1x less CPU per request where the load core is "
                    f"saturated (>= {SATURATED})",
                    f"{rps:.2f}x / {best['paired_ratio']:.2f}x {best['peer']}; CPU {cpu:.2f}x less; load core "
                    f"{ours['load_busy']:.2f}, {best['load_busy']:.2f}", met))
        for field, label in (("p99", "p99"), ("p999", "p99.9")):
            if field in ours:
                out.append((f"{case}: {label} no worse than the best", f"{ours[field]:.2f} ms vs {lowest(case, field):.2f}",
                            ours[field] <= lowest(case, field)))
    got = against(rows, "TCP bulk, 1 GiB", rows.get(("TCP bulk, 1 GiB", "haproxy-mlb")), 1.0)
    if got:
        out.append(("TCP bulk: >= 1.0x HAProxy mode tcp", *got[1:]))
    for case, ratio in thread_ratios(report).items():
        out.append((f"--threads 2 vs 1, {case}: CPU per request within 5 %", f"{ratio:.2f}x", ratio <= 1.05))
    if v2:
        rows2 = by_case(v2)
        for case in ("keep-alive, 50 conns", "HTTPS keep-alive, 50 conns"):
            for peer in ("haproxy-map", "nginx"):
                got = against(rows2, case, rows2.get((case, peer)), 1.0)
                if got:
                    out.append((f"two threads, {case}: req/s >= {peer} (nbthread 2 / 2 workers)", *got[1:]))
    got = against(rows, "new connection per request", rows.get(("new connection per request", "haproxy-map")), 1.0)
    if got:
        out.append(("new connection per request: >= 1.0x HAProxy map (issue 8)", *got[1:]))
    tcp = rows.get(("TCP bulk, 1 GiB", "switchyard"))
    if tcp:
        out.append(("RSS flat while streaming 1 GiB (largest growth, < 1 MiB; issue 8)",
                    f"+{tcp['rss_growth_max']:.1f} MiB", tcp["rss_growth_max"] < 1.0))
    if "rss_2500_apps_mib" in report:
        out.append(("idle RSS with 2,500 apps < 30 MiB (issue 8)", f"{report['rss_2500_apps_mib']:.1f} MiB",
                    report["rss_2500_apps_mib"] < 30))
    per_conn = report.get("memory_per_connection", {}).get("switchyard")
    if per_conn:
        out.append(("<= 10 KiB per extra active connection (issue 8)", f"{per_conn['kib_per_conn']:.1f} KiB",
                    per_conn["kib_per_conn"] <= 10))
    return out


def print_report(report):
    print(f"\nSwitchyard load benchmark, {report['date']}; {report['machine']}")
    summary_table(report)
    details(report)
    memory(report)
    checks = verdicts(report)
    if checks:
        print("\nTargets (issue 26, and issue 8's that stand), this run; change -> routed is "
              "`cargo bench --bench reconfigure`:\n")
        print("| target | this run | met |\n|---|---|---|")
        for target, figure, met in checks:
            print(f"| {target} | {figure} | {'yes' if met else 'no'} |")
