"""``python -m tap_demandbase.sandbox`` runs the sandbox, like ``demandbase-sandbox``."""

import sys

from tap_demandbase.sandbox.cli import main

sys.exit(main())
