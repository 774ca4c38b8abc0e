#!/usr/bin/env python3
"""DICOMweb latency client for bench/dicomweb/run.sh: QIDO-RS study searches and rendered
frames against one server over one kept-alive HTTP connection; prints JSON with p50/p99 in ms.

  latency.py --port P [--token T] --studies N --study S --series SE
"""
import argparse
import http.client
import json
import random
import time


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


class Client:
    def __init__(self, port, token):
        self.port = port
        self.headers = {"Authorization": "Bearer " + token} if token else {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path, accept="application/dicom+json"):
        h = dict(self.headers)
        h["Accept"] = accept
        start = time.perf_counter()
        self.conn.request("GET", path, headers=h)
        r = self.conn.getresponse()
        body = r.read()
        elapsed = (time.perf_counter() - start) * 1000.0
        if r.status != 200:
            raise SystemExit("GET %s -> %d %s" % (path, r.status, body[:200]))
        return elapsed, body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", default="")
    ap.add_argument("--studies", type=int, required=True)
    ap.add_argument("--study", required=True)
    ap.add_argument("--series", required=True)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    c = Client(a.port, a.token)
    rng = random.Random(a.seed)
    surnames = ["WANG", "LI", "ZHANG", "LIU", "CHEN", "YANG", "HUANG", "ZHAO", "WU", "ZHOU",
                "XU", "SUN", "MA", "ZHU", "HU", "GUO", "HE", "LIN", "GAO", "LUO"]
    given = "WFNXMJLQY"
    kinds = {
        "patient_id": lambda: "/dicom-web/studies?PatientID=P%07d&limit=100"
        % rng.randrange(a.studies // 2),
        "name_wildcard": lambda: "/dicom-web/studies?PatientName=%s%%5E%s*&limit=100"
        % (rng.choice(surnames), rng.choice(given)),
        "date_range": lambda: "/dicom-web/studies?StudyDate=%04d%02d01-%04d%02d28&limit=100"
        % ((lambda y, m: (y, m, y, m))(rng.randrange(2019, 2026), rng.randrange(1, 13))),
    }
    out = {}
    for kind, make in kinds.items():
        for _ in range(20):  # warm-up
            c.get(make())
        times, matches = [], 0
        for _ in range(a.queries):
            ms, body = c.get(make())
            times.append(ms)
            matches += len(json.loads(body))
        out[kind] = {"p50": percentile(times, 50), "p99": percentile(times, 99),
                     "mean_matches": matches / a.queries}

    _, body = c.get("/dicom-web/studies/%s/series/%s/instances" % (a.study, a.series))
    instances = [i["00080018"]["Value"][0] for i in json.loads(body)]
    base = "/dicom-web/studies/%s/series/%s/instances/" % (a.study, a.series)
    cold, warm = [], []
    c.get(base + instances[0] + "/rendered", accept="image/jpeg")  # warm-up, not counted
    instances = instances[1:]
    for uid in instances:  # first render of each instance
        ms, body = c.get(base + uid + "/rendered", accept="image/jpeg")
        if body[:2] != b"\xff\xd8":
            raise SystemExit("rendered frame is not a JPEG")
        cold.append(ms)
    for k in range(a.queries):  # the same frames again
        ms, _ = c.get(base + instances[k % len(instances)] + "/rendered", accept="image/jpeg")
        warm.append(ms)
    out["rendered_first"] = {"p50": percentile(cold, 50), "p99": percentile(cold, 99)}
    out["rendered_again"] = {"p50": percentile(warm, 50), "p99": percentile(warm, 99)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
