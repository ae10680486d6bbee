"""The records the replay server serves: recorded Dolibarr objects as templates, a line of values per id.

A third party in a real Dolibarr list is ~3.4 KB compact and ~5 KB pretty-printed; a million of
them, pre-encoded, would take 3.5-5 GB. Almost all of each is the same in every record, though:
the recorded object's keys, nulls and constants. So a resource keeps one *template* per nesting
level (the recorded object encoded as PHP would, ``%s`` wherever a field varies by id) and, per
id, only its varied values (id, ref, name, e-mail, customer code...), JSON-escaped once at start-up,
in one buffer separated by ``\\x1f`` (JSON text never holds a raw control character). Consecutive
ids are consecutive in the buffer, so a page of n records is one slice, one split and one ``%`` of
the template repeated n times: C-level copying, no JSON encoding per request. About 150 bytes per
record: a million take ~160 MB whatever the layout.

Layouts are Dolibarr's two: ``pretty`` (the default, Restler's ``JSON_PRETTY_PRINT``: 4-space
indent, ``": "``) and ``compact`` (``API_PRODUCTION_MODE``). Both write UTF-8 unescaped and escape
``/`` as ``\\/``, as ``json_encode`` does without ``JSON_UNESCAPED_SLASHES``.
"""

from __future__ import annotations

import copy
import json
import re
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "dolibarr"
SEPARATOR = b"\x1f"
LAYOUTS = ("pretty", "compact")
# Where a varied field goes in the recorded object: ``@@name@@`` inside a string, ``"@@=name@@"`` for
# a bare number; after encoding both become ``%s``, their names kept in the order they appear.
_MARKER = re.compile(r'"@@=(\w+)@@"|@@(\w+)@@')
PAGE_TEMPLATE_BUDGET = 96 * 2**20  # bytes of repeated-record templates kept, most recent first


def php_json(value: Any, *, pretty: bool) -> str:
    """``json_encode`` as Restler calls it: pretty unless production mode, UTF-8 as is, ``/`` escaped."""
    if pretty:
        text = json.dumps(value, ensure_ascii=False, indent=4)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("/", "\\/")  # a "/" can only be inside a JSON string


def escaped(text: str) -> str:
    """The inside of a JSON string holding ``text``, as PHP writes it."""
    return php_json(text, pretty=False)[1:-1]


@dataclass(frozen=True)
class Layout:
    """How the server writes JSON: pretty-printed or compact, and the nesting that goes with it."""

    name: str

    @property
    def pretty(self) -> bool:
        return self.name == "pretty"

    def encode(self, value: Any, level: int = 0) -> bytes:
        """A value's JSON text; pretty text continues its lines ``level`` indents deep."""
        return self.indented(php_json(value, pretty=self.pretty), level).encode()

    def indented(self, text: str, level: int) -> str:
        """``text`` with every line after the first indented ``level`` steps (pretty only)."""
        return text.replace("\n", "\n" + "    " * level) if self.pretty and level else text

    def item_prefix(self, level: int) -> str:
        """What stands before each element of an array whose elements sit ``level`` deep."""
        return "    " * level if self.pretty else ""

    def item_separator(self, level: int) -> bytes:
        return b",\n" if self.pretty else b","

    def array(self, items: bytes, level: int) -> bytes:
        """An array of already-joined elements sitting ``level`` deep (the array itself at ``level - 1``)."""
        if not items:
            return b"[]"
        if not self.pretty:
            return b"[" + items + b"]"
        return b"".join((b"[\n", items, b"\n", b"    " * (level - 1), b"]"))

    def envelope(self, items: bytes, pagination: dict[str, int]) -> bytes:
        """NEW servers' ``pagination_data=true`` answer; ``items`` sit two levels deep."""
        if not self.pretty:
            return b"".join((b'{"data":', self.array(items, 2), b',"pagination":', self.encode(pagination), b"}"))
        return b"".join(
            (b'{\n    "data": ', self.array(items, 2), b',\n    "pagination": ', self.encode(pagination, 1), b"\n}")
        )


