"""Pure paging of a BILLmanager list: where a scan goes after a page, and what the page proves.

Lists are offset-paged (``p_num``/``p_cnt``, UI parameters, [I] as API parameters) and live:
a row deleted between two pages shifts every later row back by one (protocols.md §4.5). So a
page's answer is read for evidence, not only for rows:

- **The list's own count.** ``p_elems`` is the server's total; every page reports it as
  :attr:`Evidence.total`. The cursor carries the ``p_elems`` of its pass's first page, so a
  resumed run (a fresh stream object) still compares against it; a page whose ``p_elems``
  differs says :attr:`Evidence.shifted` and ends the pass (the engine starts a new one).
- **The function answered.** ``$func`` other than the one asked (the logon form) is a doubt:
  the page proves nothing, the pass ends, nothing is deleted.
- **The end.** With ``p_elems``, the end is where the rows read reach it. A short page before
  that is a *silent page cap* (ask 500, get 100): the scan goes on with the size the server
  actually serves, never a larger one, at an offset that continues exactly after the rows read.
  Without ``p_elems``, a short page is not proof either: the page after it is asked (aligned
  the same way) and only an answer without ``elem`` and with the right ``$func`` ends the list.
  On a healthy server that costs one request per scan, and only when ``p_elems`` is missing.
- **Paging ignored.** More rows than asked is a server that ignores ``p_num``/``p_cnt`` and
  answered the whole list at once; that answer is the whole list.

A cursor is ``{"p_num": n, "p_cnt": size, "p_elems": total}`` (``p_elems`` absent on a pass's
first page, and when the server never sends one), with ``"capped": true`` once the scan pages at
the size a cap served: a page short again at that size is rows left out, not a cap, and a doubt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from etl.http.errors import ProtocolError
from etl.pipeline.state import Cursor
from etl.sources.base import Evidence
from etl.sources.billmanager.doc import LOGON_FUNC, answered_func, number


def offset_of(cursor: Cursor) -> int:
    """How many rows of the list come before the page at ``cursor``."""
    return (int(cursor["p_num"]) - 1) * int(cursor["p_cnt"])


def predicted(cursor: Cursor) -> Cursor | None:
    """The page after ``cursor`` when its pass's ``p_elems`` says one exists; None when unknown."""
    total = cursor.get("p_elems")
    if total is None or offset_of(cursor) + int(cursor["p_cnt"]) >= int(total):
        return None
    return {**cursor, "p_num": int(cursor["p_num"]) + 1}


def aligned_size(read: int, limit: int) -> int:
    """The largest page size of at most ``limit`` rows whose pages start exactly after ``read`` rows."""
    return next(size for size in range(max(1, min(limit, read)), 0, -1) if read % size == 0)


def continue_after(cursor: Cursor, read: int, served: int) -> Cursor:
    """The cursor of the page starting right after ``read`` rows, asking for at most ``served`` rows."""
    size = aligned_size(read, served)
    return {**cursor, "p_num": read // size + 1, "p_cnt": size}


def after_page(doc: Mapping[str, Any], func: str, cursor: Cursor, count: int) -> tuple[Cursor | None, Evidence]:
    """The cursor after the page at ``cursor`` that answered ``count`` rows, and what the page proves."""
    p_num, p_cnt = int(cursor["p_num"]), int(cursor["p_cnt"])
    answered = answered_func(doc)
    if answered is not None and answered != func:
        return None, Evidence(doubt=_wrong_function(func, answered))
    echoed = number(doc.get("p_num"))
    if echoed is not None and echoed != p_num and count:
        raise ProtocolError(f"asked for page {p_num}, the server answered page {echoed}; paging is not usable")
    total = number(doc.get("p_elems"))
    if count > p_cnt:  # paging ignored: this answer is the whole list
        return None, Evidence(total=total)
    if total is None:
        return _without_total(func, cursor, count, answered)
    began = cursor.get("p_elems")
    if began is not None and int(began) != total:
        shifted = (
            f"func={func}: p_elems was {began} when this pass began and is {total} at page {p_num}: "
            "rows were added or deleted while the list was paged by offset"
        )
        return None, Evidence(total=total, shifted=shifted)
    read = offset_of(cursor) + count
    pinned = {**cursor, "p_elems": total}
    if read >= total:
        return None, Evidence(total=total)
    if count == 0:
        doubt = (
            f"func={func}: page {p_num} (rows {read + 1}.. of {p_cnt} each) came back empty although "
            f"p_elems says {total} rows: the end of the list is not proven"
        )
        return None, Evidence(total=total, doubt=doubt)
    if count < p_cnt and not cursor.get("capped"):  # a page cap, silent or reported: go on with what it serves
        return {**continue_after(pinned, read, count), "capped": True}, Evidence(total=total)
    if count < p_cnt:
        # Short again at the size the server served before: not a cap but rows left out of the list
        # (a login's level, §4.5). Read on at this size for what it shows, and prove nothing.
        doubt = (
            f"func={func}: page {p_num} answered {count} of {p_cnt} rows although p_elems says {total}: "
            "the list leaves rows out, so the scan cannot be complete"
        )
        return {**pinned, "p_num": p_num + 1}, Evidence(total=total, doubt=doubt)
    return {**pinned, "p_num": p_num + 1}, Evidence(total=total)


def _without_total(func: str, cursor: Cursor, count: int, answered: str | None) -> tuple[Cursor | None, Evidence]:
    """No ``p_elems``: full pages go on; a short page is confirmed by the next; only an empty page ends."""
    if count == 0:
        if answered == func:
            return None, Evidence()
        doubt = (
            f"func={func}: an empty page without p_elems and without $func cannot be told from a "
            "logon form: the end of the list is not proven"
        )
        return None, Evidence(doubt=doubt)
    if count < int(cursor["p_cnt"]):
        return continue_after(cursor, offset_of(cursor) + count, count), Evidence()
    return {**cursor, "p_num": int(cursor["p_num"]) + 1}, Evidence()


def _wrong_function(func: str, answered: str) -> str:
    if answered == LOGON_FUNC:
        return (
            f"func={func} answered $func 'logon' (a logon form, not the list): the list was not read; "
            "a renewed session got the same answer, so the login may lack the right to this list"
        )
    return f"func={func} answered $func {answered!r}, not the list asked for: the list was not read"
