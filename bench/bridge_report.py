# SPDX-License-Identifier: MIT
"""bench/bridge.py's report: same-round ratios to the goals, medians and ranges, as Markdown.

A result is a dict: round, kind ("bw" or "rtt"), contender ("bridge", "ucx stream_bw", ...),
size, and the numbers of bridge_run.py. Every goal is a ratio of two numbers taken in the same
round, seconds apart; the report gives the median over rounds and the min-max.
"""
import statistics

BW_GOAL = 0.8      # bridge bandwidth >= 0.8x UCX's own
RTT_GOAL = 1.5     # bridge round trip <= 1.5x UCX's


def fmt(x):
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


def size_name(n):
    for unit, k in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= k and n % k == 0:
            return f"{n // k} {unit}"
    return f"{n} B"


def spread(values):
    """'median (min-max)' of a list, '-' when empty."""
    if not values:
        return "-"
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}-{fmt(max(values))})"


def spread_n(values):
    if not values:
        return "-"
    return f"{spread(values)}, n={len(values)}"


class Report:
    def __init__(self, results, rounds, meta):
        self.results, self.rounds, self.meta = results, rounds, meta

    def _get(self, rnd, kind, contender, size):
        for r in self.results:
            if (r["round"], r["kind"], r["contender"], r["size"]) == (rnd, kind, contender, size):
                return r
        return None

    def _values(self, kind, contender, size, key):
        return [r[key] for r in self.results
                if (r["kind"], r["contender"], r["size"]) == (kind, contender, size)]

    def ratios(self, kind, size, baseline):
        """Per round: bridge / @baseline (a contender name, or 'best': UCX's best in that round)."""
        key = "mb_s" if kind == "bw" else "rtt_us"
        pick = max if kind == "bw" else min
        out = {}
        for rnd in sorted({r["round"] for r in self.results}):
            br = self._get(rnd, kind, "bridge", size)
            if baseline == "best":
                base = [r[key] for r in self.results if r["round"] == rnd and r["kind"] == kind
                        and r["size"] == size and r["contender"].startswith("ucx ")]
                b = pick(base) if base else None
            else:
                u = self._get(rnd, kind, baseline, size)
                b = u[key] if u else None
            if br and b:
                out[rnd] = br[key] / b
        return out

    def summary(self):
        """{(kind, size): {'same_api': [...], 'best': [...]}} for the JSON file and the check."""
        s = {}
        for kind, sizes, same in (("bw", self.meta["sizes"], "ucx stream_bw"),
                                  ("rtt", self.meta["rtt_sizes"], "ucx stream_lat")):
            for size in sizes:
                s[f"{kind} {size}"] = {"vs_stream": list(self.ratios(kind, size, same).values()),
                                       "vs_best": list(self.ratios(kind, size, "best").values())}
        return s

    # ---- Markdown --------------------------------------------------------------------------

    def _bw_table(self):
        ucx = self.meta["ucx_bw"]
        head = (["size", "bridge records/s", "bridge MB/s"] + [f"{u} MB/s" for u in ucx] +
                ["bridge / stream_bw", "bridge / best UCX", f"goal >= {BW_GOAL}", "bridges' CPU"])
        rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for size in self.meta["sizes"]:
            vs_stream = list(self.ratios("bw", size, "ucx stream_bw").values())
            vs_best = list(self.ratios("bw", size, "best").values())
            cpu = [r["bridge_cpu_s"] / r["secs"] * 100 for r in self.results
                   if (r["kind"], r["contender"], r["size"]) == ("bw", "bridge", size)]
            met = (statistics.median(vs_stream) >= BW_GOAL) if vs_stream else None
            cells = ([size_name(size), spread(self._values("bw", "bridge", size, "rec_s")),
                      spread(self._values("bw", "bridge", size, "mb_s"))] +
                     [spread(self._values("bw", f"ucx {u}", size, "mb_s")) for u in ucx] +
                     [spread_n(vs_stream), spread(vs_best), verdict(met),
                      f"{statistics.median(cpu):.0f} %" if cpu else "-"])
            rows.append("| " + " | ".join(cells) + " |")
        return "\n".join(rows)

    def _rtt_table(self):
        ucx = self.meta["ucx_lat"]
        head = (["size", "bridge RTT p50 (us)"] + [f"{u} RTT p50 (us)" for u in ucx] +
                ["bridge / stream_lat", "bridge / best UCX", f"goal <= {RTT_GOAL}",
                 "local channel RTT p50 (us)", "bridge RTT mean (us)"] +
                [f"{u} RTT mean" for u in ucx])
        rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for size in self.meta["rtt_sizes"]:
            vs_stream = list(self.ratios("rtt", size, "ucx stream_lat").values())
            vs_best = list(self.ratios("rtt", size, "best").values())
            met = (statistics.median(vs_stream) <= RTT_GOAL) if vs_stream else None
            cells = ([size_name(size), spread(self._values("rtt", "bridge", size, "rtt_us"))] +
                     [spread(self._values("rtt", f"ucx {u}", size, "rtt_us")) for u in ucx] +
                     [spread_n(vs_stream), spread(vs_best), verdict(met),
                      spread(self._values("rtt", "local channel", size, "rtt_us")),
                      spread(self._values("rtt", "bridge", size, "rtt_mean_us"))] +
                     [spread(self._values("rtt", f"ucx {u}", size, "rtt_mean_us")) for u in ucx])
            rows.append("| " + " | ".join(cells) + " |")
        return "\n".join(rows)

    def _rounds_table(self):
        sizes, rtts = self.meta["sizes"], self.meta["rtt_sizes"]
        head = (["round", "first", "load (1 min) start / end"] +
                [f"bw {size_name(s)}" for s in sizes] + [f"rtt {size_name(s)}" for s in rtts])
        rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        bw = {s: self.ratios("bw", s, "ucx stream_bw") for s in sizes}
        rt = {s: self.ratios("rtt", s, "ucx stream_lat") for s in rtts}
        for rd in self.rounds:
            n = rd["round"]
            cells = ([str(n), rd["first"], f"{rd['load_start']:.2f} / {rd['load_end']:.2f}"] +
                     [fmt(bw[s].get(n)) for s in sizes] + [fmt(rt[s].get(n)) for s in rtts])
            rows.append("| " + " | ".join(cells) + " |")
        return "\n".join(rows)

    def markdown(self):
        m = self.meta
        return "\n".join([
            f"### ivshmem-bridge against ucx_perftest: {len(self.rounds)} rounds, "
            f"{m['started']} - {m['ended']} UTC",
            "",
            f"Machine: {m['machine']}. ivshmem-bridge: {m['bridge']}. "
            f"UCX {m['ucx_version']}, `UCX_TLS=tcp`, "
            f"`UCX_NET_DEVICES=<veth>` for the bridges and ucx_perftest alike. Channel ring "
            f"{m['ring']} per direction, bridge window {m['window']}. About {m['secs']} s per "
            f"measurement. ucx_perftest bandwidth tests with "
            f"{outstanding(m.get('ucx_outstanding'))}."
            f" Wall time {m['wall_s']:.0f} s." +
            (f" **Stopped early**: {m['stopped']}" if m.get("stopped") else ""),
            "",
            "#### Bandwidth: one direction, A -> B (median over rounds, min-max)",
            "",
            "MB/s = 10^6 bytes/s (ucx_perftest prints MiB/s; converted). The ratios are per "
            "round, bridge / UCX measured seconds apart in the same round.",
            "",
            self._bw_table(),
            "",
            "#### Round trip: ping-pong, A -> B -> A (median over rounds, min-max)",
            "",
            "ucx_perftest prints half the round trip; doubled here. \"local channel\": the same "
            "ping-pong between two peers of one region, no bridge (for comparison, not a goal).",
            "",
            self._rtt_table(),
            "",
            "#### Rounds: bridge / ucx stream_bw (bandwidth), "
            "bridge / ucx stream_lat (round trip)",
            "",
            self._rounds_table(),
            "",
        ])


def outstanding(n):
    return f"-O {n}" if n else "its default -O"


def verdict(met):
    return "-" if met is None else ("yes" if met else "**no**")
