"""The Celery broker's health probe asks once: a broker that drops the connection or answers
NOAUTH is reported on the first answer, not after redis-py's own retries with backoff."""

from __future__ import annotations

import socket
import threading
from types import SimpleNamespace

import pytest

from dataops.local.redis_server import RedisServer
from dataops.local.service import Health


class FakeBroker:
    """A TCP listener that counts connections and answers every command with `reply` (or
    closes the connection at once when `reply` is None)."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.connections = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                while self.reply is not None and conn.recv(4096):
                    conn.sendall(self.reply)

    def close(self) -> None:
        self.server.close()


@pytest.mark.parametrize(
    ("reply", "detail"),
    [
        (None, "ConnectionError"),
        (b"-ERR unknown command, the broker is not Redis\r\n", "ResponseError"),
    ],
)
def test_a_broken_broker_is_asked_once(reply: bytes | None, detail: str) -> None:
    broker = FakeBroker(reply)
    try:
        service = SimpleNamespace(port=broker.port, password=lambda: "s3cret-pass")
        health, message = RedisServer.probe(service)  # type: ignore[arg-type]
    finally:
        broker.close()
    assert health is Health.UNHEALTHY
    assert detail in message
    assert broker.connections == 1  # the old probe, on redis-py 8.1 defaults: 11 connections
