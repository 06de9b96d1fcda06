"""The long-running service host, its CLI and the composition root."""
