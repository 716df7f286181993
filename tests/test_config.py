"""gosf.Config: GOSF's keys, gosf's own, and clear errors at start."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest
import trustme

import gosf


@pytest.fixture
def tls_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``key.pem`` and ``cert.pem`` in the working directory: the config reads them."""
    cert = trustme.CA().issue_cert("localhost")
    cert.private_key_pem.write_to_path(tmp_path / "key.pem")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("tls_files")
def test_gosf_keys_are_accepted_as_documented() -> None:
    config = gosf.Config.from_mapping(
        {
            "host": "127.0.0.1",
            "port": 9990,
            "path": "/api",
            "secure": True,
            "ssl-key": "key.pem",
            "ssl-cert": "cert.pem",
            "rejectInvalidHostnames": True,
            "enableCORS": "https://a.example, https://b.example",
        }
    )
    assert (config.host, config.port, config.path) == ("127.0.0.1", 9990, "/api/")
    assert (config.ssl_key, config.ssl_cert) == ("key.pem", "cert.pem")
    assert config.reject_invalid_hostnames is True
    options = config.server_options()
    assert options.path == "/api/socket.io"
    assert options.cors_allowed_origins == ["https://a.example", "https://b.example"]


def test_defaults_follow_gosf() -> None:
    config = gosf.Config()
    assert (config.host, config.port, config.path, config.secure) == ("", 9999, "/", False)
    assert config.server_options().path == "/socket.io"
    assert gosf.Config(enableCORS="*").server_options().cors_allowed_origins == "*"


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"port": "nine"}, "port"),
        ({"prot": 9999}, "prot"),
        ({"port": 70000}, "port"),
        ({"secure": True}, "ssl-key"),
        ({"secure": True, "ssl-key": "k"}, "ssl-cert"),
        ({"rejectInvalidHostnames": True}, "rejectInvalidHostnames"),
        ({"backend": "curio"}, "backend"),
        ({"path": "api"}, "path"),
    ],
)
def test_bad_configuration_is_a_clear_error_at_start(
    values: dict[str, object], complaint: str
) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        gosf.Config.from_mapping(values)
    assert complaint in str(info.value)


def test_app_validates_its_config() -> None:
    with pytest.raises(pydantic.ValidationError):
        gosf.App({"port": "x"})
    app = gosf.App({"port": 1234}, ping_interval=2)
    assert app.config.port == 1234 and app.config.ping_interval == 2
    app.configure({"port": 4321})
    assert app.config.port == 4321


@pytest.mark.usefixtures("tls_files")
def test_valid_host_names_reach_the_server_options() -> None:
    # rejectInvalidHostnames is the app's own check (not gosf.startup's): the
    # names, or the certificate that holds them, go to the protocol server.
    named = gosf.Config(rejectInvalidHostnames=True, valid_hostnames=["a.example"])
    assert named.server_options().valid_hostnames == ["a.example"]
    assert named.server_options().hostnames_certificate is None
    tls = {"secure": True, "ssl-key": "key.pem", "ssl-cert": "cert.pem"}
    certified = gosf.Config.from_mapping(tls, rejectInvalidHostnames=True)
    assert certified.server_options().valid_hostnames is None
    assert certified.server_options().hostnames_certificate == "cert.pem"
    unchecked = gosf.Config.from_mapping(tls, valid_hostnames=["a.example"])
    assert unchecked.server_options().valid_hostnames is None
    assert unchecked.server_options().hostnames_certificate is None
