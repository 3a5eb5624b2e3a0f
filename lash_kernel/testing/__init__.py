"""Public test kit (placeholder; filled in below)."""
