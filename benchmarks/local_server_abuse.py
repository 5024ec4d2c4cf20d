"""The local stack's HTTP server under the abuse issue 11 reported: many half-open connections at once and a
slowloris client. Runs the server class in-process on loopback with its real limits (5 s deadlines, 64
connections) and prints what happened; bounded to about 10 s.

    .venv/bin/python benchmarks/local_server_abuse.py [--connections 300]
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

from failover_did_cli import local_stack as ls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=300)
    args = parser.parse_args()

    port = ls.free_port()
    stack = ls.LocalStack(port=port, echo=lambda line: None)
    server = ls._Server(("127.0.0.1", port), ls._handler_class(stack), stack.max_connections, stack.echo)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    threads_before = threading.active_count()

    started = time.monotonic()
    held: list[socket.socket] = []
    for _ in range(args.connections):  # each sends half a request line and then nothing
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"POST /voice HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        held.append(sock)
    opened = time.monotonic() - started
    time.sleep(0.5)
    peak_threads = threading.active_count() - threads_before

    busy, dropped_at = 0, []
    for sock in held:
        sock.settimeout(10)
        try:
            answer = sock.recv(4096)
        except OSError:
            answer = b""
        if answer.startswith(b"HTTP/1.1 503"):
            busy += 1
        else:
            dropped_at.append(time.monotonic() - started)
    for sock in held:
        sock.close()

    trickle = socket.create_connection(("127.0.0.1", port), timeout=10)
    trickle.sendall(b"POST /voice HTTP/1.1\r\n")
    trickle_started = time.monotonic()
    trickle.settimeout(0.1)
    while True:
        try:
            trickle.sendall(b"X")
            if trickle.recv(1) == b"":
                break
        except TimeoutError:
            continue
        except OSError:
            break
    trickle_seconds = time.monotonic() - trickle_started
    trickle.close()

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        t0 = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        healthy = sock.recv(4096).startswith(b"HTTP/1.1 200")
        after_ms = (time.monotonic() - t0) * 1000
    server.shutdown()
    server.server_close()

    print(f"{args.connections} half-open connections opened in {opened:.2f} s")
    print(f"  answered 503 at once: {busy}; held by a server thread: {len(dropped_at)} (cap {stack.max_connections})")
    print(f"  server threads at the peak: {peak_threads}")
    if dropped_at:
        print(f"  held ones dropped {min(dropped_at):.1f}-{max(dropped_at):.1f} s after the first was opened")
    print(f"a client trickling a header byte every 0.1 s: dropped after {trickle_seconds:.1f} s")
    print(f"then a normal request: {'200' if healthy else 'NOT 200'} in {after_ms:.1f} ms")


if __name__ == "__main__":
    main()
