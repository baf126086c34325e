"""FHIR search parameters as values: references, tokens, ``_lastUpdated`` ranges, If-None-Exist."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from app.errors import BadRequest, ValidationFailed
from app.fhir.codes import (
    CATEGORY,
    KINDS,
    PANEL_CATEGORY,
    PANEL_CODING,
    PARTS,
    Coding,
    kind_codings,
)


def _invalid(name: str, msg: str) -> ValidationFailed:
    return ValidationFailed(f"{name}: {msg}", [{"loc": ["query", name], "msg": msg}])


def reference_id(value: str | None, kind: str, name: str) -> uuid.UUID | None:
    """The id in ``Kind/<id>`` (or a bare id, or an absolute URL ending in ``Kind/<id>``)."""
    if value is None:
        return None
    text = value.rsplit(f"{kind}/", 1)[1] if f"{kind}/" in value else value
    try:
        return uuid.UUID(text)
    except ValueError:
        raise _invalid(name, f"must reference {kind}/<id>") from None


@dataclass(frozen=True)
class Token:
    """``system|code``; system None matches any system, "" only codes without one; code None
    (``system|``) any code of the system."""

    system: str | None
    code: str | None

    def matches(self, codings: Iterable[Coding]) -> bool:
        return any(
            (self.system is None or self.system == system)
            and (self.code is None or self.code == code)
            for system, code, _ in codings
        )


def parse_tokens(value: str, name: str) -> list[Token]:
    """A token parameter's value: one or more tokens, separated by commas (any of them)."""
    tokens = []
    for item in value.split(","):
        if item in ("", "|"):
            raise _invalid(name, "expected [system]|[code] or a code")
        system, bar, code = item.partition("|")
        tokens.append(Token(system, code or None) if bar else Token(None, item))
    return tokens


@dataclass(frozen=True)
class Selection:
    """Which reading parts (by id suffix), whether readings' vital signs panels, and which
    observation kinds a search may return."""

    parts: frozenset[str]
    kinds: frozenset[str]
    panel: bool


ALL = Selection(frozenset(p.suffix for p in PARTS), frozenset(KINDS), panel=True)


def select_codes(codes: Sequence[str], categories: Sequence[str]) -> Selection:
    """Repeated parameters must all match (and); commas in one value are alternatives (or)."""
    parts, kinds, panel = set(ALL.parts), set(ALL.kinds), ALL.panel
    for value in codes:
        tokens = parse_tokens(value, "code")
        parts &= {p.suffix for p in PARTS if any(t.matches(p.codings) for t in tokens)}
        kinds &= {k for k in KINDS if any(t.matches(kind_codings(k)) for t in tokens)}
        panel = panel and any(t.matches([PANEL_CODING]) for t in tokens)
    for value in categories:
        tokens = parse_tokens(value, "category")
        parts &= {p.suffix for p in PARTS if _in_category(tokens, p.category)}
        kinds &= {k for k in KINDS if _in_category(tokens, KINDS[k][2])}
        panel = panel and _in_category(tokens, PANEL_CATEGORY)
    return Selection(frozenset(parts), frozenset(kinds), panel)


def _in_category(tokens: Sequence[Token], category: str) -> bool:
    return any(t.matches([(CATEGORY, category, "")]) for t in tokens)


_INSTANT = re.compile(
    r"^(?P<prefix>[a-z]{2})?(?P<minute>\d{4}-\d{2}-\d{2}T\d{2}:\d{2})"
    r"(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?(?P<zone>Z|[+-]\d{2}:\d{2})$"
)
_PREFIXES = ("eq", "gt", "ge", "lt", "le")


@dataclass(frozen=True)
class Bound:
    """One side of a ``_lastUpdated`` range: ``at_least`` (>=) or else strictly before (<)."""

    at: datetime
    at_least: bool


# Instants a minute inside the calendar, in UTC: gt, le and eq add up to a minute to the instant.
_EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(minutes=1)
_LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(minutes=1)


def last_updated_bounds(values: Sequence[str]) -> list[Bound]:
    """``_lastUpdated`` values as bounds. gt, ge, lt and le compare with the instant given as a
    point in time, so a poller that sends a time cut to the second never skips what changed later
    in that second; eq (or no prefix) matches the span of its precision: eq…14:05:00Z is that
    whole second."""
    bounds = []
    for raw in values:
        # A "+01:00" offset sent unencoded in a query string arrives as " 01:00".
        match = _INSTANT.match(raw.strip().replace(" ", "+"))
        if match is None:
            raise _invalid(
                "_lastUpdated",
                "expected a prefix (gt, ge, lt, le, eq) and an instant with a timezone offset, "
                "like gt2026-11-21T14:05:00Z",
            )
        prefix = match["prefix"] or "eq"
        if prefix not in _PREFIXES:
            raise _invalid("_lastUpdated", f"the prefix {prefix} is not supported")
        fraction = match["fraction"] or ""
        text = f"{match['minute']}:{match['second'] or '00'}"
        if fraction:
            text += f".{fraction[:6].ljust(6, '0')}"
        try:
            at = datetime.fromisoformat(text + match["zone"].replace("Z", "+00:00"))
            at = at.astimezone(UTC)  # so that a bound's span cannot leave the calendar
            if not _EARLIEST <= at <= _LATEST:
                raise ValueError(at)
        except (ValueError, OverflowError):
            raise _invalid("_lastUpdated", "not a valid instant") from None
        if prefix == "eq":
            if match["second"] is None:
                span = timedelta(minutes=1)
            else:
                span = timedelta(microseconds=10 ** (6 - min(len(fraction), 6)))
            bounds += [Bound(at, at_least=True), Bound(at + span, at_least=False)]
        elif prefix == "gt":
            bounds.append(Bound(at + timedelta(microseconds=1), at_least=True))
        elif prefix == "ge":
            bounds.append(Bound(at, at_least=True))
        elif prefix == "lt":
            bounds.append(Bound(at, at_least=False))
        else:  # le
            bounds.append(Bound(at + timedelta(microseconds=1), at_least=False))
    return bounds


MAX_IDENTIFIER = 255  # characters of an identifier's system, and of its value


def if_none_exist(header: str) -> Token:
    """``If-None-Exist: identifier=<system>|<value>`` (conditional create) as a token."""
    params = parse_qsl(header.strip(), keep_blank_values=True)
    if len(params) != 1 or params[0][0] != "identifier":
        raise BadRequest(
            "If-None-Exist supports one search parameter: identifier=<system>|<value>",
            [{"loc": ["header", "if-none-exist"], "msg": "expected identifier=<system>|<value>",
              "code": "not-supported"}],
        )  # fmt: skip
    value = params[0][1]
    system, bar, code = value.partition("|")
    if not value or (bar and not code) or max(len(system), len(code)) > MAX_IDENTIFIER:
        raise BadRequest(
            f"If-None-Exist needs one identifier value (system and value of at most "
            f"{MAX_IDENTIFIER} characters)",
            [{"loc": ["header", "if-none-exist"], "msg": "expected identifier=<system>|<value>",
              "code": "invalid"}],
        )  # fmt: skip
    return Token(system, code) if bar else Token(None, value)
