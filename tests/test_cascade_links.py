"""One-click confirm links: only the link we sent confirms, only for its report and organisation, only in time."""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from alerting.cascade import LinkError, LinkSigner, generate_link_key, load_link_key
from tests.test_cascade_fixtures import T0, SimClock

KEY = bytes(range(32))


def signer(clock: SimClock, key: bytes = KEY) -> LinkSigner:
    return LinkSigner(key, "https://console.example/", ttl=3600, clock=clock)


def test_token_names_report_organisation_and_expiry() -> None:
    links = signer(SimClock())
    claim = links.verify(links.token("drill-2021.1", "muni-01-002"))
    assert (claim.report, claim.org, claim.expires) == ("drill-2021.1", "muni-01-002", int(T0 + 3600))


def test_url_is_url_safe_and_carries_the_token() -> None:
    links = signer(SimClock())
    url = links.url("drill-2021.1", "muni-01-002")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "console.example", "/cascade/confirm")
    token = parse_qs(parts.query)["token"][0]
    assert url.endswith(token)  # nothing needed escaping: base64url without padding
    assert links.verify(token).org == "muni-01-002"


def test_expired_token_is_refused_after_its_ttl() -> None:
    clock = SimClock()
    links = signer(clock)
    token = links.token("drill-2021.1", "pref-13")
    clock.now = T0 + 3600
    assert links.verify(token).org == "pref-13"  # the last second still counts
    clock.now = T0 + 3601
    with pytest.raises(LinkError) as caught:
        links.verify(token)
    assert caught.value.reason == "expired"
    assert "有効期限" in str(caught.value)


def test_tampered_token_is_refused() -> None:
    links = signer(SimClock())
    token = links.token("drill-2021.1", "muni-01-002")
    payload, mac = token.split(".")
    other_payload = links.token("drill-2021.1", "muni-01-003").split(".")[0]
    forged = [f"{other_payload}.{mac}",  # someone else's organisation under this MAC
              f"{payload}.{mac[:-2]}AA",  # a changed MAC
              signer(SimClock(), key=b"x" * 32).token("drill-2021.1", "muni-01-002")]  # another key
    for candidate in forged:
        with pytest.raises(LinkError) as caught:
            links.verify(candidate)
        assert caught.value.reason == "tampered", candidate


@pytest.mark.parametrize("token", ["", "abc", "!!!.###", "a" * 500 + ".b"])
def test_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(LinkError) as caught:
        signer(SimClock()).verify(token)
    assert caught.value.reason in ("malformed", "tampered")


def test_ids_that_would_break_the_token_are_rejected() -> None:
    with pytest.raises(ValueError, match="only letters"):
        signer(SimClock()).token("drill\n1", "muni-01-002")


def test_key_file_is_owner_only_and_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "link.key"
    generate_link_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_link_key(path)
    assert len(key) == 32
    with pytest.raises(FileExistsError):
        generate_link_key(path)
    path.write_text("abcd\n")
    with pytest.raises(ValueError, match="too short"):
        load_link_key(path)
    with pytest.raises(ValueError, match="too short"):
        LinkSigner(b"short", "http://x", 60)
