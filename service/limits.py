"""Request size limits: 413 problem+json before a too-large body is read into memory."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.problems import problem


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """JSON bodies up to `json_limit` bytes; uploads (paths under `upload_prefix`) up to
    `upload_limit`. A declared Content-Length over the limit is refused at once; a chunked
    body is counted as it streams."""

    def __init__(
        self, app: ASGIApp, *, json_limit: int, upload_limit: int, upload_prefix: str
    ) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit
        self.upload_prefix = upload_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = (
            self.upload_limit if scope["path"].startswith(self.upload_prefix) else self.json_limit
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(limit, scope, receive, send)
            return
        seen = 0
        started = False

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, sending)
        except _TooLarge:
            if not started:
                await self._refuse(limit, scope, receive, send)

    @staticmethod
    async def _refuse(limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, f"the request body is larger than {limit} bytes", kind="too-large")
        await response(scope, receive, send)
