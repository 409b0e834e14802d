"""The `rerankq` console script.

The SDK owns `rerankq submit` (the bulk CLI). The service's commands (`up`, `api`, `worker`,
`migrate`, `bench`, `keys`, ...) come from the server distribution, which registers its command
app under the `rerankq.commands` entry point; with only the SDK installed they explain what to
install instead of failing with an import error.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable, Optional, Sequence

ENTRY_POINT_GROUP = "rerankq.commands"


def submit_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rerankq submit",
        description="Score a JSONL file of rerank requests as async jobs, with progress, resumable after interruption.")
    parser.add_argument("input_path", type=Path, metavar="INPUT.jsonl", help="One rerank request (JSON object) per line.")
    parser.add_argument("--output", "-o", type=Path, required=True,
                        help="Results, one JSON line per input line; rerunning with the same output resumes.")
    parser.add_argument("--url", default=os.environ.get("RERANKQ_URL"),
                        help="API base URL (default http://127.0.0.1:8000; env RERANKQ_URL).")
    parser.add_argument("--api-key", default=os.environ.get("RERANKQ_API_KEY"),
                        help="API key with submit and read scopes (env RERANKQ_API_KEY).")
    parser.add_argument("--batch-size", type=_positive, default=32,
                        help="Lines per job (at most the service's RERANKQ_MAX_REQUESTS_PER_JOB).")
    parser.add_argument("--concurrency", type=_positive, default=4, help="Jobs in flight at once.")
    parser.add_argument("--job-timeout", type=float, default=None, help="Give up waiting for one job after this many seconds.")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="Progress bar on stderr.")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def submit_main(argv: Sequence[str]) -> int:
    """`rerankq submit ...`: the exit code of the bulk run (0 only when every line has a result)."""
    from rerankq.bulk import bulk_main

    args = submit_parser().parse_args(list(argv))
    if not args.input_path.is_file():
        submit_parser().error(f"INPUT.jsonl: '{args.input_path}' is not a file")
    return bulk_main(args.input_path, args.output, url=args.url, api_key=args.api_key, batch_size=args.batch_size,
                     concurrency=args.concurrency, job_timeout=args.job_timeout, progress=args.progress)


def service_commands() -> Optional[Callable[..., object]]:
    """The server distribution's command app, when it is installed."""
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == "service":
            return entry.load()
    return None


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    service = service_commands()
    if service is not None:
        service(args=args, prog_name="rerankq")
        return
    if args[:1] == ["submit"]:
        sys.exit(submit_main(args[1:]))
    if not args or args[0] in ("-h", "--help"):
        print("usage: rerankq submit INPUT.jsonl -o OUTPUT.jsonl [options]\n\n"
              "This is the rerankq SDK. The service commands (up, api, worker, migrate, bench, keys, ...) come with\n"
              "the server: from a checkout, `pip install ./client .[worker]` (see the README).")
        sys.exit(0)
    print(f"rerankq: '{args[0]}' is a service command, and only the SDK is installed. Install the server to use it: "
          "from a checkout, `pip install ./client .[worker]` (see the README).", file=sys.stderr)
    sys.exit(2)
