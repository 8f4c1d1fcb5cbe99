"""A local emulator of the Demandbase Data Export API, for tests, demos and dry runs.

``Sandbox`` runs the API and a pre-signed download host in background threads; ``SandboxSettings``
holds every knob (data volume, timings, file format quirks, faults). See ``server.py`` to start,
``settings.py`` for the knobs, ``files.py`` for the result-file format and malformed defects.
"""

from tap_demandbase.sandbox.server import Sandbox
from tap_demandbase.sandbox.settings import SandboxSettings

__all__ = ["Sandbox", "SandboxSettings"]
