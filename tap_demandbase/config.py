"""Settings checks that end in one line naming the setting, whatever the command.

The settings schema (``settings.py``) holds the constraints (types,
``minimum``, ``exclusiveMinimum``, ``pattern``); this module turns what the JSON Schema
validator finds into one sentence a pipeline operator can act on, warns about settings the tap
does not know (with the closest one it does), reads numbers from the environment, and reads the
``--config``, ``--state`` and ``--catalog`` files with an error that names the file.
"""

from __future__ import annotations

import decimal
import difflib
import ipaddress
import json
import logging
import typing as t
from pathlib import Path
from urllib.parse import urlsplit

from tap_demandbase.errors import ConfigError

#: Default of the ``api_url`` setting: Demandbase's production API.
DEFAULT_API_URL = "https://api.demandbase.com"

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from jsonschema import ValidationError

#: JSON Schema types as a person names them, for "must be ..." messages.
_TYPE_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "string": "text",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
}


def setting_errors_line(
    errors: Iterable[ValidationError], schema: Mapping[str, t.Any], env_prefix: str
) -> str:
    """Return one line describing every schema violation, each naming its setting."""
    sentences = [_describe(error, schema, env_prefix) for error in errors]
    return " ".join(dict.fromkeys(sentences))  # one sentence per problem, in order


def _describe(error: ValidationError, schema: Mapping[str, t.Any], env_prefix: str) -> str:
    """Return one sentence for one violation: which setting, what is wrong, what to do."""
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        name = ".".join([*map(str, error.path), *missing[:1]])
        hint = f" or the environment variable {env_prefix}{name.upper()}" if not error.path else ""
        what = _property(schema, name).get("description", "")
        parent = _property(schema, ".".join(map(str, error.path))) if error.path else schema
        needed = f" ({what.rstrip('.')})" if what else ""
        return (
            f"Setting {name} is required{needed}: set it in the config file{hint}."
            + _misspelling(missing[:1], error.instance, parent)
        )
    name = ".".join(map(str, error.path)) or "(config)"
    prop = _property(schema, name)
    secret = prop.get("secret") or prop.get("writeOnly")
    shown = "(hidden)" if secret else _shown(error.instance)
    return f"Setting {name}={shown} {_requirement(error, prop)}."


def _misspelling(missing: list[str], given: object, node: Mapping[str, t.Any]) -> str:
    """Return " The config has start_dat: did you mean start_date?" when a setting the config
    gives but the schema does not know is close to the missing one ("" otherwise).
    """
    if not missing or not isinstance(given, dict):
        return ""
    unknown = [str(key) for key in given if key not in node.get("properties", {})]
    close = difflib.get_close_matches(missing[0], unknown, n=1, cutoff=0.6)
    return f" The config has {close[0]}: did you mean {missing[0]}?" if close else ""


def _shown(value: object) -> str:
    """Return a setting's value as the user wrote it (numbers plain, text quoted)."""
    if isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
        return str(value)
    return repr(value)


def _requirement(error: ValidationError, prop: Mapping[str, t.Any]) -> str:
    """Return what the setting must be, in words."""
    value = error.validator_value
    if error.validator == "type":
        kinds = [value] if isinstance(value, str) else [k for k in value if k != "null"]
        return "must be " + " or ".join(_TYPE_WORDS.get(k, k) for k in kinds)
    if error.validator == "minimum":
        return f"must be at least {value}"
    if error.validator == "exclusiveMinimum":
        return f"must be greater than {value}"
    if error.validator == "maximum":
        return f"must be at most {value}"
    if error.validator == "enum":
        return "must be one of " + ", ".join(map(repr, value))
    if error.validator == "pattern":
        examples = prop.get("examples")
        return f"is not valid: use e.g. {examples[0]}" if examples else f"must match {value}"
    return f"is not valid: {error.message}"


def _property(schema: Mapping[str, t.Any], dotted: str) -> Mapping[str, t.Any]:
    """Return the schema of a (possibly nested, dotted) setting, or {} if unknown."""
    node: Mapping[str, t.Any] = schema
    for part in dotted.split("."):
        node = node.get("properties", {}).get(part, {})
    return node


