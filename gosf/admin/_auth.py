"""Who may use the Admin UI: a username and a bcrypt-hashed password, and the
sessions that spare a logged-in page a new login when it reloads.

The Admin UI sends ``{"username", "password"}`` in its CONNECT's auth the
first time and ``{"sessionId"}`` after a reload; the server answers a good
password with a ``session`` event carrying a new session id. Sessions live
in this process's memory, a bounded number of them, each for a limited time:
in a cluster a session id is good only at the process that issued it, and a
page reconnecting to another process asks for the password again (as the
reference server does with its in-memory store).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ("BasicAuth", "Sessions", "hash_password")

# The prefixes of the bcrypt variants; a hash is 60 characters long.
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
_BCRYPT_LENGTH = 60


def _bcrypt() -> Any:
    """The bcrypt module, imported when a password is set: only auth needs it.

    Raises:
        ImportError: bcrypt is not installed (the ``gosf[admin]`` extra).
    """
    try:
        import bcrypt
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise ImportError(
            "the Admin UI's password check needs bcrypt: pip install 'gosf[admin]'"
        ) from exc
    return bcrypt


def hash_password(password: str, rounds: int = 12) -> str:
    """The bcrypt hash of ``password``, for :class:`BasicAuth` (``python -c
    "import gosf.admin; print(gosf.admin.hash_password('...'))"``)."""
    bcrypt = _bcrypt()
    hashed: bytes = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds))
    return hashed.decode()


@dataclass(frozen=True)
class BasicAuth:
    """The Admin UI's login: ``username`` and the bcrypt hash of its password.

    Raises:
        ValueError: ``password_hash`` is not a bcrypt hash (a password in
            plain text is refused: hash it with :func:`hash_password`).
    """

    username: str
    password_hash: str = field(repr=False)

    def __post_init__(self) -> None:
        _bcrypt()
        if not (
            self.password_hash.startswith(_BCRYPT_PREFIXES)
            and len(self.password_hash) == _BCRYPT_LENGTH
        ):
            raise ValueError(
                "password_hash must be a bcrypt hash (gosf.admin.hash_password), "
                "not a password in plain text"
            )

    def check(self, username: object, password: object) -> bool:
        """Whether ``username`` and ``password`` (as the client sent them) are right.

        Slow on purpose (bcrypt): call it in a worker thread.
        """
        if not isinstance(username, str) or not isinstance(password, str):
            return False
        # The hash is checked even for a wrong username, so that the answer
        # takes as long either way.
        matches: bool = _bcrypt().checkpw(password.encode(), self.password_hash.encode())
        return matches and secrets.compare_digest(username, self.username)


class Sessions:
    """The session ids issued to logged-in Admin UI pages: at most ``limit``,
    each good for ``ttl`` seconds after it was issued (the oldest is dropped
    when a new one would exceed the limit)."""

    def __init__(
        self,
        limit: int = 1000,
        ttl: float = 24 * 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or ttl <= 0:
            raise ValueError("a session store needs a positive limit and time to live")
        self.limit = limit
        self.ttl = ttl
        self._clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def issue(self) -> str:
        """A new session id."""
        self._sweep()
        while len(self._expiry) >= self.limit:
            self._expiry.popitem(last=False)
        session_id = secrets.token_hex(16)
        self._expiry[session_id] = self._clock() + self.ttl
        return session_id

    def valid(self, session_id: object) -> bool:
        """Whether ``session_id`` was issued here and has not expired."""
        if not isinstance(session_id, str):
            return False
        expiry = self._expiry.get(session_id)
        if expiry is None:
            return False
        if expiry <= self._clock():
            del self._expiry[session_id]
            return False
        return True

    def _sweep(self) -> None:
        # Ids are kept in the order they were issued, so the expired ones are first.
        now = self._clock()
        while self._expiry:
            session_id, expiry = next(iter(self._expiry.items()))
            if expiry > now:
                break
            del self._expiry[session_id]
