"""Adapters: the outside world behind the ports of ``engine.ports``."""
