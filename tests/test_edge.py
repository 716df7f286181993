"""The edge of the server: what it needs installed, and the requests it refuses.

Raw HTTP requests and websocket handshakes against a loopback hypercorn, under
asyncio and trio: origins (CORS), host names (``rejectInvalidHostnames``) and
the bodies of refused POSTs.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

WITHOUT_SNIFFIO = textwrap.dedent(
    """
    import sys

    sys.modules["sniffio"] = None  # an install without it: `import sniffio` fails

    import anyio

    import gosf
    import gosf.testing

    app = gosf.App()


    def join(client, request):
        client.join("threaded")  # from a worker thread, carried to the loop's
        return gosf.Message.success(body={"rooms": sorted(client.rooms)})


    app.listen("join", join)


    async def main():
        with anyio.fail_after(10):
            async with gosf.testing.connect(app) as client:
                reply = await client.request("join", {})
        assert reply.body == {"rooms": ["threaded"]}, reply
        print("served")


    anyio.run(main)
    """
)


def test_gosf_runs_without_sniffio() -> None:
    # anyio 4.16 no longer depends on sniffio: `pip install gosf` may not
    # bring it. (trio still does, so this runs under asyncio only.)
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_SNIFFIO],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "served"
