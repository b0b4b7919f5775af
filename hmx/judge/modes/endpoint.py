"""The external judge's one guarded boundary to its server: every request and every parse goes here.

:meth:`Endpoint.post_json` and :meth:`Endpoint.get` never raise: whatever the server does, the
answer is an :class:`Exchange` whose ``fault`` says what went wrong:

- ``timeout``: ``judge.external.timeout`` is a deadline for the whole request (connect, send,
  headers, body). Every socket operation of the request gets the time left, so a server that drips
  one byte at a time is cut off at the deadline, not at each read's timeout;
- ``connection``: refused, reset, or not HTTP;
- ``oversize``: the body passed ``judge.external.max_reply_bytes``; reading stops there (the rest
  is never downloaded or held in memory);
- ``unparsed``: the body is not JSON, or not a JSON object (a nesting too deep to parse included).

Built on httpcore's public connection pool with a network backend that applies the deadline
(httpx has no whole-request timeout); environment proxies are not used.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpcore

FAULTS = ("timeout", "connection", "oversize", "unparsed")


class DeadlineExceeded(httpcore.TimeoutException):
    """The request's deadline passed (raised before a socket operation that has no time left)."""


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, each socket operation bounded by the calling thread's deadline."""

    def __init__(self) -> None:
        self.backend = httpcore.SyncBackend()
        self.local = threading.local()

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        self.local.deadline = time.monotonic() + seconds
        try:
            yield
        finally:
            self.local.deadline = None

    def left(self, timeout: float | None) -> float | None:
        """The time an operation may take: its own timeout, at most what is left of the deadline."""
        deadline = getattr(self.local, "deadline", None)
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("the request's deadline passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self.backend.connect_tcp(host, port, self.left(timeout), local_address, socket_options)
        return DeadlineStream(stream, self)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return DeadlineStream(self.backend.connect_unix_socket(path, self.left(timeout), socket_options), self)

    def sleep(self, seconds: float) -> None:
        self.backend.sleep(seconds)


class DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, backend: DeadlineBackend):
        self.stream, self.backend = stream, backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, self.backend.left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, self.backend.left(timeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self.stream.start_tls(ssl_context, server_hostname, self.backend.left(timeout))
        return DeadlineStream(tls, self.backend)

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


class ReplyTooLarge(Exception):
    pass


@dataclass
class Exchange:
    """One request's outcome: the status and JSON object, or the fault."""

    status: int | None = None
    answer: dict[str, Any] | None = None
    text: str = ""  # the body as text (an error's detail; never parsed further)
    fault: str | None = None  # one of FAULTS, or None
    error: str = ""  # the exception's name, for the debug log


class Endpoint:
    """An OpenAI-compatible server: ``base_url``, an optional bearer key, a deadline and a size cap."""

    def __init__(self, base_url: str, key: str | None, timeout: float, max_bytes: int, connections: int):
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout, self.max_bytes = timeout, max_bytes
        self.headers = [("Accept", "application/json")]
        if key:
            self.headers.append(("Authorization", f"Bearer {key}"))
        self.backend = DeadlineBackend()
        self.pool = httpcore.ConnectionPool(max_connections=connections, network_backend=self.backend)

    def __repr__(self) -> str:  # never the headers: they hold the key
        return f"Endpoint({self.base_url!r})"

    def post_json(self, path: str, payload: dict[str, Any]) -> Exchange:
        content = json.dumps(payload).encode()
        return self.exchange("POST", path, [("Content-Type", "application/json")], content)

    def get(self, path: str) -> Exchange:
        return self.exchange("GET", path, [], None)

    def exchange(self, method: str, path: str, headers: list[tuple[str, str]], content: bytes | None) -> Exchange:
        """One request within the deadline and the cap; never raises."""
        try:
            status, body = self.send(method, path, headers, content)
        except ReplyTooLarge:
            return Exchange(fault="oversize", error=f"reply over {self.max_bytes} bytes")
        except httpcore.TimeoutException as err:
            return Exchange(fault="timeout", error=type(err).__name__)
        except Exception as err:  # refused, reset, not HTTP, and anything unforeseen below the socket
            return Exchange(fault="connection", error=type(err).__name__)
        text = body.decode("utf-8", errors="replace")
        try:
            answer = json.loads(text)
        except (ValueError, RecursionError) as err:  # not JSON, or nested past the parser's depth
            return Exchange(status=status, text=text, fault="unparsed", error=type(err).__name__)
        if not isinstance(answer, dict):
            return Exchange(status=status, text=text, fault="unparsed", error=type(answer).__name__)
        return Exchange(status=status, answer=answer, text=text)

    def send(self, method: str, path: str, headers: list[tuple[str, str]], content: bytes | None) -> tuple[int, bytes]:
        timeouts = {"connect": self.timeout, "read": self.timeout, "write": self.timeout, "pool": self.timeout}
        with (
            self.backend.deadline(self.timeout),
            self.pool.stream(
                method,
                self.base_url + path,
                headers=[*self.headers, *headers],
                content=content,
                extensions={"timeout": timeouts},
            ) as response,
        ):
            declared = [value for name, value in response.headers if name.lower() == b"content-length"]
            if declared and declared[0].strip().isdigit() and int(declared[0]) > self.max_bytes:
                raise ReplyTooLarge  # said up front: nothing of the body is read
            chunks, size = [], 0
            for chunk in response.iter_stream():
                size += len(chunk)
                if size > self.max_bytes:
                    raise ReplyTooLarge
                chunks.append(chunk)
            return response.status, b"".join(chunks)

    def close(self) -> None:
        self.pool.close()
