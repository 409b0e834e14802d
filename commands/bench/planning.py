"""How long the batcher's model thread spends picking one batch from a deep queue (workers/batch_plan.py).

Prints milliseconds per `pick_batch` for synthetic lanes (Qwen3-like: ten queries sharing a prompt head,
documents of 10-120 tokens), with and without prefix sharing. A benchmark, not a test:

    python -m commands.bench.planning [--pairs 64,256,512] [--repeat 50]
"""

from __future__ import annotations

import argparse
import random
import time
from concurrent.futures import Future

from models.base import Encoded
from workers.batch_plan import pick_batch
from workers.batcher import _Group, _Item

PREFIX_TOKENS = 30


def synthetic_lane(pairs: int, queries: int = 10, seed: int = 1) -> list[_Item]:
    rng = random.Random(seed)
    group = _Group(Future(), [None] * pairs, pairs, lambda: False)
    return [_Item(group, i, Encoded(input_ids=[i % queries] * (PREFIX_TOKENS + rng.randint(10, 120)),
                                    prefix_len=PREFIX_TOKENS, prefix_key=("query", i % queries)), 1, rng.random())
            for i in range(pairs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="64,256,512", help="pending pairs per lane, comma-separated")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    for pairs in (int(p) for p in args.pairs.split(",")):
        lane = synthetic_lane(pairs)
        for share in (False, True):
            started = time.perf_counter()
            for _ in range(args.repeat):
                batch = pick_batch(lane, 2048, 64, share, 64)
            per_pick = (time.perf_counter() - started) / args.repeat
            print(f"{pairs:5d} pending pairs, prefix sharing {'on ' if share else 'off'}: "
                  f"{per_pick * 1e3:6.2f} ms per batch picked ({len(batch)} pairs)")


if __name__ == "__main__":
    main()
