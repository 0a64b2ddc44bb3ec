"""Every process refuses bad settings at start-up: one line on stderr, exit 2, no traceback.

The processes are started for real (`python -m cli.main ...`, as containers run them), with
none of the settings of the shell that runs the tests. None of them gets as far as
connecting anywhere, so no server is needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cli.main as cli_main
import infrastructure.settings as settings_module
from infrastructure.auth.tokens import Role, SigningKey, TokenCodec
from infrastructure.settings import Settings
from tests.api.support import OLD_DEFAULT_SECRET
from tests.isolation import isolated_settings

REPO = Path(__file__).resolve().parents[2]
GOOD_SECRET = "start-up-tests-secret-0123456789abcdef-0123"
SERVICES = [["serve-commands"], ["serve-gateway"]]
EVERY_PROCESS = [
    *SERVICES,
    ["token", "--role", "admin"],
    ["relay"],
    ["project"],
    ["project-balances"],
    ["db", "migrate"],
    ["idempotency", "purge"],
]


def _start(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in Settings.env_names()}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *argv],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _refused(argv: list[str], message: str, **env: str) -> str:
    done = _start(argv, **env)
    assert done.returncode == 2, (argv, done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[0].startswith(f"healthpay {argv[0]}: "), lines
    assert message in lines[0], lines
    return lines[0]


@pytest.mark.parametrize("argv", SERVICES, ids=lambda a: a[0])
def test_without_jwt_secret_the_services_do_not_start(argv: list[str]) -> None:
    # HEALTHPAY_ENV unset is production: no default secret, and no checkout file either
    # (`healthpay token` may read that file: tested in-process below, away from the checkout)
    _refused(argv, "JWT_SECRET is not set (HEALTHPAY_ENV=production)")


@pytest.mark.parametrize("argv", EVERY_PROCESS, ids=lambda a: "-".join(a[:2]))
def test_a_short_secret_stops_every_process(argv: list[str]) -> None:
    line = _refused(argv, "JWT_SECRET must be at least 32 bytes", JWT_SECRET="s" * 31)
    assert "s" * 31 not in line


@pytest.mark.parametrize("argv", SERVICES, ids=lambda a: a[0])
def test_the_old_repository_default_is_refused(argv: list[str]) -> None:
    line = _refused(argv, "JWT_SECRET is a published default secret", JWT_SECRET=OLD_DEFAULT_SECRET)
    assert OLD_DEFAULT_SECRET not in line


def test_a_bad_environment_name_is_refused() -> None:
    _refused(["relay"], "HEALTHPAY_ENV", HEALTHPAY_ENV="prod", JWT_SECRET=GOOD_SECRET)


def test_a_token_is_printed_with_a_good_secret() -> None:
    done = _start(["token", "--role", "pharmacy", "--sub", "ph-9"], JWT_SECRET=GOOD_SECRET)
    assert done.returncode == 0, done.stderr
    codec = TokenCodec(SigningKey.of(GOOD_SECRET), "healthpay", "healthpay-api")
    principal = codec.verify(done.stdout.strip())
    assert (principal.role, principal.pharmacy_id) == (Role.PHARMACY, "ph-9")


# ------------------------------------------------- `make up`'s checkout secret (in-process)


@pytest.fixture
def shell_after_make_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A new shell: no JWT_SECRET or HEALTHPAY_ENV; the checkout's secret file elsewhere."""
    for name in Settings.env_names():
        monkeypatch.delenv(name, raising=False)
    secret_file = tmp_path / "jwt-secret"
    monkeypatch.setattr(settings_module, "LOCAL_SECRET_FILE", secret_file)
    return secret_file


def test_healthpay_token_reads_the_checkout_secret_like_the_readme_says(
    shell_after_make_up: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main.main(["token", "--role", "admin"]) == 2
    assert "JWT_SECRET is not set" in capsys.readouterr().err  # before `make up`
    shell_after_make_up.write_text(GOOD_SECRET + "\n")
    assert cli_main.main(["token", "--role", "admin"]) == 0
    token = capsys.readouterr().out.strip()
    # what `make up` exports to the services: JWT_SECRET=$(cat .local/jwt-secret)
    services = TokenCodec.from_settings(isolated_settings(jwt_secret=GOOD_SECRET))
    assert services.verify(token).role is Role.ADMIN


def test_services_read_the_checkout_secret_only_in_development(
    shell_after_make_up: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shell_after_make_up.write_text(GOOD_SECRET)
    with pytest.raises(settings_module.SettingsError):
        Settings.from_env().signing_keys()
    monkeypatch.setenv("HEALTHPAY_ENV", "development")
    assert Settings.from_env().signing_keys()[0] == SigningKey.of(GOOD_SECRET)
