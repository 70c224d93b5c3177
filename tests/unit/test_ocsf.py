"""sealtrail.ocsf: the OCSF classification carried beside sealtrail's own columns."""

from __future__ import annotations

import pytest

from sealtrail.event import Category, Outcome
from sealtrail.ocsf import ACTION_MAX, ACTIONS, CATEGORY_CLASS, OTHER, STATUS, classify, ocsf_columns
from sealtrail.stack.workload import generate


@pytest.mark.parametrize(
    ("category", "action", "outcome", "want"),
    [
        pytest.param("auth", "auth.login", "success", (3002, 3, 1, 300201, 1, 1), id="logon"),
        pytest.param("auth", "auth.login_failed", "failure", (3002, 3, 1, 300201, 3, 2), id="failed-logon"),
        pytest.param("auth", "auth.logout", "success", (3002, 3, 2, 300202, 1, 1), id="logoff"),
        pytest.param("admin", "admin.user_created", "success", (3001, 3, 1, 300101, 2, 1), id="account-create"),
        pytest.param("admin", "admin.user_disabled", "success", (3001, 3, 5, 300105, 2, 1), id="account-disable"),
        pytest.param("admin", "admin.role_granted", "success", (3005, 3, 1, 300501, 2, 1), id="assign-privileges"),
        pytest.param("admin", "admin.config_changed", "unknown", (3004, 3, 3, 300403, 2, 0), id="entity-update"),
        pytest.param("security", "security.privilege_escalation", "success", (3005, 3, 1, 300501, 4, 1),
                     id="escalation"),
        pytest.param("change", "data.insert", "success", (6005, 6, 6, 600506, 1, 1), id="datastore-create"),
        pytest.param("change", "data.delete", "success", (6005, 6, 7, 600507, 1, 1), id="datastore-delete"),
        pytest.param("access", "access.export", "success", (6005, 6, 4, 600504, 1, 1), id="datastore-query"),
        pytest.param("change", "inventory.recount", "success", (6005, 6, OTHER, 600599, 1, 1), id="unknown-action"),
        pytest.param("security", "security.port_scan", "failure", (2004, 2, OTHER, 200499, 4, 2),
                     id="unknown-security"),
    ],
)
def test_classification_vectors(category: str, action: str, outcome: str, want: tuple[int, ...]) -> None:
    assert tuple(classify(category, action, outcome)) == want


def test_every_action_of_the_workload_has_a_class_of_its_own() -> None:
    actions = {e["action"] for e in generate(3000, seed=5)}
    assert actions <= set(ACTIONS), actions - set(ACTIONS)


def test_type_uid_is_class_times_100_plus_activity() -> None:
    for action, (class_uid, activity) in ACTIONS.items():
        c = classify(action.split(".")[0].replace("data", "change"), action, "success")
        assert (c.class_uid, c.activity_id, c.type_uid, c.category_uid) == (
            class_uid, activity, class_uid * 100 + activity, class_uid // 1000)


def test_the_cache_knows_what_the_event_model_accepts() -> None:
    """ocsf_columns answers None exactly where the event model refuses the triple (the stream's fast path
    relies on it instead of checking the enums and the action pattern)."""
    assert set(CATEGORY_CLASS) == {c.value for c in Category}
    assert set(STATUS) == {o.value for o in Outcome}
    assert ocsf_columns("auth", "auth.login", "success") == classify("auth", "auth.login", "success")._asdict()
    for category, action, outcome in [("nope", "auth.login", "success"), ("auth", "auth.login", "nope"),
                                      ("auth", "Auth.login", "success"), ("auth", "login", "success"),
                                      ("auth", "a." + "b" * ACTION_MAX, "success")]:
        assert ocsf_columns(category, action, outcome) is None
