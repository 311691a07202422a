"""A real PostgreSQL server for tests: a fresh cluster in a temporary folder, ``postgres`` on
127.0.0.1 on a free port, TLS on with a self-signed certificate, and a role and database
``dagster`` with a generated password.

The binaries are Debian's ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``, which
is not on PATH; ``scripts/setup --test-tools`` installs it), else whatever PATH has. PostgreSQL
refuses to run as root: as root, the cluster belongs to the ``postgres`` system user the
package creates and the server runs as that user.

Clients on loopback must use TLS and a password (``hostssl … scram-sha-256``; there is no plain
``host`` line): a client that does not ask for TLS is refused. The superuser reaches the server
through the Unix socket in the cluster's folder only.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from manufacturing_ingest_tests.s3_server import free_port

SUPERUSER = "postgres"
DATABASE = "dagster"
ROLE = "dagster"

HBA = """\
# Written by manufacturing_ingest_tests/postgres_server.py
local   all   all                  trust
hostssl all   all   127.0.0.1/32   scram-sha-256
"""


def postgres_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/*/bin`` with ``initdb``, else the folder of the
    ``initdb`` on PATH."""
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    if candidates:
        return Path(max(candidates, key=version)).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError(
        "PostgreSQL's initdb was found neither under /usr/lib/postgresql/*/bin nor on PATH: "
        "install Debian's postgresql package (scripts/setup --test-tools does)")


class PostgresServer:
    """Starts on construction; ``stop()`` ends the server and removes its folder.

    ``host``, ``port``, ``database``, ``user`` and ``password`` are what a client connects with
    (TLS required); ``log`` is the server's log file."""

    def __init__(self, start_timeout: float = 60):
        self.bin = postgres_bin_dir()
        self.host = "127.0.0.1"
        self.port = free_port()
        self.database = DATABASE
        self.user = ROLE
        self.password = secrets.token_urlsafe(18)
        self.process: subprocess.Popen | None = None
        self._as_postgres = os.geteuid() == 0
        # Not pytest's tmp_path: as root that is a 0700 folder of root's, which the postgres
        # user cannot reach. mkdtemp makes a 0700 folder under /tmp, handed to that user.
        self.root = Path(tempfile.mkdtemp(prefix="manufacturing-ingest-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        if self._as_postgres:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.root, ignore_errors=True)
                raise RuntimeError(
                    "PostgreSQL refuses to run as root and there is no 'postgres' user to run it "
                    "as: install Debian's postgresql package, which creates it") from None
            os.chown(self.root, account.pw_uid, account.pw_gid)
        try:
            self._initdb()
            self._certificate()
            self._start(start_timeout)
            self._create_role()
        except BaseException:
            self.stop()
            raise

    # -- what a client needs ---------------------------------------------------------------

    def connect(self, **options):
        """A psycopg2 connection as ``dagster`` over TCP with TLS required."""
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, dbname=self.database,
                                user=self.user, password=self.password,
                                sslmode=options.pop("sslmode", "require"), connect_timeout=5,
                                **options)

    def env(self) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": self.database,
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
        }

    def authorized_sessions(self) -> list[str]:
        """The server log's "connection authorized" lines of ``user`` (each says whether the
        session is encrypted: "SSL enabled (protocol=…)")."""
        return [line for line in self.log.read_text(errors="replace").splitlines()
                if f"connection authorized: user={self.user} " in line]

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # "fast" shutdown: end sessions, checkpoint
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- steps -----------------------------------------------------------------------------

    def _popen_options(self) -> dict:
        options: dict = {"cwd": self.root}
        if self._as_postgres:
            options.update(user="postgres", group="postgres", extra_groups=[],
                           env={**os.environ, "HOME": str(self.root), "USER": "postgres"})
        return options

    def _run(self, *command: str) -> None:
        result = subprocess.run(command, capture_output=True, text=True, **self._popen_options())
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n"
                               f"{result.stdout}\n{result.stderr}")

    def _initdb(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                  "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
        (self.data / "pg_hba.conf").write_text(HBA)

    def _certificate(self) -> None:
        """A self-signed certificate for 127.0.0.1; clients with ``sslmode=require`` encrypt
        without verifying it, as deploy/dagster.yaml asks."""
        key, cert = self.data / "server.key", self.data / "server.crt"
        result = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"openssl could not make the test certificate:\n{result.stderr}")
        key.chmod(0o600)  # the server refuses a key others can read
        if self._as_postgres:
            account = pwd.getpwnam("postgres")
            for path in (key, cert, self.data / "pg_hba.conf"):
                os.chown(path, account.pw_uid, account.pw_gid)

    def _start(self, timeout: float) -> None:
        command = [
            str(self.bin / "postgres"), "-D", str(self.data),
            "-c", f"listen_addresses={self.host}", "-c", f"port={self.port}",
            "-c", f"unix_socket_directories={self.root}",
            "-c", "ssl=on", "-c", "ssl_cert_file=server.crt", "-c", "ssl_key_file=server.key",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=100",
            # One log line per session, with its TLS protocol: tests can see what connected.
            "-c", "log_connections=on",
        ]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, **self._popen_options())
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode} while "
                                   f"starting; server log:\n{self.log_tail()}")
            try:
                self._superuser().close()
                return
            except Exception as error:  # not accepting connections yet
                last_error = error
                time.sleep(0.2)
        raise RuntimeError(f"postgres did not accept connections on {self.host}:{self.port} "
                           f"within {timeout:.0f} s ({last_error}); server log:\n"
                           f"{self.log_tail()}")

    def _superuser(self):
        import psycopg2

        return psycopg2.connect(host=str(self.root), port=self.port, dbname="postgres",
                                user=SUPERUSER, connect_timeout=5)

    def _create_role(self) -> None:
        from psycopg2 import sql

        connection = self._superuser()
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(self.user), sql.Literal(self.password)))
                cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(self.database), sql.Identifier(self.user)))
        finally:
            connection.close()
        try:
            self.connect().close()
        except Exception as error:
            raise RuntimeError(f"role {self.user} cannot log in over TLS: {error}; server log:"
                               f"\n{self.log_tail()}") from error
