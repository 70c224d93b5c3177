"""Reading deploy/'s infrastructure code in tests: Terraform through python-hcl2, and checkov's verdicts.

checkov lives in its own virtualenv (`make iac-tools`), so it runs as a command; test_terraform and
test_k8s both scan with it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[2]


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps HCL's quotes on string values and block labels; the tests compare bare values."""
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parsed(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return _unquote(hcl2.load(f))


def checkov_command() -> str:
    """checkov lives in its own virtualenv (`make iac-tools`): it pins boto3 and packaging below what sealtrail uses."""
    found = os.environ.get("CHECKOV") or shutil.which("checkov") or str(ROOT / ".venv/iac/bin/checkov")
    assert Path(found).is_file(), f"checkov not found at {found}: run `make iac-tools` (make test does)"
    return found


def run_checkov(directory: Path, framework: str) -> dict[str, Any]:
    done = subprocess.run([checkov_command(), "-d", str(directory), "--framework", framework, "--compact",
                           "--skip-download", "-o", "json"], capture_output=True, text=True, timeout=600)
    assert done.stdout.strip(), done.stderr[-2000:]
    report = json.loads(done.stdout)
    return report if isinstance(report, dict) else next(r for r in report if r["check_type"] == framework)
