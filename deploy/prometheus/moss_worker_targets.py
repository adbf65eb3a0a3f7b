#!/usr/bin/python3
"""Writes Prometheus file_sd targets for the workers FnPacker runs (local backend), from its pool
status API (docs/packer-api.md): one target per ready instance, labelled pool and instance_id.

    moss_worker_targets.py --packer http://127.0.0.1:8088 --token-file packer-token \\
        --out /etc/prometheus/moss-workers.json [--every 15]

The file is replaced atomically, so Prometheus never reads half of it."""
import argparse
import json
import os
import sys
import time
import urllib.request


def targets(packer: str, token: str) -> list:
    def get(path: str) -> dict:
        req = urllib.request.Request(packer.rstrip("/") + path,
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    out = []
    for pool in get("/v1/pools")["pools"]:
        status = get(f"/v1/pools/{pool['name']}/status")
        for inst in status.get("instances", []):
            if inst.get("state") == "ready" and inst.get("endpoint"):
                out.append({"targets": [inst["endpoint"]],
                            "labels": {"pool": pool["name"], "instance_id": inst["id"]}})
    return out


def write(path: str, groups: list) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(groups, f)
    os.replace(tmp, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packer", required=True, help="FnPacker URL")
    ap.add_argument("--token-file", required=True, help="FnPacker's operator token file")
    ap.add_argument("--out", required=True, help="file_sd JSON to write")
    ap.add_argument("--every", type=float, default=0, help="repeat every N seconds (0: once)")
    a = ap.parse_args()
    token = open(a.token_file).read().strip()
    while True:
        try:
            write(a.out, targets(a.packer, token))
        except OSError as e:
            print(f"moss_worker_targets: {e}", file=sys.stderr)
            if not a.every:
                return 1
        if not a.every:
            return 0
        time.sleep(a.every)


if __name__ == "__main__":
    sys.exit(main())
