"""The gateway's own CSRF token at a Prefect server that runs with PREFECT_SERVER_CSRF_PROTECTION_ENABLED.

Such a server refuses every POST, PATCH, PUT and DELETE (reads of lists are POSTs too) without a
token it issued to the calling client. The browser's token stays at the gateway, which checks it;
towards the server the gateway is one client with a token of its own, renewed at half its lifetime.
"""

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

import aiohttp

UNSAFE = {"POST", "PATCH", "PUT", "DELETE"}
RECHECK_DISABLED_S = 300  # how long a server found with CSRF protection off is believed to stay so


class ServerCsrf:
    """Fetches and renews the token; no headers at all while the server has CSRF protection off."""

    def __init__(self) -> None:
        self.client_id = f"duban-gateway-{uuid.uuid4()}"
        self.token = ""
        self.renew_at = 0.0
        self.lock = asyncio.Lock()

    async def headers(self, session: aiohttp.ClientSession, root: str, method: str) -> dict[str, str]:
        """The headers a request of this method needs at the server (the session carries the server's login)."""
        if method.upper() not in UNSAFE:
            return {}
        async with self.lock:
            if time.monotonic() >= self.renew_at:
                await self._renew(session, root)
        return {"Prefect-Csrf-Token": self.token, "Prefect-Csrf-Client": self.client_id} if self.token else {}

    async def _renew(self, session: aiohttp.ClientSession, root: str) -> None:
        async with session.get(f"{root}/api/csrf-token", params={"client": self.client_id}) as answer:
            if answer.status == 422:  # the server answers so when CSRF protection is off
                self.token, self.renew_at = "", time.monotonic() + RECHECK_DISABLED_S
                return
            answer.raise_for_status()
            issued = json.loads(await answer.read())
        lifetime = (datetime.fromisoformat(issued["expiration"]) - datetime.now(UTC)).total_seconds()
        self.token, self.renew_at = issued["token"], time.monotonic() + max(lifetime / 2, 1)
