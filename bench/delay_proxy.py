#!/usr/bin/env python3
"""bench/delay_proxy.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS

A TCP forwarder that holds every chunk DELAY_MS before passing it on, in each direction, so a
request/answer pair sees 2 x DELAY_MS of round-trip time. Order within a connection is kept (one
FIFO per direction). bench/netem.sh uses it, inside its own network namespace, when the kernel
has no sch_netem (tc ... netem: "Specified qdisc kind is unknown"); with netem it runs with
DELAY_MS 0 only to expose the emulator (bound to the namespace's 127.0.0.1) on the veth address.
Latency only: no bandwidth limit, no loss, no jitter. Prints "listening" once ready."""
import asyncio
import socket
import sys


async def pipe(reader, writer, delay):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                try:
                    writer.write_eof()
                except OSError:
                    pass
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()


async def main():
    lhost, lport, thost, tport, delay_ms = sys.argv[1:6]
    delay = float(delay_ms) / 1000.0

    async def handle(creader, cwriter):
        try:
            sreader, swriter = await asyncio.open_connection(thost, int(tport))
        except OSError:
            cwriter.close()
            return
        for w in (cwriter, swriter):
            w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(pipe(creader, swriter, delay), pipe(sreader, cwriter, delay),
                             return_exceptions=True)
        for w in (cwriter, swriter):
            w.close()

    server = await asyncio.start_server(handle, lhost, int(lport), backlog=512)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
