"""The miclinik simulator's ``sqlfilters`` parser: recorded filters, each operator, nesting, both grammars."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.simulators.miclinik.sqlfilters import MAX_DEPTH, SqlFilterError, SqlFilterSqlError, parse
from tests.support import DOLIBARR_FIXTURES, require_fixtures

FIXTURES = DOLIBARR_FIXTURES


def _products(count: int) -> list[dict[str, object]]:
    """Products 1..count as the recorded instance held them (product 1 renamed and touched last)."""
    rows: list[dict[str, object]] = [
        {"t.rowid": i, "t.ref": f"FIX-00{i}", "t.label": f"Fixture product {i}", "t.tms": datetime(2026, 11, 23, 7, 20)}
        for i in range(1, min(count, 5) + 1)
    ]
    rows[0].update({"t.label": "Fixture product 1 (renamed)", "t.tms": datetime(2026, 11, 23, 7, 25, 10)})
    if count >= 6:
        label = "Tom's Fish & Chips bold café 5 > 3"
        rows.append({"t.rowid": 6, "t.ref": "FIX-O_Brien&Co", "t.label": label, "t.tms": None})
    return rows


TABLES: dict[str, list[dict[str, object]]] = {
    "products_1_5": _products(5),
    "products_1_6": _products(6),
    "thirdparties_1": [{"t.rowid": 1, "t.nom": "Acme Inc", "t.client": 1}],
    "thirdparties_none": [],
    "orders": [{"t.rowid": 1, "t.fk_statut": 1, "t.ref": "SO2611-0001"}, {"t.rowid": 2, "t.fk_statut": 0}],
}
WRONG_BALANCE = "Wrong balance of parenthesis in sqlfilters=((t.nom:=:Acme Inc)"
# (fixture file, table state when it was recorded, sqlfilters, HTTP status, ids returned or error message)
RECORDED = [
    ("orders_list_sqlfilters_validated", "orders", "(t.fk_statut:=:1)", 200, [1]),
    (
        "products_list_sqlfilters_apostrophe_backslash",
        "products_1_6",
        "(t.label:=:'Tom\\'s Fish & Chips bold café 5 > 3')",
        200,
        [],
    ),
    (
        "products_list_sqlfilters_apostrophe_eq",
        "products_1_6",
        "(t.label:=:'Tom's Fish & Chips bold café 5 > 3')",
        200,
        [6],
    ),
    ("products_list_sqlfilters_apostrophe_like", "products_1_6", "(t.label:like:'Tom's%')", 200, []),
    ("products_list_sqlfilters_like", "products_1_6", "(t.ref:like:'FIX-O%')", 200, [6]),
    ("products_list_sqlfilters_tms", "products_1_5", "(t.tms:>:'2026-11-23 07:24:00')", 200, [1]),
    ("thirdparties_list_sqlfilters", "thirdparties_1", "(t.nom:=:'Acme Inc')", 200, [1]),
    ("thirdparties_list_sqlfilters_no_match", "thirdparties_none", "(t.nom:=:'Acme Inc')", 404, []),
    ("thirdparties_list_sqlfilters_invalid", "thirdparties_1", "(t.nom:=:Acme Inc", 400, WRONG_BALANCE),
]


def _ids(text: str, rows: list[dict[str, object]], grammar: str = "new", **subst: object) -> list[int]:
    expr = parse(text, grammar)
    return [row["t.rowid"] for row in rows if expr.matches(row, **subst)]  # type: ignore[misc]


@pytest.mark.parametrize(("fixture", "table", "text", "status", "expected"), RECORDED, ids=[r[0] for r in RECORDED])
def test_recorded_filters_select_the_recorded_rows(fixture: str, table: str, text: str, status: int, expected) -> None:
    """Every recorded sqlfilters request selects the rows (or raises the error) the real server answered with."""
    if status == 400:
        with pytest.raises(SqlFilterError) as caught:
            parse(text)
        assert (caught.value.status, caught.value.reason, caught.value.filter) == (400, expected, text)
        assert caught.value.api_message == f"Error when validating parameter sqlfilters -> {expected}"
    else:
        assert _ids(text, TABLES[table]) == expected


def test_recorded_table_agrees_with_the_fixture_files() -> None:
    """The RECORDED table above is a faithful transcription of the recorded request/response files."""
    require_fixtures()
    for fixture, _table, text, status, expected in RECORDED:
        recorded = json.loads((FIXTURES / f"{fixture}.json").read_text(encoding="utf-8"))
        body = recorded["response"]["body"]
        assert recorded["request"]["query"]["sqlfilters"] == text, fixture
        assert recorded["response"]["status"] == status, fixture
        if status == 200:
            assert [int(o["id"]) for o in body] == expected, fixture
        elif status == 400:
            assert body["error"]["message"] == f"Bad Request: Error when validating parameter sqlfilters -> {expected}"


ROWS: list[dict[str, object]] = [
    {"t.rowid": 1, "t.nom": "Acme Inc", "t.client": 1, "t.email": "buyer@acme.example",
     "t.price": Decimal("12.75000000"), "t.tms": datetime(2024, 1, 2, 10, 0), "t.datec": date(2024, 1, 2)},
    {"t.rowid": 2, "t.nom": "Élan Vital", "t.client": 3, "t.email": None,
     "t.price": "3.00000000", "t.tms": "2023-12-31 23:59:59", "t.datec": date(2023, 12, 31)},
    {"t.rowid": 3, "t.nom": "100% Pure_Juice", "t.client": 0, "t.email": "",
     "t.price": 150.5, "t.tms": None, "t.datec": None},
    {"t.rowid": 4, "t.nom": "O'Reilly & Sons", "t.client": 2, "t.email": "ops@oreilly.example",
     "t.price": 0, "t.tms": datetime(2024, 6, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))), "t.datec": date(2024, 6, 1)},
]  # fmt: skip
OPERATOR_CASES = [
    ("(t.nom:=:'acme inc')", [1]),  # case-insensitive collation
    ("(t.nom:=:'elan vital')", [2]),  # accent-insensitive collation
    ("(t.nom:=:'Acme Inc   ')", [1]),  # PAD SPACE: trailing blanks ignored by =
    ("(t.client:!=:1)", [2, 3, 4]),
    ("(t.client:<>:1)", [2, 3, 4]),
    ("(t.client:<:2)", [1, 3]),
    ("(t.client:>:2)", [2]),
    ("(t.client:<=:2)", [1, 3, 4]),
    ("(t.client:>=:2)", [2, 4]),
    ("(t.price:>:'100')", [3]),  # numeric column vs quoted number compares numerically
    ("(t.price:<:'5')", [2, 4]),  # "3.00000000" kept as a string still compares as 3
    ("(t.price:=:3)", [2]),
    ("(t.price:=:12.75)", [1]),
    ("(t.nom:=:0)", [1, 2, 4]),  # MySQL: a string compared with a number is its numeric prefix
    ("(t.nom:like:'a%')", [1]),
    ("(t.nom:like:'%INC')", [1]),
    ("(t.nom:like:'_cme%')", [1]),
    ("(t.nom:like:'ELAN%')", [2]),
    ("(t.nom:like:'100\\%%')", [3]),  # backslash escapes a wildcard
    ("(t.nom:like:'%\\_%')", [3]),
    ("(t.nom:like:'%_%')", [1, 2, 3, 4]),
    ("(t.nom:like:'Acme Inc ')", []),  # LIKE does not pad
    ("(t.nom:like:O%)", [4]),  # an unquoted like value is a pattern as it stands
    ("(t.email:notlike:'%example')", [3]),  # NULL is neither like nor not like
    ("(t.client:in:1,3)", [1, 2]),
    ("(t.client:notin:1,3)", [3, 4]),
    ("(t.client:in: 0 , 2 )", [3, 4]),
    ("(t.client:in:'0','2')", [3, 4]),
    ("(t.nom:in:'Acme Inc','Élan Vital')", [1, 2]),
    ("(t.email:in:'buyer@acme.example')", []),  # Dolibarr's sanitize drops '@' from quoted in-items
    ("(t.email:notin:'x')", [1, 3, 4]),
    ("(t.email:is:NULL)", [2]),
    ("(t.email:isnot:null)", [1, 3, 4]),
    ("(t.email:=:NULL)", []),
    ("(t.email:!=:'x')", [1, 3, 4]),
    ("(t.email:<=>:NULL)", [2]),
    ("(t.client:is:TRUE)", [1, 2, 4]),
    ("(t.client:is:FALSE)", [3]),
    ("(t.tms:>:'2024-01-01 00:00:00')", [1, 4]),
    ("(t.tms:<:'20240101')", [2]),
    ("(t.tms:>=:'2024-01-02')", [1, 4]),
    ("(t.tms:<=:'2024-01-02 10:00:00')", [1, 2]),
    ("(t.tms:=:'2024-06-01 00:00:00')", [4]),  # an aware datetime compares in UTC
    ("(t.tms:>:20240101000000)", [1, 4]),  # a DATETIME in numeric context is YYYYMMDDHHMMSS
    ("(t.datec:<:'2024-01-02 00:00:01')", [1, 2]),
    ("(t.datec:=:'20240601')", [4]),
    ("(1:=:1)", [1, 2, 3, 4]),
]
NESTING_CASES = [
    ("((t.client:=:1) or (t.client:=:3)) and (t.email:isnot:NULL)", [1]),
    ("(t.client:=:1) or (t.client:=:3) and (t.rowid:>:5)", [1]),  # AND binds tighter than OR
    ("(((t.rowid:>=:2) and ((t.client:in:2,3) or (t.nom:like:'100%'))))", [2, 3, 4]),
    ("(t.rowid:LIKE:'1') OR (t.rowid:IN:2,3) AnD (t.rowid:ISNOT:NULL)", [1, 2, 3]),
    ("(t.rowid:=:1)or(t.rowid:=:4)", [1, 4]),
    ("t.rowid:=:2", [2]),  # outer parentheses are added
    ("((t.rowid:=:1) or (t.rowid:=:2)) and ((t.rowid:=:2) or (t.rowid:=:3))", [2]),
    ("(" * MAX_DEPTH + "(t.rowid:=:3)" + ")" * MAX_DEPTH, [3]),
]


@pytest.mark.parametrize(("text", "expected"), OPERATOR_CASES + NESTING_CASES)
def test_each_operator_and_nesting_selects_what_mariadb_would(text: str, expected: list[int]) -> None:
    """Each operator, value form and and/or nesting selects the rows MariaDB would return for the forged SQL."""
    assert _ids(text, ROWS) == expected


def test_substitution_tokens_use_the_parse_defaults_or_the_call_overrides() -> None:
    """__NOW__ and __USER_ID__ take parse's values unless matches() is given others."""
    expr = parse("(t.tms:<:__NOW__)", now=datetime(2024, 3, 1))
    assert [r["t.rowid"] for r in ROWS if expr.matches(r)] == [1, 2]
    assert [r["t.rowid"] for r in ROWS if expr.matches(r, now=datetime(2025, 1, 1, tzinfo=UTC))] == [1, 2, 4]
    assert _ids("(t.rowid:=:__USER_ID__)", ROWS, user_id=3) == [3]
    assert _ids("(t.rowid:=:'__USER_ID__')", ROWS, user_id=4) == [4]
    assert [r["t.rowid"] for r in ROWS if parse("(t.rowid:in:1,__USER_ID__)", user_id=2).matches(r)] == [1, 2]


