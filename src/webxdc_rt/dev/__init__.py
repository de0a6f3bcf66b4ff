"""The simulator behind `webxdc-rt dev`: simulated peers of one chat (`simulator`), the
dashboard (`dashboard`, with its static files), faults on the delivery path (`faults`), the
traffic log (`traffic`), the dev-server proxy (`proxy`) and the command (`command`).

May import: `service`, `host` and everything below them.
"""
