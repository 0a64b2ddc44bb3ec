"""A throwaway PostgreSQL for the test session, and one fresh database per test.

One server per pytest session (started with scripts/pg.sh, fsync off, in a temp dir on a
free port), or the server named by HEALTHPAY_TEST_POSTGRES_URL. Migrations run once into a
template database; each test gets `CREATE DATABASE ... TEMPLATE` of it, which takes
milliseconds instead of re-running the migrations.

A plain module (not a conftest) so that test packages outside tests/integration, such as
the contract suite, share the same single server.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from infrastructure.postgres.migrations import migrate_sync
from tests.integration.server_scripts import free_port, run_script
from tests.log_scan import scan_server_logs

REPO = Path(__file__).resolve().parents[2]
PG_SH = REPO / "scripts" / "pg.sh"
ENV_URL = "HEALTHPAY_TEST_POSTGRES_URL"


class PostgresHarness:
    def __init__(self, admin_url: str, data_dir: Path | None) -> None:
        self.admin_url = admin_url
        self._data_dir = data_dir  # set when this process started the server
        self._prefix = f"healthpay_test_{os.getpid()}"
        self._template = f"{self._prefix}_template"
        self._numbers = itertools.count(1)
        self._stopped = False
        self._execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(self._template)))
        self._execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self._template)))
        migrate_sync(self._url_for(self._template))

    @classmethod
    def start(cls) -> PostgresHarness:
        url = os.environ.get(ENV_URL)
        if url:
            return cls(url, None)
        return cls.launch(durable=False)

    @classmethod
    def launch(cls, durable: bool) -> PostgresHarness:
        """Always a new local server in a temp dir. `durable` keeps fsync and synchronous
        commit on: what a test that crash-stops the server (`crash`) needs, for without them
        a commit already answered can be lost with the server's WAL buffers."""
        data_dir = Path(tempfile.mkdtemp(prefix="healthpay-pg-"))
        env = {**os.environ, "PG_FSYNC": "on" if durable else "off"}
        try:
            admin_url = run_script(PG_SH, "start", str(data_dir), str(free_port()), env=env)
        except BaseException:
            shutil.rmtree(data_dir, ignore_errors=True)
            raise
        try:
            return cls(admin_url, data_dir)
        except BaseException:
            _stop_server(data_dir)
            raise

    def create_database(self) -> str:
        """A fresh, migrated database; returns its conninfo."""
        name = f"{self._prefix}_{next(self._numbers)}"
        self._execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(self._template)
            )
        )
        return self._url_for(name)

    def drop_database(self, url: str) -> None:
        name = conninfo_to_dict(url)["dbname"]
        self._execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )

    @contextmanager
    def unreachable(self, url: str) -> Iterator[None]:
        """The database of `url` refuses every connection (its open ones are cut) until the
        block ends: a PostgreSQL outage for that database alone."""
        name = sql.Identifier(str(conninfo_to_dict(url)["dbname"]))
        self._execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(name))
        try:
            with psycopg.connect(self._url_for("postgres"), autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (str(conninfo_to_dict(url)["dbname"]),),
                )
            yield
        finally:
            self._execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(name))

    def crash(self) -> None:
        """`pg_ctl -m immediate`: every backend is killed, nothing is flushed or checkpointed;
        `start_again` recovers from the WAL."""
        subprocess.run(
            [str(PG_SH), "stop", str(self._own_dir())],
            env={**os.environ, "PG_STOP_MODE": "immediate"},
            check=True,
            capture_output=True,
        )

    def start_again(self) -> None:
        """Start the stopped (or crashed) server on its directory and port."""
        port = str(conninfo_to_dict(self.admin_url)["port"])
        run_script(PG_SH, "start", str(self._own_dir()), port)

    def _own_dir(self) -> Path:
        if self._data_dir is None:
            raise RuntimeError(f"cannot stop a server this harness did not start ({ENV_URL})")
        return self._data_dir

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._data_dir is None:
            self._execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self._template)
                )
            )
            return
        _stop_server(self._data_dir)

    def _url_for(self, dbname: str) -> str:
        return make_conninfo(self.admin_url, dbname=dbname)

    def _execute(self, statement: sql.Composed) -> None:
        # CREATE/DROP DATABASE cannot run inside a transaction block.
        with psycopg.connect(self._url_for("postgres"), autocommit=True) as conn:
            conn.execute(statement)


def _stop_server(data_dir: Path) -> None:
    subprocess.run([str(PG_SH), "stop", str(data_dir)], check=False, capture_output=True)
    scan_server_logs([data_dir / "server.log"], "postgresql")
    shutil.rmtree(data_dir, ignore_errors=True)


_shared: PostgresHarness | None = None


def shared_harness() -> PostgresHarness:
    """The session's one harness, started on first use and stopped when the process ends."""
    global _shared
    if _shared is None:
        _shared = PostgresHarness.start()
        atexit.register(_shared.stop)
    return _shared
