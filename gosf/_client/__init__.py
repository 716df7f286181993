"""gosf's Socket.IO client (``gosf.SocketIOClient``) and its Engine.IO
transports: websocket, and in memory for tests.
"""
