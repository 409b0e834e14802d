"""The `rerankq` commands load on a host that installed only the base server (no eval, worker or postgres
extra): `make up` and an API-only image run the same typer app, so an optional import at its top breaks them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

OPTIONAL_MODULES = ["ir_measures", "bm25s", "pytrec_eval", "torch", "transformers", "psycopg", "playwright", "psutil"]


def test_service_commands_load_without_optional_extras():
    script = textwrap.dedent(f"""
        import importlib.abc, sys

        class Missing(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {OPTIONAL_MODULES!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, Missing())
        from typer.testing import CliRunner
        from commands.cli import app
        result = CliRunner().invoke(app, ["--help"])
        assert result.exit_code == 0, result.output
        assert "eval" in result.output and "up" in result.output
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr
