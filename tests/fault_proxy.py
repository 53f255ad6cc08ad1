"""A loopback proxy in front of a teacher that answers the first requests with chosen HTTP errors.

Real servers cannot be told to fail on cue; this puts vLLM's overload answers (429 with
``Retry-After``, 503 "engine busy") in front of any of them, then passes requests through unchanged.
"""

from __future__ import annotations

from aiohttp import ClientSession, web

MESSAGES = {429: "Too many requests", 503: "The engine is currently busy"}


class FaultProxy:
    def __init__(self, upstream: str, faults: list[int]) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = list(faults)
        self.faulted = 0
        self.passed = 0
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None

    async def start(self) -> str:
        """Listen on a free loopback port; returns the proxy's /v1 base URL."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes([web.route("*", "/{tail:.*}", self._handle)])
        self._session = ClientSession()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"

    async def _handle(self, request: web.Request) -> web.Response:
        if request.method == "POST" and self.faults:
            status = self.faults.pop(0)
            self.faulted += 1
            body = {"error": {"message": MESSAGES.get(status, "fault"), "type": "Fault", "code": status}}
            return web.json_response(body, status=status, headers={"Retry-After": "0"})
        assert self._session is not None
        target = self.upstream.removesuffix("/v1") + "/" + request.match_info["tail"]
        async with self._session.request(
            request.method, target, data=await request.read(), headers={"Content-Type": "application/json"}
        ) as upstream:
            self.passed += request.method == "POST"  # completions, not the client's /health probes
            return web.Response(
                body=await upstream.read(), status=upstream.status, content_type="application/json"
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()
