"""Reject request bodies over RERANKQ_MAX_BODY_BYTES with 413 before more than that is read into memory."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import mark_rejection


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, send)
            return
        if declared is None:
            await self._buffered(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except BodyTooLarge:
            await self._reject(scope, send)

    async def _buffered(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A body of unknown length (chunked) is read here first, up to the limit, then handed on:
        an error raised from inside the app's own body reading would become a parse error (400)."""
        parts: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                pending: list[Message] = [message]
                break
            parts.append(message.get("body", b""))
            seen += len(parts[-1])
            if seen > self.max_bytes:
                await self._reject(scope, send)
                return
            if not message.get("more_body", False):
                pending = [{"type": "http.request", "body": b"".join(parts), "more_body": False}]
                break

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        mark_rejection(scope, "body_too_large")
        body = json.dumps({
            "error": "body_too_large",
            "message": f"request body exceeds {self.max_bytes} bytes (RERANKQ_MAX_BODY_BYTES)",
            "details": [{"field": "body", "message": "too large", "limit": self.max_bytes}],
        }).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass
