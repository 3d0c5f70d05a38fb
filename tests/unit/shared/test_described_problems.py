"""One handler renders every service's errors from what the error class says of itself."""

from __future__ import annotations

from shared.app import described_problem
from shared.errors import PROBLEM_BASE


class CaseGone(Exception):
    status = 404
    slug = "case-gone"
    title = "Case Gone"


class SlowDown(Exception):
    status = 429
    slug = "slow-down"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.extra = {"reason": "per_customer"}


class Plain(Exception):
    pass


class BoolStatus(Exception):
    status = True
    slug = "odd"


def test_a_class_with_status_and_slug_is_its_own_problem_document() -> None:
    problem = described_problem(CaseGone("no case C-7KQ"))
    assert problem is not None
    assert problem.to_dict() == {
        "type": PROBLEM_BASE + "case-gone",
        "title": "Case Gone",
        "status": 404,
        "detail": "no case C-7KQ",
    }


def test_retry_after_becomes_a_header_and_a_member_beside_the_extra_members() -> None:
    problem = described_problem(SlowDown("too many codes", 30))
    assert problem is not None
    assert problem.headers == {"Retry-After": "30"}
    body = problem.to_dict()
    assert body["title"] == "Slow Down"
    assert body["retry_after"] == 30 and body["reason"] == "per_customer"


def test_an_error_that_describes_nothing_is_left_to_the_catch_all() -> None:
    assert described_problem(Plain("boom")) is None
    assert described_problem(BoolStatus("odd")) is None
