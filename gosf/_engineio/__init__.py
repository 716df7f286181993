"""The Engine.IO server on anyio: ASGI routing, the transports, and the driver of
each session's sans-IO machine (``gosf.protocol.session``).
"""
