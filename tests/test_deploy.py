"""The deployment files of docs/deploy/ as Debian's own tools read them: Caddy's
`validate`, `nginx -t` and `systemd-analyze verify` (scripts/test installs caddy and
nginx-light; systemd is Debian's)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from hosting import PROBE_APP, HostProcess
from peers import eventually
from ports import free_port

from webxdc_rt.client import SOCKET_PATH

DEPLOY = Path(__file__).parent.parent / "docs" / "deploy"
WEBXDC_RT = Path(sys.executable).parent / "webxdc-rt"
"""The console script of the environment the tests run in, standing in for
/opt/webxdc-rt/bin/webxdc-rt."""


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        pytest.skip(f"{name} is not installed (scripts/test installs Debian's package)")
    return found


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed wildcard certificate and key, standing in for the DNS-challenge one."""
    cert, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    subprocess.run([_tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1",
                    "-subj", "/CN=*.apps.example.org"], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def documented(tmp_path: Path, certificate: tuple[Path, Path]) -> Callable[[str, str, str], str]:
    """Reads a file of docs/deploy/ with its certificate and key (`fullchain.pem` and
    `privkey.pem` in the folder it names) and its log folder pointed at the test's own."""
    cert, key = certificate

    def read(name: str, cert_folder: str, log_folder: str) -> str:
        text = (DEPLOY / name).read_text()
        text = text.replace(f"{cert_folder}/fullchain.pem", str(cert))
        text = text.replace(f"{cert_folder}/privkey.pem", str(key))
        return text.replace(log_folder, f"{tmp_path}/")

    return read


def test_the_documented_caddyfile_is_valid_for_debians_caddy(tmp_path, documented):
    caddy = _tool("caddy")
    config = documented("Caddyfile", "/etc/caddy/certs/apps.example.org", "/var/log/caddy/")
    (tmp_path / "Caddyfile").write_text(config)
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([caddy, "validate", "--config", str(tmp_path / "Caddyfile"),
                           "--adapter", "caddyfile"], capture_output=True, text=True,
                          env=env, check=False)
    assert done.returncode == 0 and "Valid configuration" in done.stdout + done.stderr, \
        done.stderr
    assert "dns" not in config.split("tls", 1)[1].split("\n", 1)[0]  # no DNS module needed


def test_the_documented_nginx_site_passes_nginx_t(tmp_path, documented):
    nginx = _tool("nginx")
    site = documented("nginx.conf", "/etc/letsencrypt/live/apps.example.org",
                      "/var/log/nginx/")
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "logs").mkdir()
    (tmp_path / "main.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n    include {tmp_path}/site.conf;\n}}\n")
    done = subprocess.run([nginx, "-t", "-c", str(tmp_path / "main.conf"), "-p",
                           str(tmp_path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "test is successful" in done.stderr, done.stderr


@pytest.mark.parametrize("unit", ["webxdc-rt.service", "webxdc-rt-workers.service"])
def test_the_documented_units_pass_systemd_analyze_verify(tmp_path, unit):
    analyze = _tool("systemd-analyze")
    text = (DEPLOY / unit).read_text()
    assert "/opt/webxdc-rt/bin/webxdc-rt " in text
    (tmp_path / unit).write_text(text.replace("/opt/webxdc-rt/bin/webxdc-rt", str(WEBXDC_RT)))
    done = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / unit)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    for setting in ("StateDirectory=", "UMask=0077", "Restart=always",
                    "StartLimitIntervalSec=0", "Wants=network-online.target",
                    "EnvironmentFile=", "ProtectSystem=strict", "NoNewPrivileges=yes",
                    "--metrics 127.0.0.1:"):
        assert setting in text, setting
    assert "PASSWORD@" not in text and ":PASSWORD" not in text


def _without_comments(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_the_guide_shows_the_caddyfile_that_is_validated():
    guide = (DEPLOY.parent / "deploy.md").read_text()
    shown = guide.split("```caddyfile\n", 1)[1].split("```", 1)[0]
    assert _without_comments(shown) == _without_comments((DEPLOY / "Caddyfile").read_text())
    assert "](docs/deploy.md)" in (DEPLOY.parent.parent / "README.md").read_text()


async def test_caddy_proxies_pages_and_sockets_over_https_and_logs_no_token(
        tmp_path, documented):
    caddy = _tool("caddy")
    https, http = free_port(), free_port()
    config = documented("Caddyfile", "/etc/caddy/certs/apps.example.org", "/var/log/caddy/")
    host = await HostProcess(tmp_path / "d").start(
        "--domain", "apps.example.org", "--scheme", "https", "--public-port", str(https))
    # The test's own ports instead of 80 and 443, and no admin endpoint.
    config = (f"{{\n\tadmin off\n\thttp_port {http}\n\thttps_port {https}\n"
              f"\tauto_https disable_redirects\n}}\n"
              + config.replace("*.apps.example.org {", f"*.apps.example.org:{https} {{")
              .replace("127.0.0.1:8080", f"127.0.0.1:{host.port}"))
    (tmp_path / "Caddyfile").write_text(config)
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proxy = subprocess.Popen([caddy, "run", "--config", str(tmp_path / "Caddyfile"),
                              "--adapter", "caddyfile"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await host.cli("chat", "create", "team", "--members", "alice,bob")
        shared = (await host.cli("app", "share", "team", str(PROBE_APP), "--json")).json()
        link = shared["links"][0]["url"]
        assert link.startswith("https://") and f".apps.example.org:{https}/" in link
        await eventually(lambda: _listening(https))
        async with _https_session() as session:
            async with session.get(link) as response:
                assert response.status == 200 and "text/html" in response.content_type
            assert "__Host-webxdc_rt" in {cookie.key for cookie in session.cookie_jar}
            # The page's socket, through the proxy, with the cookie the invite set.
            origin = link.split("/.webxdc-rt/")[0]
            async with session.ws_connect(origin.replace("https://", "wss://") + SOCKET_PATH,
                                          origin=origin) as ws:
                hello = await ws.receive(timeout=30)
                assert hello.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)
        token = link.rsplit("/", 1)[1]
        log = tmp_path / "webxdc-rt.log"
        await eventually(lambda: log.exists() and "REDACTED" in log.read_text())
        assert token not in log.read_text()
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)
        assert await host.stop() == 0


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class _ExampleOrgResolver(AbstractResolver):
    """Resolves every name to 127.0.0.1, where the test's Caddy listens."""

    async def resolve(self, host: str, port: int = 0,
                      family: int = 0) -> list[ResolveResult]:
        return [{"hostname": host, "host": "127.0.0.1", "port": port,
                 "family": socket.AF_INET, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        """Nothing to release."""


def _https_session() -> aiohttp.ClientSession:
    """A client for the test's self-signed certificate, keeping the pages' cookies."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(
        resolver=_ExampleOrgResolver(), ssl=False))
