"""PostgreSQL over TLS: the `--store` URL is handed to libpq as written, so libpq's TLS
parameters (`sslmode`, `sslrootcert`, ...) in its query take effect. The server started
here accepts TLS connections only, with a certificate the test made."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from certificates import Issued, issue, make_ca
from pg_server import PostgresServer

from webxdc_rt.stores.api import StoreError
from webxdc_rt.stores.postgres import PostgresStore


@pytest.fixture
def tls_postgres() -> Iterator[tuple[PostgresServer, Issued]]:
    """A PostgreSQL that refuses connections without TLS, and the CA of its certificate."""
    server = PostgresServer("-c", "ssl=on", "-c", "ssl_cert_file=server.pem",
                            "-c", "ssl_key_file=server.key")
    ca = make_ca(server.folder / "ca")
    issued = issue(ca, server.folder / "ca", "server")
    (server.folder / "data" / "server.pem").write_bytes(issued.cert.read_bytes())
    (server.folder / "data" / "server.key").write_bytes(issued.key.read_bytes())
    server.give(server.folder / "data" / "server.pem", server.folder / "data" / "server.key")
    (server.folder / "data" / "pg_hba.conf").write_text(
        "local all all trust\n"
        "hostssl all all 127.0.0.1/32 trust\n"
        "hostnossl all all 0.0.0.0/0 reject\n")
    yield server.start(), ca
    server.remove()


def test_libpq_tls_parameters_in_the_url_take_effect(tls_postgres, tmp_path):
    server, ca = tls_postgres
    store = PostgresStore(f"{server.url}?sslmode=verify-full&sslrootcert="
                          f"{quote(str(ca.cert))}")
    try:
        assert store.schema_version > 0  # it connected (over TLS: the only way in)
    finally:
        store.close()
    with pytest.raises(StoreError, match="no encryption"):
        PostgresStore(f"{server.url}?sslmode=disable")
    other = make_ca(tmp_path / "other", "other-ca")
    with pytest.raises(StoreError, match="certificate verify failed"):
        PostgresStore(f"{server.url}?sslmode=verify-full&sslrootcert="
                      f"{quote(str(other.cert))}")
