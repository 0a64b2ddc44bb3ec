"""Signing keys: no default secret, at least 32 bytes, rotation by `kid` (issue 9)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import jwt
import pytest
from pydantic import SecretStr

import infrastructure.settings as settings_module
from infrastructure.auth.tokens import InvalidToken, Role, SigningKey, TokenCodec, TokenVerifier
from infrastructure.settings import PUBLISHED_SECRETS, Settings, SettingsError
from tests.api.support import OLD_DEFAULT_SECRET
from tests.isolation import isolated_settings

CURRENT = "current-secret-0123456789abcdef-0123456789"
PREVIOUS = "previous-secret-0123456789abcdef-012345678"
ENV_NAMES = sorted(Settings.env_names())


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting from the shell running the tests, and no checkout secret file."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    missing = tmp_path / "jwt-secret"
    monkeypatch.setattr(settings_module, "LOCAL_SECRET_FILE", missing)
    return missing


def _codec(settings: Settings) -> TokenCodec:
    return TokenCodec.from_settings(settings)


# ------------------------------------------------------------------------------ settings


def test_the_default_environment_is_production_and_has_no_secret() -> None:
    settings = Settings.from_env()
    assert settings.environment == "production"
    assert settings.jwt_secret is None
    with pytest.raises(SettingsError, match=r"JWT_SECRET is not set \(HEALTHPAY_ENV=production\)"):
        settings.signing_keys()


@pytest.mark.parametrize("environment", ["production", "test"])
def test_outside_development_the_checkout_secret_is_not_used(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path, environment: str
) -> None:
    clean_environment.write_text(CURRENT)
    monkeypatch.setenv("HEALTHPAY_ENV", environment)
    with pytest.raises(SettingsError, match="JWT_SECRET is not set"):
        Settings.from_env().signing_keys()


def test_development_signs_with_the_checkout_secret_and_never_a_constant(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    monkeypatch.setenv("HEALTHPAY_ENV", "development")
    with pytest.raises(SettingsError, match="make up"):
        Settings.from_env().signing_keys()  # no file yet: no key at all
    clean_environment.write_text(CURRENT + "\n")
    current, previous = Settings.from_env().signing_keys()
    assert current == SigningKey.of(CURRENT)
    assert previous is None


def test_a_short_checkout_secret_is_refused(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    monkeypatch.setenv("HEALTHPAY_ENV", "development")
    clean_environment.write_text("too-short")
    with pytest.raises(SettingsError, match="at least 32 bytes"):
        Settings.from_env().signing_keys()


@pytest.mark.parametrize("name", ["JWT_SECRET", "JWT_PREVIOUS_SECRET"])
@pytest.mark.parametrize("environment", ["production", "development"])
def test_short_and_published_secrets_are_refused_in_every_environment(
    monkeypatch: pytest.MonkeyPatch, name: str, environment: str
) -> None:
    monkeypatch.setenv("HEALTHPAY_ENV", environment)
    monkeypatch.setenv("JWT_SECRET", CURRENT)
    for bad, why in (("x" * 31, "at least 32 bytes"), (OLD_DEFAULT_SECRET, "published")):
        monkeypatch.setenv(name, bad)
        with pytest.raises(SettingsError, match=why) as refused:
            Settings.from_env()
        message = str(refused.value)
        assert "\n" not in message
        assert bad not in message, "a secret must never be printed"
        assert name in message


def test_32_bytes_is_enough_counted_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "é" * 16)  # 16 characters, 32 bytes in UTF-8
    assert Settings.from_env().signing_keys()[0].secret == ("é" * 16).encode()
    monkeypatch.setenv("JWT_SECRET", "é" * 15 + "x")
    with pytest.raises(SettingsError, match="at least 32 bytes"):
        Settings.from_env()


def test_the_old_default_is_the_published_one() -> None:
    assert hashlib.sha256(OLD_DEFAULT_SECRET.encode()).hexdigest() in PUBLISHED_SECRETS


def test_an_empty_secret_is_an_unset_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "")
    with pytest.raises(SettingsError, match="JWT_SECRET is not set"):
        Settings.from_env().signing_keys()


def test_a_previous_key_needs_a_current_one_and_its_own_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JWT_PREVIOUS_SECRET", PREVIOUS)
    with pytest.raises(SettingsError, match="JWT_PREVIOUS_SECRET is set but JWT_SECRET is not"):
        Settings.from_env()
    monkeypatch.setenv("JWT_SECRET", CURRENT)
    monkeypatch.setenv("JWT_SECRET_ID", "k1")
    monkeypatch.setenv("JWT_PREVIOUS_SECRET_ID", "k1")
    with pytest.raises(SettingsError, match="one id"):
        Settings.from_env()
    monkeypatch.delenv("JWT_SECRET_ID")
    monkeypatch.delenv("JWT_PREVIOUS_SECRET_ID")
    monkeypatch.setenv("JWT_PREVIOUS_SECRET", CURRENT)  # the same secret: the same derived id
    with pytest.raises(SettingsError, match="one id"):
        Settings.from_env()


def test_other_bad_settings_are_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORT", "eighty")
    monkeypatch.setenv("HEALTHPAY_ENV", "prod")
    with pytest.raises(SettingsError) as refused:
        Settings.from_env()
    message = str(refused.value)
    assert "\n" not in message
    assert "PORT" in message
    assert "HEALTHPAY_ENV" in message


def test_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example,")
    monkeypatch.setenv("KAFKA_BROKERS", "k1:9092,k2:9092")
    settings = Settings.from_env()
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.kafka_brokers == ("k1:9092", "k2:9092")


def test_the_secret_is_not_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", CURRENT)
    settings = Settings.from_env()
    assert CURRENT not in repr(settings)
    assert CURRENT not in str(settings.model_dump())
    assert CURRENT not in repr(settings.signing_keys()[0])


# ------------------------------------------------------------------------------ rotation


def _rotated(current: str, current_id: str, previous: str | None, previous_id: str) -> Settings:
    return isolated_settings(
        jwt_secret=SecretStr(current),
        jwt_secret_id=current_id,
        jwt_previous_secret=None if previous is None else SecretStr(previous),
        jwt_previous_secret_id=previous_id if previous else None,
    )


def test_tokens_name_the_current_key() -> None:
    codec = _codec(_rotated(CURRENT, "k2", PREVIOUS, "k1"))
    token = codec.issue(Role.ADMIN, "admin-1")
    assert jwt.get_unverified_header(token)["kid"] == "k2"
    jwt.decode(token, CURRENT.encode(), ["HS256"], audience="healthpay-api")


def test_a_rotation_keeps_the_previous_keys_tokens_until_the_next_one() -> None:
    before = _codec(_rotated(PREVIOUS, "k1", None, ""))
    during = _codec(_rotated(CURRENT, "k2", PREVIOUS, "k1"))
    after = _codec(_rotated("next-secret-0123456789abcdef-0123456789ab", "k3", CURRENT, "k2"))
    old_token = before.issue(Role.PHARMACY, "ph-user", "ph-1")
    assert during.verify(old_token).pharmacy_id == "ph-1"
    new_token = during.issue(Role.OPS, "ops-1")
    assert after.verify(new_token).subject == "ops-1"
    with pytest.raises(InvalidToken, match="unknown key id"):
        after.verify(old_token)
    with pytest.raises(InvalidToken, match="unknown key id"):
        before.verify(new_token)


def test_the_key_is_chosen_by_kid_and_the_signature_still_checked() -> None:
    codec = _codec(_rotated(CURRENT, "k2", PREVIOUS, "k1"))
    claims: dict[str, object] = {"sub": "a", "role": "admin", "iss": "healthpay"}
    claims |= {"aud": "healthpay-api", "exp": 4_000_000_000}
    # signed with the previous secret but naming the current key: the signature fails
    forged = jwt.encode(claims, PREVIOUS.encode(), "HS256", headers={"kid": "k2"})
    with pytest.raises(InvalidToken, match="Signature"):
        codec.verify(forged)
    for headers in ({}, {"kid": "k9"}, {"kid": ""}):
        token = jwt.encode(claims, CURRENT.encode(), "HS256", headers=headers)
        with pytest.raises(InvalidToken, match="key"):
            codec.verify(token)


def test_without_an_id_every_process_derives_the_same_one() -> None:
    first = SigningKey.of(CURRENT)
    assert first == SigningKey.of(CURRENT)
    assert first.kid != SigningKey.of(PREVIOUS).kid
    assert CURRENT not in first.kid
    verifier = TokenVerifier(TokenCodec(first, "healthpay", "healthpay-api"))
    token = TokenCodec(SigningKey.of(CURRENT), "healthpay", "healthpay-api").issue(
        Role.MEMBER, "m-1"
    )
    assert verifier.verify(token).subject == "m-1"
