"""Field validators every service's schemas share."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import ValidationError, validate

# C0 controls (PostgreSQL text cannot hold NUL) and lone surrogates (not UTF-8 at all):
# what no id or cursor this project issues contains.
UNPRINTABLE = re.compile(r"[\x00-\x1f\ud800-\udfff]")


class Exact(validate.Regexp):
    """A ``validate.Regexp`` over the whole value (``fullmatch``): with ``re.match`` a
    pattern's ``$`` also matches before a final newline, so "gold\\n" passed as a tier.
    Patterns keep ``^...$``: the OpenAPI document shows them to clients in ECMA-262
    syntax, where ``$`` is the end of the value and ``\\Z`` is no anchor."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value
