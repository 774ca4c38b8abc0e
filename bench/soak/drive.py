#!/usr/bin/env python3
"""Mixed load on one running hub for a soak (bench/soak/run.sh starts the hub and the 2,000
WebSocket clients; this drives everything else and samples the hub):

  - DICOM senders: each generates a fresh small CT study (yilian_gen_ct) and sends it with
    storescu as TA_CT, over and over;
  - readers (radiologists and ECG readers of the lead hospital) claiming the next task and
    signing a final report, with a pause between tasks as people have;
  - QIDO-RS searches, WADO-RS metadata and rendered frames by township doctors;
  - an HL7 aECG upload every few seconds;
  - logins (and logouts) every second;
  - one abusive client: a burst of parallel STOW-RS uploads by one user every minute (the
    per-user upload limit answers part of it 429) — everyone else must not notice.

Every minute it samples the hub: RSS, open file descriptors, threads (/proc), the WAL sizes of
index.sqlite and audit.sqlite, /healthz counters, and p50/p99 and errors of each kind of request
in that minute. It prints a line per minute and, at the end, a JSON summary (--out) with the
verdict: RSS within 10 % of its value after the warm-up, no errors, p99 stable."""
import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--dicom-port", type=int, required=True)
ap.add_argument("--pid", type=int, required=True)
ap.add_argument("--data", required=True)
ap.add_argument("--gen-ct", required=True)
ap.add_argument("--aecg", required=True)
ap.add_argument("--minutes", type=float, default=30)
ap.add_argument("--warmup", type=float, default=5, help="minutes before the RSS reference")
ap.add_argument("--senders", type=int, default=4)
ap.add_argument("--readers", type=int, default=50)
ap.add_argument("--admin-password", required=True)
ap.add_argument("--out", required=True)
args = ap.parse_args()

PASSWORD = "soak-password"
stop = threading.Event()
lock = threading.Lock()
samples = {}  # kind -> list of (time, latency ms, ok)
wrong = []    # the first unexpected answers, for the report


def record(kind, start, ok, what=""):
    with lock:
        samples.setdefault(kind, []).append((time.time(), (time.time() - start) * 1000, ok))
        if not ok and len(wrong) < 50:
            wrong.append(f"{kind}: {what}"[:300])


class Client:
    """One kept-alive HTTP connection (reopened after a failure)."""

    def __init__(self):
        self.conn = None

    def call(self, method, path, body=None, token=None, ctype="application/json"):
        headers = {}
        if token:
            headers["Authorization"] = "Bearer " + token
        if body is not None:
            headers["Content-Type"] = ctype
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                self.conn = None
                if attempt == 1:
                    return 0, b""
        return 0, b""


def login(client, user):
    status, body = client.call("POST", "/api/auth/login", {"username": user, "password": PASSWORD})
    if status != 200:
        sys.exit(f"login {user}: {status} {body[:200]!r}")
    return json.loads(body)["token"]


