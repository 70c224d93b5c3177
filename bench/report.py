"""Turning a benchmark run into targets met or missed, ratios, a Markdown table and profile summaries."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The goals of issue 8 against this run; `by` is measured/target (above 1 is better for rates)."""
    flush = r["settings"]["sink_flush_interval_s"]
    rows = []

    def rate(name: str, value: float | None, goal: float) -> None:
        rows.append({"target": name, "goal": f">= {goal:,.0f} events/s", "value": value,
                     "met": value is not None and value >= goal, "by": (value or 0) / goal})

    rate("stream, one worker", r["stages"]["stream"].get("events_per_s"), 60_000)
    rate("end to end, one stream + one sink worker", r["e2e"].get("events_per_s"), 40_000)
    p99 = r["latency"].get("paced", {}).get("p99")
    rows.append({"target": "p99 emit -> durable (paced load)", "goal": f"< {flush + 2:g} s (flush {flush:g} s + 2 s)",
                 "value": p99, "met": p99 is not None and p99 < flush + 2, "by": (p99 or 0) / (flush + 2)})
    trail = r["storage"].get("trail_bytes_per_event")
    gz = r["storage"].get("gzip_jsonl_bytes_per_event")
    rows.append({"target": "bytes/event in the bucket", "goal": f"<= gzip JSONL ({gz:.1f} B)" if gz else "<= gzip JSONL",
                 "value": trail, "met": trail is not None and gz is not None and trail <= gz,
                 "by": (trail or 0) / gz if gz else None})
    rate("verify", r["stages"]["verify"].get("events_per_s"), 300_000)
    return rows


def ratios(r: dict[str, Any]) -> dict[str, float | None]:
    """Rates relative to each other: the machine is shared and noisy, ratios from one run less so."""
    stream = r["stages"]["stream"]
    plain = r["references"].get("plain_loop", {})
    naive = r["references"].get("naive_faust", {})
    ceiling = r["references"].get("ceiling", {})

    def div(a: float | None, b: float | None) -> float | None:
        return a / b if a and b else None

    return {
        "stream_vs_naive_faust": div(stream.get("events_per_s"), naive.get("events_per_s")),
        # over the same prefix of the same data, when the plain loop ran on a prefix
        "stream_vs_plain_loop": div(plain.get("stream_events_per_s_same_prefix") or stream.get("events_per_s"),
                                    plain.get("events_per_s")),
        "plain_loop_vs_naive_faust": div(plain.get("events_per_s"), naive.get("events_per_s")),
        "stream_vs_naive_faust_per_cpu_s": div(stream.get("events_per_cpu_s"), naive.get("events_per_cpu_s")),
        "stream_vs_plain_loop_per_cpu_s": div(stream.get("events_per_cpu_s"), plain.get("events_per_cpu_s")),
        "e2e_vs_stream": div(r["e2e"].get("events_per_s"), stream.get("events_per_s")),
        "e2e_vs_emit": div(r["e2e"].get("events_per_s"), r["stages"]["emit"].get("events_per_s")),
        # every rate as a share of the minimal loop's (the same prefix for the stream, as for the plain loop)
        "stream_vs_ceiling": div(ceiling.get("stream_events_per_s_same_prefix") or stream.get("events_per_s"),
                                 ceiling.get("events_per_s")),
        "plain_loop_vs_ceiling": div(plain.get("events_per_s"), ceiling.get("events_per_s")),
        "naive_faust_vs_ceiling": div(naive.get("events_per_s"), ceiling.get("events_per_s")),
        "sink_vs_ceiling": div(r["stages"]["sink"].get("events_per_s"), ceiling.get("events_per_s")),
        "e2e_vs_ceiling": div(r["e2e"].get("events_per_s"), ceiling.get("events_per_s")),
    }


