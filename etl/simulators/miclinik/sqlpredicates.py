"""Compiling a forged criterion into a ``row -> bool`` closure, and joining closures with AND/OR.

Each closure does the least work per row: literals are prepared once (:class:`sqlvalues.Literal`),
the operator is chosen when compiling, and a column is read with one ``row.get``. A criterion is true
only when MySQL's result is TRUE: NULL (unknown) counts as false, so ``NOT LIKE``/``NOT IN``/``<>``
on a NULL column never match.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from etl.simulators.miclinik import sqlvalues
from etl.simulators.miclinik.sqlcriteria import Column, Const, Criterion

Row = Mapping[str, object]
Predicate = Callable[[Row], bool]
Types = Mapping[str, str]
Comparator = Callable[[object, sqlvalues.Literal], "int | None"]


def always(row: Row) -> bool:
    """The predicate of an empty filter."""
    return True


def all_of(preds: list[Predicate]) -> Predicate:
    """``p1 AND p2 AND ...``."""
    if len(preds) == 2:
        first, second = preds
        return lambda row: first(row) and second(row)

    def every(row: Row) -> bool:
        return all(pred(row) for pred in preds)

    return every


def any_of(preds: list[Predicate]) -> Predicate:
    """``p1 OR p2 OR ...``."""
    if len(preds) == 2:
        first, second = preds
        return lambda row: first(row) or second(row)

    def some(row: Row) -> bool:
        return any(pred(row) for pred in preds)

    return some


def _getter(operand: Column | Const, types: Types) -> Callable[[Row], object]:
    if isinstance(operand, Const):
        value = operand.value
        return lambda row: value
    name = operand.name
    declared = types.get(name)
    if declared is not None:
        coerce = sqlvalues.coercer(declared)
        return lambda row: coerce(row.get(name))
    return lambda row: row.get(name)


def _is_null(value: object) -> bool:
    return value is None or sqlvalues.normalise(value) is None


def criterion_predicate(crit: Criterion, types: Types) -> Predicate:
    """The closure for one criterion; ``types`` declares columns as number/datetime/text."""
    get = _getter(crit.left, types)
    textual = isinstance(crit.left, Column) and types.get(crit.left.name) == "text"
    compare = sqlvalues.compare_text if textual else sqlvalues.compare
    op, right = crit.op, crit.right
    if op in ("IS", "IS NOT"):
        test = _is_test(get, right)  # type: ignore[arg-type]
        return test if op == "IS" else lambda row: not test(row)
    if op in ("LIKE", "NOT LIKE"):
        like = sqlvalues.like_matcher(right)  # type: ignore[arg-type]
        wanted = op == "LIKE"
        return lambda row: like(get(row)) is wanted
    if op in ("IN", "NOT IN"):
        return _in_predicate(get, right, types, op == "IN", compare)  # type: ignore[arg-type]
    if isinstance(right, Const):
        return _compare_literal(get, op, sqlvalues.Literal(right.value), compare)
    other = _getter(right, types)  # type: ignore[arg-type]
    return lambda row: _outcome(op, get(row), sqlvalues.Literal(other(row)))


def _is_test(get: Callable[[Row], object], target: str) -> Predicate:
    if target in ("NULL", "UNKNOWN"):
        return lambda row: _is_null(get(row))
    wanted = target == "TRUE"
    return lambda row: sqlvalues.truthy(get(row)) is wanted


def _compare_literal(get: Callable[[Row], object], op: str, lit: sqlvalues.Literal, compare: Comparator) -> Predicate:
    if op == "=":
        return lambda row: compare(get(row), lit) == 0
    if op == "<":
        return lambda row: compare(get(row), lit) == -1
    if op == ">":
        return lambda row: compare(get(row), lit) == 1
    if op == "<=":
        return lambda row: compare(get(row), lit) in (-1, 0)
    if op == ">=":
        return lambda row: compare(get(row), lit) in (0, 1)
    if op == "<>":
        return lambda row: compare(get(row), lit) in (-1, 1)
    return lambda row: _outcome(op, get(row), lit)


def _outcome(op: str, value: object, lit: sqlvalues.Literal) -> bool:
    if op == "<=>":
        if _is_null(value) or not lit.kind:
            return _is_null(value) and not lit.kind
        return sqlvalues.compare(value, lit) == 0
    result = sqlvalues.compare(value, lit)
    if result is None:
        return False
    return {
        "=": result == 0,
        "<>": result != 0,
        "<": result < 0,
        ">": result > 0,
        "<=": result <= 0,
        ">=": result >= 0,
    }[op]


def _in_predicate(
    get: Callable[[Row], object],
    items: tuple[Column | Const, ...],
    types: Types,
    wanted: bool,
    compare: Comparator,
) -> Predicate:
    """``IN`` is true on a match; ``NOT IN`` only when nothing matches and nothing is NULL."""
    if all(isinstance(item, Const) for item in items):
        fixed = [sqlvalues.Literal(item.value) for item in items]  # type: ignore[union-attr]

        def literals(row: Row) -> list[sqlvalues.Literal]:
            return fixed
    else:
        getters = [_getter(item, types) for item in items]

        def literals(row: Row) -> list[sqlvalues.Literal]:
            return [sqlvalues.Literal(g(row)) for g in getters]

    def member(row: Row) -> bool:
        value = get(row)
        saw_null = False
        for lit in literals(row):
            result = compare(value, lit)
            if result == 0:
                return wanted
            saw_null = saw_null or result is None
        return not wanted and not saw_null

    return member