def test_columns_lists_what_the_caller_must_check_exists() -> None:
    """columns() names every column read, including unquoted words MySQL would read as columns."""
    assert parse("((t.nom:like:'a%') or (t.NAME_ALIAS:like:'a%')) and (t.datec:<:'20160101')").columns() == {
        "t.nom", "t.name_alias", "t.datec"}  # fmt: skip
    assert parse("(t.nom:=:Acme)").columns() == {"t.nom", "acme"}
    assert parse("t.rowid:=:1 or t.rowid:=:2").columns() == {"t.rowid", "1ortrowid2"}  # one criterion, odd value
    assert parse("(t.client:in:1,fk_user)").columns() == {"t.client", "fk_user"}
    assert parse("(1:=:1)").columns() == set()


def test_column_types_make_string_values_compare_as_their_db_type() -> None:
    """A declared column type coerces stored strings before comparing (a text ref stays text)."""
    rows = [{"t.rowid": 1, "t.ref": "100", "t.tms": "20240105"}, {"t.rowid": 2, "t.ref": "20", "t.tms": "2023-01-01"}]
    assert [r["t.rowid"] for r in rows if parse("(t.ref:<:'15')", column_types={"t.ref": "text"}).matches(r)] == [1]
    assert [r["t.rowid"] for r in rows if parse("(t.ref:<:'15')").matches(r)] == []
    typed = parse("(t.tms:>:'2024-01-01')", column_types={"t.tms": "datetime"})
    assert [r["t.rowid"] for r in rows if typed.matches(r)] == [1]


