"""Text as PostgreSQL keeps what members choose: UTF-8 in `bytea` (see `migrations`), since
`text` cannot hold U+0000."""

from __future__ import annotations

__all__ = ["text", "utf8"]


def text(stored: bytes | None) -> str | None:
    """A member's text kept as UTF-8 bytes; U+FFFD for what is not UTF-8."""
    return None if stored is None else bytes(stored).decode(errors="replace")


def utf8(value: str | None) -> bytes | None:
    """A member's text as it is kept."""
    return None if value is None else value.encode()
