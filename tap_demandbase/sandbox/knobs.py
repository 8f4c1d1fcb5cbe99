"""Every knob of ``SandboxSettings`` with its documentation: the CLI flags and the knob table.

The single source is the settings classes themselves: each dataclass field is a knob (name, type,
default) and the ``Attributes:`` section of the docstring of the class that declares it says what
it does (an entry may name several knobs: ``host, port: ...``). A knob declared by an emulator's
settings class (its ``DIALECT``) is that dialect's; one of ``CommonSettings`` is both's. From
that, this module builds one ``demandbase-sandbox`` flag per knob (``pending_seconds`` ->
``--pending-seconds``) and the Markdown table of ``docs/emulator.md``, the common knobs first,
then each emulator's (``demandbase-sandbox --list-knobs`` prints it, ``scripts/plugin_files.py``
writes it into the page, a test keeps them equal). A knob added to a settings class with a
docstring entry is therefore settable and documented everywhere without touching this file.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import typing
from dataclasses import dataclass
from datetime import date

from tap_demandbase.sandbox.server import SandboxSettings

#: The dialect of a knob every emulator reads.
BOTH = "both"
#: Where the CLI's default differs from the settings' (a fixed port is handier for demos).
CLI_DEFAULTS: dict[str, object] = {"port": 8734}
_ENTRY = re.compile(r"^ {8}([a-z_0-9]+(?:, [a-z_0-9]+)*): (.*)$")
_CONTINUATION = re.compile(r"^ {12}(\S.*)$")


@dataclass(frozen=True)
class Knob:
    """One setting of the sandbox.

    Attributes:
        name: The ``SandboxSettings`` field (and the key of ``POST /_sandbox/settings``).
        hint: Its type.
        default: Its default value (the settings'; see ``CLI_DEFAULTS`` for the CLI's).
        help: What it does, from the settings' docstring (reST ``code`` marks kept).
        dialect: Which emulator reads it: ``export_v1``, ``uapi``... or ``both``.
    """

    name: str
    hint: object
    default: object
    help: str
    dialect: str = BOTH

    @property
    def flag(self) -> str:
        """Return the CLI flag, e.g. ``--pending-seconds``."""
        return "--" + self.name.replace("_", "-")

    @property
    def metavar(self) -> str | None:
        """Return the CLI value placeholder (None for an on/off flag)."""
        origin = typing.get_origin(self.hint)
        if origin is dict:
            value = typing.get_args(self.hint)[1]
            if typing.get_origin(value) is dict:
                inner = typing.get_args(value)[1]
                return "KEY:NAME=" + ("VALUE" if inner is str else _scalar_name(inner).upper())
            if typing.get_origin(value) is list:
                return "KEY=" + _scalar_name(typing.get_args(value)[0]).upper()
            return "KEY=" + _scalar_name(value).upper()
        if self.hint is bool:
            return None
        return _scalar_name(self.hint).upper()

    @property
    def json_type(self) -> str:
        """Return the JSON shape ``POST /_sandbox/settings`` takes for the knob."""
        return _json_type(self.hint)


def _scalar_name(hint: object) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    names: dict[object, str] = {
        int: "int",
        float: "number",
        str: "text",
        bool: "bool",
        date: "YYYY-MM-DD",
    }
    return names.get(args[0], "value")


def _json_type(hint: object) -> str:
    if typing.get_origin(hint) is dict:
        return "object of " + _json_type(typing.get_args(hint)[1])
    if typing.get_origin(hint) is list:
        return "array of " + _json_type(typing.get_args(hint)[0])
    args = typing.get_args(hint)
    if type(None) in args:
        other = next(a for a in args if a is not type(None))
        return _json_type(other) + " or null"
    names: dict[object, str] = {int: "integer", float: "number", str: "string", bool: "boolean"}
    if hint is date:
        return '"YYYY-MM-DD"'
    return names.get(hint, "value")


def attribute_docs(cls: type = SandboxSettings) -> dict[str, str]:
    """Return knob name -> the text of its entry in the ``Attributes:`` docstring section of
    ``cls`` or of the base class that declares it.
    """
    docs: dict[str, str] = {}
    for owner in reversed(cls.__mro__):
        docs |= _attribute_section(vars(owner).get("__doc__") or "")
    return docs


def _attribute_section(doc: str) -> dict[str, str]:
    """Return name -> text of the entries of one docstring's ``Attributes:`` section."""
    docs: dict[str, str] = {}
    names: list[str] = []
    in_section = False
    for line in doc.splitlines():
        if line.strip() == "Attributes:":
            in_section = True
            continue
        if not in_section:
            continue
        entry = _ENTRY.match(line)
        continuation = _CONTINUATION.match(line)
        if entry:
            names = entry.group(1).split(", ")
            for name in names:
                docs[name] = entry.group(2)
        elif continuation and names:
            for name in names:
                docs[name] += " " + continuation.group(1)
        elif line.strip():
            break
    return docs