def setup():
    c = Client()
    status, body = c.call("POST", "/api/auth/login",
                          {"username": "admin", "password": args.admin_password})
    if status != 200:
        sys.exit(f"admin login: {status} {body[:200]!r}")
    admin = json.loads(body)["token"]
    users = [("doctor%d" % i, ["township_doctor"], "ta") for i in range(8)]
    users += [("rad%d" % i, ["radiologist"], "lead") for i in range(args.readers // 2)]
    users += [("ecg%d" % i, ["ecg_reader"], "lead") for i in range(args.readers - args.readers // 2)]
    users += [("uploader", ["township_doctor"], "ta")]
    for name, roles, inst in users:
        status, body = c.call("POST", "/api/admin/users", {"username": name, "password": PASSWORD,
                                                           "institution": inst, "roles": roles}, admin)
        if status not in (201, 409):
            sys.exit(f"adding {name}: {status} {body[:200]!r}")
    return [u[0] for u in users]


def sender(n):
    work = tempfile.mkdtemp(prefix=f"soak-send{n}-")
    try:
        while not stop.is_set():
            out = os.path.join(work, "s")
            shutil.rmtree(out, ignore_errors=True)
            subprocess.run([args.gen_ct, "--out", out, "--count", "20", "--size", "256"],
                           check=True, stdout=subprocess.DEVNULL)
            files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(out) for f in fs)
            start = time.time()
            r = subprocess.run(["storescu", "-aet", "TA_CT", "-aec", "YILIAN", "127.0.0.1",
                                str(args.dicom_port)] + files,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            # Per instance: the association's time spread over its instances.
            with lock:
                t = time.time()
                per = (t - start) * 1000 / max(1, len(files))
                samples.setdefault("c-store", []).extend([(t, per, r.returncode == 0)] * len(files))
                if r.returncode != 0 and len(wrong) < 50:
                    wrong.append("c-store: " + r.stderr.decode(errors="replace")[-300:])
            stop.wait(5.0)  # a clinic's modality between two patients (compressed)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def reader(name):
    c = Client()
    token = login(c, name)
    rng = random.Random(name)
    while not stop.is_set():
        start = time.time()
        status, body = c.call("POST", "/api/worklist/claim-next", token=token)
        task = json.loads(body).get("task") if status == 200 else None
        record("claim", start, status == 200, f"{status} {body[:200]!r}")
        if task:
            start = time.time()
            status, body = c.call("POST", f"/api/tasks/{task['id']}/reports",
                                  {"kind": "final", "findings": "No acute finding.",
                                   "impression": "Normal."}, token)
            record("report", start, status == 201, f"{status} {body[:200]!r}")
        stop.wait(rng.uniform(2, 6) if task else rng.uniform(1, 3))


def browser(name):
    """A township doctor's screen: searches, then a study's metadata and a rendered frame."""
    c = Client()
    token = login(c, name)
    while not stop.is_set():
        start = time.time()
        status, body = c.call("GET", "/dicom-web/studies?limit=20&includefield=00081030",
                              token=token)
        record("qido", start, status in (200, 204), f"{status} {body[:200]!r}")
        studies = json.loads(body) if status == 200 else []
        if studies:
            study = random.choice(studies)["0020000D"]["Value"][0]
            start = time.time()
            status, body = c.call("GET", f"/dicom-web/studies/{study}/metadata", token=token)
            record("wado-metadata", start, status == 200, f"{status} {body[:200]!r}")
            meta = json.loads(body) if status == 200 else []
            images = [m for m in meta if "00280010" in m]
            if images:
                m = random.choice(images)
                series, sop = m["0020000E"]["Value"][0], m["00080018"]["Value"][0]
                start = time.time()
                status, body = c.call(
                    "GET", f"/dicom-web/studies/{study}/series/{series}/instances/{sop}/rendered",
                    token=token)
                record("rendered", start, status == 200, f"{status} {body[:100]!r}")
        stop.wait(0.5)


def ecg_uploads():
    c = Client()
    token = login(c, "doctor0")
    xml = open(args.aecg, "rb").read()
    n = 0
    while not stop.is_set():
        n += 1
        start = time.time()
        status, body = c.call("POST", f"/api/ecg?patientId=SOAK-ECG-{n}&patientName=Li%5ELei&sex=M"
                              "&age=60", xml, token, "application/xml")
        record("ecg-upload", start, status == 201, f"{status} {body[:200]!r}")
        stop.wait(3)


def logins():
    c = Client()
    while not stop.is_set():
        start = time.time()
        status, body = c.call("POST", "/api/auth/login",
                              {"username": "doctor7", "password": PASSWORD})
        record("login", start, status == 200, f"{status} {body[:200]!r}")
        if status == 200:
            c.call("POST", "/api/auth/logout", token=json.loads(body)["token"])
        stop.wait(1)


abuse = {"bursts": 0, "uploads": 0, "limited": 0, "other": 0}


def abuser():
    """Every minute, one user sends 12 STOW-RS uploads at once (3 slices of 512x512 each, all
    started together): those beyond the user's limit are answered 429 at once; the others are
    stored."""
    token = login(Client(), "uploader")
    gen = tempfile.mkdtemp(prefix="soak-abuse-")
    try:
        while not stop.wait(60):
            out = os.path.join(gen, "s")
            shutil.rmtree(out, ignore_errors=True)
            subprocess.run([args.gen_ct, "--out", out, "--count", "36", "--size", "512"],
                           check=True, stdout=subprocess.DEVNULL)
            files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(out) for f in fs)
            b = b"soak-boundary"
            bodies = []
            for i in range(0, len(files), 3):
                body = b""
                for path in files[i:i + 3]:
                    body += (b"--" + b + b"\r\nContent-Type: application/dicom\r\n\r\n" +
                             open(path, "rb").read() + b"\r\n")
                bodies.append(body + b"--" + b + b"--\r\n")
            results = []
            together = threading.Barrier(len(bodies))

            def one(body):
                c = Client()
                c.call("GET", "/healthz")  # connected before the start
                together.wait()
                status, _ = c.call(
                    "POST", "/dicom-web/studies", body, token,
                    'multipart/related; type="application/dicom"; boundary=soak-boundary')
                results.append(status)

            threads = [threading.Thread(target=one, args=(body,)) for body in bodies]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            with lock:
                abuse["bursts"] += 1
                abuse["uploads"] += sum(1 for s in results if s == 200)
                abuse["limited"] += sum(1 for s in results if s == 429)
                abuse["other"] += sum(1 for s in results if s not in (200, 429))
    finally:
        shutil.rmtree(gen, ignore_errors=True)


def proc_sample():
    status = open(f"/proc/{args.pid}/status").read()
    field = lambda k: int(next(l.split()[1] for l in status.splitlines() if l.startswith(k)))
    wal = lambda f: os.path.getsize(f) if os.path.exists(f) else 0
    return {"rssMiB": round(field("VmRSS:") / 1024, 1),
            "fds": len(os.listdir(f"/proc/{args.pid}/fd")),
            "threads": field("Threads:"),
            "indexWalMiB": round(wal(os.path.join(args.data, "index.sqlite-wal")) / 2**20, 1),
            "auditWalMiB": round(wal(os.path.join(args.data, "audit.sqlite-wal")) / 2**20, 1)}


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * len(v)))], 2)


