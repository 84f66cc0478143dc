#!/usr/bin/env python3
"""Where a file chaos run lost or double-counted drops: which rotated files' lines the Events lack.

Usage: scripts/chaos-shortfall.py DIR, where DIR is a file chaos test's directory kept with
KIT_CHAOS_KEEP=1 (it holds kern.log*, events.json and agent.stderr).

For every receiver Event (pod and two-minute bucket) it compares the count with the drop lines of
that pod and bucket in all kern.log* files, and for a mismatch lists the files (by their content:
the checksum of the first line, as the agent names contents) whose lines the Event's
`counted-through` record does not reach: `absent` (no mark for that content at all) or `short`
(the mark stops before the file's last line for that pod).
"""

import collections
import datetime
import glob
import json
import re
import sys

BUCKET_MS = 120_000
LINE = re.compile(rb"(\S+) node-1 kernel: .* SRC=10\.1\.0\.(\d+) ")


def fnv1a(data: bytes) -> int:
    """The agent's checksum (src/checksum.rs)."""
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def bucket(stamp: str) -> int:
    moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return int(moment.timestamp() * 1000) // BUCKET_MS


def main(directory: str) -> None:
    files = {}
    wanted = collections.defaultdict(collections.Counter)
    last_offset = collections.defaultdict(dict)
    for path in glob.glob(directory + "/kern.log*"):
        data = open(path, "rb").read()
        if not data:
            continue
        newline = data.find(b"\n")
        first = data[: newline + 1] if 0 <= newline < 256 else data[:256]
        content = fnv1a(first)
        files[content] = path.rsplit("/", 1)[-1]
        offset = 0
        for line in data.split(b"\n")[:-1]:
            offset += len(line) + 1
            match = LINE.match(line)
            if not match:
                continue
            key = ("receiver-%d" % (int(match.group(2)) - 1), bucket(match.group(1).decode()))
            wanted[key][content] += 1
            last_offset[key][content] = offset
    for event in json.load(open(directory + "/events.json")):
        pod = event["involvedObject"]["name"]
        if not pod.startswith("receiver"):
            continue
        key = (pod, bucket(event["firstTimestamp"]))
        record = event["metadata"].get("annotations", {}).get(
            "kube-iptables-tailer/counted-through", ""
        )
        marks = {}
        for pair in record.split(","):
            if ":" in pair:
                content, offset = pair.split(":")
                marks[int(content, 16)] = int(offset)
        expected = sum(wanted[key].values())
        if expected == event["count"]:
            continue
        absent = [(files[c], n) for c, n in wanted[key].items() if c not in marks]
        short = [
            (files[c], marks[c], last_offset[key][c])
            for c in wanted[key]
            if c in marks and marks[c] < last_offset[key][c]
        ]
        print(pod, key[1], "expected", expected, "counted", event["count"], "absent", absent, "short", short)


if __name__ == "__main__":
    main(sys.argv[1])
