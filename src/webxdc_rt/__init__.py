"""webxdc-rt: a host for webxdc apps with strict, fast realtime channels, and a Python peer."""

__version__ = "0.1.0"
