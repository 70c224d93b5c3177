"""Packaging: what pyproject ships is what the source tree holds, under the sealtrail namespace only.

The lenient editable install imports a subpackage missing from [tool.setuptools]
packages while a wheel silently leaves it out, so the list is checked against the
folders here. The namespace guard makes sure the bare folder names (core,
stream, ...) never become importable packages of their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_FOLDERS = ("core", "cli", "stack", "producers", "stream", "sinks", "evidence")
HEAVY = ("faust", "pyarrow", "boto3", "duckdb")


def setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def folder_of(package: str, package_dir: dict[str, str]) -> Path:
    """setuptools' rule: the longest mapped parent package decides; the rest of the name is subfolders."""
    parts = package.split(".")
    for i in range(len(parts), 0, -1):
        parent = ".".join(parts[:i])
        if parent in package_dir:
            return ROOT / package_dir[parent] / Path(*parts[i:])
    return ROOT / package_dir.get("", "") / Path(*parts)


def test_every_source_folder_is_a_listed_package() -> None:
    cfg = setuptools_config()
    listed = {folder_of(p, cfg.get("package-dir", {})).resolve(): p for p in cfg["packages"]}
    found = {
        init.parent.resolve()
        for top in SOURCE_FOLDERS
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    missing = sorted(str(f.relative_to(ROOT)) for f in found - set(listed))
    assert missing == [], f"folders with __init__.py not in [tool.setuptools] packages: {missing}"


def test_every_listed_package_exists() -> None:
    cfg = setuptools_config()
    for package in cfg["packages"]:
        folder = folder_of(package, cfg.get("package-dir", {}))
        assert (folder / "__init__.py").is_file(), f"{package} -> {folder} has no __init__.py"


def test_everything_lives_under_sealtrail() -> None:
    cfg = setuptools_config()
    assert all(p == "sealtrail" or p.startswith("sealtrail.") for p in cfg["packages"])
    assert all(p == "sealtrail" or p.startswith("sealtrail.") for p in cfg.get("package-dir", {}))
    assert cfg["package-dir"]["sealtrail"] == "core"


def run_python(code: str, cwd: Path, *flags: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONSAFEPATH")}
    done = subprocess.run([sys.executable, *flags, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


GUARD = (
    "import importlib.util as u, sealtrail.producers; "
    "print([n for n in ('producers','stream','sinks','core','evidence','cli','stack') if u.find_spec(n)])"
)


@pytest.mark.parametrize("where", ["tmp", "repo-root"])
def test_bare_folder_names_not_importable(tmp_path: Path, where: str) -> None:
    cwd = tmp_path if where == "tmp" else ROOT
    assert run_python(GUARD, cwd, "-P") == "[]"


def test_producers_import_is_light(tmp_path: Path) -> None:
    code = (
        "import json, sys, sealtrail.producers; "
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if any(k == m or k.startswith(m + '.') for k in sys.modules))))"
    )
    assert json.loads(run_python(code, tmp_path, "-P")) == []


def test_installed_package_points_at_this_checkout(tmp_path: Path) -> None:
    code = "import json, sealtrail, sealtrail.stream, sealtrail.sinks; print(json.dumps([sealtrail.__file__, sealtrail.stream.__file__, sealtrail.sinks.__file__]))"
    files = [Path(f).resolve() for f in json.loads(run_python(code, tmp_path, "-P"))]
    assert files == [ROOT / "core" / "__init__.py", ROOT / "stream" / "__init__.py", ROOT / "sinks" / "__init__.py"]


# What verify's worker processes import (their forkserver loads sealtrail.evidence.checks.rows and the
# caller's __main__, the `sealtrail` script, once): each of these adds tenths of a second per run.
WORKER_HEAVY = ("boto3", "botocore", "pydantic", "pydantic_settings", "faust", "confluent_kafka")


@pytest.mark.parametrize("module", ["sealtrail.evidence.checks.rows", "sealtrail.cli.main"])
def test_verify_worker_imports_are_light(tmp_path: Path, module: str) -> None:
    code = (
        f"import json, sys, {module}; "
        f"print(json.dumps(sorted(m for m in {WORKER_HEAVY!r} if any(k == m or k.startswith(m + '.') for k in sys.modules))))"
    )
    assert json.loads(run_python(code, tmp_path, "-P")) == []


def _requirements() -> dict[str, list]:
    """pyproject's runtime requirements, base and extras, by canonical name (a name may appear with several
    specifiers)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = [e for e in project["optional-dependencies"] if e not in ("test", "examples", "bench")]
    found: dict[str, list] = {}
    for line in project["dependencies"] + [x for e in runtime for x in project["optional-dependencies"][e]]:
        req = Requirement(line)
        if canonicalize_name(req.name) != "sealtrail":  # sealtrail[evidence] inside [serve]
            found.setdefault(canonicalize_name(req.name), []).append(req.specifier)
    return found


# review L10: inside the old floors a resolver picked these, each with a published advisory
ADVISORY_VERSIONS = [("starlette", "0.38.6"), ("h11", "0.15.0"), ("jinja2", "3.1.0"), ("cryptography", "42.0.0"),
                     ("cryptography", "44.0.0"), ("starlette", "0.47.1")]


@pytest.mark.parametrize(("name", "version"), ADVISORY_VERSIONS)
def test_l10_floors_refuse_versions_with_published_advisories(name: str, version: str) -> None:
    specifiers = _requirements().get(name)
    assert specifiers, f"{name} has no floor of its own in pyproject.toml"
    assert not all(version in spec for spec in specifiers), f"pyproject.toml admits {name}=={version}"


def test_l10_the_lock_pins_every_dependency_inside_its_floor_with_hashes() -> None:
    from packaging.utils import canonicalize_name

    lines = (ROOT / "requirements.lock").read_text().splitlines()
    pins: dict[str, str] = {}
    for i, line in enumerate(lines):
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split(" ")[0].split("==")
            pins[canonicalize_name(name.split("[")[0])] = version
            assert lines[i + 1].strip().startswith("--hash=sha256:"), f"{name}=={version} has no hash in the lock"
    for name, specifiers in _requirements().items():
        assert name in pins, f"{name} is required but not in requirements.lock"
        assert all(pins[name] in spec for spec in specifiers), f"the lock pins {name}=={pins[name]} outside {specifiers}"
