"""The npm socket.io-client v4 against except-rooms, volatile emits, dynamic
namespaces and a GOSF app in "/api" (``tests/apps/sio4.py``), served in one
process under hypercorn's asyncio and trio workers.

``tests/js/sio4_scenarios.cjs`` drives the clients and reports what they saw;
the assertions, Node's behaviour for the same scenario, are here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Served, serving
from tests.node import run_scenario

pytestmark = pytest.mark.interop

KINDS = ["hypercorn-asyncio", "hypercorn-trio"]


@pytest.fixture(scope="module", params=KINDS)
def sio4_server(request: pytest.FixtureRequest) -> Iterator[Served]:
    with serving(str(request.param), "tests.apps.sio4:asgi") as served:
        yield served


@pytest.fixture(scope="module", params=KINDS)
def api_app(request: pytest.FixtureRequest) -> Iterator[Served]:
    with serving(str(request.param), "tests.apps.sio4:app") as served:
        yield served


def scenario(served: Served, name: str, transports: str = "websocket") -> dict[str, Any]:
    return run_scenario("sio4_scenarios.cjs", served.url, name, transports)


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_except_rooms(sio4_server: Served, transports: str) -> None:
    seen = scenario(sio4_server, "except", transports)
    ids = seen["ids"]
    # to("red").except("muted") from c: a only (b is in both rooms).
    # except("muted", a) to everyone: nobody. except("red") from a: c only.
    assert (seen["redButMuted"], seen["allButMutedAndA"], seen["allButRed"]) == (1, 0, 1)
    assert seen["notes"] == {"a": [ids["c"]], "b": [], "c": [ids["a"]]}


def test_volatile_over_a_websocket(sio4_server: Served) -> None:
    seen = scenario(sio4_server, "volatile")
    # What Node does: a volatile packet behind one not yet written is dropped
    # (transport.writable is false until the write's callback), one emitted
    # when nothing waits goes out.
    assert seen["sent"] == [1, 0, 1]
    assert seen["notes"] == ["queued", "volatile alone", "volatile to one, alone"]


def test_volatile_over_polling(sio4_server: Served) -> None:
    seen = scenario(sio4_server, "volatile", "polling")
    # The first broadcast takes the waiting GET: whatever is volatile behind it
    # is dropped. Whether a GET waits again for the later ones is the
    # client's timing, so only the drops are certain.
    assert seen["sent"][:2] == [1, 0]
    assert seen["notes"][0] == "queued"
    assert "volatile behind it" not in seen["notes"]
    assert "volatile to one, behind it" not in seen["notes"]


@pytest.mark.parametrize("transports", ["websocket", "polling"])
def test_dynamic_namespaces(sio4_server: Served, transports: str) -> None:
    seen = scenario(sio4_server, "dynamic", transports)
    assert seen["where"] == ["/tenant-1", "/tenant-2"]
    assert seen["shout"] == 2
    assert seen["heard"] == [["hi"], ["hi"]]
    assert seen["refused"] == "Invalid namespace"


def test_a_gosf_app_in_another_namespace(api_app: Served) -> None:
    seen = scenario(api_app, "app")
    assert seen["echo"] == {"success": True, "text": "hi"}
    assert seen["heard"] == {"success": True, "text": "to all"}
