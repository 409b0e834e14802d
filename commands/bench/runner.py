"""`rerankq bench`: direct, naive and system modes on one model and one generated workload set.

Order: build or reuse the model, start the system (Redis, worker, API: idle until used), then
per workload run direct, system, direct again and the naive sample, and finally compare direct
with and without prefix reuse. Batch settings (RERANKQ_MAX_BATCH_TOKENS, ...) come from the
environment and are the same for direct mode and the worker.

The machine may be shared: each throughput direct figure is the better of the runs before and
after the system run (so system/direct is never flattered by a slow direct run); the idle
workload times each job directly and through the system in turn (its target is a difference
of a few milliseconds, smaller than the drift between runs minutes apart); the prefix
comparison alternates its two modes and keeps the best of each; and every figure records how
many cores other processes kept busy meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

from commands.bench import report
from commands.bench.hostload import HostLoad, loadavg
from workers.batch_plan import max_tokens_for

VOCAB = 151_669
# Qwen3-shaped, real vocabulary: small enough for a few minutes on 2 CPU cores.
# build_tiny_qwen3's keyword arguments (ints, and a float init_range)
BENCH_MODEL: dict[str, Any] = dict(vocab_size=VOCAB, hidden=256, layers=4, heads=4, kv_heads=2, intermediate=768, init_range=0.07)
QUICK_MODEL: dict[str, Any] = dict(vocab_size=VOCAB, hidden=64, layers=2, heads=4, kv_heads=2, intermediate=192, init_range=0.14)
CLASSIC_WORKLOADS = ("small", "bulk", "mixed", "long", "idle")
PIPELINE_WORKLOADS = ("ceiling", "interactive")  # commands/bench/pipeline.py
ALL_WORKLOADS = CLASSIC_WORKLOADS + PIPELINE_WORKLOADS


@dataclass
class BenchOptions:
    model: Optional[Path] = None
    quick: bool = False
    json_path: Optional[Path] = None
    cache_dir: Path = Path("~/.cache/rerankq/bench").expanduser()
    max_length: int = 512
    device: str = "auto"
    workloads: tuple[str, ...] = ALL_WORKLOADS
    naive_sample: Optional[int] = None
    system: bool = True
    keep: bool = False
    seed: int = 0
    database_url: str = ""  # empty: SQLite; "postgres": a throwaway cluster; else this URL
    peer: Optional[str] = None  # "infinity": run the interactive and bulk workloads against it too
    peer_venv: Optional[Path] = None
    clients: int = 16  # interactive workload
    requests: Optional[int] = None  # interactive workload (default 25 per client)
    databases: Any = None  # commands.bench.databases.Databases, set by main()
    log: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr, flush=True))


def bench_model_dir(options: BenchOptions) -> tuple[Path, dict]:
    """The model to bench: --model as given, else the generated one (built once per cache dir)."""
    if options.model is not None:
        return options.model, {"source": str(options.model)}
    from commands.bench.model_builder import build_tiny_qwen3

    spec = QUICK_MODEL if options.quick else BENCH_MODEL
    name = "qwen3-v{vocab_size}-h{hidden}-l{layers}-i{intermediate}".format(**spec)
    options.log(f"bench: model {name} (building it under {options.cache_dir} if missing)")
    return build_tiny_qwen3(options.cache_dir / name, **spec), {"source": "generated", **spec}


class Bench:
    """One run: the loaded backend, the batch settings, and the load meter shared by all modes."""

    def __init__(self, options: BenchOptions) -> None:
        from commands.bench.direct import load_backend
        from core.settings import Settings

        self.options = options
        settings = Settings()
        self.settings = settings
        self.model_dir, self.model_spec = bench_model_dir(options)
        self.backend = load_backend(self.model_dir, options.max_length, options.device)
        # What a worker on this device uses: the same settings, resolved the same way.
        self.max_tokens = max_tokens_for(settings.max_batch_tokens, self.backend.info.device)
        self.max_pairs = settings.max_batch_pairs
        self.overhead = settings.batch_overhead_tokens
        self.own = [os.getpid()]
        self.host = HostLoad(lambda: self.own)

    def measure(self, action: Callable[[], Any]) -> Any:
        self.host.start()
        result = action()
        result.other_load_cores = self.host.stop()
        return result

    # --- modes -------------------------------------------------------------------------
    def direct(self, workload) -> Any:
        from commands.bench.direct import run_direct

        return self.measure(lambda: run_direct(self.backend, workload, self.max_tokens, self.max_pairs,
                                               self.overhead))

    def naive(self, workload, direct) -> Any:
        from commands.bench.naive import run_naive

        options = self.options
        sample = options.naive_sample or (4 if options.quick else {"long": 8, "idle": 10}.get(workload.name, 24))
        options.log(f"bench: naive {workload.name} ({sample} pairs)")
        naive = self.measure(lambda: run_naive(self.backend.model, self.backend.tokenizer, workload,
                                               options.max_length, sample))
        flat = [s for row in direct.scores for s in row][: naive.pairs]
        naive.max_diff = report.max_diff([naive.scores], [flat])
        return naive

    def workload_row(self, workload, system) -> dict:
        """direct, system, direct again (the better direct run counts), then naive; a latency
        workload interleaves direct and system job by job instead (`latency_row`)."""
        if workload.latency_mode and system is not None:
            return self.latency_row(workload, system)
        log = self.options.log
        log(f"bench: direct {workload.name} ({workload.pairs} pairs)")
        runs = [self.direct(workload)]
        run = None
        if system is not None:
            log(f"bench: system {workload.name} ({workload.pairs} pairs, {workload.clients} clients)")
            run = self.measure(lambda: system.run(workload))
            log(f"bench: direct {workload.name} again")
            runs.append(self.direct(workload))
        direct = max(runs, key=_direct_rank)
        row = report.workload_row(workload, direct, run, self.naive(workload, direct))
        row["direct"]["runs_pairs_per_s"] = [round(r.pairs_per_s, 1) for r in runs]
        return row

    def latency_row(self, workload, system) -> dict:
        """Each job scored in this process, then through the system (job + long poll, then
        POST /v1/rerank), in turn on an idle machine; the naive sample after."""
        from commands.bench.direct import one_job_each, score_jobs

        self.options.log(f"bench: direct and system {workload.name}, interleaved ({len(workload.jobs)} jobs)")

        def direct_job(job):
            return score_jobs(self.backend, [job], self.max_tokens, self.max_pairs, self.overhead)

        self.host.start()
        run, runs = system.run_latency(workload, direct_job)
        run.other_load_cores = self.host.stop()
        direct = one_job_each(runs)
        direct.other_load_cores = run.other_load_cores
        return report.workload_row(workload, direct, run, self.naive(workload, direct))

    def prefix_comparison(self) -> dict:
        """Direct with and without reuse on short documents, alternating, best of each."""
        from commands.bench.direct import score_jobs
        from commands.bench.workloads import prefix_workload

        options = self.options
        options.log("bench: prefix reuse comparison (direct, with and without, alternating)")
        short = prefix_workload(self.backend.tokenizer, options.quick, options.seed)
        runs: dict[bool, list] = {True: [], False: []}
        try:
            for _ in range(1 if options.quick else 3):
                for reuse in (True, False):
                    self.backend.prefix_reuse = reuse
                    runs[reuse].append(self.measure(
                        lambda: score_jobs(self.backend, short.jobs, self.max_tokens, self.max_pairs, self.overhead)))
        finally:
            self.backend.prefix_reuse = True
        best = {reuse: max(r, key=lambda x: x.pairs_per_s) for reuse, r in runs.items()}
        with_reuse, without = best[True], best[False]
        return {
            "description": short.description, "pairs": short.pairs,
            "with_reuse_pairs_per_s": round(with_reuse.pairs_per_s, 1),
            "without_reuse_pairs_per_s": round(without.pairs_per_s, 1),
            "runs_pairs_per_s": {"with_reuse": [round(r.pairs_per_s, 1) for r in runs[True]],
                                 "without_reuse": [round(r.pairs_per_s, 1) for r in runs[False]]},
            "speedup": round(with_reuse.pairs_per_s / without.pairs_per_s, 3) if without.pairs_per_s else None,
            "max_score_diff": report.max_diff(with_reuse.scores, without.scores),
            "padding_efficiency_with_reuse": round(with_reuse.padding_efficiency, 3),
            "padded_tokens": {"with_reuse": with_reuse.padded_tokens, "without_reuse": without.padded_tokens},
            "other_load_cores": [r.other_load_cores for r in runs[True] + runs[False]],
        }

    # --- the whole run -----------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from commands.bench.workloads import build_workloads
        from models.base import Pair

        options = self.options
        started = time.time()
        prompt_tokens = self.backend.encode([Pair("capital of France river 0", "")])[0].length
        result = self.header()
        workloads = [w for w in build_workloads(self.backend.tokenizer, options.max_length, prompt_tokens,
                                                options.quick, options.seed) if w.name in options.workloads]
        rows = []
        root = Path(tempfile.mkdtemp(prefix="rerankq-bench-"))
        try:
            with contextlib.ExitStack() as stack:
                system = self.start_system(root, workloads, stack) if options.system else None
                for workload in workloads:
                    rows.append(self.workload_row(workload, system))
                if system is not None:
                    result["system_settings"] = system.settings_used
        finally:
            self.own[:] = [os.getpid()]
            if options.keep and options.system:
                options.log(f"bench: system logs kept in {root}")
            else:
                shutil.rmtree(root, ignore_errors=True)
        result["prefix_reuse"] = self.prefix_comparison()
        result["workloads"] = rows
        result["targets"] = report.evaluate_targets({r["workload"]: r for r in rows}, result["prefix_reuse"],
                                                    self.backend.info.dtype)
        result["machine"]["loadavg_at_end"] = loadavg()
        result["seconds"] = round(time.time() - started, 1)
        return result

    def start_system(self, root: Path, workloads: list, stack: contextlib.ExitStack) -> Any:
        """redis-server, worker and API, warmed up; their pids count as ours, not "other load"."""
        from commands.bench.system import LocalSystem

        self.options.log(f"bench: starting redis, worker and API in {root}")
        databases = self.options.databases
        url = databases.url_for("classic") if databases is not None else ""
        system = stack.enter_context(LocalSystem(self.model_dir, self.options.max_length, root, self.options.device,
                                                 database_url=url))
        self.own[:] = [os.getpid(), *(p.pid for p in system.processes)]
        system.warm_up(workloads[0].jobs[0])
        return system

    def header(self) -> dict[str, Any]:
        import torch

        from workers.batch_plan import overhead_tokens_for

        settings, backend = self.settings, self.backend
        return {
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["rerankq", "bench", *sys.argv[2:]]) if sys.argv[1:2] == ["bench"] else "rerankq bench",
            "quick": self.options.quick,
            "model": {"dir": str(self.model_dir), **self.model_spec, **_model_facts(backend)},
            "max_length": self.options.max_length,
            "batching": {"max_batch_tokens": self.max_tokens, "max_batch_pairs": self.max_pairs,
                         "max_batch_wait_ms": settings.max_batch_wait_ms, "prefix_reuse": settings.prefix_reuse,
                         "batch_overhead_tokens": overhead_tokens_for(self.overhead, backend.info.device)},
            "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                        "python": platform.python_version(), "platform": platform.platform(),
                        "loadavg_at_start": loadavg()},
        }


def _direct_rank(run) -> float:
    """The better direct run: the faster one (for latency workloads: the lower job p50)."""
    if run.job_seconds:
        p50 = report.percentile(run.job_seconds, 50)
        assert p50 is not None  # the list is not empty
        return -p50
    return run.pairs_per_s


def _model_facts(backend: Any) -> dict:
    model = backend.model
    config = model.config
    return {"vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
            "layers": config.num_hidden_layers, "intermediate_size": config.intermediate_size,
            "layer_params": sum(p.numel() for p in model.model.layers.parameters()),
            "lm_head_params": model.get_output_embeddings().weight.numel(), "device": backend.info.device,
            "dtype": backend.info.dtype, "attention": getattr(config, "_attn_implementation", None)}


def default_json_path() -> Path:
    return Path("bench-results") / f"bench-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"


def main(options: BenchOptions) -> dict[str, Any]:
    from commands.bench.databases import Databases

    with contextlib.ExitStack() as stack:
        options.databases = Databases(options.database_url, stack)
        classic = any(w in CLASSIC_WORKLOADS for w in options.workloads)
        started = time.time()
        result: dict[str, Any] = Bench(options).run() if classic else {
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "quick": options.quick,
            "workloads": [], "machine": {"cpus": os.cpu_count(), "loadavg_at_start": loadavg()}}
        result["database"] = options.databases.label
        if options.system and any(w in PIPELINE_WORKLOADS for w in options.workloads):
            from commands.bench.pipeline import PipelineBench  # psutil: the bench extra

            root = Path(tempfile.mkdtemp(prefix="rerankq-bench-pipeline-"))
            try:
                result["pipeline"] = PipelineBench(options, options.databases).run(root)
            finally:
                if options.keep:
                    options.log(f"bench: pipeline logs kept in {root}")
                else:
                    shutil.rmtree(root, ignore_errors=True)
        result["seconds"] = round(time.time() - started, 1)
    path = report.write_json(result, options.json_path or default_json_path())
    if classic:
        print(report.format_table(result))
    if "pipeline" in result:
        from commands.bench.pipeline import format_pipeline

        print(("\n" if classic else "") + format_pipeline(result["pipeline"]))
    print(f"\nwrote {path}")
    return result
