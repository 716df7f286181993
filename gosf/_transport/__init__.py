"""The anyio/ASGI layer under the Socket.IO server: sessions and transports."""
