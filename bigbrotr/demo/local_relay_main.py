"""Run rust-nostr's LocalRelay (nostr-sdk) until stdin closes: `python -m` this module.

It runs in its own process so its Rust runtime and port are freed when its owner (the demo, a
test session) ends, whatever state it was left in. Prints `READY ws://127.0.0.1:PORT` once it
accepts clients.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import nostr_sdk  # type: ignore[import-untyped]

from bigbrotr.devstack.process import free_port


async def _serve(max_limit: int, nip42: bool) -> None:
    port = free_port()
    builder = (
        nostr_sdk.LocalRelayBuilder()
        .addr("127.0.0.1")
        .port(port)
        .max_filter_limit(max_limit)
        .default_filter_limit(max_limit)
        .rate_limit(nostr_sdk.RateLimit(max_reqs=10_000, notes_per_minute=100_000_000))
    )
    if nip42:
        mode = nostr_sdk.LocalRelayBuilderNip42Mode.READ
        builder = builder.nip42(nostr_sdk.LocalRelayBuilderNip42(mode=mode))
    relay = builder.build()
    await relay.run()
    print(f"READY ws://127.0.0.1:{port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    relay.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-limit", type=int, default=100_000, help="cap on a REQ's results")
    parser.add_argument(
        "--nip42", action="store_true", help="require NIP-42 authentication to read"
    )
    args = parser.parse_args()
    asyncio.run(_serve(args.max_limit, args.nip42))


if __name__ == "__main__":
    main()