@dataclass(frozen=True)
class Resource:
    """A Dolibarr list the server serves: which recorded object it copies and how records vary by id."""

    name: str
    fixture: str  # a recorded list answer; its first element is the template
    mark: Callable[[dict[str, Any]], None]  # puts the markers into a copy of the recorded object
    values: Callable[[int], dict[str, str]]  # the marked fields' escaped values for one id
    # api_<name>.class.php's answer to an empty list on a NEW server: 404 with this text, or [] when None.
    empty_404: str | None = None
    source: str = "api.class.php:0"  # the PHP file and line Restler names in an error's ``debug``


def recorded(resource: Resource) -> dict[str, Any]:
    """The first record of the resource's recorded list answer."""
    answer = json.loads((FIXTURES / resource.fixture).read_text())
    return answer["response"]["body"][0]


class Catalog:
    """One resource's records (ids 1..count) in one layout: ids, their values, page templates."""

    def __init__(self, resource: Resource, count: int, layout: Layout) -> None:
        self.resource, self.layout = resource, layout
        marked = copy.deepcopy(recorded(resource))
        resource.mark(marked)
        self.names, self._templates = self._compile(marked)
        self.ids = array("L", range(1, count + 1))
        self.values, self.offsets = self._values(count)
        self._pages: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._page_bytes = 0

    def _compile(self, marked: dict[str, Any]) -> tuple[list[str], dict[int, bytes]]:
        """Per nesting level (1: a bare list's element, 2: inside the envelope), the record's template."""
        templates, names = {}, None
        for level in (1, 2):
            encoded = php_json(marked, pretty=self.layout.pretty)
            text = self.layout.item_prefix(level) + self.layout.indented(encoded, level)
            found = [raw or inside for raw, inside in _MARKER.findall(text)]
            if names is not None and found != names:
                raise AssertionError("a record's fields changed order with its nesting")
            names = found
            templates[level] = _MARKER.sub("%s", text.replace("%", "%%")).encode()
        return names or [], templates

    def _values(self, count: int) -> tuple[bytes, array]:
        chunks, offsets, position, chunk = [], array("Q", [0]), 0, []
        for rowid in range(1, count + 1):
            fields = self.resource.values(rowid)
            line = "\x1f".join([fields[name] for name in self.names]).encode() + SEPARATOR
            chunk.append(line)
            position += len(line)
            offsets.append(position)
            if len(chunk) == 10_000:
                chunks.append(b"".join(chunk))
                chunk = []
        chunks.append(b"".join(chunk))
        return b"".join(chunks), offsets

    def span(self, after: int, upto: int | None) -> tuple[int, int]:
        """Positions ``[start, stop)`` of the ids with ``after < id <= upto`` (upto None: no bound)."""
        start = bisect_right(self.ids, after)
        stop = len(self.ids) if upto is None else bisect_right(self.ids, upto)
        return start, max(start, stop)

    def render(self, start: int, stop: int, *, descending: bool, level: int) -> bytes:
        """The records at positions ``[start, stop)``, in id order or reversed, joined as array elements."""
        if stop <= start:
            return b""
        if descending:  # only a probe for the highest id asks this way: records one by one
            template, separator = self._templates[level], self.layout.item_separator(level)
            return separator.join(template % self._record_values(i) for i in range(stop - 1, start - 1, -1))
        values = self.values[self.offsets[start] : self.offsets[stop] - 1].split(SEPARATOR)
        return self._page_template(stop - start, level) % tuple(values)

    def record(self, position: int) -> bytes:
        """One record alone, as a bare list's element (in the compact layout: the text the ETL stores)."""
        return self._templates[1] % self._record_values(position)

    def _record_values(self, position: int) -> tuple[bytes, ...]:
        return tuple(self.values[self.offsets[position] : self.offsets[position + 1] - 1].split(SEPARATOR))

    def _page_template(self, count: int, level: int) -> bytes:
        key = (count, level)
        template = self._pages.get(key)
        if template is None:
            template = self.layout.item_separator(level).join([self._templates[level]] * count)
            self._pages[key] = template
            self._page_bytes += len(template)
            while self._page_bytes > PAGE_TEMPLATE_BUDGET and len(self._pages) > 1:
                _, dropped = self._pages.popitem(last=False)
                self._page_bytes -= len(dropped)
        self._pages.move_to_end(key)
        return template

    def memory_bytes(self) -> int:
        """What the records themselves hold (values, offsets, ids), not the cached templates."""
        return len(self.values) + self.offsets.itemsize * len(self.offsets) + self.ids.itemsize * len(self.ids)
