"""Field validators every service's schemas share."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, validate


class Exact(validate.Regexp):
    """A ``validate.Regexp`` over the whole value (``fullmatch``): with ``re.match`` a
    pattern's ``$`` also matches before a final newline, so "gold\\n" passed as a tier.
    Patterns keep ``^...$``: the OpenAPI document shows them to clients in ECMA-262
    syntax, where ``$`` is the end of the value and ``\\Z`` is no anchor."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value
