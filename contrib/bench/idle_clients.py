#!/usr/bin/python3
# SPDX-License-Identifier: ISC
#
# idle_clients.py: hold many idle SMTP connections open at once.
#
# Opens COUNT TCP connections to HOST:PORT (at most PARALLEL connecting
# at a time), reads the 220 banner on each, then sends nothing and keeps
# every connection open until standard input reaches end of file.  It
# raises its own RLIMIT_NOFILE to the hard limit.  Standard library only.
#
#   /usr/bin/python3 contrib/bench/idle_clients.py -p PORT [-n 10000]
#       [--parallel 500] [--connect-timeout 10] [--banner-timeout 10]
#
# When every connection has been tried it prints one line and flushes:
#
#   ready open=N banner=B no_banner=X connect_failed=F seconds=S
#
# (open: connected; banner: got a 220; no_banner: connected but no 220
# within the timeout, still held open).  At end of input it prints
#
#   done still_open=N closed_by_server=C
#
# and closes everything.

import argparse
import asyncio
import resource
import sys
import time


class Tally:
    def __init__(self):
        self.open = 0
        self.banner = 0
        self.no_banner = 0
        self.failed = 0
        self.closed = 0
        self.first_error = None


async def one(args, tally, sem, writers, watchers):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(args.host, args.port),
                args.connect_timeout)
        except (OSError, asyncio.TimeoutError) as e:
            tally.failed += 1
            if tally.first_error is None:
                tally.first_error = "connect: %r" % e
            return
    tally.open += 1
    writers.append(writer)
    try:
        line = await asyncio.wait_for(reader.readline(), args.banner_timeout)
    except (OSError, asyncio.TimeoutError):
        line = None
    if line and line.startswith(b"220"):
        tally.banner += 1
    elif line == b"":
        tally.closed += 1
        return
    else:
        tally.no_banner += 1

    async def watch():
        try:
            while await reader.read(4096):
                pass
        except OSError:
            pass
        tally.closed += 1

    watchers.append(asyncio.ensure_future(watch()))


async def main_async(args):
    tally = Tally()
    sem = asyncio.Semaphore(args.parallel)
    writers, watchers = [], []
    t0 = time.monotonic()
    await asyncio.gather(*(one(args, tally, sem, writers, watchers)
                           for _ in range(args.count)))
    print("ready open=%d banner=%d no_banner=%d connect_failed=%d "
          "closed_by_server=%d seconds=%.2f"
          % (tally.open, tally.banner, tally.no_banner, tally.failed,
             tally.closed, time.monotonic() - t0), flush=True)
    if tally.first_error:
        print("first error: %s" % tally.first_error, file=sys.stderr)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    print("done still_open=%d closed_by_server=%d"
          % (tally.open - tally.closed, tally.closed), flush=True)
    for w in watchers:
        w.cancel()
    for w in writers:
        w.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("-H", "--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, required=True)
    p.add_argument("-n", "--count", type=int, default=10000)
    p.add_argument("--parallel", type=int, default=500)
    p.add_argument("--connect-timeout", type=float, default=10)
    p.add_argument("--banner-timeout", type=float, default=10)
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.count + 64:
        print("idle_clients: RLIMIT_NOFILE hard limit %d is too low for %d "
              "connections" % (hard, args.count), file=sys.stderr)
        sys.exit(1)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
