"""Which of the SDK's log lines a person running a pipeline sees, and at which level.

The SDK (singer-sdk 0.54.x) logs a METRIC JSON line per stream and counter at INFO, and a line
about environment-variable settings on every run, and one per deselected stream. All stay
available: the metrics follow the ``metrics_log_level`` setting (the SDK's documented convention
for a tap that quiets them) and are shown at DEBUG by default; the other lines are demoted to
DEBUG.
"""

from __future__ import annotations

import logging

from typing_extensions import override

#: Values of the ``metrics_log_level`` setting.
METRICS_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: The SDK's INFO lines that are noise to a person reading a run's log: shown at DEBUG.
DEBUG_ONLY_SDK_LINES = (
    "Skipping parse of env var settings",
    "Parsing env var for settings config",
    "Skipping deselected stream",  # the plan line names the streams that are synced
)


def metrics_logger_level(setting: str | None, plugin_level: str) -> str:
    """Return the level of the SDK's metrics logger: the setting, else shown (its INFO lines)
    only when the tap logs at DEBUG.
    """
    if setting:
        return setting.upper()
    return "DEBUG" if plugin_level.upper() == "DEBUG" else "WARNING"


class _DebugOnlySdkLines(logging.Filter):
    """Logs the SDK's noise lines (``DEBUG_ONLY_SDK_LINES``) at DEBUG, or drops them."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__()
        self._logger = logger

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not str(record.msg).startswith(DEBUG_ONLY_SDK_LINES):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return self._logger.isEnabledFor(logging.DEBUG)


def quiet_sdk_noise(logger: logging.Logger) -> None:
    """Demote the SDK's noise lines on ``logger`` (the tap's) to DEBUG, once per logger."""
    if not any(isinstance(f, _DebugOnlySdkLines) for f in logger.filters):
        logger.addFilter(_DebugOnlySdkLines(logger))