@pytest.mark.parametrize("text", ["", "   ", "0", None])
def test_empty_filter_matches_every_row(text: str | None) -> None:
    """An empty, blank or PHP-falsy filter is skipped by Dolibarr, so every row matches."""
    assert _ids(text, ROWS) == [1, 2, 3, 4]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "(t.nom:=:'x'))",
        "((t.nom:=:'x')",
        "(t.nom:=:'x') xor (t.rowid:=:1)",
        "(t.nom:foo:'x')",
        "(t.nom:=:f(x))",
        "(t nom:=:'x')",
        "(t.nom:=:'x') and not (t.rowid:=:1)",
        "(t.nom:=:'x'); DROP TABLE llx_societe",
        "(t.rowid:=:1) || (t.rowid:=:2)",
        "(t.nom:=:'Tom''s')x",
    ],
)
def test_new_grammar_rejects_bad_syntax_with_400(text: str) -> None:
    """Unbalanced parentheses, stray text, unknown operators and values with parentheses are refused with 400."""
    with pytest.raises(SqlFilterError) as caught:
        parse(text)
    assert type(caught.value) is SqlFilterError
    assert caught.value.status == 400 and caught.value.filter == text


@pytest.mark.parametrize(
    "text",
    [
        "(t.nom:sin:'x')",
        "(t.nom:=:'x') andor (t.rowid:=:1)",
        "(t.nom:=:'x')(t.rowid:=:1)",
        "()",
        "(t.nom:=:'x') and",
        "(t.rowid:in:1,,2)",
        "(t.rowid:in:1 2)",
        "(t.rowid:is:1)",
        "(t.rowid:is:'NULL')",
        "(t.nom:=:'__NOW__')",
        "(.nom:=:1)",
        "(t.nom:=:select)",
        "(" * (MAX_DEPTH + 1) + "(t.rowid:=:1)" + ")" * (MAX_DEPTH + 1),
    ],
)
def test_new_grammar_text_that_forges_broken_sql_is_a_db_error(text: str) -> None:
    """What passes Dolibarr's checks but is not valid SQL raises SqlFilterSqlError (the server's 503)."""
    with pytest.raises(SqlFilterSqlError) as caught:
        parse(text)
    assert caught.value.status == 503 and "SQL syntax" in caught.value.db_error


