#!/usr/bin/python3
"""A laboratory system's side of the hub's HL7 v2 interface, built with python-hl7 (Debian
python3-hl7): ORU^R01 messages assembled with its containers and sent with its MLLP client.

Usage: hl7_client.py PORT < cases.json
Each case: {"control": "...", "patient": "...", "facility": "...", "charset": "", "encoding":
"utf-8", "results": [[code, text, system, type, value, units, range, flags, status], ...],
"set": [[segment, field, component (0: the whole field), value], ...], "raw": "..." (sent as it is, no message built)}.
Prints one JSON line per case: the acknowledgement's MSA-1, MSA-2, MSA-3, ERR-2, ERR-3.1.
"""
import json
import sys

import hl7
import hl7.client

TEMPLATE = (
    "MSH|^~\\&|LIS|FACILITY|YILIAN|HUB|20261205100000||ORU^R01^ORU_R01|CONTROL|P|2.5.1\r"
    "PID|1||PATIENT^^^FACILITY^MR||NAME^GIVEN||19700101|F\r"
    "OBR|1|ORD1|FILL1|CBC^Complete blood count^L|||20261205083000+0800\r"
)


def build(case):
    text = TEMPLATE
    for i in range(len(case.get("results", []))):
        text += "OBX|%d|NM|X^X^X||1|||||||F\r" % (i + 1)
    msg = hl7.parse(text)
    msg.assign_field(case["control"], "MSH", 1, 10)
    msg.assign_field(case.get("facility", "ta"), "MSH", 1, 4)
    if case.get("charset"):
        # MSH-18 is past the template's last field: appended as text.
        msg = hl7.parse(str(msg).split("\r", 1)[0] + "||||||" + case["charset"] + "\r" +
                        str(msg).split("\r", 1)[1])
    msg.assign_field(case["patient"], "PID", 1, 3, 1, 1)
    family, _, given = case.get("name", "Wang^Fang").partition("^")
    msg.assign_field(family, "PID", 1, 5, 1, 1)
    msg.assign_field(given, "PID", 1, 5, 1, 2)
    for i, r in enumerate(case.get("results", [])):
        code, name, system, vtype, value, units, rng, flags, status = r
        n = i + 1
        msg.assign_field(vtype, "OBX", n, 2)
        msg.assign_field(code, "OBX", n, 3, 1, 1)
        msg.assign_field(name, "OBX", n, 3, 1, 2)
        msg.assign_field(system, "OBX", n, 3, 1, 3)
        msg.assign_field(value, "OBX", n, 5)
        msg.assign_field(units, "OBX", n, 6)
        msg.assign_field(rng, "OBX", n, 7)
        msg.assign_field(flags, "OBX", n, 8)
        msg.assign_field(status, "OBX", n, 11)
    for seg, field, comp, value in case.get("set", []):
        if comp:
            msg.assign_field(value, seg, 1, field, 1, comp)
        else:
            msg.assign_field(value, seg, 1, field)
    return str(msg)


def main():
    port = int(sys.argv[1])
    cases = json.load(sys.stdin)
    for case in cases:
        encoding = case.get("encoding", "utf-8")
        with hl7.client.MLLPClient("127.0.0.1", port, encoding=encoding) as client:
            client.socket.settimeout(30)
            if "raw" in case:
                reply = client.send_message(case["raw"].encode(encoding))
            else:
                reply = client.send_message(build(case))
        text = reply.decode("utf-8").strip("\x0b\x1c\r\n")
        ack = hl7.parse(text)
        out = {
            "ack": str(ack.extract_field("MSA", 1, 1)),
            "control": str(ack.extract_field("MSA", 1, 2)),
            "text": str(ack.extract_field("MSA", 1, 3)),
        }
        try:
            err = ack.segment("ERR")
            out["location"] = str(err(2))
            out["error"] = str(ack.extract_field("ERR", 1, 3, 1, 1))
        except KeyError:
            pass
        print(json.dumps(out, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
