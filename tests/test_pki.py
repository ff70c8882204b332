"""`jukimon pki`: the bus's CA and certificates, the shipped Mosquitto files, the `outputs.mqtt.tls` setting."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from monitor.cli import main
from monitor.config import load_config
from monitor.configerror import ConfigError
from monitor.pki import (COMPONENTS, DEPLOY_DIR, ROLE_ACL, PkiError, acl_text, clients, default_acl_text, init,
                         issue, mosquitto_files, render_conf, revoke)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    assert main(["pki", "init", str(directory), "--broker-host", "127.0.0.1",
                 "--broker-host", "mqtt.noc.example"]) == 0
    return directory


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_init_makes_a_ca_a_broker_and_one_client_per_component_with_private_keys(pki: Path) -> None:
    assert sorted(p.name for p in pki.glob("*.crt")) == sorted(["ca.crt", "broker.crt",
                                                                *(f"{c}.crt" for c in COMPONENTS)])
    for key in pki.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    ca = cert(pki / "ca.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey) and ca.public_key().curve.name == "secp256r1"
    collector = cert(pki / "collector.crt")
    assert collector.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "collector"
    assert collector.issuer == ca.subject
    usage = collector.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    broker = cert(pki / "broker.crt")
    names = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert names.get_values_for_type(x509.DNSName) == ["mqtt.noc.example"]
    assert [(c.name, c.roles) for c in clients(pki)] == sorted((c, (c,)) for c in COMPONENTS)


def test_openssl_accepts_the_chain(pki: Path) -> None:
    """Mosquitto verifies with OpenSSL: the same library must accept what `cryptography` made."""
    out = subprocess.run(["openssl", "verify", "-CAfile", str(pki / "ca.crt"), "-purpose", "sslclient",
                          str(pki / "collector.crt")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "OK" in out.stdout, out.stdout + out.stderr
    out = subprocess.run(["openssl", "verify", "-CAfile", str(pki / "ca.crt"), "-purpose", "sslserver",
                          str(pki / "broker.crt")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr


def test_init_again_keeps_what_is_there(pki: Path) -> None:
    before = {p.name: p.read_bytes() for p in pki.iterdir()}
    assert init(pki) == []
    assert {p.name: p.read_bytes() for p in pki.iterdir()} == before


def test_issue_a_certificate_for_a_process_with_several_roles(pki: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pki", "issue", str(pki), "jukimon-run", "--role", "monitor", "--role", "collector",
                 "--role", "cascade"]) == 0
    assert "jukimon-run.crt" in capsys.readouterr().out
    issued = cert(pki / "jukimon-run.crt")
    assert [a.value for a in issued.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)] == [
        "monitor", "collector", "cascade"]
    assert stat.S_IMODE((pki / "jukimon-run.key").stat().st_mode) == 0o600
    assert main(["pki", "issue", str(pki), "jukimon-run", "--role", "console"]) == 1  # never silently replaced
    acl = acl_text([("jukimon-run", ("monitor", "collector", "cascade"))])
    block = acl.split("user jukimon-run\n")[1].split("\n\n")[0].splitlines()
    expected = {f"topic {a} {t.format(p='jukimon')}" for r in ("monitor", "collector", "cascade") for a, t in ROLE_ACL[r]}
    assert set(block) == expected and len(block) == len(expected)  # the union, each rule once


@pytest.mark.parametrize("name, roles, message", [
    ("../evil", ["collector"], "bad name"),
    ("a+b", ["collector"], "bad name"),
    ("x", ["root"], "unknown role"),
    ("x", [], "at least one role"),
    ("broker", ["collector"], "reserved"),
    ("ca", ["collector"], "reserved"),
])
def test_issue_refuses_bad_names_and_roles(pki: Path, name: str, roles: list[str], message: str) -> None:
    with pytest.raises(PkiError, match=message):
        issue(pki, name, roles)


def test_issue_needs_a_ca(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="no usable CA"):
        issue(tmp_path, "collector-2", ["collector"])


def test_the_shipped_acl_is_the_rendering_for_the_default_components() -> None:
    """deploy/mosquitto/jukimon.acl cannot drift from the roles in monitor/pki.py."""
    assert (DEPLOY_DIR / "jukimon.acl").read_text(encoding="utf-8") == default_acl_text()


def test_collectors_cannot_write_outside_device_records() -> None:
    acl = default_acl_text()
    collector = acl.split("user collector\n")[1].split("\n\n")[0]
    assert "monitor" not in collector and "cascade" not in collector and "alert" not in collector
    assert "topic write jukimon/municipality/+/+/samples" in collector
    assert "topic read jukimon/control/#" in collector
    console = acl.split("user console\n")[1].split("\n\n")[0]
    assert console.splitlines() == ["topic read jukimon/#"]


def test_mosquitto_conf_renders_the_shipped_file_with_this_pki(pki: Path, tmp_path: Path) -> None:
    assert main(["pki", "mosquitto-conf", str(pki), "--out", str(tmp_path), "--port", "18883",
                 "--bind", "127.0.0.1", "--prefix", "jk"]) == 0
    conf = (tmp_path / "jukimon.conf").read_text()
    settings = dict(line.split(maxsplit=1) for line in conf.splitlines() if line and not line.startswith("#"))
    assert settings["listener"] == "18883 127.0.0.1"
    assert settings["cafile"] == str(pki.resolve() / "ca.crt")
    assert settings["keyfile"] == str(pki.resolve() / "broker.key")
    assert settings["crlfile"] == str(pki.resolve() / "ca.crl")
    assert settings["acl_file"] == str(tmp_path.resolve() / "jukimon.acl")
    for must in ("require_certificate", "use_identity_as_username", "persistence"):
        assert settings[must] == "true"
    assert settings["allow_anonymous"] == "false"
    acl = (tmp_path / "jukimon.acl").read_text()
    assert "user collector" in acl and "user console" in acl
    assert "topic read jk/#" in acl and "jukimon/" not in acl


def test_render_conf_fails_on_a_setting_the_template_lacks_or_a_pki_without_broker(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="no cafile"):
        render_conf("listener 8883\n", {"listener": "1", "cafile": "/x"})
    with pytest.raises(PkiError, match="no usable CA"):
        mosquitto_files(DEPLOY_DIR, tmp_path)  # not a PKI directory at all
    init(tmp_path / "pki")
    (tmp_path / "pki" / "broker.crt").unlink()
    with pytest.raises(PkiError, match="no broker certificate"):
        mosquitto_files(tmp_path / "pki", tmp_path)
    assert render_conf("# listener 1\nlistener 8883\n", {"listener": "9"}) == "# listener 1\nlistener 9\n"


def test_outputs_mqtt_tls_is_validated_at_load(pki: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(f"outputs:\n  mqtt:\n    port: 8883\n    tls: {{ca: {pki}/ca.crt, cert: {pki}/collector.crt, "
                    f"key: {pki}/collector.key}}\n")
    tls = load_config(good).outputs.mqtt.tls
    assert tls is not None and tls.cert == pki / "collector.crt"
    assert tls.client_context().verify_mode.name == "CERT_REQUIRED"
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"outputs:\n  mqtt:\n    tls: {{ca: {pki}/ca.crt, cert: {pki}/nobody.crt, key: {pki}/x.key}}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: outputs.mqtt.tls.cert: .*nobody.crt is not a file"):
        load_config(bad)


def test_revoke_puts_the_serial_on_the_crl_and_sets_the_files_aside(tmp_path: Path) -> None:
    init(tmp_path)
    crl = x509.load_pem_x509_crl((tmp_path / "ca.crl").read_bytes())
    assert len(crl) == 0 and crl.next_update_utc == cert(tmp_path / "ca.crt").not_valid_after_utc  # never lapses
    issued = cert(tmp_path / "ids.crt")
    assert main(["pki", "revoke", str(tmp_path), "ids"]) == 0
    crl = x509.load_pem_x509_crl((tmp_path / "ca.crl").read_bytes())
    assert [r.serial_number for r in crl] == [issued.serial_number]
    assert not (tmp_path / "ids.crt").exists() and not (tmp_path / "ids.key").exists()
    assert (tmp_path / f"ids.{issued.serial_number:x}.revoked").exists()
    assert "ids" not in [c.name for c in clients(tmp_path)]  # and so not in the next ACL
    out = subprocess.run(["openssl", "verify", "-crl_check", "-CAfile", str(tmp_path / "ca.crt"), "-CRLfile",
                          str(tmp_path / "ca.crl"), str(tmp_path / f"ids.{issued.serial_number:x}.revoked")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "revoked" in out.stdout + out.stderr
    with pytest.raises(PkiError, match="no certificate to revoke"):
        revoke(tmp_path, "ids")
    with pytest.raises(PkiError, match="cannot revoke itself"):
        revoke(tmp_path, "ca")
