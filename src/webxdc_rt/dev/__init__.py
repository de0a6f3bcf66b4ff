"""The simulator behind `webxdc-rt dev`: simulated peers of one chat (`simulator`), the
dashboard (`dashboard`, with its static files, given the simulator as `SimulatorControls`),
faults (`faults`) applied on the delivery path (`network`), the traffic log (`traffic`) and
what the dashboards are told of it (`activity`), the settings (`limits`), the dev-server
proxy (`proxy`) and the command (`command`).

May import: `service`, `host` and everything below them.
"""
