"""deploy/terraform, checked without an AWS account: it parses, agrees with the product, and its IAM is least privilege.

Terraform itself cannot run here (no provider downloads), so the module is read
as data: python-hcl2 parses every file, the generated locals are compared with
what `sealtrail bucket terraform` prints, each policy template is rendered and
linted with parliament, and the promises that matter most (the sink cannot
delete an object version or shorten a retention; the verifier and the auditor
write nothing) are checked on the policy documents themselves, with wildcards
expanded against AWS's list of actions.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Any

import parliament
import pytest

from sealtrail.config import RetentionSettings, Settings
from sealtrail.retention import builtin_policy
from sealtrail.sinks.bucket import assess_lifecycle
from sealtrail.sinks.terraform import boto3_rules, generated_file, module_locals, topics_file
from sealtrail.topics import Described, compare, topic_specs
from tests.support.iac import parsed, run_checkov

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "deploy/terraform/modules/sealtrail"
POLICIES = MODULE / "policies"
WORKLOADS = ("stream", "sink", "verifier", "auditor", "admin")

# What a role must never be allowed, whichever wildcard grants it: each undoes the lock or the trail.
UNLOCKING = {
    "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:PutBucketObjectLockConfiguration",
    "s3:PutLifecycleConfiguration", "s3:PutBucketVersioning", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
    "s3:DeleteBucket", "s3:PutObjectLegalHold",
}

# parliament findings accepted, each with its reason (as checkov's skips carry theirs)
ACCEPTED = {
    ("admin", "RESOURCE_POLICY_PRIVILEGE_ESCALATION"):
        "`sealtrail bucket init` writes the lifecycle rules; Object Lock keeps any rule from removing a locked "
        "version before its retention ends, and `bucket init --check` compares the rules with the policy",
}
# actions AWS classes as Write that change nothing a reader could see
READ_ONLY_WRITES = {"kms:decrypt": "reading an SSE-KMS object needs it; it changes no key and no object"}

SAMPLE = {
    "bucket_arn": "arn:aws:s3:::example-audit", "prefix": "trail/", "data": "data/", "digests": "digests/",
    "keys": "keys/",
    "bucket_key_arn": "arn:aws:kms:eu-west-1:111122223333:key/0d1b6f36-0c3a-4a8e-9b7e-2f3c4d5e6f70",
    "stream_key_arn": "arn:aws:kms:eu-west-1:111122223333:key/1d1b6f36-0c3a-4a8e-9b7e-2f3c4d5e6f71",
    "sink_key_arn": "arn:aws:kms:eu-west-1:111122223333:key/2d1b6f36-0c3a-4a8e-9b7e-2f3c4d5e6f72",
    "glue_catalog_arn": "arn:aws:glue:eu-west-1:111122223333:catalog",
    "glue_database_arn": "arn:aws:glue:eu-west-1:111122223333:database/sealtrail_trail",
    "glue_tables_arn": "arn:aws:glue:eu-west-1:111122223333:table/sealtrail_trail/*",
    "workgroup_arn": "arn:aws:athena:eu-west-1:111122223333:workgroup/sealtrail-trail",
    "cluster_arn": "arn:aws:kafka:eu-west-1:111122223333:cluster/audit/5a3b1c2d-1111-2222-3333-444455556666-2",
    "topic_arn_prefix": "arn:aws:kafka:eu-west-1:111122223333:topic/audit/5a3b1c2d-1111-2222-3333-444455556666-2",
    "group_arn_prefix": "arn:aws:kafka:eu-west-1:111122223333:group/audit/5a3b1c2d-1111-2222-3333-444455556666-2",
}


def resources(kind: str) -> dict[str, dict[str, Any]]:
    """Every resource of one type in the module, by name."""
    found: dict[str, dict[str, Any]] = {}
    for path in MODULE.glob("*.tf"):
        for block in parsed(path).get("resource", []):
            found.update(block.get(kind, {}))
    return found


def render(name: str, values: dict[str, str] = SAMPLE) -> dict[str, Any]:
    """A policy template as Terraform's templatefile renders it (the templates use plain ${name} only)."""
    text = (POLICIES / f"{name}.json.tftpl").read_text()
    names = set(re.findall(r"\$\{(\w+)\}", text))
    assert names <= set(values), f"{name}: unknown template values {names - set(values)}"
    return json.loads(re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text))


def _actions(entry: str | list[str]) -> list[str]:
    return [entry] if isinstance(entry, str) else list(entry)


