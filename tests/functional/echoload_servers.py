"""Small TCP servers for echoload's functional tests, stdlib only.

    python3 echoload_servers.py delay PORT SECONDS   echo each chunk after a delay
    python3 echoload_servers.py flip PORT EVERY      echo, but flip one bit in
                                                     every EVERY-th byte
    python3 echoload_servers.py silent PORT          accept and read, never answer
    python3 echoload_servers.py late PORT SECONDS    a backlog of 1 and no accept
                                                     for SECONDS, then echo

Each listens on 127.0.0.1:PORT (or [::1] with --ipv6) until killed."""

import argparse
import asyncio
import socket


async def delay_echo(reader, writer, delay):
    loop = asyncio.get_running_loop()
    while True:
        data = await reader.read(65536)
        if not data:
            break
        loop.call_later(delay, writer.write, data)
    await asyncio.sleep(delay * 2)
    writer.close()


async def flip_echo(reader, writer, every):
    seen = 0
    while True:
        data = await reader.read(65536)
        if not data:
            break
        buf = bytearray(data)
        # Stream offsets every-1, 2*every-1, ... get one bit flipped.
        first = (every - 1 - seen) % every
        for i in range(first, len(buf), every):
            buf[i] ^= 0x01
        seen += len(buf)
        writer.write(bytes(buf))
        await writer.drain()
    writer.close()


async def silent(reader, writer):
    while await reader.read(65536):
        pass
    writer.close()


async def echo(reader, writer):
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()


async def late(host, port, wait):
    """Bound and listening with the smallest backlog, but not accepting:
    connects hang (the kernel drops SYNs past the backlog) until the wait
    is over."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1)
    await asyncio.sleep(wait)
    sock.listen(512)
    server = await asyncio.start_server(echo, sock=sock)
    async with server:
        await server.serve_forever()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["delay", "flip", "silent", "late"])
    ap.add_argument("port", type=int)
    ap.add_argument("arg", nargs="?", default="0")
    ap.add_argument("--ipv6", action="store_true")
    a = ap.parse_args()
    if a.mode == "delay":
        handler = lambda r, w: delay_echo(r, w, float(a.arg))
    elif a.mode == "flip":
        handler = lambda r, w: flip_echo(r, w, int(a.arg))
    else:
        handler = silent
    host = "::1" if a.ipv6 else "127.0.0.1"
    if a.mode == "late":
        await late(host, a.port, float(a.arg))
        return
    server = await asyncio.start_server(handler, host, a.port, backlog=512)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
