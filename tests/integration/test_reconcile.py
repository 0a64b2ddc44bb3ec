"""`healthpay payments reconcile` on a real PostgreSQL: the top-ups are credited through the
gateways' signed callbacks (and the staff's top-up route), then a settlement file is compared
with them by the command line, which reads the event store itself."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest

from cli.main import main
from domain.calendar import CAIRO
from domain.wallet.gateway_orders import order_reference
from tests.api.gateways import (
    FAWRY_CALLBACK,
    fawry_notification,
    paymob_transaction,
    paymob_url,
)
from tests.api.support import API, Api, Tokens, api_settings, done, open_wallet, running_api

pytestmark = pytest.mark.integration

FAWRY_HEADER = "fawryRefNumber,merchantRefNumber,orderAmount,currencyCode,paymentTime,orderStatus"
PAYMOB_HEADER = "id,merchant_order_id,amount_cents,currency,created_at,status,pan"


def _cairo_ms(text: str) -> int:
    """Milliseconds since 1970 of a Cairo wall-clock time, as Fawry's paymentTime says it."""
    at = datetime.fromisoformat(text).replace(tzinfo=CAIRO)
    return round(at.timestamp() * 1000)


async def _fawry_paid(api: Api, wallet: str, reference: str, amount: str, paid: str) -> None:
    body = fawry_notification(
        order_reference(UUID(wallet), reference), reference, amount, payment_time=_cairo_ms(paid)
    )
    answer = done(await api.client.post(FAWRY_CALLBACK, json=body))
    assert answer["credited"] is True


async def _paymob_paid(api: Api, wallet: str, tx: int, cents: int, created_at: str) -> None:
    body = paymob_transaction(
        order_reference(UUID(wallet), f"p{tx}"), tx, cents, created_at=created_at
    )
    answer = done(await api.client.post(paymob_url(body), json=body))
    assert answer["credited"] is True


async def _wallet(api: Api, user: str) -> str:
    wallet: str = (await open_wallet(api, Tokens(api_settings()).ops(), user))["id"]
    return wallet


def _reconcile(
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    file: Path,
    gateway: str,
    *extra: str,
) -> tuple[int, Any, str]:
    """Exit status, the JSON report and the text report (whose exit status must agree)."""
    monkeypatch.setenv("POSTGRES_URL", postgres_url)
    args = ["payments", "reconcile", str(file), "--gateway", gateway, *extra]
    status = main([*args, "--format", "json"])
    report = orjson.loads(capsys.readouterr().out)
    assert main(args) == status
    return status, report, capsys.readouterr().out


def _file(tmp_path: Path, header: str, *lines: str) -> Path:
    path = tmp_path / "settlement.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