def granted(policy: dict[str, Any]) -> set[str]:
    """Every action an Allow of the policy grants, wildcards expanded, minus what its own Deny statements take away."""
    def expand(patterns: list[str]) -> set[str]:
        out = set()
        for pattern in patterns:
            out |= {f"{a['service']}:{a['action']}" for a in parliament.expand_action(pattern)}
        return {a.lower() for a in out}

    allowed = set().union(*(expand(_actions(s["Action"])) for s in policy["Statement"] if s["Effect"] == "Allow"))
    denied = set().union(*(expand(_actions(s["Action"])) for s in policy["Statement"] if s["Effect"] == "Deny"
                           and s.get("Condition") is None), set())
    return allowed - denied


def access_levels(actions: set[str]) -> dict[str, str]:
    levels = {}
    for service in parliament.iam_definition:
        for privilege in service["privileges"]:
            name = f"{service['prefix']}:{privilege['privilege']}".lower()
            if name in actions:
                levels[name] = privilege["access_level"]
    return levels


def test_every_terraform_file_parses() -> None:
    files = sorted((ROOT / "deploy/terraform").rglob("*.tf"))
    assert len(files) >= 8
    for path in files:
        assert parsed(path), path
    json.loads((MODULE / "generated.tf.json").read_text())


def test_generated_locals_are_what_the_generator_prints() -> None:
    """generated.tf.json comes from the default retention policy; it must not drift from the sink's rules."""
    defaults = RetentionSettings()
    policy = builtin_policy(defaults.mode, defaults.days, defaults.environment)
    assert (MODULE / "generated.tf.json").read_text() == generated_file(policy)


def test_the_topics_module_is_what_the_topic_spec_prints() -> None:
    """The MSK topics module's locals come from topic_specs of the default settings (topics check's spec)."""
    path = ROOT / "deploy/terraform/modules/sealtrail-topics/generated.tf.json"
    specs = topic_specs(Settings())
    assert path.read_text() == topics_file(specs)
    # a cluster holding exactly these topics passes `topics check`
    topics = json.loads(path.read_text())["locals"]["sealtrail_topics"]
    described = {t["name"]: Described(t["partitions"], t["replication_factor"], t["config"]) for t in topics.values()}
    assert compare(specs, described) == []
    assert {t["config"]["min.insync.replicas"] for t in topics.values()} == {"2"}
    resource = parsed(ROOT / "deploy/terraform/modules/sealtrail-topics/main.tf")["resource"][0]["kafka_topic"]["trail"]
    assert resource["config"] == "${each.value.config}"


@pytest.mark.parametrize("mode,days", [("COMPLIANCE", 2557), ("COMPLIANCE", 365), ("GOVERNANCE", 30)])
def test_bucket_init_check_accepts_the_lifecycle_the_module_builds(mode: str, days: int) -> None:
    policy = builtin_policy(mode, days, "non-production" if mode == "GOVERNANCE" else "production")
    rules = boto3_rules(module_locals(policy)["sealtrail_lifecycle_rules"], "audit/trail/")
    assessment = assess_lifecycle(tuple(rules), policy, "audit/trail/")
    assert assessment.expiry_ok and assessment.transitions_ok, assessment
    shorter = [dict(r, Expiration={"Days": 30}) if "Days" in r.get("Expiration", {}) else r for r in rules]
    if days > 30:  # the same check refuses a module whose rules expire objects before their lock ends
        assert not assess_lifecycle(tuple(shorter), policy, "audit/trail/").expiry_ok


def test_the_bucket_is_locked_versioned_encrypted_private_and_tls_only() -> None:
    bucket = resources("aws_s3_bucket")["audit"]
    assert bucket["object_lock_enabled"] is True
    assert resources("aws_s3_bucket_versioning")["audit"]["versioning_configuration"][0]["status"] == "Enabled"
    lock = resources("aws_s3_bucket_object_lock_configuration")["audit"]["rule"][0]["default_retention"][0]
    assert lock["mode"] == "${local.sealtrail_default_retention.mode}"
    sse = resources("aws_s3_bucket_server_side_encryption_configuration")["audit"]["rule"][0]
    assert sse["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "aws:kms"
    assert "aws_kms_key.bucket" in sse["apply_server_side_encryption_by_default"][0]["kms_master_key_id"]
    block = resources("aws_s3_bucket_public_access_block")["audit"]
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                          "restrict_public_buckets"))
    statements = render("bucket")["Statement"]
    tls = [s for s in statements if s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}]
    assert tls and tls[0]["Effect"] == "Deny" and tls[0]["Action"] == "s3:*"