def _n(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def _mb(v: int | None) -> str:
    return "-" if not v else f"{v / 2**20:,.0f} MB"


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    s = r["stages"]
    e = r["e2e"]
    lat = r["latency"]
    st = r["storage"]
    refs = r["references"]
    ra = r["ratios"]
    lines = [
        f"Run {r['date']} on {m['cores']} cores, {m['memory_gb']:.0f} GB ({m['cpu_model']}), "
        f"load average {m['load_before']} before the run; commit {r['commit']}; "
        f"`{r['command']}`; {r['events']:,} events (seed {r['seed']}), {r['settings']['partitions']} partitions, "
        f"stream batch {r['settings']['stream_batch_size']:,}, sink flush {r['settings']['sink_flush_records']:,} "
        f"records or {r['settings']['sink_flush_interval_s']:g} s. Checks: "
        + ("every event sealed exactly once, verify intact." if r["checks"]["ok"] else "**FAILED** (see JSON)."),
        "",
        "| stage | events/s | wall s | CPU s of the worker | events per CPU s | peak RSS |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    v = s["verify"]
    if v.get("events") and v.get("cpu_s"):
        v.setdefault("events_per_cpu_s", v["events"] / v["cpu_s"])
    for name, label in (("emit", "emit (AuditClient, one process)"), ("stream", "stream: chain and sign (`sealtrail stream`)"),
                        ("sink", "sink: Parquet + locked PUT (`sealtrail sink`)"), ("verify", "verify (`verify_store` through S3, best of 3 fresh processes, workers included)")):
        x = s[name]
        lines.append(f"| {label} | {_n(x.get('events_per_s'))} | {_n(x.get('seconds'), 1)} | {_n(x.get('cpu_s'), 1)} "
                     f"| {_n(x.get('events_per_cpu_s'))} | {_mb(x.get('peak_rss'))} |")
    lines.append(f"| **end to end** (emit -> locked object, 1 stream + 1 sink) | **{_n(e.get('events_per_s'))}** "
                 f"| {_n(e.get('seconds'), 1)} | stream {_n(e.get('stream_cpu_s'), 1)}, sink {_n(e.get('sink_cpu_s'), 1)}, "
                 f"emitter {_n(e.get('emitter_cpu_s'), 1)} | - | stream {_mb(e.get('stream_peak_rss'))}, "
                 f"sink {_mb(e.get('sink_peak_rss'))} |")
    if v.get("whole_command_s"):
        lines += ["", f"Verify's runs took {', '.join(f'{x:.2f}' for x in v.get('runs_s', []))} s; the whole "
                      f"`sealtrail verify` command (interpreter start, imports, listing, digests) took "
                      f"{v['whole_command_s']:.2f} s = {_n(v['events'] / v['whole_command_s'])} events/s."]
    lines += [
        "",
        "| same data, same run | events | events/s | events per CPU s | `sealtrail stream` is |",
        "| --- | ---: | ---: | ---: | ---: |",
        (f"| `sealtrail stream` (Faust worker, bulk loop) | {_n(s['stream'].get('events'))} "
        f"| {_n(s['stream'].get('events_per_s'))} | {_n(s['stream'].get('events_per_cpu_s'))} | 1.00x |"),
    ]
    for key, label, ratio_key in (("plain_loop", "plain confluent-kafka loop, same work", "stream_vs_plain_loop"),
                                  ("naive_faust", "naive Faust agent (per-event await send, Table head)",
                                   "stream_vs_naive_faust")):
        x = refs.get(key, {})
        lines.append(f"| {label} | {_n(x.get('events'))} | {_n(x.get('events_per_s'))} "
                     f"| {_n(x.get('events_per_cpu_s'))} | {_n(ra.get(ratio_key), 2)}x "
                     f"({_n(ra.get(ratio_key + '_per_cpu_s'), 2)}x per CPU s) |")
    ceiling = refs.get("ceiling", {})
    if ceiling:
        lines.append(f"| the ceiling: plain loop, minimal work (orjson canonical bytes, SHA-256 chain, HMAC, produce) "
                     f"| {_n(ceiling.get('events'))} | {_n(ceiling.get('events_per_s'))} "
                     f"| {_n(ceiling.get('events_per_cpu_s'))} | {_n(ra.get('stream_vs_ceiling'), 2)}x |")
        lines += ["", "As shares of the ceiling's rate: " + ", ".join(
            f"{label} {_n(ra.get(k), 2)}" for label, k in (
                ("stream", "stream_vs_ceiling"), ("plain loop", "plain_loop_vs_ceiling"),
                ("naive Faust", "naive_faust_vs_ceiling"), ("sink", "sink_vs_ceiling"),
                ("end to end", "e2e_vs_ceiling"))) + "."]
    lines += [
        "",
        f"Latency emit -> durable (object listed in the bucket; listing every {lat.get('poll_s', 0.2):g} s): "
        + "; ".join(
            f"{label} p50 {_n(x.get('p50'), 2)} s, p95 {_n(x.get('p95'), 2)} s, p99 {_n(x.get('p99'), 2)} s, max {_n(x.get('max'), 2)} s"
            for label, x in ((f"paced at {_n(lat.get('paced_rate'))} events/s", lat.get("paced", {})),
                             ("saturated (the end-to-end run)", lat.get("saturated", {})))
        ) + ".",
    ]
    paced = lat.get("paced", {})
    if paced.get("emit_to_sealed"):
        a, b = paced["emit_to_sealed"], paced["sealed_to_durable"]
        pb = lat.get("paced_stream_batches") or {}
        lines[-1] += (f" Under the paced load, emit -> sealed by the stream took p50 {_n(a.get('p50'), 2)} s, "
                      f"p99 {_n(a.get('p99'), 2)} s (stream batches of {_n(pb.get('batch_records_mean'))} records, "
                      f"{_n((pb.get('batch_seconds_mean') or 0) * 1000)} ms each from consume to committed offsets), and "
                      f"sealed -> durable p50 {_n(b.get('p50'), 2)} s, p99 {_n(b.get('p99'), 2)} s.")
    lines += [
        "",
        (f"Storage: {_n(st.get('trail_bytes_per_event'), 1)} bytes/event in the bucket for the end-to-end trail "
        f"({_n(st.get('e2e_data_objects'))} objects), {_n(st.get('stage_bytes_per_event'), 1)} for the sink-alone trail "
        f"({_n(st.get('stage_data_objects'))} objects), against {_n(st.get('gzip_jsonl_bytes_per_event'), 1)} "
         f"for gzip'd JSON lines of the same events ({_n(st.get('jsonl_bytes_per_event'), 1)} uncompressed)."),
    ]
    cols = st.get("stage_column_bytes_per_event") or {}
    if cols:
        lines[-1] += (" Compressed bytes per event by Parquet column (sink-alone trail): "
                      + ", ".join(f"{k} {v:.1f}" for k, v in list(cols.items())[:8]) + ".")
    cpu = e.get("cpu_us_per_event") or {}
    if cpu:
        total = cpu.get("total") or 0
        lines += ["", "CPU per event end to end (all processes on the machine that the pipeline used): "
                  + ", ".join(f"{k} {v:,.0f} us" for k, v in cpu.items() if k != "total")
                  + f"; total {total:,.0f} us, so {m['cores']} cores cap end to end at about "
                  + f"{m['cores'] * 1e6 / total:,.0f} events/s." if total else ""]
    lines += [
        "",
        "| target | goal | measured | met | measured / goal |",
        "| --- | --- | ---: | :---: | ---: |",
    ]
    for t in r["targets"]:
        v = t["value"]
        shown = "-" if v is None else (f"{v:,.2f} s" if "latency" in t["target"] or "p99" in t["target"]
                                       else f"{v:,.1f} B" if "bytes" in t["target"] else f"{v:,.0f}/s")
        lines.append(f"| {t['target']} | {t['goal']} | {shown} | {'yes' if t['met'] else '**no**'} | {_n(t['by'], 2)} |")
    if ra:
        lines += ["", "Ratios: " + ", ".join(f"{k.replace('_', ' ')} {_n(v, 2)}" for k, v in ra.items() if v) + "."]
    return "\n".join(lines) + "\n"


# the function whose time a profile is about, per phase (names of product functions; missing ones are skipped)
FOCUS = {"emit": ("AuditClient.emit",), "stream": ("SealWorker._process",), "sink": ("SinkWorker.run",),
         "verify": ("check_body", "check_object_rows", "verify_store")}


def _stacks(raw: Path) -> list[tuple[list[str], int]]:
    out = []
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            frames = [_short(f) for f in stack.split(";") if f]
            if frames:
                out.append((frames, int(count_text)))
    return out


def summarize_profile(raw: Path, focus: tuple[str, ...] = (), top: int = 12) -> dict[str, Any]:
    """py-spy raw (collapsed) stacks -> where the time of the focus function goes, two levels down, and self time."""
    stacks = _stacks(raw)
    total = sum(n for _, n in stacks)
    own: Counter = Counter()
    for frames, n in stacks:
        own[frames[-1]] += n
    out: dict[str, Any] = {"samples": total,
                           "self": [(f, round(100 * n / total, 1)) for f, n in own.most_common(top)] if total else []}
    for name in focus:
        children: Counter = Counter()
        grandchildren: dict[str, Counter] = {}
        inside = 0
        for frames, n in stacks:
            i = next((i for i, f in enumerate(frames) if f.startswith(name + " ")), None)
            if i is None:
                continue
            inside += n
            rest = frames[i + 1:]
            child = rest[0] if rest else "(self)"
            children[child] += n
            grandchildren.setdefault(child, Counter())[rest[1] if len(rest) > 1 else "(self)"] += n
        if not inside:
            continue
        out["focus"] = name
        out["focus_share"] = round(100 * inside / total, 1)
        out["breakdown"] = [
            (child, round(100 * n / inside, 1),
             [(g, round(100 * m / inside, 1)) for g, m in grandchildren[child].most_common(5) if 100 * m / inside >= 1])
            for child, n in children.most_common(10) if 100 * n / inside >= 1
        ]
        break
    return out


def _short(frame: str) -> str:
    """'validate_counted (/work/main/stream/validate.py:68)' -> 'validate_counted (stream/validate.py)'."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("/site-packages/", "/work/main/", "/lib/python3.11/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name


def profile_markdown(name: str, summary: dict[str, Any]) -> str:
    lines = [f"{name}: {summary['samples']} samples."]
    if summary.get("breakdown"):
        lines.append(f"`{summary['focus']}` is {summary['focus_share']}% of them; of its time:")
        for child, pct, grand in summary["breakdown"]:
            inner = "; ".join(f"{g} {p}%" for g, p in grand if g != child)
            lines.append(f"- {child}: {pct}%" + (f" (in it: {inner})" if inner else ""))
    lines.append("Self time, top functions: " + ", ".join(f"{f} {p}%" for f, p in summary["self"][:8]) + ".")
    return "\n".join(lines) + "\n"
