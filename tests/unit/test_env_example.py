"""`.env.example` lists every variable a process reads, with values a process accepts: the
deployment guide's where it names one, the code's default otherwise."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from infrastructure.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / ".env.example"
GUIDE = ROOT / "docs" / "product-spec.md"

# Read by infrastructure/cassandra/session.py beside Settings.
CQL_VARIABLES = {"SCYLLA_DC", "SCYLLA_RF"}
# The guide's external services: listed, empty, read by nothing yet (the payment gateways'
# callbacks read their signing keys, FAWRY_SECURITY_KEY and PAYMOB_HMAC_SECRET, instead).
NOT_READ_YET = {"FAWRY_MERCHANT_CODE", "PAYMOB_API_KEY"}
GATEWAY_KEYS = {"FAWRY_SECURITY_KEY", "PAYMOB_HMAC_SECRET"}
# A deployment's own values, not a default: the key id of the first key, the guide's replicas.
DEPLOYMENT_VALUES = {"JWT_SECRET_ID": "k1", "SCYLLA_DC": "dc1", "SCYLLA_RF": "3"}
SECRETS = {"JWT_SECRET", "JWT_PREVIOUS_SECRET", "CEQUENS_API_KEY", *GATEWAY_KEYS, *NOT_READ_YET}


def _assignments(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            assert match[1] not in found, f"{match[1]} twice"
            found[match[1]] = match[2]
    return found


@pytest.fixture(scope="module")
def example() -> dict[str, str]:
    return _assignments(EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def guide() -> dict[str, str]:
    block = GUIDE.read_text(encoding="utf-8").split("### Environment Variables", 1)[1]
    return _assignments(block.split("```", 2)[1])


def test_lists_exactly_what_the_processes_read(example: dict[str, str]) -> None:
    assert set(example) == Settings.env_names() | CQL_VARIABLES | NOT_READ_YET


def test_lists_every_variable_of_the_guide(example: dict[str, str], guide: dict[str, str]) -> None:
    assert len(guide) >= 10
    assert set(guide) <= set(example)
    for name, value in guide.items():
        if name not in SECRETS:
            assert example[name] == value, name


def test_other_values_are_the_code_defaults(example: dict[str, str], guide: dict[str, str]) -> None:
    fields = {str(f.validation_alias): f for f in Settings.model_fields.values()}
    for name, value in example.items():
        if name in guide or name in SECRETS or value == "":
            continue
        if name in DEPLOYMENT_VALUES:
            assert value == DEPLOYMENT_VALUES[name]
            continue
        default = fields[name].default
        if isinstance(default, bool):
            parsed: object = value == "true"
        elif isinstance(default, int | float | Decimal):
            parsed = type(default)(value)
        else:
            parsed = value
        assert parsed == default, name


def test_the_example_as_it_stands_signs_nothing(
    example: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in example.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()  # every value parses
    assert settings.environment == "production"
    # empty is unset: the callbacks answer 503 until the merchant's keys are set
    assert settings.fawry_security_key is None
    assert settings.paymob_hmac_secret is None
    with pytest.raises(SettingsError, match="JWT_SECRET is not set"):
        settings.signing_keys()