def test_apostrophe_forms_behave_as_recorded() -> None:
    """An apostrophe works unescaped with =, never with like, and neither \\' nor '' matches."""
    rows = TABLES["products_1_6"]
    assert _ids("(t.label:=:'Tom's Fish & Chips bold café 5 > 3')", rows) == [6]
    assert _ids("(t.label:=:'Tom''s Fish & Chips bold café 5 > 3')", rows) == []
    assert _ids("(t.label:like:'Tom's Fish%')", rows) == []
    assert _ids("(t.label:like:'Tom_s Fish%')", rows) == [6]


def test_old_grammar_checks_balance_then_rewrites_only_what_its_regex_matches() -> None:
    """OLD: unbalanced is a 503 validation error; criteria with ':' in the value or bare text reach SQL and fail."""
    assert _ids("(t.nom:=:'Acme Inc') or (t.client:in:2,3)", ROWS, "old") == [1, 2, 4]
    assert _ids("(t.tms:<:'20240101235959')", ROWS, "old") == [2]
    assert _ids("(t.nom:=:abc)", ROWS, "old") == [1, 2, 4]  # unquoted text is cast to float: t.nom = 0
    assert _ids("(t.rowid:=:1) || (t.rowid:=:2)", ROWS, "old") == [1, 2]
    with pytest.raises(SqlFilterError) as caught:
        parse("(t.nom:=:'x'", "old")
    assert type(caught.value) is SqlFilterError and caught.value.status == 503
    assert caught.value.api_message == "Error when validating parameter sqlfilters (t.nom:=:'x'"
    for broken in ["(t.tms:>:'2026-11-23 07:24:00')", "t.rowid:=:1", "(t.nom:=:'x') and 1=1", "(t.rowid:isnot:1)"]:
        with pytest.raises(SqlFilterSqlError):
            parse(broken, "old")


