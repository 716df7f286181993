"""Requests for a session another process holds: forwarded polling requests and
relayed websockets, over the broker.
"""