def knobs() -> list[Knob]:
    """Return every knob, in the settings' field order (the common ones, then each dialect's)."""
    hints = typing.get_type_hints(SandboxSettings)
    docs = attribute_docs()
    defaults = SandboxSettings()
    dialects = _declaring_dialects(SandboxSettings)
    return [
        Knob(
            f.name,
            hints[f.name],
            getattr(defaults, f.name),
            docs.get(f.name, ""),
            dialects.get(f.name, BOTH),
        )
        for f in dataclasses.fields(SandboxSettings)
    ]


def _declaring_dialects(cls: type) -> dict[str, str]:
    """Return knob name -> the ``DIALECT`` of the base class declaring it, for dialects' knobs."""
    out: dict[str, str] = {}
    for owner in cls.__mro__:
        dialect = vars(owner).get("DIALECT")
        if isinstance(dialect, str):
            out |= dict.fromkeys(inspect.get_annotations(owner), dialect)
    return out


def add_knob_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per knob to ``parser`` (unset flags leave the knob at its default)."""
    group = parser.add_argument_group(
        "knobs", "every setting of the emulator (also POST /_sandbox/settings at runtime)"
    )
    for knob in knobs():
        default = CLI_DEFAULTS.get(knob.name, knob.default)
        text = _plain(knob.help) + f" (default: {_shown(default)})"
        if knob.hint is bool:
            group.add_argument(
                knob.flag,
                dest=knob.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=text,
            )
        elif typing.get_origin(knob.hint) is dict:
            group.add_argument(
                knob.flag,
                dest=knob.name,
                action="append",
                default=None,
                metavar=knob.metavar,
                help=text + "; repeatable, one entry each",
            )
        else:
            group.add_argument(
                knob.flag, dest=knob.name, default=None, metavar=knob.metavar, help=text
            )


def settings_from_args(args: argparse.Namespace) -> SandboxSettings:
    """Return the settings the parsed flags ask for (defaults for the flags not given).

    Raises:
        ValueError: A value does not fit its knob; the message names the flag.
    """
    changes: dict[str, object] = {}
    for knob in knobs():
        given = getattr(args, knob.name, None)
        if given is None:
            if knob.name in CLI_DEFAULTS:
                changes[knob.name] = CLI_DEFAULTS[knob.name]
            continue
        try:
            changes[knob.name] = _value(knob, given)
        except ValueError as exc:
            raise ValueError(f"{knob.flag}: {exc}") from None
    settings = SandboxSettings()
    settings.update(changes)
    return settings


def _value(knob: Knob, given: object) -> object:
    """Return the JSON-like value of a flag, for ``SandboxSettings.update``."""
    if typing.get_origin(knob.hint) is dict:
        merged = dict(typing.cast(dict[str, object], knob.default))
        value_hint = typing.get_args(knob.hint)[1]
        shape = typing.get_origin(value_hint)
        for item in typing.cast(list[str], given):
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ValueError(f"expected {knob.metavar}, got {item!r}")
            if shape is dict:
                outer, colon, inner = key.partition(":")
                if not colon:
                    raise ValueError(f"expected {knob.metavar}, got {item!r}")
                entry = dict(typing.cast(dict[str, object], merged.get(outer, {})))
                entry[inner] = _scalar(typing.get_args(value_hint)[1], value)
                merged[outer] = entry
            elif shape is list:
                items = list(typing.cast(list[object], merged.get(key, [])))
                merged[key] = [*items, _scalar(typing.get_args(value_hint)[0], value)]
            else:
                merged[key] = _scalar(value_hint, value)
        return merged
    if isinstance(given, bool):
        return given
    return _scalar(knob.hint, typing.cast(str, given))


def _scalar(hint: object, text: str) -> object:
    """Parse one flag value as the JSON value ``update`` expects for ``hint``."""
    allowed = typing.get_args(hint) or (hint,)
    if type(None) in allowed and text.lower() in ("none", "null"):
        return None
    if int in allowed:
        return int(text)
    if float in allowed:
        return float(text)
    return text  # str and dates (ISO text, as over HTTP)


def _plain(text: str) -> str:
    """Return docstring text for a terminal: ``code`` -> code, and % escaped for argparse."""
    return text.replace("``", "").replace("%", "%%")


def _shown(value: object) -> str:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (dict, bool)) or value is None:
        return json.dumps(value)
    return str(value)


def markdown_table() -> str:
    """Return the table of knobs of ``docs/emulator.md`` (``demandbase-sandbox --list-knobs``)."""
    lines = [
        "| Knob | CLI flag | JSON value | Default | Dialect | What it does |",
        "|---|---|---|---|---|---|",
    ]
    for knob in knobs():
        flag = knob.flag if knob.metavar is None else f"{knob.flag} {knob.metavar}"
        if knob.hint is bool:
            flag = f"{knob.flag} / --no-{knob.flag[2:]}"
        default = _shown(knob.default)
        if knob.name in CLI_DEFAULTS:
            default += f" (CLI: {CLI_DEFAULTS[knob.name]})"
        text = re.sub(r"``([^`]+)``", r"`\1`", knob.help).replace("|", "\\|")
        lines.append(
            f"| `{knob.name}` | `{flag}` | {knob.json_type} | `{default}` | {knob.dialect} "
            f"| {text} |"
        )
    return "\n".join(lines) + "\n"
