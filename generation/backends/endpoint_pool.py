"""Round-robin over a backend's endpoints, with one HTTP client per endpoint and event loop.

Shared by the ``tgi`` and ``openai`` backends. Why clients are tied to an event loop: ``generate`` runs a fresh
loop per call, and an httpx ``AsyncClient`` created in a closed loop cannot be reused, so the cache is
emptied whenever it is used from another loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Sequence
from typing import Any


class EndpointPool:
    """The endpoints of one backend, taken in turn, each with its lazily created client."""

    def __init__(self, endpoints: Sequence[str], make_client: Callable[[str], Any]) -> None:
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self._make_client = make_client
        self._cycle = itertools.cycle(self.endpoints)
        self._clients: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def next_endpoint(self) -> str:
        """The endpoint for the next request (round-robin)."""
        return next(self._cycle)

    def client(self, endpoint: str) -> Any:
        """The endpoint's client, recreated when called from a new event loop."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._clients, self._loop = {}, loop
        if endpoint not in self._clients:
            self._clients[endpoint] = self._make_client(endpoint)
        return self._clients[endpoint]

    async def aclose(self) -> None:
        """Close every client created so far."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            close = getattr(client, "aclose", None) or client.close  # httpx: aclose(); other clients: close()
            with contextlib.suppress(RuntimeError):  # its event loop is already closed: nothing to release
                await close()
