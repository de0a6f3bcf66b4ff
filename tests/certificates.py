"""Certificates for TLS tests, made with the `openssl` command: a CA of the test's own and
certificates it signed for 127.0.0.1 (an IP address only, so that "localhost" does not
match)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path


def _run(*args: str | Path) -> None:
    subprocess.run([OPENSSL, *map(str, args)], check=True, capture_output=True)


def make_ca(folder: Path, name: str = "test-ca") -> Issued:
    """A self-signed CA in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    issued = Issued(folder / f"{name}.pem", folder / f"{name}.key")
    _run("req", "-x509", *_KEY, "-keyout", issued.key, "-out", issued.cert, "-days", "2",
         "-subj", f"/CN={name}")
    return issued


def issue(ca: Issued, folder: Path, name: str, client: bool = False) -> Issued:
    """A certificate for 127.0.0.1 signed by `ca`: a server's (which may also serve as a
    client's), or with `client` only a client's."""
    issued = Issued(folder / f"{name}.pem", folder / f"{name}.key")
    request = folder / f"{name}.csr"
    extensions = folder / f"{name}.ext"
    usage = "clientAuth" if client else "serverAuth,clientAuth"
    extensions.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                          f"keyUsage=digitalSignature\nextendedKeyUsage={usage}\n"
                          "authorityKeyIdentifier=keyid\n")
    _run("req", "-new", *_KEY, "-keyout", issued.key, "-out", request, "-subj",
         f"/CN={name}")
    _run("x509", "-req", "-in", request, "-CA", ca.cert, "-CAkey", ca.key,
         "-CAcreateserial", "-out", issued.cert, "-days", "2", "-extfile", extensions)
    return issued
