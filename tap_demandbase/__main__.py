"""``python -m tap_demandbase`` runs the tap."""

from tap_demandbase.tap import TapDemandbase

TapDemandbase.cli()
