"""Simulators of the outside world for trials and the demo: nothing they receive leaves
this machine (``soa simulate``)."""