def test_the_signing_keys_are_ed25519_for_signing_only() -> None:
    signing = resources("aws_kms_key")["signing"]
    assert signing["customer_master_key_spec"] == "ECC_NIST_EDWARDS25519"
    assert signing["key_usage"] == "SIGN_VERIFY"
    assert "stream" in str(signing["for_each"]) and "sink" in str(signing["for_each"])


@pytest.mark.parametrize("name", [*WORKLOADS, "kafka-stream", "kafka-sink", "bucket"])
def test_parliament_finds_nothing_in_the_policies(name: str) -> None:
    text = json.dumps(render(name))
    findings = parliament.analyze_policy_string(text, include_community_auditors=True).findings
    assert [(f.issue, f.detail) for f in findings if (name, f.issue) not in ACCEPTED] == []


def test_every_workload_has_its_policy_template() -> None:
    assert {p.name.removesuffix(".json.tftpl") for p in POLICIES.glob("*.json.tftpl")} >= set(WORKLOADS)
    assert set(resources("aws_iam_role_policy")) == {"workload", "kafka"}


def test_the_sink_cannot_delete_or_shorten_a_retention() -> None:
    sink = granted(render("sink"))
    assert not sink & {a.lower() for a in UNLOCKING}
    assert {"s3:putobject", "s3:putobjectretention", "kms:sign"} <= sink


def test_the_check_would_catch_a_sink_policy_that_grants_a_wildcard() -> None:
    """The test above can fail: a sink policy with s3:Delete* (and no Deny of its own) is caught."""
    policy = render("sink")
    policy["Statement"] = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    policy["Statement"].append({"Effect": "Allow", "Action": "s3:Delete*", "Resource": "*"})
    assert "s3:deleteobjectversion" in granted(policy) & {a.lower() for a in UNLOCKING}


@pytest.mark.parametrize("name", ["verifier", "auditor"])
def test_the_verifier_and_the_auditor_write_nothing(name: str) -> None:
    actions = granted(render(name))
    levels = access_levels(actions)
    assert set(levels) == actions, f"actions AWS does not list: {actions - set(levels)}"
    assert {a: level for a, level in levels.items() if level not in ("Read", "List") and a not in READ_ONLY_WRITES} == {}


def test_only_the_stream_and_the_sink_may_sign() -> None:
    for name in WORKLOADS:
        signs = "kms:sign" in granted(render(name))
        assert signs == (name in ("stream", "sink")), name
    stream, sink = render("stream"), render("sink")
    signed_by = {n: [s["Resource"] for s in p["Statement"] if "kms:Sign" in _actions(s["Action"])]
                 for n, p in (("stream", stream), ("sink", sink))}
    assert signed_by == {"stream": [SAMPLE["stream_key_arn"]], "sink": [SAMPLE["sink_key_arn"]]}


def test_the_sink_writes_only_under_the_trail_prefix() -> None:
    for statement in render("sink")["Statement"]:
        if statement["Effect"] == "Allow" and "s3:PutObject" in _actions(statement["Action"]):
            for resource in _actions(statement["Resource"]):
                assert fnmatch.fnmatch(resource, f"{SAMPLE['bucket_arn']}/{SAMPLE['prefix']}*"), resource


def test_checkov_fails_nothing_and_every_skip_says_why() -> None:
    results = run_checkov(ROOT / "deploy/terraform", "terraform")["results"]
    failed = [(c["check_id"], c["resource"], c["check_name"]) for c in results["failed_checks"]]
    assert failed == []
    assert results["parsing_errors"] == []
    assert len(results["passed_checks"]) >= 50
    unexplained = [c["check_id"] for c in results["skipped_checks"]
                   if len(c["check_result"].get("suppress_comment", "")) < 20]
    assert unexplained == []


def test_the_command_prints_the_policy_in_effect(tmp_path: Path) -> None:
    """`sealtrail bucket terraform` follows the settings: a one-year trail gets one-year rules."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "SEALTRAIL_HOME": str(tmp_path), "SEALTRAIL_RETENTION__DAYS": "365"}
    out = tmp_path / "generated.tf.json"
    done = subprocess.run([sys.executable, "-m", "sealtrail.cli", "bucket", "terraform", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert out.read_text() == generated_file(builtin_policy("COMPLIANCE", 365))
    assert json.loads(out.read_text())["locals"]["sealtrail_lifecycle_rules"][0]["expiration_days"] == 366
