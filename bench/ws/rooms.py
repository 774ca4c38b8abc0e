#!/usr/bin/env python3
"""Creates ROOMS consults on a running Yilian (requested by `doctor`, accepted by `cardio`)
over one kept-alive connection and prints a rooms file for the load generator: one line per
room, "<consult id> <token> <token> <token> <token>" (two connections of each participant).
Then both users acknowledge the notifications that filing the consults left them, as users at
work would have: otherwise every connection would start with a replay of that backlog."""
import http.client
import json
import sys

port, rooms = int(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)


def call(method, path, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit(f"{method} {path}: {r.status} {data[:200]!r}")
    return json.loads(data)


doctor = call("POST", "/api/auth/login", {"username": "doctor", "password": "bench-password"})["token"]
cardio = call("POST", "/api/auth/login", {"username": "cardio", "password": "bench-password"})["token"]
for _ in range(rooms):
    c = call("POST", "/api/consults", {"patientId": "BENCH", "question": "load",
                                       "urgency": "urgent", "specialty": "cardiology"}, doctor)
    call("POST", f"/api/consults/{c['id']}/accept", {}, cardio)
    print(c["id"], doctor, doctor, cardio, cardio)

for name, token in (("doctor", doctor), ("cardio", cardio)):
    newest = call("GET", "/api/notifications?limit=1", token=token)["notifications"]
    if newest:
        acked = call("POST", "/api/notifications/ack", {"upTo": newest[0]["id"]}, token)["acked"]
        print(f"{name}: acknowledged {acked} notifications", file=sys.stderr)
