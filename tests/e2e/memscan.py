#!/usr/bin/env python3
# Scans the readable memory of a process (/proc/PID/maps + /proc/PID/mem,
# root or same user) for byte patterns: used by server_keyproc.sh to prove
# that the network process of `cmpca serve` holds no private key and no
# passphrase. Usage: memscan.py PID NAME=HEX... ; prints one line per hit,
# exit 0 if any pattern was found, 1 if none, 2 if nothing could be read.
import re, sys

def main():
    pid = int(sys.argv[1])
    pats = []
    for a in sys.argv[2:]:
        name, hexs = a.split("=", 1)
        p = bytes.fromhex(hexs)
        if len(p) < 8:
            sys.exit(f"memscan: pattern {name} shorter than 8 bytes")
        pats.append((name, p))
    longest = max(len(p) for _, p in pats)
    found, readable = set(), 0
    with open(f"/proc/{pid}/maps") as m:
        regions = m.read().splitlines()
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in regions:
            f = line.split()
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            name = f[5] if len(f) > 5 else ""
            # not readable, kernel pages, or a sanitizer's shadow/reserve
            # (huge, never-touched ranges)
            if f[1][0] != "r" or name in ("[vvar]", "[vsyscall]") or hi - lo > (1 << 30):
                continue
            tail, addr = b"", lo
            while addr < hi:
                n = min(16 << 20, hi - addr)
                try:
                    mem.seek(addr)
                    chunk = mem.read(n)
                except OSError:
                    break
                readable += len(chunk)
                buf = tail + chunk
                for pname, p in pats:
                    i = buf.find(p)
                    if i >= 0 and (pname, name) not in found:
                        found.add((pname, name))
                        print(f"found {pname} at {addr - len(tail) + i:#x} in {name or '[anon]'}")
                tail = buf[-(longest - 1):] if longest > 1 else b""
                addr += n
    if readable == 0:
        print("nothing readable", file=sys.stderr)
        sys.exit(2)
    sys.exit(0 if found else 1)

main()
