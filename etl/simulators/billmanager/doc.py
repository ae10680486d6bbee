"""The COREmanager ``<doc>`` tree and its encodings (``out=xml``, ``json``, ``JSONdata``, ``text``).

Handlers build one neutral tree of :class:`Node`; the encoders below turn it into
what the panel sends. The JSON mapping is the one protocols.md §4.3 describes:
attributes become ``"$name"`` keys, text goes under ``"$"``, repeated children
become arrays, every value is a string.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Children that clients index as arrays even when there is one: ``doc.elem[...]`` and ``doc.list[0]``.
ARRAY_TAGS = frozenset({"elem", "list"})

MESSAGES: dict[str, dict[str, str]] = {
    "auth": {"en": "Authorization failed", "ru": "Ошибка авторизации"},
    "access": {"en": "Access denied", "ru": "Доступ запрещён"},
    "missed": {"en": "Object not found", "ru": "Объект не найден"},
    "value": {"en": "Invalid value", "ru": "Неверное значение"},
    "exists": {"en": "Object already exists", "ru": "Объект уже существует"},
}


@dataclass(slots=True)
class Node:
    """One XML element: a tag, string attributes, optional text and ordered children."""

    tag: str
    text: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)

    def add(self, tag: str, text: object = None, **attrs: str) -> Node:
        """Append a child (text and attributes coerced to strings) and return it."""
        child = Node(tag, None if text is None else str(text), {k: str(v) for k, v in attrs.items()})
        self.children.append(child)
        return child

    def find(self, tag: str) -> Node | None:
        """The first child called ``tag``."""
        return next((child for child in self.children if child.tag == tag), None)


@dataclass(slots=True)
class Cell:
    """A list column with attributes, e.g. ``item_status`` with ``color``."""

    text: str
    attrs: dict[str, str]


class BmError(Exception):
    """An application error, rendered as ``doc.error`` with HTTP 200."""

    def __init__(self, type_: str, obj: str = "", msg: str | None = None) -> None:
        super().__init__(f"{type_}:{obj}")
        self.type = type_
        self.object = obj
        self.msg = msg


def error_node(err: BmError, lang: str) -> Node:
    """``<error type=".." object=".." lang=".."><msg>..</msg></error>``."""
    node = Node("error", attrs={"type": err.type, "lang": lang})
    if err.object:
        node.attrs["object"] = err.object
    text = err.msg or MESSAGES.get(err.type, {}).get(lang) or MESSAGES.get(err.type, {}).get("en") or err.type
    node.add("msg", text)
    return node


def ok_doc(new_id: int | None = None, *, url: str | None = None) -> Node:
    """A success document: ``doc.ok`` (typed ``url`` when the UI would redirect) and ``doc.id`` for creates."""
    doc = Node("doc")
    if url:
        doc.add("ok", url, type="url")
    else:
        doc.add("ok")
    if new_id is not None:
        doc.add("id", new_id)
    return doc


def form_doc(values: Mapping[str, object], slists: Mapping[str, Iterable[tuple[object, str]]] | None = None) -> Node:
    """A form view: the current field values as children, plus ``slist`` choices for select fields."""
    doc = Node("doc")
    for name, value in values.items():
        doc.add(name, "" if value is None else value)
    for name, choices in (slists or {}).items():
        slist = doc.add("slist", name=name)
        for key, label in choices:
            slist.add("msg", label, key=str(key))
    return doc


def list_doc(rows: Iterable[Mapping[str, object]], total: int, p_num: int, p_cnt: int, *, omit_empty: bool) -> Node:
    """A list document: one ``elem`` per row plus ``p_elems``/``p_num``/``p_cnt``; no ``elem`` when empty."""
    doc = Node("doc")
    for row in rows:
        doc.children.append(elem_node(row, omit_empty=omit_empty))
    doc.add("p_elems", total)
    doc.add("p_num", p_num)
    doc.add("p_cnt", p_cnt)
    return doc


def elem_node(row: Mapping[str, object], *, omit_empty: bool) -> Node:
    """One list row; ``None`` values (and empty ones when ``omit_empty``) are left out."""
    elem = Node("elem")
    for column, value in row.items():
        if value is None or (omit_empty and value == ""):
            continue
        if isinstance(value, Cell):
            elem.children.append(Node(column, value.text, dict(value.attrs)))
        else:
            elem.add(column, value)
    return elem


def to_json(node: Node, *, elem_array: bool = True) -> dict[str, Any]:
    """The ``out=json`` object of one node (without the tag); see the module docstring."""
    out: dict[str, Any] = {f"${name}": value for name, value in node.attrs.items()}
    if node.text is not None:
        out["$"] = node.text
    groups: dict[str, list[dict[str, Any]]] = {}
    for child in node.children:
        groups.setdefault(child.tag, []).append(to_json(child, elem_array=elem_array))
    for tag, items in groups.items():
        forced = tag == "list" or (tag == "elem" and elem_array)
        out[tag] = items if len(items) > 1 or forced else items[0]
    return out


def to_jsondata(doc: Node, *, elem_array: bool = True) -> dict[str, Any]:
    """[guess] ``out=JSONdata``: the json document without the interface metadata (root ``$`` keys, tparams)."""
    data = Node("doc", doc.text, {}, [child for child in doc.children if child.tag != "tparams"])
    return {"doc": to_json(data, elem_array=elem_array)}


def to_xml(doc: Node) -> str:
    """``out=xml``: the tree as an XML document."""

    def build(node: Node, parent: ET.Element | None) -> ET.Element:
        element = ET.Element(node.tag, node.attrs) if parent is None else ET.SubElement(parent, node.tag, node.attrs)
        element.text = node.text
        for child in node.children:
            build(child, element)
        return element

    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(build(doc, None), encoding="unicode")


def to_text(doc: Node) -> str:
    """[guess] ``out=text``: one ``key=value`` line per list row, or per field of a non-list document."""
    error = doc.find("error")
    if error is not None:
        msg = error.find("msg")
        return f"ERROR {error.attrs.get('type', '')}({error.attrs.get('object', '')}): {msg.text if msg else ''}\n"
    elems = [child for child in doc.children if child.tag == "elem"]
    if elems:
        return "".join(" ".join(f"{c.tag}={c.text or ''}" for c in elem.children) + "\n" for elem in elems)
    fields = [child for child in doc.children if child.tag not in ("tparams", "slist")]
    if [child.tag for child in fields] == ["ok"]:
        return "OK\n"
    return "".join(f"{c.tag}={c.text or ''}\n" for c in fields)
