"""The gateway: logs supervisors in, checks each request against their role, and proxies it to the Prefect server."""

import asyncio
import hmac
import json
import os
import secrets
import time
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, urlparse

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from duban.errors import Forbidden
from duban.settings import get_settings
from models.base import utcnow
from gateway.pages import login_page, refused_page
from gateway.routes import WEBSOCKET_PATHS, Rule, allows, classify
from gateway.upstream import Upstream
from tasks.accounts import (LoginRefused, SessionInvalid, SessionUser, check_decider, login, logout, record_audit,
                            session_user)

SESSION_COOKIE = "duban_session"
LOGIN_CSRF_COOKIE = "duban_login_csrf"
_SAFE = {"GET", "HEAD", "OPTIONS"}
_WHY = {
    "expired": "您的登录已过期，请重新登录 / Your session has expired: sign in again.",
    "unknown": "登录无效（已退出或 cookie 被篡改），请重新登录 / Your session is not valid (logged out or forged): sign in again.",
    "disabled": "账号已停用 / This account is disabled: ask an admin.",
}


def create_app(*, upstream_api: str | None = None) -> Starlette:
    """The gateway app for a Prefect server's API URL (default: PREFECT_API_URL, then DUBAN_PREFECT_API_URL)."""
    settings = get_settings()
    api_url = (upstream_api or os.environ.get("PREFECT_API_URL") or settings.prefect_api_url).rstrip("/")
    root = api_url.removesuffix("/api")
    auth = settings.prefect_auth_string.get_secret_value()
    secure = settings.gateway_secure_cookies
    sessions = _Sessions(settings.gateway_session_recheck_s)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        async with Upstream(root, auth) as upstream:
            app.state.upstream = upstream
            yield

    async def login_form(request: Request) -> Response:
        return _login_response(next_url=request.query_params.get("next", "/"),
                               error=_WHY.get(request.query_params.get("why", ""), ""), secure=secure)

    async def login_submit(request: Request) -> Response:
        form = await request.form()
        next_url = _local(str(form.get("next", "/")))
        sent, expected = str(form.get("csrf", "")), request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(sent, expected):
            return _login_response(next_url=next_url, status=403, secure=secure, error=(
                "表单安全令牌缺失或不符 (CSRF)，请刷新页面后重试 / The form's security token (CSRF) is missing "
                "or wrong: reload this page and try again."))
        try:
            opened = await run_in_threadpool(login, name=str(form.get("name", "")).strip(),
                                             password=str(form.get("password", "")))
        except LoginRefused as exc:
            return _login_response(next_url=next_url, status=401, error=str(exc), secure=secure)
        response = RedirectResponse(next_url, status_code=303)
        response.set_cookie(SESSION_COOKIE, opened.token, max_age=settings.gateway_session_minutes * 60,
                            httponly=True, samesite="lax", secure=secure)
        response.delete_cookie(LOGIN_CSRF_COOKIE)
        return response

    async def logout_submit(request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE, "")
        user = await sessions.user(token)
        if isinstance(user, SessionUser):
            form = await request.form()
            sent = str(form.get("csrf", "")) or request.headers.get("prefect-csrf-token", "")
            if not hmac.compare_digest(sent, user.csrf_token):
                return _refuse(request, 403, "missing or wrong CSRF token: log out from the gateway's own button")
            await run_in_threadpool(logout, token=token)
            sessions.forget(token)
            await run_in_threadpool(record_audit, user=user.name, action="logout", target="", outcome=200)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    async def csrf_token(request: Request) -> Response:
        user = await sessions.user(request.cookies.get(SESSION_COOKIE, ""))
        if not isinstance(user, SessionUser):
            return _unauthenticated(request, user)
        return JSONResponse({"token": user.csrf_token, "client": request.query_params.get("client", ""),
                             "expiration": user.expires_at.isoformat()})

    async def proxy(request: Request) -> Response:
        path, method = request.url.path, request.method
        rule = classify(method, path)
        if rule is None:
            return _refuse(request, 403, f"the gateway refuses {method} {path}: this route is not classified for any "
                                         "role (see gateway/routes.py)")
        user = await sessions.user(request.cookies.get(SESSION_COOKIE, ""))
        if not isinstance(user, SessionUser):
            return _unauthenticated(request, user)
        if not allows(user.role, rule):
            if rule.audit:
                await run_in_threadpool(record_audit, user=user.name, action=rule.audit, target=f"{method} {path}",
                                        outcome=403, details={"refused": f"role {user.role}"})
            return _refuse(request, 403, f"your role ({user.role}) may not {method} {path}; it needs the "
                                         f"{rule.role} role")
        if method not in _SAFE and not hmac.compare_digest(request.headers.get("prefect-csrf-token", ""),
                                                           user.csrf_token):
            return _refuse(request, 403, "missing or wrong CSRF token (Prefect-Csrf-Token header): reload the page")
        try:
            body = await request.body()
        except ClientDisconnect:
            return Response(status_code=400)  # the browser left (a page changed) before sending it all
        target, details = f"{method} {path}", {}
        if rule.audit:
            try:
                body, target, details = await _describe(request.app.state.upstream, rule, user, path, body)
            except _Refused as exc:
                await run_in_threadpool(record_audit, user=user.name, action=rule.audit, target=exc.target,
                                        outcome=exc.status, details={"refused": exc.message})
                return _refuse(request, exc.status, exc.message)
        response = await request.app.state.upstream.forward(request, body)
        if rule.audit:
            await run_in_threadpool(record_audit, user=user.name, action=rule.audit, target=target,
                                    outcome=response.status_code, details=details)
        return response

    async def websocket_proxy(websocket: WebSocket) -> None:
        api_path = websocket.url.path.removeprefix("/api")
        origin = urlparse(websocket.headers.get("origin", ""))
        user = await sessions.user(websocket.cookies.get(SESSION_COOKIE, ""))
        if not websocket.url.path.startswith("/api/") or api_path not in WEBSOCKET_PATHS:
            await websocket.close(1008, reason=f"the gateway refuses a websocket to {websocket.url.path}")
            return
        # Browsers send cookies with cross-site websockets: only the gateway's own pages may open one.
        if origin.netloc and origin.netloc != websocket.headers.get("host"):
            await websocket.close(1008, reason="websocket from another site refused")
            return
        if not isinstance(user, SessionUser):
            await websocket.close(1008, reason="not signed in to the gateway")
            return
        prefect = "prefect" in websocket.scope.get("subprotocols", [])
        await websocket.accept(subprotocol="prefect" if prefect else None)
        query = f"?{websocket.url.query}" if websocket.url.query else ""
        url = "ws" + root.removeprefix("http") + websocket.url.path + query
        try:
            async with ws_connect(url, subprotocols=["prefect"] if prefect else None,
                                  additional_headers=websocket.app.state.upstream.headers) as upstream:
                await _pump(websocket, upstream, auth)
        except (OSError, ConnectionClosed):
            pass
        finally:
            await _close_quietly(websocket)

    routes = [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout_submit, methods=["POST"]),
        Route("/api/csrf-token", csrf_token, methods=["GET"]),
        Route("/{path:path}", proxy, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        WebSocketRoute("/{path:path}", websocket_proxy),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


class _Sessions:
    """Session checks, each remembered for a few seconds so a burst of the UI's requests costs one query."""

    def __init__(self, recheck_s: float) -> None:
        self.recheck_s = recheck_s
        self.seen: dict[str, tuple[float, SessionUser]] = {}

    async def user(self, token: str) -> SessionUser | SessionInvalid | None:
        if not token:
            return None
        now = time.monotonic()
        hit = self.seen.get(token)
        if hit is not None and now - hit[0] < self.recheck_s and hit[1].expires_at > utcnow():
            return hit[1]
        try:
            found = await run_in_threadpool(session_user, token=token)
        except SessionInvalid as exc:
            self.seen.pop(token, None)
            return exc
        if len(self.seen) > 10_000:
            self.seen.clear()
        self.seen[token] = (now, found)
        return found

    def forget(self, token: str) -> None:
        self.seen.pop(token, None)


def _local(url: str) -> str:
    """Only a path on this gateway: a login must never send the person to another site."""
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else "/"


def _login_response(*, next_url: str, secure: bool, error: str = "", status: int = 200) -> Response:
    csrf = secrets.token_urlsafe(32)
    response = HTMLResponse(login_page(csrf=csrf, next_url=_local(next_url), error=error), status_code=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, csrf, max_age=3600, httponly=True, samesite="strict", secure=secure)
    return response


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api") or "text/html" not in request.headers.get("accept", "")


def _refuse(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    return HTMLResponse(refused_page(message=message), status_code=status)


def _unauthenticated(request: Request, problem: SessionInvalid | None) -> Response:
    code = problem.code if problem else ""
    if _wants_json(request):
        message = str(problem) if problem else "not signed in: sign in to the gateway at /login"
        return JSONResponse({"detail": message}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    why = f"&why={code}" if code else ""
    return RedirectResponse(f"/login?next={quote(target)}{why}", status_code=303)


class _Refused(Exception):
    """A request refused once the gateway has looked at it; the audit line names its target."""

    def __init__(self, status: int, message: str, target: str) -> None:
        super().__init__(message)
        self.status, self.message, self.target = status, message, target


async def _describe(upstream: Upstream, rule: Rule, user: SessionUser, path: str,
                    body: bytes) -> tuple[bytes, str, dict[str, Any]]:
    """The audit target and details of an action; for a decision, the body signed with the person's name."""
    parts = path.split("/")
    if parts[2] != "flow_runs":
        return body, path.removeprefix("/api"), {}
    name = ((await upstream.read_json(f"/api/flow_runs/{parts[3]}")) or {}).get("name", "")
    target = f"flow run {name} ({parts[3]})"
    try:
        payload = json.loads(body or b"{}") or {}
    except ValueError:
        raise _Refused(422, "the request body is not JSON", target) from None
    if not isinstance(payload, dict):
        raise _Refused(422, "the request body must be a JSON object", target)
    if rule.audit == "flow_run_state_set":
        return body, target, {"state": (payload.get("state") or {}).get("type")}
    if rule.audit != "decision":
        return body, target, {}
    try:
        await run_in_threadpool(check_decider, order_number=name, user=user.name)
    except Forbidden as exc:
        raise _Refused(403, str(exc), target) from None
    run_input = payload.get("run_input")
    if isinstance(run_input, dict):
        # The form's typed name, if any, is replaced: the transition's actor is the person who signed in.
        typed = run_input.get("decided_by")
        run_input["decided_by"] = user.name
        details = {"decision": run_input.get("decision") or run_input.get("satisfaction")}
        if typed:
            details["typed_name"] = typed
        return json.dumps(payload).encode(), target, details
    return body, target, {}


async def _pump(websocket: WebSocket, upstream, auth: str) -> None:
    """Relay messages both ways; the UI's auth message gets the server's auth string in place of its own."""

    async def browser_to_server() -> None:
        first = True
        while True:
            message = await websocket.receive_text()
            if first and auth:
                try:
                    parsed = json.loads(message)
                except ValueError:
                    parsed = None
                if isinstance(parsed, dict) and parsed.get("type") == "auth":
                    message = json.dumps({**parsed, "token": auth})
            first = False
            await upstream.send(message)

    async def server_to_browser() -> None:
        async for message in upstream:
            if isinstance(message, bytes):
                await websocket.send_bytes(message)
            else:
                await websocket.send_text(message)

    tasks = [asyncio.create_task(browser_to_server()), asyncio.create_task(server_to_browser())]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        if task.exception() and not isinstance(task.exception(), (WebSocketDisconnect, ConnectionClosed)):
            raise task.exception()


async def _close_quietly(websocket: WebSocket) -> None:
    try:
        await websocket.close()
    except RuntimeError:
        pass  # already closed by the other side
