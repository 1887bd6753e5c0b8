"""The HTTP app of `bigbrotr api`: events by NIP-01 filter, relays, stats, and the relay socket.

FastAPI (on Starlette) because it derives the OpenAPI document from the route signatures and
pydantic models we already use, and serves websockets on the same port, so one address is both
the query API and a NIP-01 relay. Every answer that is not a success is `{"error": "..."}`.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at runtime, and
# they refer to this module's closures (settings, the key scheme).
import hmac
import time
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Security, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocketDisconnect

from bigbrotr.api.models import ErrorOut, EventPage, RelayPage, StatsOut
from bigbrotr.api.params import FilterLimits, events_request
from bigbrotr.api.ratelimit import ClientLimiter
from bigbrotr.api.relay import RelayLimits, RelaySession, information
from bigbrotr.archive import Archive, InvalidCursor, Keyset
from bigbrotr.config import ApiRoute, ApiSettings
from bigbrotr.errors import ArchiveError
from bigbrotr.nostr import InvalidFilter, InvalidRelayUrl, event_to_dict, normalize_relay_url

NOSTR_JSON = "application/nostr+json"
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The request is not valid; the error says why"},
    429: {"model": ErrorOut, "description": "Over the per-client rate; see Retry-After"},
    503: {"model": ErrorOut, "description": "The archive is unreachable or the query too slow"},
}
_KEY_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "This route needs a valid X-API-Key header"}
}
_HEX64_LIST = {"type": "array", "items": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}


def _parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    array = {"style": "form", "explode": True} if schema.get("type") == "array" else {}
    return {"name": name, "in": "query", "description": description, "schema": schema, **array}


# /events reads its query string itself (for the `#x` keys), so its parameters are declared here.
_EVENTS_PARAMETERS = [
    _parameter("ids", "Event ids (64 hex); repeated or comma-separated", _HEX64_LIST),
    _parameter("authors", "Author public keys (64 hex); repeated or comma-separated", _HEX64_LIST),
    _parameter(
        "kinds",
        "Kinds 0..65535; repeated or comma-separated",
        {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 65535}},
    ),
    _parameter(
        "#e",
        "Tag filter: events with an `e` tag of one of these values; every single letter works "
        "the same (`#p`, `#t`, ...), URL-encoded as %23e; repeated",
        {"type": "array", "items": {"type": "string"}},
    ),
    _parameter("since", "Oldest created_at (unix seconds)", {"type": "integer", "minimum": 0}),
    _parameter("until", "Newest created_at (unix seconds)", {"type": "integer", "minimum": 0}),
    _parameter("limit", "Events per page (default and maximum: api settings)", {"type": "integer"}),
    _parameter("cursor", "next_cursor of the previous page", {"type": "string"}),
]


def create_app(settings: ApiSettings, archive: Archive) -> FastAPI:
    """The app over an open archive; routes in `settings.private_routes` need an API key."""
    limits = FilterLimits(settings.default_limit, settings.max_limit, settings.max_filter_values)
    relay_limits = RelayLimits(limits, settings.relay_max_subscriptions, settings.relay_max_filters)
    limiter = ClientLimiter(settings.rate_limit)
    app = FastAPI(
        title="BigBrotr archive API",
        version="1",
        description="Read-only queries over the BigBrotr archive of Nostr events and relays. "
        "The same address is a read-only NIP-01 relay over websockets.",
    )
    _install_error_handlers(app)
    require_key = _key_check([key.get_secret_value() for key in settings.keys])

    def guarded(route: ApiRoute) -> dict[str, Any]:
        if route not in settings.private_routes:
            return {"responses": _ERRORS}
        return {"dependencies": [Depends(require_key)], "responses": {**_ERRORS, **_KEY_ERRORS}}

    @app.middleware("http")
    async def rate_limit(request: Request, call_next: Any) -> Response:
        client = request.client.host if request.client else "unknown"
        if not await limiter.allow(client):
            wait = await limiter.retry_after_s(client)
            return JSONResponse(
                {"error": f"over the rate of {limiter.rate} for {client}; retry in {wait} s"},
                status_code=429,
                headers={"Retry-After": str(wait)},
            )
        response: Response = await call_next(request)
        return response

    @app.get("/", summary="NIP-11 relay information, or where things are")
    async def root(request: Request) -> JSONResponse:
        """With `Accept: application/nostr+json`, the NIP-11 document of the archive relay."""
        if NOSTR_JSON in request.headers.get("accept", ""):
            document = information(relay_limits, settings.relay_max_message_bytes)
            return JSONResponse(
                document,
                media_type=NOSTR_JSON,
                headers={"Access-Control-Allow-Origin": "*"},
            )
        return JSONResponse(
            {
                "openapi": "/openapi.json",
                "docs": "/docs",
                "relay": "this address over websockets" if settings.relay else None,
            }
        )

    @app.get(
        "/events",
        response_model=EventPage,
        summary="Events by NIP-01 filter, newest first, by keyset pages",
        openapi_extra={"parameters": _EVENTS_PARAMETERS},
        **guarded("events"),
    )
    async def events(request: Request) -> dict[str, Any]:
        """Unknown parameters are refused: a typo must not silently widen the filter."""
        try:
            wanted = events_request(request.query_params.multi_items(), limits)
        except (InvalidFilter, InvalidCursor) as exc:
            raise HTTPException(400, str(exc)) from exc
        found = await archive.events(wanted.filter, limit=wanted.limit + 1, after=wanted.after)
        page = found[: wanted.limit]
        last = page[-1] if page and len(found) > wanted.limit else None
        return {
            "events": [event_to_dict(event) for event in page],
            "next_cursor": Keyset(last.created_at, last.id).token() if last else None,
        }

    @app.get(
        "/relays",
        response_model=RelayPage,
        summary="Relays with their newest NIP-11 document and health, by URL",
        **guarded("relays"),
    )
    async def relays(
        url: Annotated[str | None, Query(description="Only this relay")] = None,
        network: Annotated[Literal["clearnet", "tor", "i2p", "loki"] | None, Query()] = None,
        after: Annotated[str | None, Query(description="next_after of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=settings.max_limit)] = settings.default_limit,
    ) -> dict[str, Any]:
        if url is not None:
            try:
                url = normalize_relay_url(url)
            except InvalidRelayUrl as exc:
                raise HTTPException(400, f"url: {exc}") from exc
        found = await archive.relays(limit=limit + 1, url=url, network=network, after=after)
        page = found[:limit]
        return {
            "relays": page,
            "next_after": page[-1]["url"] if len(found) > limit else None,
        }

    counted: dict[str, Any] = {}

    @app.get(
        "/stats",
        response_model=StatsOut,
        summary="Counts of the archive (exact, from the tables; cached for api.stats_cache_s)",
        **guarded("stats"),
    )
    async def stats() -> dict[str, Any]:
        if not counted or time.monotonic() - counted["at"] > settings.stats_cache_s:
            counted.update(at=time.monotonic(), value=await archive.stats())
        value: dict[str, Any] = counted["value"]
        return value

    if settings.relay:

        @app.websocket("/")
        async def relay(websocket: WebSocket) -> None:
            client = websocket.client.host if websocket.client else "unknown"
            session = RelaySession(archive, relay_limits, lambda: limiter.allow(client))
            await websocket.accept()
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    text = message.get("text")
                    if text is None:
                        await websocket.send_text('["NOTICE","invalid: send text frames"]')
                        continue
                    async for frame in session.handle(text):
                        await websocket.send_text(frame)
            except (WebSocketDisconnect, OSError):
                return  # the client left, perhaps mid-answer (uvicorn's ClientDisconnected)

    return app


def _key_check(keys: list[str]) -> Any:
    scheme = APIKeyHeader(name="X-API-Key", auto_error=False)

    async def require_key(key: Annotated[str | None, Security(scheme)]) -> None:
        given = (key or "").encode()
        if not any(hmac.compare_digest(given, known.encode()) for known in keys):
            raise HTTPException(401, "this route needs an API key: send it as X-API-Key")

    return require_key


def _install_error_handlers(app: FastAPI) -> None:
    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        parts = []
        for error in exc.errors():
            loc = [str(part) for part in error.get("loc", ())]
            where = f"{loc[0]} parameter {loc[-1]!r}" if len(loc) > 1 else ".".join(loc)
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
        return JSONResponse({"error": "; ".join(parts) or "invalid request"}, status_code=400)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse(
            {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=503)

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(ArchiveError, unavailable)