def test_a_bad_grammar_name_is_a_programming_error() -> None:
    """Only "new" and "old" exist; anything else is a ValueError, not a filter error."""
    with pytest.raises(ValueError, match="grammar"):
        parse("(t.rowid:=:1)", "v17")


# ---------------------------------------------------------------------------------------------- properties

FILTER_ALPHABET = st.sampled_from(list("()():::'''  ,,.%_\\tTandorANDOR<>=!insotlkeNULL0123456789xé&|;-"))
COLUMNS = ["t.rowid", "t.nom", "t.tms", "t.price", "t.client", "t.email", "ef.code"]
SAFE_TEXT = st.text(st.characters(exclude_characters="()':,", exclude_categories=("Cs", "Cc")), max_size=10).filter(
    lambda s: "__NOW__" not in s
)
QUOTED = SAFE_TEXT.map(lambda s: f"'{s}'")
NUMBER = st.one_of(st.integers(-(10**12), 10**12).map(str), st.decimals(-1000, 1000, places=3).map(str))
SCALAR = st.one_of(QUOTED, NUMBER, st.sampled_from(["'2024-01-01'", "'20240101'", "'12.75000000'"]))


def _criterion(column: str, op_value: tuple[str, str]) -> str:
    return f"({column}:{op_value[0]}:{op_value[1]})"


