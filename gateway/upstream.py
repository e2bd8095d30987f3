"""The gateway's side of the Prefect server: one pooled client, requests forwarded as they came.

aiohttp rather than httpx for this hop: measured on this machine, it costs about 0.2 ms of CPU per
proxied API call where httpx cost 0.9 ms, most of what the gateway adds to a request.
"""

import asyncio
import base64
import json
from typing import Any

import aiohttp
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from yarl import URL

from gateway.server_csrf import ServerCsrf

BUFFER_LIMIT = 256 * 1024
# The Prefect server answers 503 when its database is busy (a locked SQLite file, a dropped connection) and
# has rolled the request back; its Python client retries such answers, the UI does not. The gateway retries
# for the browser, so a supervisor's decision is not lost to a moment's lock: after 0.25, 0.5, 1, 2 and 4 s.
RETRY_STATUSES = frozenset({429, 503})
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0)
# Never forwarded: the browser's credentials stay at the gateway, and the server gets the gateway's own.
_DROP_REQUEST = {"host", "cookie", "authorization", "content-length", "connection", "keep-alive", "upgrade",
                 "transfer-encoding", "prefect-csrf-token", "prefect-csrf-client", "te", "proxy-authorization"}
_DROP_RESPONSE = {b"connection", b"keep-alive", b"transfer-encoding", b"set-cookie", b"content-length"}


class Upstream:
    """The Prefect server at `root` (its URL without /api), reached with the auth string as basic auth."""

    def __init__(self, root: str, auth: str) -> None:
        self.root = root.rstrip("/")
        self.headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
        self.session: aiohttp.ClientSession | None = None
        self.csrf = ServerCsrf()

    async def __aenter__(self) -> "Upstream":
        # Bodies pass through as they are, compressed or not, and only the browser's own headers ask for it.
        self.session = aiohttp.ClientSession(
            headers=self.headers, auto_decompress=False, skip_auto_headers=("Accept-Encoding", "User-Agent", "Accept"),
            timeout=aiohttp.ClientTimeout(total=None, connect=5, sock_read=60))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    async def read_json(self, path: str) -> Any:
        """GET a path of the server as the gateway itself; None when it does not answer 200."""
        try:
            async with self.session.get(self.root + path) as answer:
                return json.loads(await answer.read()) if answer.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def forward(self, request: Request, body: bytes) -> Response:
        """Send the browser's request on, and its answer back: small ones whole, large ones streamed."""
        query = f"?{request.url.query}" if request.url.query else ""
        url = URL(self.root + request.url.path + query, encoded=True)
        # The UI's settings are rewritten here, so they are asked for uncompressed.
        rewrite = request.url.path.endswith("/ui-settings")
        headers = [(k, v) for k, v in request.headers.items()
                   if k not in _DROP_REQUEST and not (rewrite and k == "accept-encoding")]
        try:
            headers += list((await self.csrf.headers(self.session, self.root, request.method)).items())
        except (aiohttp.ClientError, TimeoutError) as exc:
            return JSONResponse({"detail": f"the Prefect server did not issue a CSRF token: {exc!r}"}, status_code=502)
        try:
            answer = await self._send(request.method, url, headers, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return JSONResponse({"detail": f"the Prefect server did not answer: {exc!r}"}, status_code=502)
        raw = [(k.lower(), v) for k, v in answer.raw_headers if k.lower() not in _DROP_RESPONSE]
        length = answer.content_length
        try:
            if rewrite and answer.status == 200:
                values = json.loads(await answer.read())
                return JSONResponse(_ui_settings(values, request), status_code=200)
            if request.method == "HEAD" or (length is not None and length < BUFFER_LIMIT):
                # Small answers (nearly every API call) in one piece: cheaper than streaming them chunk by chunk.
                content = await answer.read()
                response = Response(content, status_code=answer.status)
                response.raw_headers = raw + _length(answer.status, len(content) if length is None else length)
                answer.release()
                return response
        except (aiohttp.ClientError, TimeoutError) as exc:
            answer.release()
            return JSONResponse({"detail": f"the Prefect server broke off its answer: {exc!r}"}, status_code=502)
        response = StreamingResponse(answer.content.iter_chunked(64 * 1024), status_code=answer.status,
                                     background=BackgroundTask(answer.release))
        response.raw_headers = raw + ([] if length is None else _length(answer.status, length))
        return response

    async def _send(self, method: str, url: URL, headers: list[tuple[str, str]],
                    body: bytes) -> aiohttp.ClientResponse:
        """One request, sent again while the server answers that it could not take it just now."""
        for delay in RETRY_DELAYS:
            answer = await self._request(method, url, headers, body)
            if answer.status not in RETRY_STATUSES:
                return answer
            answer.release()
            await asyncio.sleep(delay)
        return await self._request(method, url, headers, body)

    async def _request(self, method: str, url: URL, headers: list[tuple[str, str]],
                       body: bytes) -> aiohttp.ClientResponse:
        """One request; on a pooled connection the server closed as it went out, once more on a new one.

        The server ends an idle keep-alive connection after a few seconds; a request sent on it at that
        moment fails before any answer ("Can not write request body", "Server disconnected"). Prefect's own
        client sends such a request again, whatever its method; so does the gateway, once.
        """
        try:
            return await self.session.request(method, url, headers=headers, data=body or None,
                                              allow_redirects=False)
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
            return await self.session.request(method, url, headers=headers, data=body or None,
                                              allow_redirects=False)


def _length(status: int, length: int) -> list[tuple[bytes, bytes]]:
    """The Content-Length header an answer of this status carries (none for 1xx, 204 and 304)."""
    return [] if status < 200 or status in (204, 304) else [(b"content-length", str(length).encode())]


def _ui_settings(values: dict[str, Any], request: Request) -> dict[str, Any]:
    """The UI talks to the gateway, never to the server; it shows no login of its own and sends CSRF tokens."""
    base = str(request.base_url).rstrip("/")
    return {**values, "api_url": f"{base}/api", "auth": None, "csrf_enabled": True}
