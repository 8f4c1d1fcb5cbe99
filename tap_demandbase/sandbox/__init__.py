"""A local emulator of the Demandbase Data Export API (placeholder)."""