OP_VALUE = st.one_of(
    st.tuples(st.sampled_from(["=", "!=", "<", ">", "<=", ">=", "<>"]), st.one_of(SCALAR, st.just("NULL"))),
    st.tuples(st.sampled_from(["like", "notlike", "LIKE", "NotLike"]), QUOTED),
    st.tuples(
        st.sampled_from(["in", "notin", "IN"]),
        st.lists(st.one_of(QUOTED, NUMBER), min_size=1, max_size=4).map(",".join),
    ),
    st.tuples(st.sampled_from(["is", "isnot", "ISNOT"]), st.sampled_from(["NULL", "null"])),
)
CRITERION = st.builds(_criterion, st.sampled_from(COLUMNS), OP_VALUE)
CONNECTIVE = st.sampled_from([" and ", " or ", " AND ", " OR "])
FILTER = st.recursive(
    CRITERION, lambda inner: st.builds(lambda a, c, b: f"({a}{c}{b})", inner, CONNECTIVE, inner), max_leaves=6
)
VALUE = st.one_of(
    st.none(), st.text(max_size=12), st.integers(), st.booleans(), st.floats(),
    st.decimals(allow_nan=True, allow_infinity=True), st.dates(),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7))]) | st.none()),
    st.sampled_from(["2024-01-01 10:00:00", "20240101", "12.75000000", "", "-0.5e3x"]),
)  # fmt: skip
ROW = st.fixed_dictionaries({column: VALUE for column in COLUMNS})


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(st.text(), st.text(FILTER_ALPHABET, max_size=40)), grammar=st.sampled_from(["new", "old"]))
def test_parse_raises_nothing_but_sql_filter_error(text: str, grammar: str) -> None:
    """On arbitrary text parse either returns an Expr or raises SqlFilterError, never anything else."""
    try:
        expr = parse(text, grammar)
    except SqlFilterError as exc:
        assert exc.filter == text and exc.status in (400, 503)
    else:
        assert isinstance(expr.columns(), set)


@settings(max_examples=200, deadline=None)
@given(text=FILTER, rows=st.lists(ROW, min_size=1, max_size=4))
def test_generated_valid_filters_parse_in_both_grammars_and_never_crash_on_rows(text: str, rows: list) -> None:
    """A well-formed filter parses under NEW and OLD, reads only its columns, and matches any row to a bool."""
    for grammar in ("new", "old"):
        expr = parse(text, grammar)
        assert expr.columns() <= set(COLUMNS)
        for row in rows:
            assert expr.matches(row) in (True, False)
            assert expr.matches(row, now=datetime(2030, 1, 1), user_id=7) in (True, False)


@settings(max_examples=200, deadline=None)
@given(value=st.integers(-50, 50) | st.none(), bound=st.integers(-50, 50), quoted=st.booleans())
def test_comparisons_on_numbers_agree_with_python(value: int | None, bound: int, quoted: bool) -> None:
    """For integers <, =, > partition the rows exactly like Python's comparison, and NULL matches none."""
    row, literal = {"t.a": value}, f"'{bound}'" if quoted else str(bound)
    outcome = {op: parse(f"(t.a:{op}:{literal})").matches(row) for op in ("<", "=", ">", "<=", ">=", "!=")}
    if value is None:
        assert not any(outcome.values())
    else:
        expected = {"<": value < bound, "=": value == bound, ">": value > bound, "<=": value <= bound,
                    ">=": value >= bound, "!=": value != bound}  # fmt: skip
        assert outcome == expected


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=8) | st.none(), pattern=st.text(st.sampled_from("ab%_A "), max_size=5))
def test_like_and_notlike_are_complements_except_on_null(value: str | None, pattern: str) -> None:
    """LIKE and NOT LIKE never both hold; exactly one holds unless the column is NULL."""
    row = {"t.a": value}
    like, notlike = (parse(f"(t.a:{op}:'{pattern}')").matches(row) for op in ("like", "notlike"))
    assert (like or notlike) is (value is not None) and not (like and notlike)


@settings(max_examples=200, deadline=None)
@given(value=st.integers(0, 6) | st.none(), items=st.lists(st.integers(0, 6), min_size=1, max_size=4))
def test_in_is_an_or_of_equalities(value: int | None, items: list[int]) -> None:
    """(x:in:a,b) holds exactly when (x:=:a) or (x:=:b) does, and notin when in does not (NULL aside)."""
    row, listed = {"t.a": value}, ",".join(map(str, items))
    ors = " or ".join(f"(t.a:=:{i})" for i in items)
    assert parse(f"(t.a:in:{listed})").matches(row) is parse(ors).matches(row)
    assert parse(f"(t.a:notin:{listed})").matches(row) is (value is not None and value not in items)
