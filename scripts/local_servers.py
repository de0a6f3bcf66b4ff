#!/usr/bin/env python3
"""Starts a throwaway PostgreSQL and Redis on free loopback ports, in temporary folders, for
trying `--store` and `--broker` on one machine; prints their URLs and a command that uses
them; Ctrl-C stops both and deletes their folders. Uses the same code as the tests
(tests/pg_server.py, tests/redis_server.py): Debian's `postgresql` and `redis-server`
packages and psycopg (`pip install 'webxdc-rt[postgres]'`) must be installed.

The PostgreSQL cluster trusts connections from this machine's loopback (`initdb -A trust`),
so its URL needs no password; Debian's own cluster asks for one on TCP (scram-sha-256 in
its pg_hba.conf): there the URL is `postgresql://USER:PASSWORD@127.0.0.1/DB`.
"""

from __future__ import annotations

import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from pg_server import PostgresServer  # noqa: E402
from redis_server import RedisServer  # noqa: E402


def main() -> None:
    """Start both servers, print what to use, and wait for Ctrl-C or SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    postgres = PostgresServer().start()
    with tempfile.TemporaryDirectory(prefix="webxdc-rt-redis-") as folder:
        redis = RedisServer(Path(folder)).start()
        try:
            print(f"PostgreSQL: {postgres.url}\nRedis:      {redis.url}\n"
                  f"try: webxdc-rt serve APP --members alice,bob --port 8080 --workers 2 "
                  f"--store {postgres.url} --broker {redis.url}\n"
                  "Ctrl-C stops both and deletes their data", flush=True)
            signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            redis.stop()
            postgres.remove()


if __name__ == "__main__":
    main()
