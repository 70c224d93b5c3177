"""sealtrail.columns: the one column table, and the places that cannot be derived from it held to it."""

from __future__ import annotations

from typing import Any, get_args

from sealtrail.columns import COLUMNS, Group

BY_NAME = {c.name: c for c in COLUMNS}
from sealtrail.event import Event
from sealtrail.evidence.api.routes import StoredEvent
from sealtrail.objects import ARROW_TYPES, SCHEMA
from sealtrail.ocsf import Classification
from sealtrail.record import EVENT_COLUMNS, OCSF_COLUMNS


def test_type_names_print_as_arrow_prints_them() -> None:
    for column in COLUMNS:
        assert str(ARROW_TYPES[column.arrow]) == column.arrow, column.name
    assert [f.name for f in SCHEMA] == [c.name for c in COLUMNS]


def test_names_are_unique() -> None:
    assert len(BY_NAME) == len(COLUMNS)


def test_every_event_column_names_an_event_field() -> None:
    for column in COLUMNS:
        assert (column.source is not None) == (column.group is Group.EVENT), column.name
        if column.source is None:
            continue
        model: Any = Event
        for part in column.source.split("."):
            assert part in model.model_fields, column.source
            annotation = model.model_fields[part].annotation
            model = next((a for a in (annotation, *get_args(annotation)) if hasattr(a, "model_fields")), None)


def test_json_columns_are_text() -> None:
    assert all(c.arrow == "string" and c.group is Group.EVENT for c in COLUMNS if c.json)


def test_ocsf_classification_is_the_ocsf_columns() -> None:
    assert Classification._fields == OCSF_COLUMNS


def test_the_api_row_types_event_columns_from_the_table() -> None:
    fields = StoredEvent.model_fields
    assert fields["actor_user_agent"].annotation == str | None
    assert fields["before"].annotation is Any
    assert [n for n in fields if n in BY_NAME and BY_NAME[n].group is Group.EVENT] == [
        n for n in EVENT_COLUMNS if BY_NAME[n].group is Group.EVENT]
