from __future__ import annotations

import pytest

from shared.errors import BadRequest
from shared.events import Event, MalformedEvent
from shared.logs import request_id_var
from shared.pagination import decode_cursor, encode_cursor


def test_an_event_survives_the_round_trip_through_stream_fields() -> None:
    event = Event.new("crm.profile.merged", {"survivor_id": "p1", "n": [1, 2]}, source="crm")
    fields = event.to_fields()
    assert set(fields) == {
        "id",
        "type",
        "version",
        "occurred_at",
        "source",
        "correlation_id",
        "data",
    }
    assert all(isinstance(v, str) for v in fields.values())
    assert Event.from_fields(fields) == event


def test_the_correlation_id_defaults_to_the_current_request_id() -> None:
    token = request_id_var.set("req-42")
    try:
        assert Event.new("x.y.z", {}, source="crm").correlation_id == "req-42"
    finally:
        request_id_var.reset(token)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"id": "1", "type": "t", "version": "x", "occurred_at": "", "source": "s", "data": "{}"},
        {"id": "1", "type": "t", "version": "1", "occurred_at": "", "source": "s", "data": "[]"},
        {"id": "1", "type": "t", "version": "1", "occurred_at": "", "source": "s", "data": "{"},
    ],
)
def test_malformed_entries_are_reported_as_such(fields: dict[str, str]) -> None:
    with pytest.raises(MalformedEvent):
        Event.from_fields(fields)


def test_cursors_round_trip_and_junk_is_a_bad_request() -> None:
    assert decode_cursor(encode_cursor({"after": "p-9", "n": 3})) == {"after": "p-9", "n": 3}
    assert decode_cursor(None) is None
    with pytest.raises(BadRequest):
        decode_cursor("%%%not-base64")
    with pytest.raises(BadRequest):
        decode_cursor(encode_cursor({"a": 1})[:-3] + "!!")
