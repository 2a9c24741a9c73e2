#!/usr/bin/env python3
"""A recording TCP relay for the secure MIGRATE test: listens on a free 127.0.0.1 port (printed as "listening PORT"),
forwards every connection to 127.0.0.1:TARGET and appends every byte it carries, both directions, to RECORD.
Runs until killed."""
import asyncio
import sys

target_port, record_path = int(sys.argv[1]), sys.argv[2]


async def pump(reader, writer, record):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            record.write(data)
            record.flush()
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main():
    record = open(record_path, "ab")

    async def handle(client_reader, client_writer):
        try:
            target_reader, target_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, target_writer, record), pump(target_reader, client_writer, record))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print("listening", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
