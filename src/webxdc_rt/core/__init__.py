"""The protocol core: what a host decides, with no I/O.

The per-connection `session.Session` and its state table, the realtime channel rules
(`realtime`), per-page budgets, delivery queues and receive windows, the wire messages in
both directions (`wire`), the rules of status updates and chat messages, the settings of all
of these with their one check (`limits`), frame sizes, errors and counters. It reads no
socket, file or clock of its own: the shells in `host` feed it bytes and the time, and carry
out the effects it returns.

May import: the standard library. Nothing of the package outside `core`.
"""
