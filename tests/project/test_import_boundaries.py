"""The layers keep to themselves: the engine, imported alone in a fresh interpreter, loads neither
the SDK, a dialect, the streams, the HTTP libraries nor the transport.
"""

from __future__ import annotations


def test_the_engine_imports_neither_the_sdk_nor_a_dialect():
    import subprocess
    import sys

    code = (
        "import sys, pkgutil, importlib, tap_demandbase.engine as e\n"
        "for m in pkgutil.iter_modules(e.__path__):\n"
        "    importlib.import_module(f'{e.__name__}.{m.name}')\n"
        "tops = ('singer_sdk', 'requests', 'urllib3')\n"
        "print(sorted(n for n in sys.modules\n"
        "             if n.split('.')[0] in tops or n.startswith('tap_demandbase.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = done.stdout
    assert "singer_sdk" not in loaded
    assert "tap_demandbase.dialects" not in loaded
    assert "tap_demandbase.streams" not in loaded
    # Byte streams, not HTTP: the transport hands the engine PartBody values.
    assert "'requests" not in loaded
    assert "'urllib3" not in loaded
    assert "tap_demandbase.transport" not in loaded
    assert "tap_demandbase.engine.export" in loaded
