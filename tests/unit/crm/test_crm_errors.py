"""Every CRM error names its own problem document (status, type, title and members),
rendered by the one shared handler: the documents the API gave before its error
tree carried them, member for member."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from services.crm.errors import (
    Contention,
    CrmError,
    IdentifierSuppressed,
    IdentifierTaken,
    InvalidCaseNumber,
    InvalidIdentifier,
    InvalidTransition,
    JunkIdentifier,
    LookupFailed,
    MergeRefused,
    PeerUnavailable,
    ProfileMoved,
    ProfileNotFound,
    RateLimited,
    ResolutionConflict,
    StoreUnavailable,
    UnknownCategory,
)
from shared.app import described_problem

BASE = "https://switchboard.dev/problems/"


def rendered(error: BaseException) -> tuple[dict[str, Any], dict[str, str]]:
    problem = described_problem(error)
    assert problem is not None
    return problem.to_dict(), problem.headers


@pytest.mark.parametrize(
    ("error", "document"),
    [
        (
            IdentifierTaken("taken", ["p-1"]),
            (409, "Conflict", "identifier-taken", "taken", {"profile_ids": ["p-1"]}),
        ),
        (
            ResolutionConflict("two", ["p-1", "p-2"]),
            (409, "Conflict", "merge-candidate", "two", {"profile_ids": ["p-1", "p-2"]}),
        ),
        (
            IdentifierSuppressed("erased"),
            (409, "Conflict", "identifier-suppressed", "erased", {"profile_ids": []}),
        ),
        (
            MergeRefused("no", ["p-1"]),
            (409, "Conflict", "merge-refused", "no", {"profile_ids": ["p-1"]}),
        ),
        (
            InvalidTransition("closed"),
            (409, "Invalid Status Change", "invalid-transition", "closed", {}),
        ),
        (ProfileNotFound("no profile p-1"), (404, "Not Found", "not-found", "no profile p-1", {})),
        (
            LookupFailed(),
            (
                404,
                "Not Found",
                "not-found",
                "no case matches this case number and phone number",
                {},
            ),
        ),
        (UnknownCategory("no category"), (400, "Bad Request", "bad-request", "no category", {})),
        (CrmError("bad"), (400, "Bad Request", "bad-request", "bad", {})),
        (
            InvalidIdentifier("bad phone", field="identifier"),
            (
                400,
                "Invalid Identifier",
                "invalid-identifier",
                "bad phone",
                {"errors": {"identifier": ["bad phone"]}},
            ),
        ),
        (
            JunkIdentifier("placeholder"),
            (
                400,
                "Invalid Identifier",
                "invalid-identifier",
                "placeholder",
                {"errors": {"identifiers": ["placeholder"]}},
            ),
        ),
        (
            InvalidCaseNumber("check symbol"),
            (
                400,
                "Invalid Case Number",
                "invalid-case-number",
                "check symbol",
                {"errors": {"case_number": ["check symbol"]}},
            ),
        ),
        (
            RateLimited(7),
            (
                429,
                "Too Many Requests",
                "rate-limited",
                "too many lookups; retry in 7 s",
                {"retry_after": 7},
            ),
        ),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else "",
)
def test_each_error_is_its_problem_document(
    error: BaseException, document: tuple[int, str, str, str, dict[str, Any]]
) -> None:
    status, title, slug, detail, members = document
    body, _ = rendered(error)
    assert body == {
        "type": BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        **members,
    }


@pytest.mark.parametrize(
    ("error", "detail", "retry"),
    [
        (
            Contention("crm_identifiers_pkey"),
            "the customer's data is changing concurrently; retry",
            "1",
        ),
        (StoreUnavailable("OperationalError"), "the database is unavailable", "1"),
        (
            PeerUnavailable("the identity service answered 502"),
            "the export is incomplete, so none is given: the identity service answered 502",
            "5",
        ),
    ],
)
def test_unavailable_keeps_its_diagnosis_out_of_the_answer(
    error: BaseException, detail: str, retry: str
) -> None:
    body, headers = rendered(error)
    assert body == {
        "type": BASE + "unavailable",
        "title": "Service Unavailable",
        "status": 503,
        "detail": detail,
    }
    assert headers == {"Retry-After": retry}
    assert str(error) != detail  # the logs keep the constraint / driver error


def test_a_moved_profile_points_at_its_survivor_for_the_same_request() -> None:
    error = ProfileMoved("p-old", "p-new")
    with Flask(__name__).test_request_context("/v1/profiles/p-old/timeline?limit=5&x=%20"):
        body, headers = rendered(error)
    location = "/v1/profiles/p-new/timeline?limit=5&x=%20"
    assert headers == {"Location": location}
    assert body == {
        "type": BASE + "moved",
        "title": "Permanent Redirect",
        "status": 308,
        "detail": "profile p-old was merged into p-new",
        "survivor_id": "p-new",
        "location": location,
    }
