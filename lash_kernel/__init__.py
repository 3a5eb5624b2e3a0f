"""lash: a durable agent runtime."""
