"""Bad requests against each real ASGI server: the offender is refused, the server lives on."""

from __future__ import annotations

import socket

import httpx

from tests.conftest import Served

UPGRADE_WITH_TRAILING_BYTES = (
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
    b"Host: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bKdPyn3u98cTfZJSh4TNeQ==\r\n"
    b"\r\nx\r\n"
)


def send_raw(served: Served, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as conn:
        conn.sendall(data)
        try:
            conn.recv(4096)
        except OSError:
            pass


def handshake_works(served: Served) -> bool:
    response = httpx.get(f"{served.url}/socket.io/?EIO=4&transport=polling", timeout=5)
    return response.status_code == 200 and response.text.startswith("0{")


def test_upgrade_request_with_trailing_bytes(served: Served) -> None:
    # hypercorn issue 225: this used to stop hypercorn's trio worker entirely.
    for _ in range(3):
        send_raw(served, UPGRADE_WITH_TRAILING_BYTES)
    assert handshake_works(served)
    assert served.alive()


def test_garbage_and_truncated_requests(served: Served) -> None:
    send_raw(served, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")  # a TLS hello on plain HTTP
    send_raw(served, b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost")  # truncated
    send_raw(served, b"POST /socket.io/?EIO=4&transport=polling&sid=x HTTP/1.1\r\n\r\n")
    assert handshake_works(served)
    assert served.alive()
