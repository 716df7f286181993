"""Two gosf worker processes joined by a broker, for the cluster tests.

Each worker is an app (``module:attr``) served by ``tests/serve.py`` under
hypercorn (its asyncio or trio worker) in its own process on its own loopback
port, with ``GOSF_BROKER`` set to the broker's URL (a real redis-server of
``tests/redis_fixtures.py``). Used by tests/interop/test_cluster.py,
test_cluster_sio4.py, test_admin_cluster.py and tests/e2e/test_admin_ui.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests.conftest import Served, start_server, stop_server

__all__ = ("KINDS", "KIND_IDS", "Cluster", "start_cluster", "stop_cluster", "two_workers")

KINDS = [
    ("hypercorn-asyncio", "hypercorn-asyncio"),
    ("hypercorn-trio", "hypercorn-trio"),
    ("hypercorn-asyncio", "hypercorn-trio"),
]
"""The pairs of workers a cluster test runs on (a fixture's ``params``)."""
KIND_IDS = ["asyncio-workers", "trio-workers", "mixed-workers"]


@dataclass
class Cluster:
    first: Served
    second: Served

    def alive(self) -> bool:
        return self.first.alive() and self.second.alive()


def start_cluster(
    kinds: tuple[str, str],
    broker_url: str,
    app: str = "tests.apps.cluster_app:app",
    env: Mapping[str, str] | None = None,
) -> Cluster:
    """``app`` under the two ``kinds`` of worker, joined by ``broker_url``, with
    the environment variables ``env`` set in both."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOSF_BROKER", broker_url)  # start_server passes os.environ on
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        first = start_server(kinds[0], app)
        try:
            second = start_server(kinds[1], app)
        except BaseException:
            stop_server(first.process)
            raise
    return Cluster(first, second)


def stop_cluster(cluster: Cluster) -> None:
    stop_server(cluster.first.process)
    stop_server(cluster.second.process)


@contextmanager
def two_workers(broker_url: str, app: str) -> Iterator[tuple[Served, Served]]:
    """``app`` under hypercorn's asyncio and trio workers, joined by ``broker_url``;
    both must still be alive at the end."""
    cluster = start_cluster(("hypercorn-asyncio", "hypercorn-trio"), broker_url, app)
    try:
        yield cluster.first, cluster.second
        assert cluster.alive()
    finally:
        stop_cluster(cluster)
