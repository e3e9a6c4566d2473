#!/usr/bin/env python3
"""Runs scim2-tester against a live Muster and fails on any check that fails.

Usage: scim-conformance.py BASE_URL TOKEN
BASE_URL is the SCIM base, e.g. http://127.0.0.1:8080/scim/v2.
Prints one line per check; exits 1 if any check errored, 2 on bad usage.
"""
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    base, token = sys.argv[1], sys.argv[2]
    http = Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    results = check_server(SyncSCIMClient(http))
    failed = 0
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status.name] = counts.get(r.status.name, 0) + 1
        label = f"{r.resource_type or '-'} {r.title}"
        if r.status == Status.ERROR:
            failed += 1
            print(f"FAIL {label}: {r.reason}")
        else:
            print(f"{r.status.name:7} {label}")
    print("scim2-tester: " + ", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items())))
    if not results:
        print("scim2-tester ran no checks", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
