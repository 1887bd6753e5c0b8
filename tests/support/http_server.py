"""A small HTTP server for NIP-11 cases real relays won't produce; the URL path picks the answer.

Written on asyncio streams rather than a framework so a test controls every byte and every pause.
"""

from __future__ import annotations

import asyncio
import json

from tests.support.loopback_server import LoopbackServer

DOCUMENT = {"name": "http test relay", "supported_nips": [1, 11], "limitation": {"max_limit": 77}}


class Nip11Server(LoopbackServer):
    """`async with Nip11Server() as server:`; `server.relay_url("/path")` is the ws:// form.

    Paths: `/` a valid document; `/oversized` declares a huge body; `/endless` streams chunks
    without a length; `/slow` drips one byte per second; `/not-json`; `/array`; `/redirect`;
    `/missing` (404). `requests` holds each request's head, to check what the client sent.
    """

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[str] = []

    def relay_url(self, path: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        self.requests.append(head)
        path = head.split(" ", 2)[1]
        await self._answer(path, writer)

    async def _answer(self, path: str, writer: asyncio.StreamWriter) -> None:
        match path:
            case "/oversized":
                writer.write(_head(200, {"Content-Length": str(10 << 20)}))
                writer.write(b"{" + b" " * 1024)
            case "/endless":
                writer.write(_head(200, {"Transfer-Encoding": "chunked"}))
                chunk = b" " * 4096
                while True:
                    writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    await writer.drain()
            case "/slow":
                body = json.dumps(DOCUMENT).encode()
                writer.write(_head(200, {"Content-Length": str(len(body))}))
                for byte in body:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(1)
            case "/not-json":
                _send(writer, 200, b"<html>hello</html>")
            case "/array":
                _send(writer, 200, b"[1, 2, 3]")
            case "/redirect":
                writer.write(_head(301, {"Location": "http://127.0.0.1:9/", "Content-Length": "0"}))
            case "/missing":
                _send(writer, 404, b"not found")
            case _:
                _send(writer, 200, json.dumps(DOCUMENT).encode())
        await writer.drain()


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X", "Content-Type: application/nostr+json", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _send(writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
    writer.write(_head(status, {"Content-Length": str(len(body))}) + body)
