"""Where Redis listens: the `--broker` URL, parsed and checked.

`redis://HOST[:PORT][/DB]` is one Redis; `rediss://` the same over TLS; `redis+cluster://`
and `rediss+cluster://` a Redis Cluster, named by one or more of its nodes
(`HOST:PORT,HOST:PORT,...`), from which the broker learns the others. TLS options are query
parameters named as redis-py names them: `ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile`,
`ssl_cert_reqs` (`required`, the default, or `none`)."""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

__all__ = ["DEFAULT_REDIS_PORT", "RedisAddress", "RedisTls", "checked_tls_context",
           "parse_redis_url", "tls_context"]

DEFAULT_REDIS_PORT = 6379
_SCHEMES = {"redis": (False, False), "rediss": (True, False),
            "redis+cluster": (False, True), "rediss+cluster": (True, True)}
"""Each URL scheme: (TLS, cluster)."""
_TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
_MAX_SEEDS = 64


@dataclass(frozen=True, slots=True)
class RedisTls:
    """How a `rediss://` connection is secured: the server's certificate is checked against
    the system's CAs, or `ca_certs`, and must name the host connected to, unless
    `cert_reqs` is "none"; `certfile` and `keyfile` are the client's own certificate."""

    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    cert_reqs: Literal["required", "none"] = "required"


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
    tls: RedisTls | None = None
    """None: plain TCP."""
    cluster: bool = False
    """A Redis Cluster: `host:port` and `seeds` are nodes to learn the others from."""
    seeds: tuple[tuple[str, int], ...] = field(default=())
    """More nodes of the cluster besides `host:port`, tried in turn."""

    def __str__(self) -> str:
        """The address without credentials, for messages."""
        scheme = ("rediss" if self.tls else "redis") + ("+cluster" if self.cluster else "")
        nodes = ",".join(f"{_bracketed(host)}:{port}"
                         for host, port in ((self.host, self.port), *self.seeds))
        return f"{scheme}://{nodes}/{self.db}"

    def at(self, host: str, port: int) -> RedisAddress:
        """This address with another node's host and port (a node of the cluster)."""
        return RedisAddress(host, port, self.db, self.username, self.password, self.tls,
                            self.cluster)


def parse_redis_url(url: str) -> RedisAddress:
    """The address in a `--broker` URL; ValueError naming what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ValueError(f"expects a redis://HOST:PORT/DB, rediss://, redis+cluster:// or "
                         f"rediss+cluster:// URL, got {_shown(url)}")
    tls, cluster = _SCHEMES[parts.scheme]
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes = [_node(text, url) for text in hosts.split(",")] if cluster else [
        _node(hosts, url)]
    if len(nodes) > _MAX_SEEDS:
        raise ValueError(f"names more than {_MAX_SEEDS} nodes: {_shown(url)}")
    if parts.fragment:
        raise ValueError(f"takes no fragment: {_shown(url)}")
    options = _tls_options(parts.query, url) if tls else None
    if not tls and parts.query:
        raise ValueError(f"takes no query without TLS (rediss://): {_shown(url)}")
    db_text = parts.path.lstrip("/")
    if "/" in db_text or (db_text and not (db_text.isascii() and db_text.isdigit())):
        raise ValueError(f"the path must be a database number, got {parts.path!r}")
    username, has_password, password = userinfo.partition(":")
    return RedisAddress(
        host=nodes[0][0], port=nodes[0][1], db=int(db_text) if db_text else 0,
        username=unquote(username) if username else None,
        password=unquote(password) if has_password else None,
        tls=options, cluster=cluster, seeds=tuple(nodes[1:]))


def _node(text: str, url: str) -> tuple[str, int]:
    """One `HOST[:PORT]` of the URL."""
    try:
        parts = urlsplit(f"//{text}")
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid redis:// URL ({exc}): {_shown(url)}") from None
    if not parts.hostname:
        raise ValueError(f"names no host: {_shown(url)}")
    if port == 0:
        raise ValueError(f"port must be from 1 to 65535: {_shown(url)}")
    return parts.hostname, port or DEFAULT_REDIS_PORT


def _tls_options(query: str, url: str) -> RedisTls:
    """The TLS options of a `rediss://` URL's query."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError(f"has an unreadable query: {_shown(url)}") from None
    options = dict(pairs)
    unknown = sorted(set(options) - set(_TLS_OPTIONS))
    if unknown or len(options) != len(pairs):
        raise ValueError(f"takes only the query options {', '.join(_TLS_OPTIONS)}, each "
                         f"once; got {', '.join(unknown) or 'one twice'}")
    reqs = options.get("ssl_cert_reqs", "required")
    if reqs not in ("required", "none"):
        raise ValueError(f"ssl_cert_reqs must be required or none, got {reqs!r}")
    if ("ssl_keyfile" in options) and ("ssl_certfile" not in options):
        raise ValueError("ssl_keyfile needs ssl_certfile (the client certificate)")
    return RedisTls(options.get("ssl_ca_certs"), options.get("ssl_certfile"),
                    options.get("ssl_keyfile"), "none" if reqs == "none" else "required")


@functools.lru_cache(maxsize=8)
def tls_context(tls: RedisTls) -> ssl.SSLContext:
    """The client TLS context of `tls` (made once); ValueError naming a file that cannot
    be used."""
    context = ssl.create_default_context(cafile=tls.ca_certs)
    if tls.cert_reqs == "none":  # only when the URL asks for it
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.certfile is not None:
        context.load_cert_chain(tls.certfile, tls.keyfile)
    return context


def checked_tls_context(tls: RedisTls) -> ssl.SSLContext:
    """`tls_context`, with a ValueError naming the files when one cannot be used."""
    try:
        return tls_context(tls)
    except (OSError, ssl.SSLError) as exc:
        files = ", ".join(f"{name}={value}" for name, value in (
            ("ssl_ca_certs", tls.ca_certs), ("ssl_certfile", tls.certfile),
            ("ssl_keyfile", tls.keyfile)) if value)
        raise ValueError(f"TLS files cannot be used ({files or 'system CAs'}): "
                         f"{exc}") from None


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _shown(url: str) -> str:
    """`url` with any password masked, for messages."""
    try:
        parts = urlsplit(url)
        userinfo, at, hosts = parts.netloc.rpartition("@")
        if ":" not in userinfo:
            return repr(url)
        user = userinfo.partition(":")[0]
        return repr(SplitResult(parts.scheme, f"{user}:***{at}{hosts}", parts.path,
                                parts.query, parts.fragment).geturl())
    except ValueError:
        return "(an unreadable URL)"
