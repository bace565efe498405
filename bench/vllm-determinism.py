"""Measures what a fixed seed buys on a running vLLM (.specs/engines/vllm.md, "Determinism").

Usage: python bench/vllm-determinism.py BASE_URL MODEL [TRIALS]   (the vLLM venv's python has aiohttp)

1. Sequential: the same prompt and seed 5 times, at temperature 0.8 (the v1 profile), 0 and 1.5, and with a
   prompt long enough for prefix-cache hits: how many distinct outputs.
2. Concurrent: each request's output alone, then the same requests mixed, started 0-300 ms apart, as many at once
   as the server's --max-num-seqs allows: how many differ from their solo run.
3. Cancel: a long stream closed after 3 chunks; how long until vllm:num_requests_running is 0, and whether
   vllm:generation_tokens_total moves afterwards.
Outputs are compared as the streamed token ids (return_token_ids).
"""
import asyncio
import json
import random
import re
import sys
import time

import aiohttp

BASE, MODEL = sys.argv[1], sys.argv[2]
TRIALS = int(sys.argv[3]) if len(sys.argv) > 3 else 15
V1 = dict(top_k=40, top_p=0.95, min_p=0.05, repetition_penalty=1.0)
PROMPTS = ["Once upon a time", "The orchestrator said " * 30, "Seeds decide", "A queue of GPUs " * 80]


async def complete(session, prompt, seed, temperature=0.8, max_tokens=48):
    body = dict(model=MODEL, prompt=prompt, max_tokens=max_tokens, stream=True, seed=seed, temperature=temperature, return_token_ids=True, **V1)
    ids = []
    async with session.post(f"{BASE}/v1/completions", json=body) as response:
        async for line in response.content:
            if line.startswith(b"data: {"):
                for choice in json.loads(line[6:]).get("choices", []):
                    ids += choice.get("token_ids") or []
    return ids


async def metric(session, name):
    async with session.get(f"{BASE}/metrics") as response:
        text = await response.text()
    found = re.search(rf"^{re.escape(name)}{{[^}}]*}} (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


async def delayed(seconds, coroutine):
    await asyncio.sleep(seconds)
    return await coroutine


async def main():
    rnd = random.Random(1)
    async with aiohttp.ClientSession() as session:
        for label, prompt, temperature in [("t=0.8", PROMPTS[0], 0.8), ("t=0", PROMPTS[0], 0.0), ("t=1.5", PROMPTS[2], 1.5), ("long prompt, t=0.8", PROMPTS[3], 0.8)]:
            runs = [await complete(session, prompt, 1234, temperature) for _ in range(5)]
            print(f"sequential {label}: {len(set(map(tuple, runs)))} distinct of 5")
        print("seeds 1 and 2 differ:", await complete(session, PROMPTS[0], 1) != await complete(session, PROMPTS[0], 2))

        # The server's max_num_seqs is not published; 4 at once shows batching where it is >= 2.
        solo = {(i, t): await complete(session, p, 1001 + i, t, 96) for i, p in enumerate(PROMPTS) for t in (0.8, 0.0)}
        differ = total = 0
        for _ in range(TRIALS):
            keys = [(rnd.randrange(len(PROMPTS)), rnd.choice((0.8, 0.0))) for _ in range(4)]
            results = await asyncio.gather(*(delayed(rnd.random() * 0.3, complete(session, PROMPTS[i], 1001 + i, t, 96)) for i, t in keys))
            for key, result in zip(keys, results):
                total += 1
                differ += result != solo[key]
        print(f"concurrent: {differ} of {total} requests differ from their solo run")

        before = await metric(session, "vllm:generation_tokens_total")
        body = dict(model=MODEL, prompt=PROMPTS[0], max_tokens=1900, stream=True, seed=3, ignore_eos=True, **V1)
        response = await session.post(f"{BASE}/v1/completions", json=body)
        chunks = 0
        async for line in response.content:
            chunks += line.startswith(b"data: {")
            if chunks >= 3:
                break
        response.close()
        closed = time.perf_counter()
        while await metric(session, "vllm:num_requests_running") != 0:
            await asyncio.sleep(0.005)
        freed_ms = (time.perf_counter() - closed) * 1000
        at_free = await metric(session, "vllm:generation_tokens_total")
        await asyncio.sleep(1.0)
        later = await metric(session, "vllm:generation_tokens_total")
        print(f"cancel: running 0 after {freed_ms:.0f} ms; {at_free - before:.0f} tokens generated in all, +{later - at_free:.0f} in the next second")


asyncio.run(main())
