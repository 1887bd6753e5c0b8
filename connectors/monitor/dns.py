"""What a relay's host name resolves to (A and AAAA answers), whether public or not."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from connectors.monitor.checks import describe


async def resolve(host: str, *, time_limit: float) -> dict[str, Any]:
    """The `DnsResult` record for `host`: its IPv4 and IPv6 addresses, or why there are none."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(time_limit):
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except TimeoutError:
        return {"addresses": [], "error": f"no DNS answer in {time_limit:g}s"}
    except OSError as exc:
        return {"addresses": [], "error": describe(exc)}
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        return {"addresses": [], "error": "no A or AAAA records"}
    return {"addresses": addresses, "error": None}
