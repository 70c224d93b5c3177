"""Which package may import which: the folder layout is the data flow, and the imports must say so too.

core/ is the trail's format and vocabulary, so an independent verifier can be
written from it alone; the writing side (producers, stream, sinks) and the
reading side (evidence) build on it and never on each other, except that the
reading side reaches the bucket through the sink's S3Store, inside functions.
cli/ and stack/ sit on top and may import anything. Checked on the source with
ast, lazy imports included, so an import added inside a function is caught too.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from tests.support.imports import ROOT, TOPS, modules_imported, package_of, sources

# what each package may import besides itself and core (core: nothing above it)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "producers": set(),
    "stream": set(),
    "sinks": set(),
    "evidence": {"producers"},  # the admin API records its own access as audit events, through the SDK
    "cli": set(TOPS),
    "stack": set(TOPS),
}
# single modules allowed across, with why
EXCEPTIONS = {
    ("evidence", "sealtrail.sinks.s3"): "the reading side's S3 adapter (the bucket itself)",
    ("stream", "sealtrail.sinks.s3"): "recovery reads the bucket's signed heads through the S3 adapter",
}


def imports() -> Counter[tuple[str, str, str]]:
    """(importing package, imported module, file) for every sealtrail import in the source folders."""
    return Counter((top, module, str(path.relative_to(ROOT))) for top, path in sources()
                   for module in modules_imported(path) if package_of(module) is not None)


def test_every_package_imports_only_what_the_layering_allows() -> None:
    wrong = sorted(
        f"{file}: {top} imports {module}"
        for top, module, file in imports()
        if package_of(module) not in (top, "core", *ALLOWED[top])
        and not any(module == m or module.startswith(m + ".") for (t, m) in EXCEPTIONS if t == top)
    )
    assert wrong == [], "\n".join(wrong)


def test_core_imports_nothing_above_it() -> None:
    above = sorted(f"{file}: {module}" for top, module, file in imports() if top == "core" and package_of(module) != "core")
    assert above == [], above


@pytest.mark.parametrize("module", ["sealtrail.evidence.bundle", "sealtrail.evidence.checks.rows", "sealtrail.contents",
                                    "sealtrail.objects", "sealtrail.digest", "sealtrail.store", "sealtrail.evidence.proof.check"])
def test_the_offline_verifier_side_loads_no_aws_sdk(module: str) -> None:
    """verify --path runs on an auditor's laptop from a bundle folder: the format and the bundle need no boto3."""
    code = f"import sys, {module}; print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"importing {module} loads {done.stdout.strip()}"


# the AWS SDK's own edges: the trail's store, KMS signing, the embedded S3 server's bucket setup, IAM reading
AWS_EDGES = {"sinks/s3.py", "core/kms.py", "core/signing.py", "stack/s3server.py", "producers/access_review.py"}


def test_botocore_is_imported_only_at_the_aws_edges() -> None:
    """S3 errors are mapped once (sinks/s3.py); nothing else of the trail's code sees a ClientError."""
    found = {str(path.relative_to(ROOT)) for _, path in sources()
             if any(m.split(".")[0] in ("boto3", "botocore") for m in modules_imported(path))}
    assert found - AWS_EDGES == set(), sorted(found - AWS_EDGES)
