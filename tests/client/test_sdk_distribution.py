"""The SDK is its own small distribution: its wheel installs the import name `rerankq` and nothing
else, depends only on httpx, pydantic and tqdm, and works alone in a fresh virtual environment
against a running service. The server's wheel carries the service packages and no `rerankq`."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SDK_DEPENDENCIES = {"httpx", "pydantic", "tqdm"}
HEAVY = {"torch", "transformers", "celery", "redis", "sqlalchemy", "fastapi", "uvicorn", "kombu"}


def build_wheel(source: Path, out: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = [w for w in out.glob("*.whl")]
    return wheel


def top_level_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name.split("/")[0] for name in archive.namelist() if ".dist-info/" not in name}


def metadata(wheel: Path) -> dict:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(name).decode())


def required(meta) -> dict[str, str]:
    """{requirement name: its extra marker or ''}."""
    found = {}
    for line in meta.get_all("Requires-Dist") or []:
        name = line.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
        found[name] = line.split(";", 1)[1].strip() if ";" in line else ""
    return found


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    return {"sdk": build_wheel(ROOT / "client", out / "sdk"), "server": build_wheel(ROOT, out / "server")}


@pytest.mark.slow
def test_sdk_wheel_holds_only_rerankq_and_needs_only_light_dependencies(wheels):
    assert top_level_names(wheels["sdk"]) == {"rerankq"}
    meta = metadata(wheels["sdk"])
    assert meta["Name"] == "rerankq"
    needs = required(meta)
    assert {name for name, marker in needs.items() if not marker} == SDK_DEPENDENCIES
    assert not HEAVY & set(needs)
    assert {"langchain-core", "llama-index-core"} <= {name for name, marker in needs.items() if "extra" in marker}


@pytest.mark.slow
def test_server_wheel_holds_the_service_and_depends_on_the_sdk(wheels):
    names = top_level_names(wheels["server"])
    assert {"api", "core", "workers", "models", "store", "commands"} <= names and "rerankq" not in names
    assert "rerankq" in required(metadata(wheels["server"]))


@pytest.mark.slow
def test_sdk_alone_in_a_fresh_venv_scores_against_the_running_service(wheels, stack, tmp_path):
    venv = tmp_path / "sdk-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheels["sdk"])], capture_output=True,
                             text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True,
                            timeout=120)
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert not HEAVY & installed, HEAVY & installed
    code = ("import sys, json\n"
            "from rerankq import RerankClient\n"
            f"with RerankClient({stack.base_url!r}) as client:\n"
            "    ranked = client.rerank('capital of France?', ['Paris is in France.', 'Berlin is in Germany.'])\n"
            "print(json.dumps({'indices': sorted(r.index for r in ranked.results),\n"
            "                  'service_modules': [m for m in ('api', 'core', 'workers', 'store', 'torch') if m in sys.modules]}))\n")
    # Run outside the checkout, so nothing of the service can be imported from the working directory.
    done = subprocess.run([str(python), "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer == {"indices": [0, 1], "service_modules": []}
    # The console script explains where the service commands are instead of failing on an import.
    up = subprocess.run([str(venv / "bin" / "rerankq"), "up"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert up.returncode == 2 and "only the SDK is installed" in up.stderr
