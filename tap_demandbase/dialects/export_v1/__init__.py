"""The ``export_v1``: dialect (this commit only moves its modules; the next one splits them)."""

from tap_demandbase.dialects.export_v1.client import *  # noqa: F403
