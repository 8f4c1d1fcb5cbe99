"""A local emulator of the Demandbase Data Export API, for tests, demos and dry runs.

``Sandbox`` runs the API and a pre-signed download host in background threads; ``SandboxSettings``
holds every knob (data volume, timings, file format quirks, faults). See ``server.py`` to start,
``settings.py`` for the knobs (``knobs.py`` turns them into CLI flags and the README table),
``files.py`` for the result-file format and malformed defects. Two dialects: ``api.py`` (the
OpenAPI contract, ``export_v1``) and ``uapi.py`` (Demandbase's production API, with
``uapi_catalog.py``, ``uapi_requests.py``, ``uapi_auth.py`` and ``usage.py``).
"""

from tap_demandbase.sandbox.server import Sandbox
from tap_demandbase.sandbox.settings import SandboxSettings

__all__ = ["Sandbox", "SandboxSettings"]
