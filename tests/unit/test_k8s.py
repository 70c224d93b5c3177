"""deploy/k8s, checked without a cluster: Kubernetes' own schemas, checkov, and what the manifests promise.

Each document of the base is validated strictly (an unknown field is an error, as
`kubectl apply --validate=strict` makes it) against the schemas of a current
Kubernetes release. checkov scans the base; every check it skips carries its
reason in the manifest. The rest are the promises a schema cannot see: the
probes ask the endpoints the workers serve on the ports their settings give
them (that /ready means "reaches the broker" is tests/integration/test_probes.py),
every SEALTRAIL_ variable is a setting sealtrail has, the pods cannot escalate,
and the AWS overlay binds each service account to the role deploy/terraform
trusts it with.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.environment import known_setting
from tests.support.iac import parsed, run_checkov

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy/k8s/base"
AWS = ROOT / "deploy/k8s/overlays/aws"
KUBERNETES = "1.33.0"
WORKERS = {"stream": "/ready", "sink": "/ready", "serve": "/healthz"}


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def base() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    return [d for name in kustomization["resources"] for d in documents(BASE / name)]


def named(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in base() if d["kind"] == kind}


def container(workload: str) -> dict[str, Any]:
    (only,) = named("Deployment")[f"sealtrail-{workload}"]["spec"]["template"]["spec"]["containers"]
    return only


def env(workload: str) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(workload).get("env", [])}


def test_the_kustomization_lists_every_manifest_of_the_base() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in BASE.glob("*.yaml")
                                                        if p.name != "kustomization.yaml")


@pytest.mark.parametrize("path", sorted(BASE.glob("*.yaml")), ids=lambda p: p.name)
def test_every_document_is_valid_kubernetes(path: Path) -> None:
    for document in documents(path):
        if document["kind"] != "Kustomization":
            kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_the_schema_check_can_fail() -> None:
    config = named("ConfigMap")["sealtrail"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**config, "dta": config["data"]}, KUBERNETES, strict=True)


def test_checkov_fails_nothing_and_every_skip_says_why() -> None:
    results = run_checkov(BASE, "kubernetes")["results"]
    failed = [(c["check_id"], c["resource"], c["check_name"]) for c in results["failed_checks"]]
    assert failed == []
    assert results["parsing_errors"] == []
    assert len(results["passed_checks"]) >= 100
    unexplained = [(c["check_id"], c["resource"]) for c in results["skipped_checks"]
                   if len(c["check_result"].get("suppress_comment", "")) < 20]
    assert unexplained == []


@pytest.mark.parametrize("workload", sorted(WORKERS))
def test_probes_ask_the_endpoints_the_worker_serves_on_its_ports(workload: str) -> None:
    c = container(workload)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    metrics = int(env(workload)[f"SEALTRAIL_{workload.upper()}__METRICS_PORT"])
    assert ports["metrics"] == metrics
    if workload == "serve":
        assert ports["http"] == int(env(workload)["SEALTRAIL_SERVE__PORT"])
    probe_port = "http" if workload == "serve" else "metrics"
    assert c["readinessProbe"]["httpGet"] == {"path": WORKERS[workload], "port": probe_port}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": probe_port}
    pod = named("Deployment")[f"sealtrail-{workload}"]["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(metrics)
    assert container(workload)["args"] == [workload]


@pytest.mark.parametrize("workload", sorted(WORKERS))
def test_pods_run_unprivileged_within_limits_and_keep_a_replica_up(workload: str) -> None:
    deployment = named("Deployment")[f"sealtrail-{workload}"]
    pod = deployment["spec"]["template"]["spec"]
    c = container(workload)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] >= 10000
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "privileged": False, "capabilities": {"drop": ["ALL"]}}
    assert set(c["resources"]["requests"]) == set(c["resources"]["limits"]) == {"cpu", "memory"}
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/var/lib/sealtrail", "/tmp"} <= mounts  # the only writable paths of a read-only root
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for kind in ("PodDisruptionBudget", "Service"):
        selector = named(kind)[f"sealtrail-{workload}"]["spec"]["selector"]
        assert (selector.get("matchLabels", selector)).items() <= labels.items(), kind
    assert pod["serviceAccountName"] == f"sealtrail-{workload}"
    assert named("PodDisruptionBudget")[f"sealtrail-{workload}"]["spec"]["maxUnavailable"] == 1
    assert deployment["spec"]["replicas"] >= 2


def test_every_setting_is_one_sealtrail_has() -> None:
    names = list(named("ConfigMap")["sealtrail"]["data"])
    names += [n for w in WORKERS for n in env(w)]
    names += [n for p in AWS.glob("*.yaml") for d in documents(p) if d["kind"] == "ConfigMap" for n in d["data"]]
    names += [e["name"] for p in AWS.glob("*.yaml") for d in documents(p) if d["kind"] == "Deployment"
              for c in d["spec"]["template"]["spec"]["containers"] for e in c["env"]]
    assert [n for n in names if not known_setting(n)] == []
    assert not known_setting("SEALTRAIL_S3__BUCKIT")


def test_the_stream_scales_on_chain_lag_within_its_partitions() -> None:
    hpa = named("HorizontalPodAutoscaler")["sealtrail-stream"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["pods"]["metric"]["name"] == "sealtrail_chain_lag_seconds"
    partitions = int(named("ConfigMap")["sealtrail"]["data"]["SEALTRAIL_KAFKA__PARTITIONS"])
    assert hpa["spec"]["maxReplicas"] <= partitions  # a replica beyond the partitions would sit idle


def test_the_network_policy_denies_by_default() -> None:
    policies = named("NetworkPolicy")
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    serve_ports = [p["port"] for rule in policies["sealtrail-serve-api"]["spec"]["ingress"] for p in rule["ports"]]
    assert serve_ports == ["http"]


def test_the_aws_overlay_patches_what_the_base_has_and_pins_the_image() -> None:
    kustomization = yaml.safe_load((AWS / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["../../base"]
    have = {(d["kind"], d["metadata"]["name"]) for d in base()}
    for patch in kustomization["patches"]:
        for document in documents(AWS / patch["path"]):
            assert (document["kind"], document["metadata"]["name"]) in have, patch["path"]
    (image,) = kustomization["images"]
    assert {container(w)["image"].split(":")[0] for w in WORKERS} == {image["name"]}
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image["digest"])


def test_each_service_account_takes_the_role_terraform_trusts_it_with() -> None:
    """The overlay's IRSA annotations and the module's trust policy name the same pairs."""
    (iam,) = [b for b in parsed(ROOT / "deploy/terraform/modules/sealtrail/iam.tf")["locals"]
              if "service_accounts" in b]
    trusted = {account: f"sealtrail-{role}" for role, account in iam["service_accounts"].items()}
    annotated = {d["metadata"]["name"]: d["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].rsplit("/", 1)[1]
                 for d in documents(AWS / "roles.yaml")}
    assert annotated == trusted
    assert set(trusted) == set(named("ServiceAccount"))
