"""Every request names its token, or gets nothing: one middleware in front of the API and the pages.

A token comes in the ``Authorization: Bearer`` header, or for the pages in the cookie the login form
sets (HttpOnly, SameSite=Strict, so another site's page cannot make a browser send it). A token in
the address is refused even when right: addresses end up in proxies' logs and browsers' histories.
Reading needs ``read``; anything else ``submit``; health and the login page need nothing. With no
tokens configured every request is ``local``: then ``serve`` listens on loopback only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from service.security.tokens import LOCAL, Principal, Role, TokenBook

COOKIE = "tracemill_token"
PUBLIC_PATHS = frozenset({"/v1/health", "/ui/login", "/ui/logout"})
PUBLIC_PREFIXES = ("/ui/static/",)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_PARAMETERS = frozenset({"token", "access_token", "api_key", "key", "tracemill_token"})

Next = Callable[[Request], Awaitable[Response]]


def required_role(method: str, path: str) -> Role | None:
    """The least role a request needs; None for the public ones."""
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return None
    return Role.read if method in READ_METHODS else Role.submit


def presented_token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(COOKIE) or None


def principal_of(request: Request) -> Principal:
    """Who the request comes from (set by the middleware before any route runs)."""
    principal: Principal = request.state.principal
    return principal


def safe_next(path: str | None) -> str:
    """Where to go after logging in: a path on this server only, never another site."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/ui/jobs"
    return path


class Authenticator:
    """The middleware: finds the principal, refuses what its role does not cover."""

    def __init__(self, book: TokenBook) -> None:
        self.book = book

    async def __call__(self, request: Request, call_next: Next) -> Response:
        if not self.book.configured:
            request.state.principal = LOCAL
            return await call_next(request)
        path = request.url.path
        if TOKEN_PARAMETERS & {name.lower() for name in request.query_params}:
            return _refuse(
                request,
                401,
                "tokens are never accepted in the address; send 'Authorization: Bearer <token>'",
            )
        needed = required_role(request.method, path)
        token = presented_token(request)
        principal = self.book.identify(token) if token else None
        if needed is None:
            request.state.principal = principal
            return await call_next(request)
        if principal is None:
            message = "this token is not valid" if token else "a token is needed"
            return _refuse(request, 401, message + " (Authorization: Bearer <token>)", invalid=bool(token))
        if not principal.may(needed):
            return _refuse(
                request,
                403,
                f"token {principal.name!r} has role {principal.role.name}; this needs {needed.name}",
            )
        request.state.principal = principal
        return await call_next(request)


def _refuse(request: Request, status: int, message: str, *, invalid: bool = False) -> Response:
    if request.url.path.startswith("/ui/") and status == 401 and request.method in READ_METHODS:
        return RedirectResponse(f"/ui/login?next={quote(request.url.path)}", status_code=303)
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"' if invalid else "Bearer"}
    return JSONResponse({"message": message}, status_code=status, headers=headers if status == 401 else None)
