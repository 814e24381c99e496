"""SQL as SQLGlot expression trees: building blocks, and the printer for each engine.

Statements are built as trees, never as strings with values in them. Fixed fragments are
written once, in DuckDB's syntax, with holes named ``_x`` (real columns never start with
an underscore) and filled with other trees; values enter only as named placeholders
(:class:`Params`). :func:`render` prints a tree for an engine (``duckdb`` now,
``postgres`` for the production store): meaning lives in the tree, the printer only
chooses syntax.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp

#: Engines this module prints for, by SQLGlot dialect name.
DIALECTS = ("duckdb", "postgres")


@dataclass
class Params:
    """Values bound to placeholders ``p0``, ``p1``… (never printed into SQL)."""

    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any) -> exp.Placeholder:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return exp.Placeholder(this=name)

    def many(self, values: tuple[Any, ...] | list[Any]) -> list[exp.Expr]:
        return [self.add(v) for v in values]


@dataclass(frozen=True)
class Statement:
    """A statement tree and its parameter values."""

    tree: exp.Expr
    params: dict[str, Any]

    def render(self, dialect: str = "duckdb") -> tuple[str, dict[str, Any]]:
        return render(self.tree, dialect), self.params


def render(tree: exp.Expr, dialect: str = "duckdb") -> str:
    if dialect not in DIALECTS:
        raise ValueError(f"no SQL printer for {dialect!r}")
    rewrites = (*SYNTAX_PASSES.get(dialect, ()), *SPEED_UPS.get(dialect, ()))
    for i, rewrite in enumerate(rewrites):
        tree = tree.transform(rewrite, copy=i == 0)  # (one copy: the caller's tree stays)
    return tree.sql(dialect=dialect, unsupported_level=sqlglot.ErrorLevel.RAISE)


def first_by(value: exp.Expr, *keys: exp.Expr) -> exp.Expr:
    """``value`` of the row with the smallest ``keys`` in a group (keys unique per row)."""
    order = ", ".join(f"_k{i}" for i in range(len(keys)))
    tree = fragment(
        f"(array_agg(_v ORDER BY {order}))[1]",
        _v=value,
        **{f"_k{i}": key for i, key in enumerate(keys)},
    )
    tree.meta["first_by"] = (value, keys)
    return tree


def last_by(value: exp.Expr, condition: exp.Expr, *keys: exp.Expr) -> exp.Expr:
    """``value`` of the row with the largest ``keys`` among a group's rows where
    ``condition`` holds (NULL when none does; keys unique per row)."""
    order = ", ".join(f"_k{i} DESC" for i in range(len(keys)))
    tree = fragment(
        f"(array_agg(_v ORDER BY {order}) FILTER (WHERE _c))[1]",
        _v=value,
        _c=condition,
        **{f"_k{i}": key for i, key in enumerate(keys)},
    )
    tree.meta["last_by"] = (value, condition, keys)
    return tree


def _arg_max(node: exp.Expr) -> exp.Expr:
    """DuckDB: ``last_by`` as ``arg_max(value, (keys…)) FILTER (WHERE condition)``, which
    needs no per-group sort; the same row, as the keys are unique."""
    found = node.meta.get("last_by") if node.meta else None
    if not found:
        return node
    value, condition, keys = found
    key = keys[0].copy() if len(keys) == 1 else exp.Tuple(expressions=[k.copy() for k in keys])
    return exp.Filter(
        this=exp.ArgMax(this=value.copy(), expression=key),
        expression=exp.Where(this=condition.copy()),
    )


def _arg_min(node: exp.Expr) -> exp.Expr:
    """DuckDB: ``first_by`` as ``arg_min(value, (keys…))``, which needs no per-group sort
    (about three times faster on large groups); the same row, as the keys are unique."""
    found = node.meta.get("first_by") if node.meta else None
    if not found:
        return node
    value, keys = found
    key = keys[0].copy() if len(keys) == 1 else exp.Tuple(expressions=[k.copy() for k in keys])
    return exp.ArgMin(this=value.copy(), expression=key)


def _jsonb_text(node: exp.Expr) -> exp.Expr:
    """PostgreSQL: a property of the ``jsonb`` properties column as text
    (``jsonb_extract_path_text``; the printer's default is the ``json`` function)."""
    if not isinstance(node, exp.JSONExtractScalar) or not isinstance(node.expression, exp.JSONPath):
        return node
    keys = node.expression.expressions[1:]
    if not keys or not all(isinstance(k, exp.JSONPathKey) for k in keys):
        return node
    path = [exp.Literal.string(str(k.this)) for k in keys]
    return exp.Anonymous(this="jsonb_extract_path_text", expressions=[node.this.copy(), *path])


#: Engine-specific rewrites applied when printing: the same rows faster (DuckDB), or the
#: engine's spelling where the printer's default does not fit our column types (PostgreSQL).
SPEED_UPS: dict[str, tuple[Callable[[exp.Expr], exp.Expr], ...]] = {
    "duckdb": (_arg_min, _arg_max),
    "postgres": (_jsonb_text,),
}


def _jsonb_path_text(node: exp.Expr) -> exp.Expr:
    """PostgreSQL: ``properties ->> '$.key'`` as ``jsonb_extract_path_text(properties,
    'key')``. The printer's own spelling, json_extract_path_text, takes ``json`` and our
    properties column is ``jsonb``."""
    if not isinstance(node, exp.JSONExtractScalar):
        return node
    path = node.expression
    keys = path.expressions[1:] if isinstance(path, exp.JSONPath) else []
    if not keys or not all(isinstance(k, exp.JSONPathKey) for k in keys):
        return node
    return exp.Anonymous(
        this="jsonb_extract_path_text",
        expressions=[node.this.copy(), *(exp.Literal.string(str(k.this)) for k in keys)],
    )


#: Spellings a printer gets wrong for our schema, corrected when printing (same meaning).
SYNTAX_PASSES: dict[str, tuple[Callable[[exp.Expr], exp.Expr], ...]] = {
    "postgres": (_jsonb_path_text,)
}


@functools.lru_cache(maxsize=512)
def _parse(text: str) -> exp.Expr:
    return sqlglot.parse_one(text, read="duckdb")


def fragment(text: str, **holes: exp.Expr) -> exp.Expr:
    """A fixed SQL fragment (DuckDB syntax) with its ``_name`` holes filled by trees."""
    tree = _parse(text).copy()
    if not holes:
        return tree

    def fill(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not node.table and node.name in holes:
            return holes[node.name].copy()
        return node

    return tree.transform(fill, copy=False)  # (``tree`` is a copy already)


def column(name: str, table: str | None = None) -> exp.Column:
    """A column of one of our tables (``name`` comes from our own catalogue)."""
    return exp.column(name, table=table)


def number(value: int | float) -> exp.Expr:
    """A number we computed ourselves (offsets, bucket sizes, limits)."""
    return exp.Literal.number(value)


def and_all(conditions: list[exp.Expr]) -> exp.Expr:
    if not conditions:
        return exp.true()
    return exp.and_(*conditions)


def or_all(conditions: list[exp.Expr]) -> exp.Expr:
    if not conditions:
        return exp.false()
    return exp.or_(*conditions)


def is_in(value: exp.Expr, params: Params, values: tuple[Any, ...]) -> exp.Expr:
    if len(values) == 1:
        return exp.EQ(this=value.copy(), expression=params.add(values[0]))
    return exp.In(this=value.copy(), expressions=params.many(values))


def count_if(condition: exp.Expr) -> exp.Expr:
    return fragment("count(*) FILTER (WHERE _c)", _c=condition)


def count_all() -> exp.Expr:
    return fragment("count(*)")


def ratio(numerator: exp.Expr, denominator: exp.Expr, scale: int = 1) -> exp.Expr:
    """numerator / denominator x scale as a double, 0 when the denominator is 0."""
    return fragment(
        "CASE WHEN _d > 0 THEN CAST(_n AS DOUBLE) * _k / _d ELSE 0.0 END",
        _n=numerator,
        _d=denominator,
        _k=number(scale),
    )


def epoch_seconds(ts: exp.Expr) -> exp.Expr:
    """Whole seconds since the epoch of a UTC timestamp column."""
    return fragment("CAST(FLOOR(EPOCH(_ts)) AS BIGINT)", _ts=ts)


def subquery_in(value: exp.Expr, select: exp.Select) -> exp.Expr:
    return exp.In(this=value.copy(), query=exp.Subquery(this=select))
