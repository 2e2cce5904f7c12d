"""The Python side of the FFI cost benchmark: `await client.get(id)` of a
small request, batches after a warm-up, the median batch (as the Rust and
Kotlin sides measure it). Prints `python_ns=…`."""

import asyncio
import os
import sys
import time

import sambung
from sambung import sambung_core as model

BATCH = 2000
BATCHES = 7


class Fixed(sambung.KeyProvider):
    def __init__(self, key):
        self.key = key

    def data_key(self):
        return self.key


async def main(data_dir, key_hex, request_id):
    config = sambung.ClientConfig(
        data_dir=data_dir, role=model.Role.RESIDENT, ca_pem=None, pins=[],
        budget_bytes=None, auto_sync=False,
    )
    client = await sambung.Client.open(config, Fixed(bytes.fromhex(key_hex)))

    async def batch():
        for _ in range(BATCH):
            await client.get(request_id)

    await batch()
    per_call = []
    for _ in range(BATCHES):
        t = time.perf_counter_ns()
        await batch()
        per_call.append((time.perf_counter_ns() - t) / BATCH)
    per_call.sort()
    print(f"python_ns={per_call[BATCHES // 2]:.0f}")


asyncio.run(main(*sys.argv[1:4]))
