"""A webhook receiver on this machine, for tests: it answers each POST as scripted and keeps
what it got."""

from __future__ import annotations

import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """`script` items answer the POSTs in turn (the last one repeats): an HTTP status, or
    ("hang", seconds), "close" (hang up without answering), "garbage" (bytes that are not HTTP),
    "big" (a 5 MB answer), "redirect"."""

    def __init__(self, *script) -> None:
        self.script = deque(script or [200])
        self.received: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver.lock:
                    receiver.received.append(
                        {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                    )
                    step = (
                        receiver.script[0]
                        if len(receiver.script) == 1
                        else receiver.script.popleft()
                    )
                if isinstance(step, tuple) and step[0] == "hang":
                    time.sleep(step[1])
                    step = 200
                if step == "garbage":  # not HTTP at all
                    self.wfile.write(b"\x00\xffnot an http answer\r\n\r\n")
                    self.close_connection = True
                    return
                if step == "close":
                    self.close_connection = True
                    self.connection.close()
                    return
                if step == "big":
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"x" * 5 * 2**20)
                    return
                if step == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "http://example.com/")
                    self.end_headers()
                    return
                self.send_response(step)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def ids(self) -> list[str]:
        with self.lock:
            return [r["headers"].get("webhook-id") for r in self.received]
