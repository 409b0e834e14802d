"""Run the soak: start the stack, hold mixed load, inject the seeded faults, drain, check, report."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from commands.soak.checks import Verdict, check, latency_split
from commands.soak.faults import Fault, Injector, schedule
from commands.soak.load import LoadGenerator
from commands.soak.stack import SoakStack
from store.db import session_scope
from store.tables import Job
from rerankq.schemas import ACTIVE_STATUSES
from sqlalchemy import func, select


@dataclass
class SoakOptions:
    minutes: float
    seed: int
    workers: int = 2
    apis: int = 2
    clients: int = 6
    model_dir: Optional[Path] = None
    cache_dir: Path = Path("~/.cache/rerankq/soak")
    keep: Optional[Path] = None
    json_path: Optional[Path] = None
    drain_timeout_s: float = 300.0


def soak_model(options: SoakOptions) -> Path:
    """A tiny Qwen3 built locally (the hubs may be out of reach); the soak measures the pipeline."""
    if options.model_dir is not None:
        return options.model_dir
    from commands.bench.model_builder import build_tiny_qwen3

    return Path(build_tiny_qwen3(options.cache_dir.expanduser() / "tiny-qwen3"))


def active_jobs(database_url: str) -> int:
    with session_scope(database_url) as session:
        return session.scalar(select(func.count()).select_from(Job).where(Job.status.in_(ACTIVE_STATUSES))) or 0


def run_soak(options: SoakOptions) -> int:
    model_dir = soak_model(options)
    root = options.keep or Path(tempfile.mkdtemp(prefix="rerankq-soak-"))
    stack = SoakStack(root=root, model_dir=model_dir, workers=options.workers, apis=options.apis)
    faults = schedule(options.minutes, options.seed)
    print(f"soak: seed {options.seed}, {options.minutes:g} min, {len(faults)} faults, {options.workers} workers, "
          f"{options.apis} API processes, {options.clients} clients; logs in {root}", flush=True)
    stack.start()
    try:
        load = LoadGenerator(lambda: stack.api_urls, options.clients, options.seed)
        injector = Injector(stack, options.seed, load.submit_poison)
        began = time.monotonic()
        load.start()
        for fault in faults:
            stack.supervise_until(began + fault.at_s)
            injector.inject(fault)
            print(f"soak: {fault.at_s:7.1f}s {fault.kind:17s} {fault.target:24s} "
                  f"recovered in {fault.recovery_s if fault.recovery_s is not None else float('nan'):.1f}s"
                  f"{'  ERROR ' + fault.error if fault.error else ''}", flush=True)
        stack.supervise_until(began + options.minutes * 60)
        load.stop()
        held_s = time.monotonic() - began
        drained_s = drain(stack, options.drain_timeout_s)
        from commands.bench.direct import load_backend

        verdict = check(stack.database_url, stack.redis_url, load.record, load_backend(model_dir, 8192, "cpu", False))
        windows = [(f.started, f.started + (f.recovery_s or f.ended - f.started)) for f in faults]
        summary = report(options, faults, load, verdict, held_s, drained_s, windows, stack.unplanned_exits)
        print(format_table(summary), flush=True)
        if options.json_path:
            options.json_path.write_text(json.dumps(summary, indent=2, default=str))
        return 0 if verdict.holds and not load.record.repeat_mismatches and not any(f.error for f in faults) else 1
    finally:
        stack.stop()


def drain(stack: SoakStack, timeout_s: float) -> float:
    """Wait (bounded) until no job is queued or running; seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        stack.restart_exited()
        if active_jobs(stack.database_url) == 0:
            time.sleep(1.0)  # let the last acks and notices land
            return time.monotonic() - started
        time.sleep(0.5)
    return time.monotonic() - started


