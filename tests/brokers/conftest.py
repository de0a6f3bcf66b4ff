"""Fixtures of the broker tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest


@pytest.fixture
async def started() -> AsyncIterator[Callable[[Any], Awaitable[Any]]]:
    """Start a broker and hand it back; every broker started so is closed after the
    test."""
    brokers: list[Any] = []

    async def start(broker: Any) -> Any:
        brokers.append(broker)
        await broker.start()
        return broker

    yield start
    for broker in brokers:
        await broker.close()
