"""The Redis broker over TLS (`rediss://`) against a TLS-only redis-server whose
certificates the test made: the server's certificate is checked against the URL's CA file
and must name the host, and a client certificate is presented when the URL names one."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
from certificates import Issued, issue, make_ca
from peers import eventually
from redis_server import RedisServer

from webxdc_rt.brokers.limits import BrokerLimits
from webxdc_rt.brokers.redis import RedisBroker, parse_redis_url
from webxdc_rt.core import wire
from webxdc_rt.core.fanout import Published

TOPIC = "rt/chat-1/app-1"
FAST = BrokerLimits(reconnect_min_s=0.02, reconnect_max_s=0.2)


@pytest.fixture
def ca(tmp_path) -> Issued:
    return make_ca(tmp_path / "certs")


@pytest.fixture
def tls_redis(tmp_path, ca) -> AsyncIterator[RedisServer]:
    """A redis-server that speaks only TLS, with a certificate for 127.0.0.1."""
    server_cert = issue(ca, tmp_path / "certs", "server")
    server = RedisServer(tmp_path / "redis", None, "--tls-auth-clients", "yes",
                         tls=(server_cert.cert, server_cert.key, ca.cert)).start()
    yield server
    server.stop()


@pytest.fixture
def brokers(started):
    """A factory of started brokers on a URL, all closed after."""

    async def start(url: str) -> RedisBroker:
        return await started(RedisBroker(parse_redis_url(url), FAST))

    return start


def url(server: RedisServer, ca: Path, client: Issued, host: str = "127.0.0.1") -> str:
    return (f"rediss://{host}:{server.port}/0?ssl_ca_certs={quote(str(ca))}"
            f"&ssl_certfile={quote(str(client.cert))}&ssl_keyfile={quote(str(client.key))}")


async def test_items_cross_over_tls_with_the_servers_ca(brokers, tls_redis, ca, tmp_path):
    client = issue(ca, tmp_path / "certs", "client", client=True)
    one, two = await brokers(url(tls_redis, ca.cert, client)), await brokers(
        url(tls_redis, ca.cert, client))
    assert one.connected and two.connected
    received: list[bytes] = []
    two.subscribe(TOPIC, lambda topic, item: received.append(item.stamp + item.payload))
    await two.ready(TOPIC)
    sent = [wire.encode_stamp(1.0) + b"%d" % i for i in range(100)]
    for payload in sent:
        one.publish(TOPIC, Published(one.node_id, 1, payload[:wire.ITEM_HEADER_BYTES],
                                     payload[wire.ITEM_HEADER_BYTES:]))
    await eventually(lambda: len(received) == len(sent))
    assert received == sent


@pytest.mark.parametrize("case", ["wrong CA", "host name not in the certificate",
                                  "client certificate from another CA"])
async def test_a_certificate_that_does_not_check_out_is_refused_and_said(
        brokers, tls_redis, ca, tmp_path, caplog, case):
    caplog.set_level(logging.WARNING)
    other_ca = make_ca(tmp_path / "other", "other-ca")
    client = issue(ca, tmp_path / "certs", "client", client=True)
    if case == "wrong CA":
        address = url(tls_redis, other_ca.cert, client)
        said = "TLS certificate is not accepted (self-signed certificate in certificate chain"
    elif case == "host name not in the certificate":
        address = url(tls_redis, ca.cert, client, host="localhost")
        said = "TLS certificate is not accepted (Hostname mismatch"
    else:
        address = url(tls_redis, ca.cert, issue(other_ca, tmp_path / "other", "client",
                                                client=True))
        # TLS 1.3: the server refuses the client's certificate after the client finished
        # its handshake, so the alert, a reset or a plain close may be what is seen.
        said = "unreachable"
    broker = await brokers(address)
    assert not broker.connected
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(said in line for line in warnings), warnings