def minute_stats(since, until):
    out = {}
    with lock:
        for kind, rows in samples.items():
            lat = [ms for t, ms, ok in rows if since <= t < until]
            errors = sum(1 for t, ms, ok in rows if since <= t < until and not ok)
            if lat:
                out[kind] = {"n": len(lat), "p50": pct(lat, 0.5), "p99": pct(lat, 0.99),
                             "errors": errors}
    return out


names = setup()
threads = [threading.Thread(target=sender, args=(i,), daemon=True) for i in range(args.senders)]
threads += [threading.Thread(target=reader, args=(n,), daemon=True)
            for n in names if n.startswith(("rad", "ecg"))]
threads += [threading.Thread(target=browser, args=("doctor%d" % i,), daemon=True) for i in range(1, 5)]
threads += [threading.Thread(target=f, daemon=True) for f in (ecg_uploads, logins, abuser)]
for t in threads:
    t.start()

began = time.time()
minutes = []
print("min  rss MiB  fds  thr  index WAL  audit WAL  " +
      "  ".join(f"{k} p99" for k in ("c-store", "claim", "report", "qido", "rendered", "ecg-upload",
                                      "login")) + "  errors", flush=True)
for m in range(1, int(args.minutes) + 1):
    if stop.wait(max(0, began + 60 * m - time.time())):
        break
    row = {"minute": m, **proc_sample(), "requests": minute_stats(began + 60 * (m - 1), began + 60 * m)}
    try:
        c = http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)
        c.request("GET", "/healthz")
        row["healthz"] = json.loads(c.getresponse().read())
    except (OSError, ValueError) as e:
        row["healthz"] = {"error": str(e)}
    minutes.append(row)
    r = row["requests"]
    cell = lambda k: f"{r[k]['p99']:>8}" if k in r else "       -"
    errs = sum(v["errors"] for v in r.values())
    print(f"{m:>3}  {row['rssMiB']:>7}  {row['fds']:>3}  {row['threads']:>3}  "
          f"{row['indexWalMiB']:>9}  {row['auditWalMiB']:>9}  " +
          "  ".join(cell(k) for k in ("c-store", "claim", "report", "qido", "rendered",
                                       "ecg-upload", "login")) + f"  {errs}", flush=True)
stop.set()
for t in threads:
    t.join(timeout=120)

# The verdict: after the warm-up, RSS stays within 10 % of its first value, nothing failed, and
# each kind's p99 in the last third is within 2x of its p99 in the first third after warm-up.
after = [m for m in minutes if m["minute"] > args.warmup]
verdict = {"minutes": len(minutes)}
if after:
    ref = after[0]["rssMiB"]
    verdict["rssAfterWarmupMiB"] = ref
    verdict["rssMaxAfterWarmupMiB"] = max(m["rssMiB"] for m in after)
    verdict["rssLastMiB"] = after[-1]["rssMiB"]
    verdict["rssWithin10pct"] = all(abs(m["rssMiB"] - ref) <= 0.10 * ref for m in after)
    verdict["fdsFirstLast"] = [after[0]["fds"], after[-1]["fds"]]
    verdict["threadsFirstLast"] = [after[0]["threads"], after[-1]["threads"]]
    third = max(1, len(after) // 3)
    stable = {}
    for kind in sorted({k for m in after for k in m["requests"]}):
        early = [m["requests"][kind]["p99"] for m in after[:third] if kind in m["requests"]]
        late = [m["requests"][kind]["p99"] for m in after[-third:] if kind in m["requests"]]
        if early and late:
            stable[kind] = {"earlyP99": statistics.median(early), "lateP99": statistics.median(late),
                            "stable": statistics.median(late) <= 2 * statistics.median(early) + 5}
    verdict["p99"] = stable
verdict["errors"] = sum(v["errors"] for m in minutes for v in m["requests"].values())
verdict["firstErrors"] = wrong[:10]
verdict["abuser"] = abuse
with lock:
    verdict["totals"] = {k: len(v) for k, v in samples.items()}
json.dump({"verdict": verdict, "minutes": minutes}, open(args.out, "w"), indent=1)
print(json.dumps(verdict, indent=1))
