"""Reading archived events with the warm ones: a pass over a statement's tree.

Statements name one raw-events relation, ``events``. When a cold tier holds archived
events, each reference to ``events`` is replaced by ``events`` UNION ALL the Parquet files
that can hold rows for that reference, chosen from the reference's own conditions: the
site it is narrowed to (``site_id = :p``) and the time bounds on ``ts`` (``ts >= :p``,
``ts < :p``; a missing bound is unbounded). An event is in exactly one tier (the archiver
commits a file and deletes its events from the warm store in one transaction), so the
union holds every event once and the numbers are those of an all-warm store.

Only the DuckDB printer reads Parquet (``read_parquet``); see docs/cold.md for PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlglot import exp

#: The raw-events relation statements read.
EVENTS = "events"


class ColdSource(Protocol):
    """Where archived events are: a SELECT over the files for a site and a time range."""

    def source(
        self, site_id: str | None, lo: datetime | None, hi: datetime | None
    ) -> exp.Expr | None: ...


#: Id columns a packed file stores as 16 bytes where it can: the canonical lowercase UUID
#: form in ``<name>__uuid`` (Parquet UUID), 32 lowercase hex digits in ``<name>__hex``
#: (FIXED_LEN_BYTE_ARRAY(16)); any other value (uppercase, empty, anything else) stays in
#: ``<name>`` as text. Exactly one form is set for a non-null id; all are null for a
#: null one.
PACKED_IDS = ("event_id", "session_id")
UUID_SUFFIX = "__uuid"
HEX_SUFFIX = "__hex"
#: Since format 3, an event id of the tracker's form ``<canonical UUID>.<n>`` (the page
#: load's UUID and the event's number on that page, 1 to 10^18 - 1, no leading zero) is
#: stored as the UUID in ``event_id__page`` and n in ``event_id__seq``: a page's events
#: lie together, so the UUID repeats and the numbers count up by one.
COUNTED_IDS = ("event_id",)
PAGE_SUFFIX = "__page"
SEQ_SUFFIX = "__seq"
#: In a packed file whose times are whole milliseconds, ``received_at`` is stored as its
#: distance from ``ts`` in milliseconds (small, often 0) and the ``received_at`` column is
#: null; otherwise this column is null and ``received_at`` holds the time.
RECEIVED_LAG = "received_at__lag_ms"
#: How each format's files are named (``part-<uuid><suffix>``), newest first: 3 adds
#: counted event ids to 2; format 0 (``part-<uuid>.parquet``) holds ids as text.
FORMAT_SUFFIXES = {3: ".p3.parquet", 2: ".p2.parquet"}
#: The format the archiver writes.
FORMAT = 3
PACKED_SUFFIX = FORMAT_SUFFIXES[FORMAT]


def file_format(location: str) -> int:
    """The format of a part, from its name."""
    return next((v for v, suffix in FORMAT_SUFFIXES.items() if location.endswith(suffix)), 0)


def id_suffixes(name: str, fmt: int = FORMAT) -> tuple[str, ...]:
    """The suffixes of the columns id ``name`` is stored in, in a file of format ``fmt``
    (the text column's is "")."""
    if fmt < 2 or name not in PACKED_IDS:
        return ("",)
    counted = (PAGE_SUFFIX, SEQ_SUFFIX) if fmt >= 3 and name in COUNTED_IDS else ()
    return ("", *counted, UUID_SUFFIX, HEX_SUFFIX)


def unpacked_id(name: str, fmt: int = FORMAT) -> exp.Expr:
    """The text of packed id column ``name``: exactly the string that was archived."""
    forms: list[exp.Expr] = [exp.column(name)]
    if PAGE_SUFFIX in id_suffixes(name, fmt):
        # (|| is NULL when either side is: rows of other forms fall through)
        page = exp.Cast(this=exp.column(name + PAGE_SUFFIX), to=exp.DataType.build("VARCHAR"))
        seq = exp.Cast(this=exp.column(name + SEQ_SUFFIX), to=exp.DataType.build("VARCHAR"))
        forms.append(
            exp.DPipe(this=exp.DPipe(this=page, expression=exp.Literal.string(".")), expression=seq)
        )
    forms += [
        exp.Cast(this=exp.column(name + UUID_SUFFIX), to=exp.DataType.build("VARCHAR")),
        exp.Lower(this=exp.Hex(this=exp.column(name + HEX_SUFFIX))),
    ]
    return exp.func("COALESCE", *forms)


def _read(locations: Sequence[str], fmt: int) -> exp.Select:
    files = exp.Array(expressions=[exp.Literal.string(loc) for loc in locations])
    # union_by_name: files written before a column was added to events lack it (NULL).
    by_name = exp.EQ(this=exp.column("union_by_name"), expression=exp.true())
    read = exp.Anonymous(this="read_parquet", expressions=[files, by_name])
    properties = exp.alias_(
        exp.Cast(this=exp.column("properties"), to=exp.DataType.build("JSON")), "properties"
    )
    if fmt < 2:
        return exp.select(exp.Star(replace=[properties])).from_(exp.Table(this=read))
    parts = [exp.column(n + s) for n in PACKED_IDS for s in id_suffixes(n, fmt)]
    parts += [exp.column("received_at"), exp.column(RECEIVED_LAG)]
    star = exp.Star(except_=parts, replace=[properties])
    ids = [exp.alias_(unpacked_id(name, fmt), name) for name in PACKED_IDS]
    lag = exp.Anonymous(this="to_milliseconds", expressions=[exp.column(RECEIVED_LAG)])
    received = exp.func(
        "COALESCE", exp.column("received_at"), exp.Add(this=exp.column("ts"), expression=lag)
    )
    return exp.select(star, *ids, exp.alias_(received, "received_at")).from_(exp.Table(this=read))


def cold_select(locations: Sequence[str]) -> exp.Query:
    """Archived events from these Parquet files, typed as the warm ``events`` table (packed
    ids given back as the text that was archived)."""
    by_format: dict[int, list[str]] = {}
    for loc in locations:
        by_format.setdefault(file_format(loc), []).append(loc)
    reads: list[exp.Query] = [_read(locs, fmt) for fmt, locs in sorted(by_format.items())]
    query = reads[0]
    for read in reads[1:]:
        query = exp.Union(this=query, expression=read, distinct=False, by_name=True)
    return query


def _conjuncts(condition: exp.Expr | None) -> list[exp.Expr]:
    if condition is None:
        return []
    if isinstance(condition, exp.And):
        return _conjuncts(condition.this) + _conjuncts(condition.expression)
    if isinstance(condition, exp.Paren):
        return _conjuncts(condition.this)
    return [condition]


def _bounds(
    select: exp.Select, alias: str, values: dict[str, Any]
) -> tuple[str | None, datetime | None, datetime | None]:
    """(site, lo, hi) the statement's own conditions put on ``alias``'s rows."""
    site: str | None = None
    lo: datetime | None = None
    hi: datetime | None = None
    conditions = _conjuncts(select.args["where"].this if select.args.get("where") else None)
    for join in select.args.get("joins") or []:
        conditions += _conjuncts(join.args.get("on"))
    for cond in conditions:
        if not isinstance(cond, exp.EQ | exp.GT | exp.GTE | exp.LT | exp.LTE):
            continue
        left, right = cond.this, cond.expression
        flipped = False
        if isinstance(left, exp.Placeholder) and isinstance(right, exp.Column):
            left, right, flipped = right, left, True
        if not (
            isinstance(left, exp.Column)
            and left.table == alias
            and isinstance(right, exp.Placeholder)
            and right.name in values
        ):
            continue
        value = values[right.name]
        kind: type[exp.Expr] = type(cond)
        if flipped:
            mirrored: dict[type[exp.Expr], type[exp.Expr]] = {
                exp.GT: exp.LT,
                exp.GTE: exp.LTE,
                exp.LT: exp.GT,
                exp.LTE: exp.GTE,
            }
            kind = mirrored.get(kind, kind)
        if left.name == "site_id" and kind is exp.EQ and isinstance(value, str):
            site = value
        elif left.name == "ts" and isinstance(value, datetime):
            if kind in (exp.GT, exp.GTE):
                lo = value if lo is None else max(lo, value)
            elif kind is exp.LT:
                hi = value if hi is None else min(hi, value)
            elif kind is exp.LTE:
                # The bound's own instant belongs to the range (hi is exclusive).
                bound = value + timedelta(microseconds=1)
                hi = bound if hi is None else min(hi, bound)
            elif kind is exp.EQ:
                lo, hi = value, value + timedelta(microseconds=1)
    return site, lo, hi


def _is_events(table: exp.Table) -> bool:
    return (
        table.name == EVENTS and not table.args.get("db") and isinstance(table.this, exp.Identifier)
    )


def _events_tables(tree: exp.Expr) -> list[exp.Table]:
    return [t for t in tree.find_all(exp.Table) if _is_events(t)]


def with_cold(tree: exp.Expr, values: dict[str, Any], cold: ColdSource) -> exp.Expr:
    """``tree`` with every ``events`` reference widened to the archived events it may
    need (unchanged when none can matter)."""
    # The archived source of each reference, found on ``tree`` itself: the tree is copied
    # only when some reference must change (copying costs more than a small query).
    sources: list[exp.Expr | None] = []
    for table in _events_tables(tree):
        select = table.find_ancestor(exp.Select)
        archived = None
        if select is not None:
            site, lo, hi = _bounds(select, table.alias_or_name, values)
            if lo is None or hi is None or lo < hi:
                archived = cold.source(site, lo, hi)
        sources.append(archived)
    if all(archived is None for archived in sources):
        return tree
    tree = tree.copy()
    for table, archived in zip(_events_tables(tree), sources, strict=True):
        if archived is None:
            continue
        alias = table.alias_or_name
        warm = exp.select(exp.Star()).from_(exp.Table(this=exp.to_identifier(EVENTS)))
        union = exp.Union(this=warm, expression=archived, distinct=False, by_name=True)
        table.replace(exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier(alias))))
    return tree
