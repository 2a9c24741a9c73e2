#!/usr/bin/env python3
"""A man-in-the-middle TCP proxy for the tamper test: listens on 127.0.0.1:LISTEN, forwards to 127.0.0.1:TARGET, and
flips one bit of byte number FLIP_AT (counted over everything the target sent, across connections) exactly once.
Prints "flipped" to stdout when it did. Runs until killed."""
import asyncio
import sys

listen_port, target_port, flip_at = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
state = {"seen": 0, "flipped": False}


async def pump(reader, writer, tamper):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if tamper and not state["flipped"] and state["seen"] + len(data) > flip_at:
                index = flip_at - state["seen"]
                data = data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]
                state["flipped"] = True
                print("flipped", flush=True)
            if tamper:
                state["seen"] += len(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def handle(client_reader, client_writer):
    try:
        target_reader, target_writer = await asyncio.open_connection("127.0.0.1", target_port)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pump(client_reader, target_writer, False), pump(target_reader, client_writer, True))


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
