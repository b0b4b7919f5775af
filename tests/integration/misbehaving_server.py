"""A misbehaving OpenAI-compatible server (stdlib ``http.server``), for the external judge's guards.

One server, one behaviour per URL prefix: ``http://127.0.0.1:PORT/<behaviour>/v1`` is the base URL.
``GET .../models`` answers 200 for every behaviour (``hmx train``'s start-up check passes);
``POST .../chat/completions`` misbehaves:

- ``nested``: a 200 whose body is JSON nested 100,000 deep;
- ``drip``: the status line and headers one byte every 0.5 s, for ever;
- ``oversize``: a 200 streamed in 64 KiB chunks, up to 300 MB, with no Content-Length;
- ``declared``: a 200 whose Content-Length says 300 MB;
- ``echo401``: a 401 whose body echoes the request's Authorization header (twice, at the end too);
- ``logprobs709``: a well-formed answer whose every label has logprob 709 (a probability of e^709);
- ``logprobs<N>``: the same with logprob -N on every label (``logprobs800``: -800).

``sent[behaviour]`` counts the body bytes each behaviour wrote (the oversize tests check that the
client stopped reading early).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 * 1024
OVERSIZE = 300_000_000
LABELS = ("1", "2", "3", "4", "5")


def logprob_answer(logprob: float) -> dict:
    top = [{"token": label, "logprob": logprob} for label in LABELS]
    return {"choices": [{"message": {"content": "3"}, "logprobs": {"content": [{**top[2], "top_logprobs": top}]}}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: MisbehavingServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def behaviour(self) -> str:
        return self.path.strip("/").split("/")[0]

    def send_json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.send_json(200, {"object": "list", "data": [{"id": "m"}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        behaviour = self.behaviour()
        try:
            getattr(self, f"answer_{behaviour.rstrip('0123456789') or behaviour}")(behaviour)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: what it should do
            self.close_connection = True

    def answer_nested(self, behaviour: str) -> None:
        data = b"[" * 100_000 + b"]" * 100_000
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def answer_drip(self, behaviour: str) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" * 1000:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            self.server.sent[behaviour] += 1
            time.sleep(0.5)

    def answer_oversize(self, behaviour: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b" " * CHUNK
        while self.server.sent[behaviour] < OVERSIZE:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.server.sent[behaviour] += len(chunk)
        self.wfile.write(b"0\r\n\r\n")

    def answer_declared(self, behaviour: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(OVERSIZE))
        self.end_headers()
        chunk = b" " * CHUNK
        while self.server.sent[behaviour] < OVERSIZE:
            self.wfile.write(chunk)
            self.server.sent[behaviour] += len(chunk)

    def answer_echo(self, behaviour: str) -> None:
        header = self.headers.get("Authorization", "")
        self.send_json(401, {"error": {"message": f"invalid key in Authorization: {header}", "echo": header}})

    def answer_logprobs(self, behaviour: str) -> None:
        number = behaviour.removeprefix("logprobs")
        self.send_json(200, logprob_answer(709.0 if number == "709" else -float(number)))


class MisbehavingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.sent: Counter[str] = Counter()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def url(self, behaviour: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{behaviour}/v1"

    def __enter__(self) -> MisbehavingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def main() -> None:  # python tests/integration/misbehaving_server.py: serve until interrupted
    with MisbehavingServer() as server:
        print(server.url("BEHAVIOUR"), flush=True)
        server.thread.join()


if __name__ == "__main__":
    main()
