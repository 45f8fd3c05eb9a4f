#!/usr/bin/env python3
"""Prints the size of the async frame (the context the concurrency runtime allocates per call) of every async
function in a Swift binary, largest first.

Every async function has an "async function pointer" record (mangled name ending in `Tu`): a 32-bit relative
offset to the function, then the 32-bit size of its context. A task's first frame and every frame larger than the
task allocator's free space become a `malloc`, so a hot async function with a large frame (often one that inlined
many steps) costs an allocation per call. Used for `CommandProcessor.perform` (14.7 kB -> 5.3 kB, 5dcd33b).

Usage: scripts/dev/async-frame-sizes.py .build/release/klaviyo-relay [SUBSTRING] [--limit N]
       (mangled names; pipe through `swift demangle` to read them)
"""
import argparse
import struct
import subprocess
import sys


def sections(binary):
    """(address, file offset, size) of every allocated section, from `readelf -SW`."""
    out = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
    result = []
    for line in out.splitlines():
        parts = line.replace("[ ", "[").split()
        if len(parts) > 6 and parts[0].startswith("["):
            try:
                address, offset, size = int(parts[3], 16), int(parts[4], 16), int(parts[5], 16)
            except ValueError:
                continue
            if address:
                result.append((address, offset, size))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("substring", nargs="?", default="", help="only symbols whose mangled name contains it")
    parser.add_argument("--limit", type=int, default=40)
    args = parser.parse_args()

    table = sections(args.binary)
    with open(args.binary, "rb") as f:
        data = f.read()

    def read8(address):
        for start, offset, size in table:
            if start <= address < start + size - 8:
                return data[offset + address - start: offset + address - start + 8]
        return None

    symbols = subprocess.run(
        ["nm", "--defined-only", args.binary], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in symbols.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].endswith("Tu") and args.substring in parts[2]:
            record = read8(int(parts[0], 16))
            if record:
                rows.append((struct.unpack("<iI", record)[1], parts[2]))
    if not rows:
        sys.exit("no async function pointer records matched (is this a Swift binary with symbols?)")
    rows.sort(reverse=True)
    for size, name in rows[: args.limit]:
        print(f"{size:8d}  {name}")


if __name__ == "__main__":
    main()
