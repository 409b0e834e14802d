"""The one-way layers: a lower layer never imports a higher one, and the API never imports the
scoring side. The check reads every import statement (lazy ones inside functions too) with ast."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Which project packages each package may import. `rerankq` is the SDK: a separate distribution
# below all of them; it imports none of the service's packages.
ALLOWED = {
    "rerankq": set(),
    "core": {"rerankq"},
    "models": {"rerankq", "core"},
    "store": {"rerankq", "core"},
    "workers": {"rerankq", "core", "models", "store"},
    "api": {"rerankq", "core", "store"},
    "commands": {"rerankq", "core", "models", "store", "workers", "api"},
}
SOURCES = {name: ROOT / name for name in ALLOWED} | {"rerankq": ROOT / "client" / "rerankq"}
FORBIDDEN_IN_API = {"torch", "transformers"}


def imported_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def violations(package: str, source: Path | None = None) -> list[str]:
    source = source or SOURCES[package]
    found = []
    allowed = ALLOWED[package] | {package}
    for path in sorted(source.rglob("*.py")):
        where = f"{package}/{path.relative_to(source)}"
        for name in imported_names(path):
            top = name.split(".")[0]
            if (top in ALLOWED and top not in allowed) or (package == "api" and top in FORBIDDEN_IN_API):
                found.append(f"{where} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_lower_layers(package):
    assert SOURCES[package].is_dir()
    assert violations(package) == []


def test_the_check_catches_upward_and_torch_imports(tmp_path):
    (tmp_path / "bad.py").write_text("import torch\n\ndef f():\n    from workers.batcher import Batcher\n")
    assert violations("core", tmp_path) == ["core/bad.py imports workers.batcher"]
    assert sorted(violations("api", tmp_path)) == ["api/bad.py imports torch", "api/bad.py imports workers.batcher"]