def report(options: SoakOptions, faults: list[Fault], load: LoadGenerator, verdict: Verdict, held_s: float,
           drained_s: float, windows: list[tuple[float, float]], unplanned_exits: list[str]) -> dict:
    record = load.record
    survived = [f for f in faults if not f.error]
    return {
        "seed": options.seed, "minutes": options.minutes, "workers": options.workers, "apis": options.apis,
        "load": {"held_s": round(held_s, 1), "jobs_accepted": len(record.accepted), "sync_answered": record.sync_answers,
                 "cancelled": len(record.cancelled), "poison_jobs": len(record.poison),
                 "answered_calls": len(record.latencies), "client_errors_during_faults": record.client_errors,
                 "jobs_per_s": round(len(record.accepted) / held_s, 2) if held_s else 0.0},
        "faults": {"injected": len(faults), "survived": len(survived),
                   "by_kind": {k: sum(f.kind == k for f in faults) for k in sorted({f.kind for f in faults})},
                   "longest_recovery_s": round(max((f.recovery_s or 0.0) for f in faults), 1) if faults else 0.0,
                   "errors": [f"{f.kind} at {f.at_s:.0f}s: {f.error}" for f in faults if f.error],
                   "unplanned_exits_restarted": unplanned_exits,
                   "list": [asdict(f) for f in faults]},
        "latency": {k: (round(v * 1000, 1) if v is not None else None) for k, v in latency_split(record, windows).items()},
        "invariants": {
            "jobs_in_store": verdict.jobs, "by_status": verdict.by_status, "lost": verdict.lost,
            "not_terminal": verdict.not_terminal[:20], "accepted_missing": verdict.accepted_missing[:20],
            "unexpected_failures": verdict.unexpected_failures[:20], "poison_not_failed": verdict.poison_not_failed,
            "cancel_not_kept": verdict.cancel_not_kept[:20], "wrong_results": verdict.wrong_results[:20],
            "queued_left": verdict.queued_left, "pairs_checked": verdict.pairs_checked,
            "max_score_error": verdict.max_score_error, "repeat_mismatches": record.repeat_mismatches,
            "drained_in_s": round(drained_s, 1), "hold": verdict.holds and not record.repeat_mismatches},
    }


def format_table(summary: dict) -> str:
    load, faults, latency, inv = summary["load"], summary["faults"], summary["latency"], summary["invariants"]
    rows = [
        ("load held", f"{load['held_s']} s: {load['jobs_accepted']} jobs accepted, {load['sync_answered']} sync "
                      f"answers, {load['cancelled']} cancelled, {load['poison_jobs']} poison ({load['jobs_per_s']} jobs/s)"),
        ("faults injected", f"{faults['injected']} ({', '.join(f'{k} {v}' for k, v in faults['by_kind'].items())})"),
        ("faults survived", f"{faults['survived']} of {faults['injected']}"),
        ("unplanned exits", f"{len(faults['unplanned_exits_restarted'])} restarted as a restart policy would"
                            + (f": {'; '.join(faults['unplanned_exits_restarted'][:4])}"
                               if faults['unplanned_exits_restarted'] else "")),
        ("requests lost", f"{inv['lost']} (goal 0)"),
        ("client errors", f"{load['client_errors_during_faults']} calls without an answer within the SDK's retries"),
        ("latency, faults", f"p50 {latency['p50_during_faults_s']} ms, p99 {latency['p99_during_faults_s']} ms"),
        ("latency, calm", f"p50 {latency['p50_calm_s']} ms, p99 {latency['p99_calm_s']} ms"),
        ("longest recovery", f"{faults['longest_recovery_s']} s"),
        ("jobs in store", f"{inv['jobs_in_store']} {inv['by_status']}"),
        ("scores checked", f"{inv['pairs_checked']} pairs, max error {inv['max_score_error']:.1e}"),
        ("queues left", str(inv["queued_left"])),
        ("invariants", "HOLD" if inv["hold"] else "BROKEN: " + json.dumps(
            {k: inv[k] for k in ("not_terminal", "accepted_missing", "unexpected_failures", "poison_not_failed",
                                 "cancel_not_kept", "wrong_results", "repeat_mismatches") if inv[k]})[:2000]),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)
