"""ExportV1Settings: the knobs only the ``export_v1`` emulator reads, beside the common ones.

They bend what only this dialect has: the download endpoint's redirect, the ExportJob JSON
(record count, file size, status words, any key), cancelling, and the job list.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field

from typing_extensions import override

from tap_demandbase.sandbox.jobs import STATUSES
from tap_demandbase.sandbox.settings import CommonSettings, check_choice

#: Accepted values of ``redirect_style``.
REDIRECT_STYLES = ("direct", "chain", "no_location", "file_url")
#: Accepted values of ``gzip_file_size``.
GZIP_FILE_SIZES = ("served", "decoded")


@dataclass
class ExportV1Settings(CommonSettings):
    """Knobs of the ``export_v1`` emulator (the OpenAPI contract).

    Attributes:
        redirect_downloads: Download answers 302 to the files host; if false, 200 with the CSV.
        redirect_style: How the download endpoint's 302 points at the file: ``direct``, ``chain``
            (through two hops on the files host), ``no_location`` (no Location header) or
            ``file_url`` (a ``file://`` URL).
        record_count_offset: Added to the ``record_count`` completed jobs report (0: the truth).
        file_size_offset: Added to the ``file_size_bytes`` completed jobs report (0: the truth).
        gzip_file_size: What ``file_size_bytes`` counts of a job whose parts are served gzip
            (``gzip_encoding`` or ``gzip_files`` when the job was created): ``served`` (the
            compressed bytes the server holds and sends) or ``decoded`` (the CSV's bytes).
        finish_before_cancel: DELETE waits for the job to finish, then answers 409.
        job_json_patch: Keys of a job's ExportJob JSON replaced by these values in every answer
            about it (create, status, list); null removes the key. Keys the JSON does not have
            yet (``record_count`` before completion) are left out. E.g. ``{"file_parts": null}``,
            ``{"record_count": "many"}``, ``{"created_at": "yesterday"}``.
        status_aliases: Contract status -> the word the job reports instead (``pending`` ->
            ``queued``, ``completed`` -> ``expired``); the job's life is unchanged.
        status_not_found_after_create: The first k status calls of each job answer 404, as an
            eventually consistent API does right after a create.
        list_odd_jobs: The job list starts with entries that are not valid jobs (an unknown
            status, a missing id, a count as text, a string), whatever the status filter.
    """

    DIALECT: typing.ClassVar[str] = "export_v1"
    ENDPOINTS: typing.ClassVar[tuple[str, ...]] = (
        "entities",
        "create",
        "status",
        "list",
        "cancel",
        "download",
    )

    redirect_downloads: bool = True
    redirect_style: str = "direct"
    record_count_offset: int = 0
    file_size_offset: int = 0
    gzip_file_size: str = "served"
    finish_before_cancel: bool = False
    job_json_patch: dict[str, typing.Any] = field(default_factory=dict)
    status_aliases: dict[str, str] = field(default_factory=dict)
    status_not_found_after_create: int = 0
    list_odd_jobs: bool = False

    @override
    def validate(self) -> None:
        """Check the common knobs, then this emulator's (choices and status words)."""
        super().validate()
        check_choice("redirect_style", self.redirect_style, REDIRECT_STYLES)
        check_choice("gzip_file_size", self.gzip_file_size, GZIP_FILE_SIZES)
        for status, alias in self.status_aliases.items():
            check_choice("status_aliases key", status, STATUSES)
            if not alias:
                raise ValueError("status_aliases values must be non-empty status words")
