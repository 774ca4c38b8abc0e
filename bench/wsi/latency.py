#!/usr/bin/env python3
"""Tile latency of a whole-slide server: random tiles across the levels of one slide, one
client over a kept-alive loopback connection. Prints JSON: p50, p99, mean (ms), bytes/tile.

  latency.py --port P --path '/api/slides/S/R/tiles/{level}/{x}/{y}' --tiles '[[a,d],...]'
             [--token T] [--requests 2000] [--seed 7]
"""
import argparse
import http.client
import json
import random
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--tiles", required=True, help="tiles across and down, per level")
    ap.add_argument("--token", default="")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    tiles = json.loads(a.tiles)
    rng = random.Random(a.seed)
    # The same tiles in the same order for every server: a level at random, then a tile in it.
    picks = []
    for _ in range(a.requests):
        level = rng.randrange(len(tiles))
        across, down = tiles[level]
        picks.append((level, rng.randrange(across), rng.randrange(down)))
    headers = {"Authorization": "Bearer " + a.token} if a.token else {}
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
    times, size, failed = [], 0, 0
    for level, x, y in picks:
        path = a.path.format(level=level, x=x, y=y)
        start = time.perf_counter()
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        times.append((time.perf_counter() - start) * 1000.0)
        if r.status != 200 or body[:2] != b"\xff\xd8":
            failed += 1
        size += len(body)
    times.sort()
    pct = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    print(json.dumps({"p50": pct(0.50), "p99": pct(0.99), "mean": sum(times) / len(times),
                      "bytes": size / len(times), "failed": failed, "requests": len(times)}))


if __name__ == "__main__":
    main()
