"""A browser chat on gosf: rooms, client broadcasts, whispers to ``user-<name>`` rooms.

``examples.chat.app:app`` is the ASGI app; ``python -m examples.chat`` serves it.
The page loads the stock socket.io client, installed with
``npm ci --prefix examples/chat``.
"""
