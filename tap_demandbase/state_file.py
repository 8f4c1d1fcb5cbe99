"""The --state file, checked before the SDK reads it.

The SDK walks ``bookmarks`` as objects and fails with a traceback on any other shape, and the
engine reads its own keys of each stream's state (the job ledger, the windows done). Both are
checked here, in one pass: a shape the SDK cannot walk is one error line naming the file and
the key; a part the engine cannot read only saves work (no row depends on it), so it is one
WARNING naming it, and it is dropped: the run goes on without it.
"""

from __future__ import annotations

import typing as t

from tap_demandbase.config import json_object_file
from tap_demandbase.engine.stream_state import unusable_state
from tap_demandbase.errors import BadStateError, quoted
from tap_demandbase.sdk_compat import PROGRESS_MARKERS

if t.TYPE_CHECKING:
    import logging

BOOKMARKS = "bookmarks"


def checked_state(text: str, path: str, logger: logging.Logger) -> dict[str, t.Any]:
    """Return the state in a --state file, less the parts no run can read (each warned about).

    Raises:
        ConfigError: the file is not a JSON object.
        BadStateError: ``bookmarks`` or a stream's entry in it is not an object.
    """
    state = json_object_file(text, "state", path)
    if BOOKMARKS not in state:
        return state
    bookmarks = state[BOOKMARKS]
    if not isinstance(bookmarks, dict):
        _wrong_shape(
            path, BOOKMARKS, bookmarks, "stream name → its state", "the file (every stream)"
        )
    for stream, stream_state in bookmarks.items():
        key = f"{BOOKMARKS}.{stream}"
        if not isinstance(stream_state, dict):
            _wrong_shape(
                path, key, stream_state, "its bookmark and job ledger", key + " (the stream)"
            )
        markers = stream_state.get(PROGRESS_MARKERS)
        if markers is not None and not isinstance(markers, dict):
            logger.warning(
                "The state file %s: %s.%s = %s is not an object; ignoring it: the markers of "
                "an unfinished run are not used anyway.",
                path, key, PROGRESS_MARKERS, quoted(markers),
            )  # fmt: skip
            del stream_state[PROGRESS_MARKERS]
        for part in unusable_state(stream_state):
            logger.warning(
                "The state file %s: %s.%s = %s %s; ignoring it: %s.",
                path, key, part.key, quoted(part.value), part.problem, part.without,
            )  # fmt: skip
            stream_state.pop(part.top_key, None)
    return state


def _wrong_shape(path: str, key: str, value: t.Any, holds: str, remove: str) -> t.NoReturn:
    kind = {list: "a list", str: "a string", type(None): "null"}.get(type(value), "a value")
    msg = (
        f"The state file {path}: {key} is {kind} ({quoted(value)}), not an object ({holds}). "
        f"Fix it, or remove {remove} to start from start_date."
    )
    raise BadStateError(msg)
