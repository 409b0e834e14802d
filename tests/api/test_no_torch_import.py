"""The API image has no torch: importing the app (and the SDK) must not pull torch or transformers in."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow  # a fresh interpreter
def test_api_and_client_import_without_torch():
    code = (
        "import sys, api.main, api.routes.rerank, api.routes.jobs, rerankq, commands.cli; "
        "api.main.create_app; "
        "heavy = sorted(m for m in ('torch', 'transformers', 'models.qwen3', 'models.seq_cls') if m in sys.modules); "
        "print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
