"""Case classification: a weighted keyword/pattern rule engine, Chinese and English.

The rules live in a data file (``classification.json`` beside this module, or
a path given by configuration). Each category has rules: keywords (or regular
expressions under ``patterns``) with a weight. A rule's weight counts once per
distinct matching keyword; text in the subject counts ``subject_weight``
times. English keywords match whole words (a plural or -ed/-ing suffix
allowed); Chinese keywords match as substrings (Chinese has no spaces).

Text and keywords are folded alike before matching: Unicode NFKC (full-width
"ｒｅｆｕｎｄ" is "refund"), traditional Chinese to simplified (OpenCC t2s:
"訂單" is "订单"), lower case. Phrases under ``ignore`` are blanked out first:
negations that would otherwise match a keyword ("没有问题" is not "有问题",
"not urgent" is not "urgent"). Within a category a keyword found only as part
of a longer one found too ("订单" in "订单号", "charge" in "charged") counts
once, as the longer.

score(c)   = sum of weights of c's keywords found
category   = argmax score, ``default_category`` when every score is 0
confidence = (best / total of all scores) * min(1, best / confidence_saturation)

Priority is a level index: the category's base priority, plus the tier boost,
plus one when negative wording is found, plus two for urgent wording, capped
at the highest level.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import opencc

DEFAULT_RULES = Path(__file__).with_name("classification.json")


@cache
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def fold(text: str) -> str:
    """What matching compares: NFKC, traditional Chinese as simplified, lower case."""
    text = unicodedata.normalize("NFKC", text or "")
    if not text.isascii():
        text = _t2s().convert(text)
    return text.lower()


@dataclass(frozen=True)
class Classification:
    category: str
    confidence: float
    scores: dict[str, float]


@dataclass(frozen=True)
class _Term:
    regex: re.Pattern[str] | None
    literal: str | None
    weight: float
    keyword: str = ""

    def found(self, text: str) -> bool:
        if self.literal is not None:
            return self.literal in text
        assert self.regex is not None
        return self.regex.search(text) is not None


def _term(keyword: str, weight: float, *, pattern: bool = False) -> _Term:
    if pattern:
        return _Term(re.compile(keyword, re.IGNORECASE), None, weight)
    word = fold(keyword.strip())
    if word.isascii():
        # A short word takes no -d/-ed: "fee" would find "feed".
        suffixes = r"(?:s|es|ed|d|ing)?" if len(word) > 3 else r"(?:s|es|ing)?"
        regex = re.compile(r"(?<![a-z0-9])" + re.escape(word) + suffixes + r"(?![a-z0-9])")
        return _Term(regex, None, weight, word)
    return _Term(None, word, weight, word)


def _within(term: _Term, other: _Term) -> bool:
    """``term``'s keyword is ``other``'s or part of it (patterns have none)."""
    return bool(term.keyword) and term.keyword in other.keyword


def _covered(term: _Term, by: list[_Term]) -> bool:
    return any(term == o or _within(term, o) for o in by)


def _longest(found: list[_Term]) -> list[_Term]:
    """``found`` less the keywords that are part of a longer keyword also found."""
    return [t for t in found if not any(_within(t, o) and o.keyword != t.keyword for o in found)]


def _terms(rules: list[Mapping[str, Any]]) -> list[_Term]:
    terms: list[_Term] = []
    for rule in rules:
        weight = float(rule.get("weight", 1))
        terms += [_term(k, weight) for k in rule.get("keywords", [])]
        terms += [_term(p, weight, pattern=True) for p in rule.get("patterns", [])]
    return terms


class Classifier:
    def __init__(self, config: Mapping[str, Any]) -> None:
        self.default_category: str = config["default_category"]
        self.subject_weight = float(config.get("subject_weight", 1.0))
        self.saturation = float(config.get("confidence_saturation", 6.0))
        self.categories: dict[str, list[_Term]] = {
            name: _terms(spec.get("rules", [])) for name, spec in config["categories"].items()
        }
        self.base_priority: dict[str, int] = {
            name: int(spec.get("priority", 1)) for name, spec in config["categories"].items()
        }
        if self.default_category not in self.categories:
            raise ValueError("default_category must be one of the categories")
        self.negative = _terms([config.get("negative", {})])
        self.urgent = _terms([config.get("urgent", {})])
        self.tier_boost: dict[str, int] = dict(config.get("tier_boost", {}))
        # Longest first: a phrase inside a longer ignored one goes with it.
        ignore = sorted({fold(p) for p in config.get("ignore", []) if p.strip()}, key=len)
        self.ignore = [re.compile(re.escape(p)) for p in reversed(ignore)]
        self.levels: list[str] = list(config.get("priorities", ["low", "normal", "high", "urgent"]))

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> Classifier:
        with open(path or DEFAULT_RULES, encoding="utf-8") as fh:
            return cls(json.load(fh))

    def _text(self, text: str) -> str:
        folded = fold(text)
        for phrase in self.ignore:
            folded = phrase.sub(" ", folded)
        return folded

    def classify(self, subject: str, description: str = "") -> Classification:
        subject_text = self._text(subject)
        body_text = self._text(description)
        scores: dict[str, float] = {}
        for name, terms in self.categories.items():
            in_subject = _longest([t for t in terms if t.found(subject_text)])
            in_body = _longest([t for t in terms if t.found(body_text)])
            score = sum(t.weight for t in in_subject) * self.subject_weight
            # Counted once, where it weighs most: in the subject, whole or as part of a
            # longer keyword found there.
            score += sum(t.weight for t in in_body if not _covered(t, in_subject))
            if score:
                scores[name] = score
        if not scores:
            return Classification(self.default_category, 0.0, {})
        # Ties go to the category listed first in the rules file (stable, documented).
        order = list(self.categories)
        best = max(scores, key=lambda c: (scores[c], -order.index(c)))
        total = sum(scores.values())
        confidence = (scores[best] / total) * min(1.0, scores[best] / self.saturation)
        return Classification(best, round(confidence, 3), scores)

    def higher(self, a: str, b: str) -> str:
        """The higher of two priority levels."""
        return max(a, b, key=lambda level: self.levels.index(level) if level in self.levels else -1)

    def _any(self, terms: list[_Term], text: str) -> bool:
        return any(t.found(text) for t in terms)

    def priority(self, category: str, tier: str | None, subject: str, description: str = "") -> str:
        text = self._text(f"{subject or ''}\n{description or ''}")
        level = self.base_priority.get(category, 1)
        level += self.tier_boost.get(tier or "default", 0)
        if self._any(self.negative, text):
            level += 1
        if self._any(self.urgent, text):
            level += 2
        return self.levels[max(0, min(level, len(self.levels) - 1))]
