"""Process settings, read once from the environment at start-up (never at import time).

Secrets are `SecretStr` (never printed, never in an error message). There is no default
signing secret: the environment is production unless HEALTHPAY_ENV says otherwise, and only
in development may an unset JWT_SECRET come from the checkout's `.local/jwt-secret`, a random
file `make up` writes (so no secret that anyone can read in the repository signs tokens).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from domain.medcard.holds import DEFAULT_HOLD_TTL_HOURS, MAX_HOLD_HOURS
from domain.medcard.refills import DEFAULT_RULES, ClaimRules
from infrastructure.auth.tokens import MIN_SECRET_BYTES, SigningKey
from infrastructure.eventstore.group_commit import DEFAULT_MAX_QUEUE
from infrastructure.logs import LogFormat, LogLevel
from infrastructure.sms.cequens import PRODUCTION_URL as CEQUENS_PRODUCTION_URL

Environment = Literal["production", "development", "test"]
HostList = Annotated[tuple[str, ...], NoDecode]

# Written by `make up` (scripts/up.sh), mode 600; read only in development.
LOCAL_SECRET_FILE = Path(__file__).resolve().parents[1] / ".local" / "jwt-secret"
# sha256 of secrets that were published (the default earlier versions shipped in this
# repository): anyone could sign tokens with them, so they are refused like short ones.
PUBLISHED_SECRETS = frozenset({"bc586500685fe849de5194fa14effec739345b892b48f656221f22ed25cb38ef"})
_OPENSSL = "e.g. `openssl rand -hex 32`"


class SettingsError(Exception):
    """A setting a process cannot start with; the message is one line, fit for an operator."""


def _split(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _secret_problem(name: str, secret: SecretStr) -> str | None:
    raw = secret.get_secret_value().encode()
    if hashlib.sha256(raw).hexdigest() in PUBLISHED_SECRETS:
        return f"{name} is a published default secret; set a random one ({_OPENSSL})"
    if len(raw) < MIN_SECRET_BYTES:
        return f"{name} must be at least {MIN_SECRET_BYTES} bytes ({_OPENSSL})"
    return None


class Settings(BaseSettings):
    """Field names for code, environment names (the validation aliases) for operators."""

    model_config = SettingsConfigDict(
        frozen=True,
        case_sensitive=True,
        env_ignore_empty=True,  # `JWT_SECRET=` is unset, not an empty secret
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
    )

    postgres_url: str = Field(
        default="postgresql://healthpay@127.0.0.1:25432/healthpay_ledger",
        validation_alias="POSTGRES_URL",
    )
    port: int = Field(default=3000, validation_alias="PORT", gt=0, lt=65536)
    jwt_secret: SecretStr | None = Field(default=None, validation_alias="JWT_SECRET")
    jwt_secret_id: str | None = Field(default=None, validation_alias="JWT_SECRET_ID", min_length=1)
    # The key rotated out: still verifies the tokens it signed until they expire.
    jwt_previous_secret: SecretStr | None = Field(
        default=None, validation_alias="JWT_PREVIOUS_SECRET"
    )
    jwt_previous_secret_id: str | None = Field(
        default=None, validation_alias="JWT_PREVIOUS_SECRET_ID", min_length=1
    )
    jwt_issuer: str = Field(default="healthpay", validation_alias="JWT_ISSUER")
    jwt_audience: str = Field(default="healthpay-api", validation_alias="JWT_AUDIENCE")
    cors_origins: HostList = Field(default=(), validation_alias="CORS_ORIGINS")
    kafka_brokers: HostList = Field(default=("127.0.0.1:29092",), validation_alias="KAFKA_BROKERS")
    kafka_topic: str = Field(default="healthpay.events.wallet", validation_alias="KAFKA_TOPIC")
    # Partitions of the events topic when `healthpay kafka create-topic` creates it: the most
    # members a consumer group can use (key = aggregate id). 24 leaves room for 5 command and
    # 3 projection instances to grow (24 splits evenly over 2, 3, 4, 6, 8 and 12 workers); a
    # partition costs the broker little. Fixed once the topic exists (docs/capacity.md).
    kafka_partitions: int = Field(default=24, validation_alias="KAFKA_PARTITIONS", gt=0)
    scylla_hosts: HostList = Field(default=("127.0.0.1:29042",), validation_alias="SCYLLA_HOSTS")
    scylla_keyspace: str = Field(default="healthpay_balances", validation_alias="SCYLLA_KEYSPACE")
    pool_min_size: int = Field(default=4, validation_alias="PG_POOL_MIN", ge=0)
    pool_max_size: int = Field(default=16, validation_alias="PG_POOL_MAX", gt=0)
    # The command service's cache of card and wallet states: LRU by their estimated bytes.
    aggregate_cache_bytes: int = Field(
        default=256 * 1024 * 1024, validation_alias="AGGREGATE_CACHE_BYTES", ge=0
    )
    # Appends waiting for the event store beyond this are refused at once (503, Retry-After).
    group_commit_max_queue: int = Field(
        default=DEFAULT_MAX_QUEUE, validation_alias="GROUP_COMMIT_MAX_QUEUE", gt=0
    )
    environment: Environment = Field(default="production", validation_alias="HEALTHPAY_ENV")
    # Claim rules (domain/medcard/refills.py, domain/medcard/velocity.py): the share of the
    # last fill's days supply that must have elapsed before a refill of the drug; the claims
    # and total amount per beneficiary per Cairo day past which a claim is flagged.
    refill_min_elapsed_share: Decimal = Field(
        default=DEFAULT_RULES.refill_min_elapsed_share,
        validation_alias="REFILL_MIN_ELAPSED_SHARE",
        ge=0,
        le=1,
    )
    velocity_max_claims_per_day: int = Field(
        default=DEFAULT_RULES.velocity_max_claims_per_day,
        validation_alias="VELOCITY_MAX_CLAIMS_PER_DAY",
        gt=0,
    )
    velocity_max_amount_per_day: Decimal = Field(
        default=DEFAULT_RULES.velocity_max_amount_per_day,
        validation_alias="VELOCITY_MAX_AMOUNT_PER_DAY",
        gt=0,
    )
    # How long a stored Idempotency-Key answer is kept at least; `healthpay idempotency
    # purge` deletes older ones.
    idempotency_retention_days: float = Field(
        default=7.0, validation_alias="IDEMPOTENCY_RETENTION_DAYS", gt=0
    )
    # The gateway forwards GraphQL mutations here: the public edge, which sends each write to
    # the command-service process that owns its card.
    command_service_url: str = Field(
        default="http://127.0.0.1:3000", validation_alias="COMMAND_SERVICE_URL"
    )
    # How long a benefit hold stays open when its request names no expiresInHours.
    hold_ttl_hours: int = Field(
        default=DEFAULT_HOLD_TTL_HOURS, validation_alias="HOLD_TTL_HOURS", ge=1, le=MAX_HOLD_HOURS
    )
    # How long a gateway read with minPosition waits for the projection.
    read_wait_seconds: float = Field(default=2.0, validation_alias="READ_WAIT_SECONDS", gt=0)
    # How long the relay and the projections retry a lost PostgreSQL, Kafka or CQL store before
    # they exit for a restart (infrastructure/outage.py).
    outage_budget_s: float = Field(default=60.0, validation_alias="OUTAGE_BUDGET_S", gt=0)
    # The payment gateways' keys for their callbacks (command_service/payment_callbacks.py);
    # unset, that gateway's callback answers 503 gateway_not_configured.
    fawry_security_key: SecretStr | None = Field(
        default=None, validation_alias="FAWRY_SECURITY_KEY"
    )
    paymob_hmac_secret: SecretStr | None = Field(
        default=None, validation_alias="PAYMOB_HMAC_SECRET"
    )
    # SMS notifications (`healthpay notify`, docs/notifications.md). Disabled, messages are
    # stored and logged but none leaves the process (`make up`'s default).
    sms_enabled: bool = Field(default=True, validation_alias="SMS_ENABLED")
    cequens_api_key: SecretStr | None = Field(default=None, validation_alias="CEQUENS_API_KEY")
    cequens_url: str = Field(default=CEQUENS_PRODUCTION_URL, validation_alias="CEQUENS_URL")
    cequens_sender_name: str = Field(
        default="HealthPay", validation_alias="CEQUENS_SENDER_NAME", min_length=1, max_length=11
    )
    # A wallet debit that takes the balance below this sends the low-balance message.
    sms_low_wallet_balance: Decimal = Field(
        default=Decimal("50.00"), validation_alias="SMS_LOW_WALLET_BALANCE", ge=0
    )
    # The language of a card without one chosen (`healthpay sms language`).
    sms_default_language: Literal["ar", "en"] = Field(
        default="ar", validation_alias="SMS_DEFAULT_LANGUAGE"
    )
    # The healthpay.* loggers' level (DEBUG: a line per claim and per projected event, to
    # follow one correlation id); libraries stay at INFO (infrastructure/logs.py).
    log_level: LogLevel = Field(default="INFO", validation_alias="LOG_LEVEL")
    # json: one object per line, for the log pipeline; text: for a developer's terminal.
    log_format: LogFormat = Field(default="json", validation_alias="LOG_FORMAT")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value  # debug == DEBUG

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    _split_lists = field_validator("cors_origins", "kafka_brokers", "scylla_hosts", mode="before")(
        _split
    )

    @model_validator(mode="after")
    def _secrets_are_usable(self) -> Settings:
        # Checked in every process, needed or not: one bad shared secret stops them all.
        for name, secret in (
            ("JWT_SECRET", self.jwt_secret),
            ("JWT_PREVIOUS_SECRET", self.jwt_previous_secret),
        ):
            problem = None if secret is None else _secret_problem(name, secret)
            if problem:
                raise ValueError(problem)
        if self.jwt_previous_secret is not None:
            if self.jwt_secret is None:
                raise ValueError("JWT_PREVIOUS_SECRET is set but JWT_SECRET is not")
            current, previous = (
                self._key(self.jwt_secret, self.jwt_secret_id),
                self._key(self.jwt_previous_secret, self.jwt_previous_secret_id),
            )
            if current.kid == previous.kid:
                raise ValueError("the current and the previous key have one id (JWT_*SECRET_ID)")
        return self

    @property
    def claim_rules(self) -> ClaimRules:
        return ClaimRules(
            refill_min_elapsed_share=self.refill_min_elapsed_share,
            velocity_max_claims_per_day=self.velocity_max_claims_per_day,
            velocity_max_amount_per_day=self.velocity_max_amount_per_day,
        )

    @staticmethod
    def _key(secret: SecretStr, kid: str | None) -> SigningKey:
        return SigningKey.of(secret.get_secret_value(), kid)

    @classmethod
    def from_env(cls) -> Settings:
        """This process's settings; SettingsError (one line, no secret in it) if any is bad."""
        try:
            return cls()
        except ValidationError as exc:
            raise SettingsError(_describe(exc)) from None

    @classmethod
    def env_names(cls) -> set[str]:
        """Every environment variable these settings read."""
        return {str(f.validation_alias) for f in cls.model_fields.values()}

    def signing_keys(self, *, local_fallback: bool = False) -> tuple[SigningKey, SigningKey | None]:
        """The current signing key and the previous one; SettingsError when there is none.

        Without JWT_SECRET, development (or `local_fallback`, for `healthpay token` in a
        shell that `make up` did not configure) reads the checkout's `.local/jwt-secret`."""
        secret = self.jwt_secret
        local = local_fallback or self.environment == "development"
        if secret is None and local:
            secret = _local_secret()
        if secret is None:
            where = f" and there is no {LOCAL_SECRET_FILE} (`make up` writes one)" if local else ""
            raise SettingsError(
                f"JWT_SECRET is not set (HEALTHPAY_ENV={self.environment}){where}; set it to"
                f" at least {MIN_SECRET_BYTES} random bytes ({_OPENSSL})"
            )
        current = self._key(secret, self.jwt_secret_id)
        if self.jwt_previous_secret is None:
            return current, None
        return current, self._key(self.jwt_previous_secret, self.jwt_previous_secret_id)


def _local_secret() -> SecretStr | None:
    try:
        text = LOCAL_SECRET_FILE.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SettingsError(f"cannot read {LOCAL_SECRET_FILE}: {exc.strerror}") from None
    secret = SecretStr(text)
    problem = _secret_problem(str(LOCAL_SECRET_FILE), secret)
    if problem:
        raise SettingsError(problem)
    return secret


def _describe(exc: ValidationError) -> str:
    """One line naming each bad variable; never the value (it may be a secret)."""
    parts: list[str] = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "invalid settings: " + "; ".join(parts)
