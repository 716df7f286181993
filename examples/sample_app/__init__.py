"""GOSF's sample app, ported: ``python -m examples.sample_app`` or
``hypercorn examples.sample_app:app``.
"""

from __future__ import annotations

from .app import SERVER, SERVER_SECURE, app, load_config, make_app

__all__ = ("SERVER", "SERVER_SECURE", "app", "load_config", "make_app")
