"""The request-body limit, as ASGI middleware: a body over ``max_body_bytes`` is refused
with 413 while it arrives, by its Content-Length when it declares one, by counting when it
is chunked, so that no route reads, parses or stores more than the limit."""

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from exchange.errors import PayloadTooLarge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"),
                        None)
        limit = self.max_bytes
        received = 0

        async def limited() -> Message:
            # Raised where a route reads its body: the exchange's error handler records the
            # refusal and answers with an OperationOutcome, like every other refusal.
            nonlocal received
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                raise _too_large(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)
            return message

        await self.app(scope, limited, send)


def _too_large(limit: int) -> PayloadTooLarge:
    size = f"{limit / 2**20:.3g} MB" if limit >= 2**20 else f"{limit / 2**10:.3g} KB"
    return PayloadTooLarge(f"The request body is over the {size} this exchange accepts.")
