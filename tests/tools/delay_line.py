#!/usr/bin/env python3
"""A delay line for the test internet's modem link, where the kernel has no
netem: opens TUN device NAME (created in the caller's network namespace, gone
when this exits) and writes every packet read from it back into it DELAY_MS
later, in order. The namespace routes what it forwards into the device and
what comes out of it on to its destination, so each packet crossing the
namespace is late by DELAY_MS. Prints "ready" once the device exists.

usage: delay_line.py NAME DELAY_MS
"""
import collections
import fcntl
import os
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def main():
    name, delay = sys.argv[1], float(sys.argv[2]) / 1000.0
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    print("ready", flush=True)
    held = collections.deque()
    while True:
        wait = max(0.0, held[0][0] - time.monotonic()) if held else None
        readable, _, _ = select.select([fd], [], [], wait)
        if readable:
            held.append((time.monotonic() + delay, os.read(fd, 65535)))
        now = time.monotonic()
        while held and held[0][0] <= now:
            os.write(fd, held.popleft()[1])


if __name__ == "__main__":
    main()
