"""Fan-out of realtime items between host processes: the embedded in-memory broker
(`memory`), Redis (`redis`), the framing of an item on a shared channel (`items`) and the
bounds of a networked broker (`limits`). The seam they implement is `core.fanout.Broker`.

May import: `core`.
"""
