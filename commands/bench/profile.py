"""Profile the API and the worker under the interactive workload with py-spy.

    python -m commands.bench.profile [--seconds 20] [--clients 16] [--database-url postgres] [--out DIR]

Starts the stack on the bench's near-free cross-encoder, drives it with N clients of sync
10-document requests, and meanwhile samples both processes (py-spy record, CPU samples only).
Writes the collapsed stacks per process (flamegraph.pl or speedscope draw them), and prints each process's
share by area (model, SQL, Redis, Celery, HTTP, JSON/pydantic), which is how the costs the
pipeline work cut were chosen. py-spy needs permission to trace (root, or ptrace_scope 0).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

AREAS = [  # a sample counts for the area of its innermost frame that matches one
    ("model", ("torch/", "transformers/", "models/", "tokenizers")),
    ("sql", ("sqlalchemy/", "sqlite3", "psycopg", "store/")),
    ("redis", ("redis/", "kombu/transport/redis")),
    ("celery/kombu", ("celery/", "kombu/", "billiard/")),
    ("http", ("uvicorn/", "h11/", "httptools", "starlette/", "anyio/", "asyncio/")),
    ("validation/json", ("pydantic", "json/", "fastapi/")),
]


# Innermost frames of a thread that waits (py-spy samples some as active on a busy host): not CPU.
WAITING = ("Condition.wait", "Event.wait", "selectors.py", "eventio.py", "_worker (concurrent/futures/thread.py",
           "Runner.run (asyncio", "Batcher._watchdog", "sleep")


def area_of(stack: str) -> str:
    frames = stack.split(";")
    if frames and any(w in frames[-1] for w in WAITING):
        return "waiting"
    for frame in reversed(frames):
        for name, needles in AREAS:
            if any(needle in frame for needle in needles):
                return name
    return "other"


def summarize(collapsed: Path) -> dict[str, float]:
    counts: collections.Counter = collections.Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            counts[area_of(stack)] += int(count)
    counts.pop("waiting", None)
    total = sum(counts.values()) or 1
    return {area: round(100 * n / total, 1) for area, n in counts.most_common()}


def main() -> None:
    from commands.bench.databases import Databases
    from commands.bench.pipeline import cross_encoder_model, drive, make_requests, opened, rerankq_client, sdk_rerank
    from commands.bench.system import LocalSystem

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--cache-dir", type=Path, default=Path("~/.cache/rerankq/bench").expanduser())
    parser.add_argument("--out", type=Path, default=Path("bench-results/profile"))
    parser.add_argument("--gil", action="store_true",
                        help="Sample only the thread holding the GIL: where each process's Python time goes, "
                             "without threads blocked in C (a queue get, a socket read) counted as busy.")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    args.out.mkdir(parents=True, exist_ok=True)
    model_dir = cross_encoder_model(args.cache_dir)
    requests = make_requests(model_dir, 4000, 10, 8, 40, 40)
    root = Path(tempfile.mkdtemp(prefix="rerankq-profile-"))
    with contextlib.ExitStack() as stack:
        databases = Databases(args.database_url, stack)
        system = stack.enter_context(LocalSystem(model_dir, 512, root, "cpu",
                                                 database_url=databases.url_for("profile")))
        clients = stack.enter_context(opened(rerankq_client(system.base_url), args.clients))
        drive(clients, [[r] for r in requests[:64]], sdk_rerank)
        stop = threading.Event()
        items = iter([[r] for r in requests[64:]])

        def load() -> None:
            while not stop.is_set():
                batch = [next(items) for _ in range(args.clients * 4)]
                drive(clients, batch, sdk_rerank)

        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        spies = {}
        for part, pid in system.pids().items():
            if part == "redis":
                continue
            spies[part] = subprocess.Popen(
                [py_spy, "record", "--pid", str(pid), "--duration", str(args.seconds), "--rate", "100",
                 "--format", "raw", "--output", str(args.out / f"{part}.txt"), *(["--gil"] if args.gil else [])],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for spy in spies.values():
            spy.wait()
        stop.set()
        loader.join()
    shutil.rmtree(root, ignore_errors=True)
    for part in ("api", "worker"):
        collapsed = args.out / f"{part}.txt"
        if collapsed.exists():
            print(f"{part}: " + ", ".join(f"{area} {share}%" for area, share in summarize(collapsed).items()))
    print(f"collapsed stacks in {args.out}")


if __name__ == "__main__":
    main()
