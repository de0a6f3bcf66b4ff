"""Where Redis listens: the `--broker redis://...` URL, parsed and checked."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

__all__ = ["DEFAULT_REDIS_PORT", "RedisAddress", "parse_redis_url"]

DEFAULT_REDIS_PORT = 6379


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where Redis listens, as `--broker redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` says."""

    host: str
    port: int = DEFAULT_REDIS_PORT
    db: int = 0
    """Redis pub/sub is shared by all databases of a server; the number becomes part of
    every channel name, so that deployments sharing one Redis can keep apart by it."""
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        """The address without credentials, for messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{host}:{self.port}/{self.db}"


def parse_redis_url(url: str) -> RedisAddress:
    """The address in a `redis://` URL; ValueError naming what is wrong with it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid redis:// URL ({exc}): {_shown(url)}") from None
    if parts.scheme != "redis":
        raise ValueError(f"expects a redis://HOST:PORT/DB URL, got {_shown(url)}")
    if not parts.hostname:
        raise ValueError(f"names no host: {_shown(url)}")
    if parts.query or parts.fragment:
        raise ValueError(f"takes no query or fragment: {_shown(url)}")
    db_text = parts.path.lstrip("/")
    if "/" in db_text or (db_text and not (db_text.isascii() and db_text.isdigit())):
        raise ValueError(f"the path must be a database number, got {parts.path!r}")
    db = int(db_text) if db_text else 0
    if port == 0:
        raise ValueError(f"port must be from 1 to 65535: {_shown(url)}")
    return RedisAddress(
        host=parts.hostname, port=port or DEFAULT_REDIS_PORT, db=db,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None)


def _shown(url: str) -> str:
    """`url` with any password masked, for messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return repr(url)
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        return repr(SplitResult(parts.scheme, f"{user}:***@{netloc}", parts.path,
                                parts.query, parts.fragment).geturl())
    except ValueError:
        return "(an unreadable URL)"
