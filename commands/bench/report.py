"""The benchmark's figures: per-workload rows, the targets, a printed table and the JSON file."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Optional

from core.stats import percentile

TARGETS = {
    "bulk_system_vs_direct": ("system >= 0.9 x direct, bulk jobs at saturation", 0.9),
    "bulk_system_vs_naive": ("system >= 8 x naive, bulk jobs", 8.0),
    "mixed_padding_efficiency": ("padding efficiency >= 0.9, mixed lengths (system)", 0.9),
    "idle_overhead_ms": ("idle 10-doc job: client p50 <= direct + 20 ms (job + long poll; median of per-job "
                         "differences)", 20.0),
    "prefix_speedup": ("prefix reuse >= 1.6 x direct without reuse, short docs", 1.6),
    "prefix_max_score_diff": ("prefix reuse scores unchanged within 1e-5 (float32; 1e-2 in half precision)", 1e-5),
}
HALF_PRECISION_TOLERANCE = 1e-2  # bf16/fp16 move scores by ~1e-3 whatever the batch shape


def max_diff(a: list[list[float]], b: list[list[float]]) -> Optional[float]:
    pairs = [(x, y) for ra, rb in zip(a, b) for x, y in zip(ra, rb)]
    return max(abs(x - y) for x, y in pairs) if pairs else None


def _ms(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value * 1000, 1)


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return round(a / b, 3) if a and b else None


def workload_row(workload, direct, system, naive) -> dict[str, Any]:
    """One workload's figures (system or naive may be None when that mode was not run)."""
    row: dict[str, Any] = {
        "workload": workload.name,
        "description": workload.description,
        "jobs": len(workload.jobs),
        "pairs": workload.pairs,
        "clients": workload.clients,
        "mean_doc_tokens": round(statistics.mean(workload.doc_tokens), 1) if workload.doc_tokens else None,
        "direct": {
            "pairs_per_s": round(direct.pairs_per_s, 1),
            "seconds": round(direct.seconds, 3),
            "batches": direct.batches,
            "mean_batch": round(direct.mean_batch, 1),
            "padding_efficiency": round(direct.padding_efficiency, 3),
            "other_load_cores": getattr(direct, "other_load_cores", None),
        },
    }
    if direct.job_seconds:
        row["direct"]["job_p50_ms"] = _ms(percentile(direct.job_seconds, 50))
    if naive is not None:
        row["naive"] = {"pairs_per_s": round(naive.pairs_per_s, 2), "sampled_pairs": naive.pairs,
                        "seconds": round(naive.seconds, 3), "head_share": round(naive.head_share, 3),
                        "max_score_diff_vs_direct": naive.max_diff,
                        "other_load_cores": getattr(naive, "other_load_cores", None)}
    if system is not None:
        worker = system.worker
        pairs = worker.get("pairs") or 0
        batches = worker.get("batches") or 0
        padded = worker.get("padded_tokens") or 0
        row["system"] = {
            "pairs_per_s": round(system.pairs_per_s, 1),
            "seconds": round(system.seconds, 3),
            "latency_p50_ms": _ms(percentile(system.latencies, 50)),
            "latency_p95_ms": _ms(percentile(system.latencies, 95)),
            "latency_p99_ms": _ms(percentile(system.latencies, 99)),
            "batches": batches,
            "mean_batch": round(pairs / batches, 1) if batches else None,
            "padding_efficiency": round(worker.get("real_tokens", 0) / padded, 3) if padded else None,
            "batcher_wait_ms": _ms(worker.get("queue_wait_s", 0) / pairs) if pairs else None,
            "idle_waits": worker.get("waits"),
            "broker_wait_ms": _ms(system.broker_wait_s),
            "max_score_diff_vs_direct": max_diff(system.scores, direct.scores),
            "other_load_cores": getattr(system, "other_load_cores", None),
        }
        if system.sync_latencies:
            row["system"]["sync_p50_ms"] = _ms(percentile(system.sync_latencies, 50))
            row["system"]["sync_p95_ms"] = _ms(percentile(system.sync_latencies, 95))
        if direct.job_seconds and len(direct.job_seconds) == len(system.latencies):
            # Latency workloads time each job both ways in turn: the per-job differences cancel
            # the machine's drift, so their median is the steadier estimate of the overhead.
            row["overhead_ms"] = {
                "job_paired_p50": _ms(statistics.median(s - d for s, d in zip(system.latencies, direct.job_seconds))),
                "sync_paired_p50": _ms(statistics.median(s - d for s, d in zip(system.sync_latencies,
                                                                               direct.job_seconds)))
                if len(system.sync_latencies) == len(direct.job_seconds) else None,
            }
            row["per_job_ms"] = {"direct": [_ms(v) for v in direct.job_seconds],
                                 "job": [_ms(v) for v in system.latencies],
                                 "sync": [_ms(v) for v in system.sync_latencies]}
        row["system_vs_direct"] = _ratio(system.pairs_per_s, direct.pairs_per_s)
        if naive is not None:
            row["system_vs_naive"] = _ratio(system.pairs_per_s, naive.pairs_per_s)
    return row


