"""The ``uapi``: dialect (this commit only moves its modules; the next one splits them)."""

from tap_demandbase.dialects.uapi.client import *  # noqa: F403
