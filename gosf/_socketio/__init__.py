"""The Socket.IO server: namespaces, sockets, rooms and delivery, handler slots,
observers.
"""
