"""Reading the settings file: UTF-8 YAML without anchors, then ``${VAR}`` interpolation.

Every problem is a :class:`~etl.settings.ConfigError` naming the file and where in it:
the byte that is not UTF-8, the line of a YAML error, the key whose variable is unset.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from etl.settings import ConfigError

_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


class _AnchorRefused(yaml.MarkedYAMLError):
    """An anchor or alias in the settings file."""


class _KeyRepeated(yaml.MarkedYAMLError):
    """A key written twice in one mapping of the settings file."""


class _NoAnchorLoader(yaml.SafeLoader):
    """A SafeLoader that refuses anchors (``&name``) and aliases (``*name``).

    PyYAML composes an alias as a shared reference, so a "billion laughs" file loads in
    microseconds, but everything that walks the result (the ``${VAR}`` interpolation, pydantic)
    then visits the expanded tree: a few hundred bytes can hold 10^9 nodes and hang the
    program. A settings file needs no sharing, so the first anchor or alias is an error, found
    while composing, before anything is expanded."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _AnchorRefused(
                problem="anchors and aliases (&name, *name) are not allowed in settings; write the values out",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        # A key written twice is a slip (two `page_size:` lines, one forgotten): YAML would keep
        # the last one silently.
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _KeyRepeated(problem=f"key {key!r} is written twice in one mapping",
                                     problem_mark=key_node.start_mark)  # fmt: skip
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_settings_file(path: Path) -> dict[str, Any]:
    """The file's top-level mapping, or :class:`ConfigError` naming what is wrong and where."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read settings file ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        where = f"byte {exc.start} (line {line}), 0x{data[exc.start]:02x}"
        raise ConfigError(str(path), "", f"not UTF-8 text: {where}; save the file as UTF-8") from None
    try:
        loaded = yaml.load(text, Loader=_NoAnchorLoader) or {}  # a SafeLoader: no object tags
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        kind = {_AnchorRefused: "YAML anchor refused", _KeyRepeated: "YAML key repeated"}.get(
            type(exc), "YAML syntax error"
        )
        raise ConfigError(str(path), "", f"{kind} at {where}: {problem}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(str(path), "", "top level must be a mapping")
    return loaded


def interpolate(value: Any, file: str, key: str = "") -> Any:
    """``value`` with every ``${VAR}`` / ``${VAR:-default}`` replaced from the environment."""
    if isinstance(value, dict):
        return {k: interpolate(v, file, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, file, f"{key}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(file, key, f"environment variable {name} is not set")

    return _REFERENCE.sub(replace, value)
