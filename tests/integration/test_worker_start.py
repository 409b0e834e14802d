"""A worker whose model cannot load must exit at once and say which setting to change."""

from __future__ import annotations

import subprocess
import sys


def test_unloadable_model_exits_with_a_clear_error(stack, tmp_path):
    env = stack.env(RERANKQ_MODEL=str(tmp_path / "no-such-model"))
    done = subprocess.run([sys.executable, "-m", "rerankq", "worker", "--hostname", "broken"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 78
    assert "RERANKQ_MODEL" in done.stderr and "cannot start" in done.stderr
    assert not stack.redis.client().exists("rerankq:worker:broken")
