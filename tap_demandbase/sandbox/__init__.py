"""Local emulators of the Demandbase Data Export API, for tests, demos and dry runs.

``Sandbox`` runs an API and a pre-signed download host in background threads; ``SandboxSettings``
holds every knob (data volume, timings, file format quirks, faults). One emulator per API dialect,
each a package beside a shared base:

- the base: ``server.py`` (``Sandbox``, the registry ``EMULATORS`` and ``SandboxSettings``),
  ``api.py`` (what every emulator's API host shares: the ``/_sandbox/`` controls, lost create
  answers, signed URLs, ``ApiError``), ``handler.py`` (request parsing, recording and injected
  faults of both hosts), ``files.py`` (result files and the download host), ``jobs.py`` (the job
  store), ``data.py`` and ``entities.py`` (the row generator and its catalogue), ``log.py`` (the
  request log), ``settings.py`` (the knobs every emulator reads), ``knobs.py`` (the knobs as CLI
  flags and the knob table of ``docs/emulator.md``) and ``cli.py`` (``demandbase-sandbox``);
- ``export_v1/``: the OpenAPI contract;
- ``uapi/``: Demandbase's production API.

A third emulator is one package, ``<dialect>/`` with ``settings.py`` (a ``CommonSettings``
subclass naming its ``DIALECT``, ``ENDPOINTS`` and knobs) and ``server.py`` (an ``ApiServer`` and
an ``ApiHandler``), plus one registry line in ``server.py``: its server in ``EMULATORS``, its
settings class among the bases of ``SandboxSettings``. Its knobs then have CLI flags, a row in
the knob table and a key in ``POST /_sandbox/settings``.
"""

from tap_demandbase.sandbox.server import Sandbox, SandboxSettings

__all__ = ["Sandbox", "SandboxSettings"]
