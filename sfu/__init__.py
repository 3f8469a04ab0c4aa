"""sfu: a selective forwarding unit for ultra-low-latency live streaming."""

__version__ = "0.1.0"
