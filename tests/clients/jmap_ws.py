"""A JMAP-over-WebSocket client (RFC 8887) on the `websockets` library
(PyPI), driven through its standard streams: it prints "open
<subprotocol>" once the handshake is done, sends each line read from
stdin as a text message ("BINARY <text>": as a binary one), and prints
each message received on one line. It closes the connection at the end
of stdin and prints "closed <code>" when the connection ends, whoever
ended it.
Usage: jmap_ws.py URL USER PASSWORD"""
import asyncio
import base64
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def main(url, user, password):
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    async with connect(url, subprotocols=["jmap"],
                       additional_headers={"Authorization": f"Basic {token}"},
                       open_timeout=10) as ws:
        print("open", ws.subprotocol, flush=True)

        async def receive():
            try:
                async for message in ws:
                    print(message if isinstance(message, str) else message.decode(), flush=True)
            except ConnectionClosed:
                pass
            print("closed", ws.close_code, flush=True)

        receiving = asyncio.create_task(receive())
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or receiving.done():
                break
            line = line.rstrip("\n")
            try:
                if line.startswith("BINARY "):
                    await ws.send(line[7:].encode())
                else:
                    await ws.send(line)
            except ConnectionClosed:
                break
        if not receiving.done():
            await ws.close()
        await receiving


asyncio.run(main(*sys.argv[1:4]))
