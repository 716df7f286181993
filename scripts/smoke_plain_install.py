"""Prove that a plain ``pip install gosf`` (no extras) works: import it, serve one request.

Run by the nox ``plain_install`` session inside a fresh virtualenv that has
gosf and its declared dependencies only. It fails when gosf imports something
it does not declare (as it once did with sniffio, which anyio stopped pulling
in) or when the in-memory request/response cycle does not work without the
test extras.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

import anyio

import gosf
import gosf.testing

TEST_ONLY = ("trio", "pytest", "socketio", "uvicorn", "sniffio", "prometheus_client")


async def main() -> None:
    app = gosf.App()

    @app.listen("echo")
    async def echo(client: gosf.Client, request: gosf.Request) -> gosf.Message:
        return gosf.Message.success(request.message.text)

    with anyio.fail_after(10):
        async with gosf.testing.connect(app) as client:
            reply = await client.request("echo", {"text": "plain install"})
            assert reply == gosf.Message.success("plain install"), reply
            assert await client.next_event("echo") == reply


if __name__ == "__main__":
    present = [name for name in TEST_ONLY if importlib.util.find_spec(name) is not None]
    assert not present, f"the venv is not plain: it has {present}"
    anyio.run(main)
    print(f"plain install OK: gosf {importlib.metadata.version('gosf')}, one request in memory")