async def test_a_missing_line_and_a_mismatched_amount_are_both_reported(
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with running_api("postgres", postgres_url) as api:
        wallet = await _wallet(api, "recon-1")
        await _fawry_paid(api, wallet, "FWR-A1", "150.00", "2026-12-03T10:15:00")
        await _fawry_paid(api, wallet, "FWR-A2", "200.00", "2026-12-03T11:40:00")
        await _paymob_paid(api, wallet, 193000001, 5000, "2026-12-03T12:00:00")  # not Fawry's
    file = _file(
        tmp_path,
        FAWRY_HEADER,
        f"FWR-A1,{wallet}:FWR-A1,150.00,EGP,2026-12-03 10:15:00,PAID",
        f"FWR-A2,{wallet}:FWR-A2,180.00,EGP,2026-12-03 11:40:00,PAID",  # credited 200.00
        f"FWR-A3,{wallet}:FWR-A3,75.50,EGP,2026-12-03 12:05:00,PAID",  # never credited
    )
    status, report, text = _reconcile(postgres_url, monkeypatch, capsys, file, "fawry")

    assert status == 1
    assert (report["from"], report["to"]) == ("2026-12-03", "2026-12-03")
    assert [m["reference"] for m in report["matched"]] == ["FWR-A1"]
    assert report["missingOnOurSide"] == [
        {
            "line": 4,
            "reference": "FWR-A3",
            "amount": "75.50",
            "currency": "EGP",
            "paidAt": "2026-12-03T10:05:00+00:00",
            "status": "PAID",
        }
    ]
    assert report["differences"] == [
        {
            "line": 3,
            "reference": "FWR-A2",
            "walletId": wallet,
            "field": "amount",
            "file": "180.00",
            "ledger": "200.00",
        }
    ]
    assert report["missingOnTheirs"] == []
    assert report["clean"] is False
    assert "line 4: FWR-A3 75.50 EGP PAID" in text
    assert "line 3: FWR-A2" in text
    assert "amount: file 180.00, ledger 200.00" in text
    assert text.rstrip().endswith("NOT RECONCILED")


async def test_an_all_matched_file_exits_0(
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with running_api("postgres", postgres_url) as api:
        wallet = await _wallet(api, "recon-2")
        await _paymob_paid(api, wallet, 193000011, 25050, "2026-12-03T09:00:00.723456")
        await _paymob_paid(api, wallet, 193000012, 10000, "2026-12-03T21:30:00+02:00")
        # the staff's top-up route, with the gateway's time: a credit like a callback's
        done(
            await api.client.post(
                f"{API}/wallets/{wallet}/topups",
                json={
                    "gateway": "paymob",
                    "gatewayReference": "193000013",
                    "amount": "12.00",
                    "paidAt": "2026-12-03T18:00:00Z",
                },
                headers=Tokens(api_settings()).ops(),
            )
        )
        await _fawry_paid(api, wallet, "FWR-B1", "99.00", "2026-12-03T10:00:00")  # not Paymob's
    file = _file(
        tmp_path,
        PAYMOB_HEADER,
        # the report in whole seconds, Cairo's time: the fraction is not a difference
        f"193000011,{wallet}:p193000011,25050,EGP,2026-12-03 09:00:00,success,2346",
        f"193000012,{wallet}:p193000012,10000,EGP,2026-12-03T19:30:00Z,success,2346",
        f"193000013,{wallet}:x,1200,EGP,2026-12-03 20:00:00,success,2346",
        f"193000014,{wallet}:p193000014,5000,EGP,2026-12-03 22:00:00,declined,2346",
    )
    status, report, text = _reconcile(postgres_url, monkeypatch, capsys, file, "paymob")

    assert status == 0, report
    assert sorted(m["reference"] for m in report["matched"]) == [
        "193000011",
        "193000012",
        "193000013",
    ]
    assert report["missingOnOurSide"] == report["missingOnTheirs"] == report["differences"] == []
    assert (report["notPaidNotCredited"], report["clean"]) == (1, True)
    assert text.rstrip().endswith("all matched")


async def test_credits_missing_from_the_file_times_and_the_window(
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with running_api("postgres", postgres_url) as api:
        wallet = await _wallet(api, "recon-3")
        await _fawry_paid(api, wallet, "FWR-C1", "60.00", "2026-12-03T12:00:00")
        await _fawry_paid(api, wallet, "FWR-C2", "40.00", "2026-12-02T23:59:59")  # the day before
        await _fawry_paid(api, wallet, "FWR-C3", "90.00", "2026-12-03T00:00:00")  # the first second
    file = _file(
        tmp_path,
        FAWRY_HEADER,
        f"FWR-C1,{wallet}:FWR-C1,60.00,EGP,2026-12-03 12:00:05,PAID",  # five seconds out
        f"FWR-C4,{wallet}:FWR-C4,10.00,EGP,{_cairo_ms('2026-12-04T08:00:00')},PAID",
        f"FWR-C5,{wallet}:FWR-C5,10.00,EGP,,EXPIRED",
    )
    one_day = ("--from", "2026-12-03", "--to", "2026-12-03")
    status, report, _ = _reconcile(postgres_url, monkeypatch, capsys, file, "fawry", *one_day)

    assert status == 1
    assert [(d["reference"], d["field"]) for d in report["differences"]] == [("FWR-C1", "paid_at")]
    assert report["differences"][0]["file"] == "2026-12-03T10:00:05+00:00"
    assert report["differences"][0]["ledger"] == "2026-12-03T10:00:00+00:00"
    # FWR-C2 was paid the day before: outside the window, not missing
    assert [(c["reference"], c["amount"]) for c in report["missingOnTheirs"]] == [
        ("FWR-C3", "90.00")
    ]
    assert report["missingOnTheirs"][0]["paidAt"] == "2026-12-02T22:00:00+00:00"
    assert report["missingOnOurSide"] == []
    assert (report["outsideTheWindow"], report["notPaidNotCredited"]) == (1, 1)

    # No window given: the file's days (the 3rd and the 4th), so FWR-C4 is missing here.
    status, report, _ = _reconcile(postgres_url, monkeypatch, capsys, file, "fawry")
    assert status == 1
    assert (report["from"], report["to"]) == ("2026-12-03", "2026-12-04")
    assert [x["reference"] for x in report["missingOnOurSide"]] == ["FWR-C4"]
    assert report["outsideTheWindow"] == 0


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        pytest.param(
            ["fawryRefNumber,orderAmount,paymentTime,orderStatus"],
            "line 1: no column 'currencyCode'",
            id="missing_column",
        ),
        pytest.param(
            [FAWRY_HEADER, "FWR-1,x,150.00,EGP,2026-12-03 10:00:00,PAID", "FWR-2,x,150.00,EGP"],
            "line 3: 4 fields, the header has 6",
            id="short_line",
        ),
        pytest.param(
            [FAWRY_HEADER, "FWR-1,x,150.005,EGP,2026-12-03 10:00:00,PAID"],
            "line 2, column 3 (orderAmount): '150.005' must have at most two decimal places",
            id="three_decimals",
        ),
        pytest.param(
            [FAWRY_HEADER, "FWR-1,x,-5.00,EGP,2026-12-03 10:00:00,PAID"],
            "line 2, column 3 (orderAmount): '-5.00' must be written without a sign",
            id="negative",
        ),
        pytest.param(
            [FAWRY_HEADER, "FWR-1,x,5.00,egp,2026-12-03 10:00:00,PAID"],
            "line 2, column 4 (currencyCode): 'egp' is not a currency code",
            id="currency",
        ),
        pytest.param(
            [FAWRY_HEADER, "FWR-1,x,5.00,EGP,03/12/2026 10:00,PAID"],
            "line 2, column 5 (paymentTime): '03/12/2026 10:00' is not a time",
            id="time",
        ),
        pytest.param(
            [FAWRY_HEADER, "FWR-1,x,5.00,EGP,,PAID"],
            "line 2, column 5 (paymentTime): empty, and the line says PAID",
            id="paid_without_time",
        ),
        pytest.param(
            [FAWRY_HEADER, "FWR-1,x,5.00,EGP,2026-12-03 10:00:00,paid"],
            "line 2, column 6 (orderStatus): 'paid' is not one of Fawry's",
            id="status",
        ),
        pytest.param(
            [FAWRY_HEADER, ",x,5.00,EGP,2026-12-03 10:00:00,PAID"],
            "line 2, column 1 (fawryRefNumber): empty",
            id="no_reference",
        ),
        pytest.param(
            [
                FAWRY_HEADER,
                "FWR-1,x,5.00,EGP,2026-12-03 10:00:00,PAID",
                "",
                "FWR-1,y,5.00,EGP,2026-12-03 11:00:00,PAID",
            ],
            "line 4, column 1 (fawryRefNumber): 'FWR-1' is on line 2 too",
            id="duplicate",
        ),
        pytest.param(
            [FAWRY_HEADER, 'FWR-1,"x,5.00,EGP,2026-12-03 10:00:00,PAID'],
            "line 2: unexpected end of data",
            id="open_quote",
        ),
        pytest.param([], "line 1: no header line", id="empty"),
    ],
)
def test_a_malformed_file_is_refused_naming_line_and_column(
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    lines: list[str],
    message: str,
) -> None:
    path = tmp_path / "settlement.csv"
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    monkeypatch.setenv("POSTGRES_URL", postgres_url)
    assert main(["payments", "reconcile", str(path), "--gateway", "fawry"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"healthpay payments reconcile: {path}: {message}"), err


def test_paymob_amounts_are_whole_piastres_and_bytes_must_be_utf8(
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("POSTGRES_URL", postgres_url)
    path = tmp_path / "paymob.csv"
    path.write_text(f"{PAYMOB_HEADER}\n1,x,250.50,EGP,2026-12-03 10:00:00,success,1\n")
    assert main(["payments", "reconcile", str(path), "--gateway", "paymob"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: line 2, column 3 (amount_cents): '250.50' must be whole piastres" in err

    path.write_bytes(
        f"{PAYMOB_HEADER}\n".encode() + b"1,x,100,EGP,2026-12-03 10:00:00,succ\xe8s,1\n"
    )
    assert main(["payments", "reconcile", str(path), "--gateway", "paymob"]) == 2
    assert f"{path}: line 2: not UTF-8 text" in capsys.readouterr().err

    path.write_text(f"{PAYMOB_HEADER}\n")  # no payments at all: the days must be given
    assert main(["payments", "reconcile", str(path), "--gateway", "paymob"]) == 2
    assert "give the days with --from and --to" in capsys.readouterr().err
    days = ["--from", "2026-12-03", "--to", "2026-12-03"]
    assert main(["payments", "reconcile", str(path), "--gateway", "paymob", *days]) == 0
    assert main(["payments", "reconcile", str(path), "--gateway", "paymob", "--from", "3.12"]) == 2
    assert "--from '3.12' is not a date (YYYY-MM-DD)" in capsys.readouterr().err
