"""Singer tap for the Demandbase Data Export API."""