def evaluate_targets(rows: dict[str, dict], prefix: Optional[dict], dtype: str = "float32") -> dict[str, dict]:
    """Each target with its measured value and whether it was met (None: not measured)."""
    measured: dict[str, Optional[float]] = {key: None for key in TARGETS}
    bulk, mixed, idle = rows.get("bulk", {}), rows.get("mixed", {}), rows.get("idle", {})
    measured["bulk_system_vs_direct"] = bulk.get("system_vs_direct")
    measured["bulk_system_vs_naive"] = bulk.get("system_vs_naive")
    measured["mixed_padding_efficiency"] = mixed.get("system", {}).get("padding_efficiency")
    if idle.get("overhead_ms"):
        measured["idle_overhead_ms"] = idle["overhead_ms"]["job_paired_p50"]
    elif idle.get("system") and idle["direct"].get("job_p50_ms") is not None:
        measured["idle_overhead_ms"] = round(idle["system"]["latency_p50_ms"] - idle["direct"]["job_p50_ms"], 1)
    if prefix:
        measured["prefix_speedup"] = prefix.get("speedup")
        measured["prefix_max_score_diff"] = prefix.get("max_score_diff")
    out = {}
    for key, (text, limit) in TARGETS.items():
        if key == "prefix_max_score_diff" and dtype != "float32":
            limit = HALF_PRECISION_TOLERANCE
        value = measured[key]
        lower_is_better = key in ("idle_overhead_ms", "prefix_max_score_diff")
        met = None if value is None else (value <= limit if lower_is_better else value >= limit)
        out[key] = {"target": text, "limit": limit, "measured": value, "met": met}
    return out


def _cell(value: Any, width: int) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, float):
        text = f"{value:.3g}" if abs(value) < 1e-2 and value else f"{value:,.1f}" if value < 1e5 else f"{value:.3g}"
    else:
        text = str(value)
    return text.rjust(width)


COLUMNS = [
    ("workload", 8, lambda r: r["workload"]),
    ("pairs", 6, lambda r: r["pairs"]),
    ("direct p/s", 10, lambda r: r["direct"]["pairs_per_s"]),
    ("system p/s", 10, lambda r: r.get("system", {}).get("pairs_per_s")),
    ("naive p/s", 9, lambda r: r.get("naive", {}).get("pairs_per_s")),
    ("sys/dir", 7, lambda r: r.get("system_vs_direct")),
    ("sys/naive", 9, lambda r: r.get("system_vs_naive")),
    ("p50 ms", 8, lambda r: r.get("system", {}).get("latency_p50_ms")),
    ("p95 ms", 8, lambda r: r.get("system", {}).get("latency_p95_ms")),
    ("p99 ms", 8, lambda r: r.get("system", {}).get("latency_p99_ms")),
    ("batch", 6, lambda r: r.get("system", {}).get("mean_batch")),
    ("pad eff", 7, lambda r: r.get("system", {}).get("padding_efficiency")),
    ("wait ms", 7, lambda r: r.get("system", {}).get("batcher_wait_ms")),
    ("broker ms", 9, lambda r: r.get("system", {}).get("broker_wait_ms")),
    ("busy", 5, lambda r: r.get("system", {}).get("other_load_cores")),
]


def format_table(result: dict[str, Any]) -> str:
    rows = result["workloads"]
    lines = [" ".join(name.rjust(width) for name, width, _ in COLUMNS)]
    for row in rows:
        lines.append(" ".join(_cell(get(row), width) for _, width, get in COLUMNS))
    idle = next((r for r in rows if r["workload"] == "idle"), None)
    if idle and idle.get("system"):
        lines.append("")
        lines.append(f"idle 10-doc job: direct p50 {idle['direct'].get('job_p50_ms')} ms, system p50 "
                     f"{idle['system']['latency_p50_ms']} ms (job + polling), "
                     f"{idle['system'].get('sync_p50_ms')} ms (POST /v1/rerank)")
        paired = idle.get("overhead_ms")
        if paired:
            lines.append(f"idle overhead, median of per-job differences: {paired['job_paired_p50']} ms "
                         f"(job + polling), {paired['sync_paired_p50']} ms (POST /v1/rerank)")
    prefix = result.get("prefix_reuse")
    if prefix:
        lines.append(f"prefix reuse ({prefix['description']}): {prefix['with_reuse_pairs_per_s']} vs "
                     f"{prefix['without_reuse_pairs_per_s']} pairs/s = {prefix['speedup']}x, "
                     f"max |score diff| {prefix['max_score_diff']:.2e}")
    lines.append("")
    for target in result["targets"].values():
        mark = {True: "MET ", False: "MISS", None: "n/a "}[target["met"]]
        lines.append(f"[{mark}] {target['target']}: measured {target['measured']}")
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path
