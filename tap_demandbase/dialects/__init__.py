"""API dialects: one package per API the tap speaks, chosen by the ``api_dialect`` setting.

A dialect is everything that differs between Demandbase's APIs: settings and authentication,
paths and JSON, status words, error bodies, field types, default replication keys, where results
are, and what the API can do (cancel, list jobs, how many jobs at once). The engine and the
streams see only the ``Dialect`` below and the ``ExportApi`` it connects, never a module by name:
adding an API is one package here, laid out like ``export_v1/`` and ``uapi/`` (plus its
emulator), registered in ``DIALECTS`` (``docs/dialects.md`` is the checklist).
"""

from __future__ import annotations

from tap_demandbase.dialects import export_v1, uapi
from tap_demandbase.dialects.base import ConnectOptions, Dialect
from tap_demandbase.errors import ConfigError

__all__ = ["DIALECTS", "ConnectOptions", "Dialect", "dialect_named"]

DIALECTS: dict[str, Dialect] = {d.name: d for d in (export_v1.DIALECT, uapi.DIALECT)}
DEFAULT_DIALECT = export_v1.DIALECT.name


def dialect_named(name: str | None) -> Dialect:
    """Return the dialect the ``api_dialect`` setting names, or fail naming the valid ones."""
    dialect = DIALECTS.get(name or DEFAULT_DIALECT)
    if dialect is None:
        msg = f"Setting api_dialect='{name}' is not known; use one of: {', '.join(DIALECTS)}."
        raise ConfigError(msg)
    return dialect
