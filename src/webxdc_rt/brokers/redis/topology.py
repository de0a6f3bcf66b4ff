"""Which node of a Redis Cluster serves which channel: the hash slot of a name (CRC16 of
the name, or of its `{hash tag}`, modulo 16384, as Redis computes it) and the slot map a
node gives with `CLUSTER SLOTS`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import hiredis

from ..limits import BrokerLimits
from .address import RedisAddress
from .link import ask

__all__ = ["SLOTS", "Node", "SlotMap", "key_slot", "learn_slot_map"]

SLOTS = 16384
Node = tuple[str, int]
"""A node of the cluster: the host and port it is reached on."""


def _crc16_table() -> tuple[int, ...]:
    """CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes names with."""
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return tuple(table)


_TABLE = _crc16_table()


def key_slot(name: bytes) -> int:
    """The hash slot of a key or shard channel `name`: only its hash tag (the text between
    the first `{` and the next `}`) counts when it has a non-empty one."""
    start = name.find(b"{")
    if start >= 0:
        end = name.find(b"}", start + 1)
        if end > start + 1:
            name = name[start + 1:end]
    crc = 0
    table = _TABLE
    for byte in name:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc % SLOTS


class SlotMap:
    """The primary that serves each hash slot, as one node of the cluster said."""

    def __init__(self, owners: list[Node | None]) -> None:
        self.owners = owners
        """The primary of each slot; None for a slot that no node serves."""

    @property
    def nodes(self) -> set[Node]:
        """Every primary that serves a slot."""
        return {node for node in self.owners if node is not None}

    @classmethod
    def from_reply(cls, reply: Any, asked: Node) -> SlotMap:
        """The map in a `CLUSTER SLOTS` reply from node `asked`; ValueError when it is not
        one."""
        owners: list[Node | None] = [None] * SLOTS
        if type(reply) is not list:
            raise ValueError(f"CLUSTER SLOTS answered {reply!r:.200}")
        for entry in reply:
            try:
                start, end, primary = int(entry[0]), int(entry[1]), entry[2]
                host = primary[0].decode("utf-8") if primary[0] not in (b"", b"?") \
                    else asked[0]  # the node asked does not know its own address
                node = (host, int(primary[1]))
            except (TypeError, ValueError, IndexError, AttributeError,
                    UnicodeDecodeError) as exc:
                raise ValueError(f"CLUSTER SLOTS answered an unreadable range "
                                 f"{entry!r:.200} ({exc})") from None
            if not 0 <= start <= end < SLOTS or not 0 < node[1] < 65536:
                raise ValueError(f"CLUSTER SLOTS answered the range {start}-{end} on {node}")
            owners[start:end + 1] = [node] * (end - start + 1)
        return cls(owners)


async def learn_slot_map(address: RedisAddress, limits: BrokerLimits,
                         nodes: Iterable[Node]) -> SlotMap | str:
    """The slot map from the first of `nodes` that gives one; else why none did."""
    reasons = []
    for node in dict.fromkeys(nodes):  # in order, each once
        try:
            reply = await ask(address.at(*node), limits, "CLUSTER", "SLOTS")
            if isinstance(reply, hiredis.ReplyError):
                raise ValueError(f"refused CLUSTER SLOTS: {reply} (is it a cluster node?)")
            return SlotMap.from_reply(reply, node)
        except (ConnectionError, ValueError) as exc:
            reasons.append(f"{node[0]}:{node[1]}: {exc}")
    return "; ".join(reasons) or "no node to ask"
