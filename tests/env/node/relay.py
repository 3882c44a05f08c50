#!/usr/bin/env python3
"""TCP relay from the node's bridge address to the same ports on 127.0.0.1.

Pods cannot reach services bound to the host's loopback (127.0.0.1 in a Pod is the Pod
itself). This relay listens on the bridge address only, so the apiserver (TLS passes
through untouched; its certificate names the bridge address) and LocalStack are
reachable from Pods, and from nowhere else: nothing leaves the machine.

usage: relay.py BRIDGE_ADDRESS PORT...
"""

import asyncio
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


def handler(port):
    async def relay(client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, upstream_writer),
                             pipe(upstream_reader, client_writer))

    return relay


async def main(address, ports):
    servers = [await asyncio.start_server(handler(p), address, p) for p in ports]
    print(f"relaying {address}:{ports} -> 127.0.0.1", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], [int(p) for p in sys.argv[2:]]))
