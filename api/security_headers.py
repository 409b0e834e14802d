"""Security headers on every answer, and a strict Content-Security-Policy on the dashboard.

The dashboard runs only its own script file (`script-src 'self'`: an injected `<script>` or `on…=`
attribute does not run), may not be framed (clickjacking), and sends no Referer with job ids to
other sites. `/docs` keeps its own page (Swagger UI loads its script from a CDN), so the policy
covers the dashboard only; `nosniff` and the Referrer-Policy go on everything.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DASHBOARD_PREFIX = "/dashboard"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
EVERYWHERE = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
DASHBOARD = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Frame-Options": "DENY"}


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = {**EVERYWHERE, **(DASHBOARD if scope.get("path", "").startswith(DASHBOARD_PREFIX) else {})}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