def unknown_setting_warnings(
    config: Mapping[str, t.Any],
    known: Iterable[str],
    other_dialects: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """Return one warning per top-level setting the tap does not know, naming the closest one,
    or, for a setting of other dialects only (``other_dialects``: setting → the dialects that
    read it), saying that it does not apply to the chosen one.

    Unknown settings are not errors (Meltano and config generators add their own keys), but a
    typo such as ``window_day`` would otherwise be ignored in silence.
    """
    valid = sorted(known)
    others = other_dialects or {}
    warnings = []
    for name in sorted(set(config) - set(valid)):
        if name in others:
            warnings.append(
                f"Setting {name} applies to api_dialect {' or '.join(others[name])} only and is "
                f"ignored with api_dialect={config.get('api_dialect')}; remove it or change "
                "api_dialect."
            )
            continue
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        advice = f"did you mean {close[0]}?" if close else f"settings are: {', '.join(valid)}."
        warnings.append(f"Setting {name} is not a setting of this tap and is ignored; {advice}")
    return warnings


def checked_api_url(url: str, logger: logging.Logger) -> str:
    """Return ``api_url`` once it is an absolute http(s) URL (else a ConfigError naming it);
    warn when plain http would send the token in clear text to a host other than this machine.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        msg = f"Setting api_url={url!r} is not an absolute http(s) URL; use e.g. {DEFAULT_API_URL}."
        raise ConfigError(msg)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        logger.warning(
            "Setting api_url=%r uses plain http: the access token would travel in clear text. "
            "Use https:// (plain http is meant for a local emulator only).",
            url,
        )
    return url


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (localhost or a loopback address)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def numeric_settings(schema: Mapping[str, t.Any]) -> dict[str, bool]:
    """Return the top-level settings that hold numbers: name → whether a whole number."""
    found = {}
    for name, prop in schema.get("properties", {}).items():
        types = prop.get("type", [])
        types = {types} if isinstance(types, str) else set(types)
        if types & {"integer", "number"} and "string" not in types:
            found[name] = "integer" in types
    return found


def number_from_text(name: str, text: str, *, integer: bool, source: str | None = None) -> float:
    """Return a number setting written as text, or fail naming the setting (and ``source``,
    the environment variable it came from).

    Numbers arrive as text from the environment (the SDK's parser converts integers only, so
    ``0.5`` stayed a string) and from Meltano, whose settings of these kinds are strings (see
    scripts/plugin_files.py: Meltano 4.4 cannot pass a ``decimal`` setting read from the
    environment to a plugin).
    """
    try:
        return int(text) if integer else float(text)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        where = f" from {source}" if source else ""
        fix = "the variable" if source else "it"
        msg = f"Setting {name}{where}={text!r} must be {kind}; fix {fix}."
        raise ConfigError(msg) from None


def read_numbers_given_as_text(config: dict[str, t.Any], schema: Mapping[str, t.Any]) -> None:
    """Turn the numeric settings that ``config`` holds as text into numbers, in place."""
    for name, integer in numeric_settings(schema).items():
        if isinstance(value := config.get(name), str):
            config[name] = number_from_text(name, value.strip(), integer=integer)


#: What to do about a --state, --catalog or --config file that is not valid JSON.
_INVALID_JSON_ADVICE = {
    "state": "it may be truncated. Restore it from the last STATE message, or remove it to "
    "start from start_date.",
    "catalog": "run --discover again to write a new one.",
    "config": "fix it: a JSON object of settings, as in the README.",
}


def json_object_file(text: str, what: str, path: str) -> dict[str, t.Any]:
    """Return the JSON object in a ``--state``, ``--catalog`` or ``--config`` file, or fail
    naming the file.
    """
    try:
        value = json.loads(text) if text.strip() else None
    except json.JSONDecodeError as exc:
        where = f"{exc.msg}: line {exc.lineno}, column {exc.colno}"
        msg = f"The {what} file {path} is not valid JSON ({where}); {_INVALID_JSON_ADVICE[what]}"
        raise ConfigError(msg) from None
    if not isinstance(value, dict):
        msg = f"The {what} file {path} does not hold a JSON object; fix or remove it."
        raise ConfigError(msg)
    return value


def config_file_settings(path: str) -> dict[str, t.Any]:
    """Return the settings of a ``--config`` file, or fail naming the file (missing, not
    readable, not a JSON object).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = (
            f"The config file {path} does not exist: give the path of a JSON file of settings "
            "(or --config=ENV to read TAP_DEMANDBASE_* environment variables)."
        )
        raise ConfigError(msg) from None
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"The config file {path} cannot be read ({exc}); fix its permissions or encoding."
        raise ConfigError(msg) from None
    return json_object_file(text, "config", path)
