"""mypy over the product ([tool.mypy] in pyproject.toml), as the installed package sees it.

The folders are not the package names (pyproject's package-dir maps core/ to sealtrail,
cli/ to sealtrail.cli, ...), and mypy follows neither the mapping nor setuptools' editable
import hook. So the test lays out the package as it is installed, out of symbolic links to
the real files, type-checks that, and names each error by the repository's own path.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def package_tree(root: Path, into: Path) -> Path:
    """The installed layout of sealtrail under ``into``, made of links to the files under ``root``."""
    mapping = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    top = into / "sealtrail"
    top.mkdir(parents=True)
    for entry in (root / mapping["sealtrail"]).iterdir():
        if entry.name != "__pycache__":
            (top / entry.name).symlink_to(entry)
    for package, folder in mapping.items():
        if package != "sealtrail":
            (top / package.removeprefix("sealtrail.").replace(".", "/")).symlink_to(root / folder)
    return into


def repo_paths(output: str, tree: Path, root: Path) -> str:
    """mypy's paths in the linked tree, written as the repository's (sealtrail/x.py -> core/x.py)."""
    mapping = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    prefix = f"{tree}/sealtrail/"
    lines = []
    for line in output.splitlines():
        if line.startswith(prefix):
            rel = line[len(prefix):]
            head = rel.split("/", 1)[0]
            folder = mapping.get(f"sealtrail.{head}")
            line = f"{folder}/{rel.split('/', 1)[1]}" if folder and "/" in rel else f"{mapping['sealtrail']}/{rel}"
        lines.append(line)
    return "\n".join(lines)


def test_mypy_finds_nothing(tmp_path: Path) -> None:
    tree = package_tree(ROOT, tmp_path / "src")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "cache"), "-p", "sealtrail"],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env={"MYPYPATH": str(tree), "PATH": ""},
    )
    assert done.returncode == 0, repo_paths(done.stdout + done.stderr, tree, ROOT)
    assert "Success" in done.stdout


def test_the_linked_tree_is_the_installed_layout(tmp_path: Path) -> None:
    """Every module the installed package holds is in the tree mypy checks, under its installed name."""
    tree = package_tree(ROOT, tmp_path / "src")
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    for package in packages:
        assert (tree / package.replace(".", "/") / "__init__.py").is_file(), package
    assert (tree / "sealtrail" / "stream" / "worker.py").resolve() == (ROOT / "stream" / "worker.py").resolve()
