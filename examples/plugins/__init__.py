"""Ports of GOSF's companion plugins: the sample plugin and the message counter.

Register them on an app before it starts::

    app.register_plugin(SamplePlugin())
    app.register_plugin(MessageCounter(interval=10))

and reach them from controllers as ``app.plugins["sample"]`` and
``app.plugins["message-counter"]``.
"""

from __future__ import annotations

from .message_counter import MessageCounter
from .sample import SamplePlugin

__all__ = ("MessageCounter", "SamplePlugin")
