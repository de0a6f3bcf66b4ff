"""What the host pays to find a page's token among the `Cookie` values a request shows.

    .venv/bin/python bench/session_cookie.py [--rounds N]

For each case: the `Cookie` header's size, the best per-call time of `server.presents` (every
value of the page's cookie tried, at most `max_session_cookies`), and that of aiohttp's
`request.cookies`, which parses every cookie of the header (what the host read before).
"""

from __future__ import annotations

import argparse
import secrets
import timeit
from collections.abc import Callable

from aiohttp.test_utils import make_mocked_request
from aiohttp.web import Request
from multidict import CIMultiDict

from webxdc_rt.host.app import HostSettings, presents
from webxdc_rt.model.chats import Entrance


def cases(token: str) -> dict[str, str]:
    """Cookie headers, by what they hold; the page's own value last in each."""
    own = f"webxdc_rt={token}"
    other = [f"webxdc_rt={secrets.token_urlsafe(32)}" for _ in range(63)]
    many = "; ".join([f"c{i}=v" for i in range(1300)] + [own])
    return {"the page's cookie alone": own,
            "one tossed value, then the page's": f"webxdc_rt=x; {own}",
            "63 tossed token-shaped values, then the page's": "; ".join([*other, own]),
            "8 KiB of other cookies, then the page's": many[-HostSettings().max_header_bytes:]}


def best(call: Callable[[], object], rounds: int) -> float:
    """The best time of one call, in microseconds, over `rounds` rounds of 200 calls."""
    return min(timeit.repeat(call, number=200, repeat=rounds)) / 200 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    token = secrets.token_urlsafe(32)
    page = Entrance("page", token)
    limit = HostSettings().max_session_cookies
    print(f"{'case':50s} {'bytes':>6s} {'presents':>10s} {'aiohttp':>10s}")
    for name, header in cases(token).items():
        request = make_mocked_request("GET", "/", headers=CIMultiDict({"Cookie": header}))
        assert presents(request, page, limit)

        def parse(request: Request = request) -> object:
            request._cache.pop("cookies", None)  # parsed once per request, then kept
            return request.cookies

        def check(request: Request = request) -> object:
            return presents(request, page, limit)

        ours = best(check, rounds)
        print(f"{name:50s} {len(header):6d} {ours:8.1f}us {best(parse, rounds):8.1f}us")


if __name__ == "__main__":
    main()
