"""The Docker image's command, run outside Docker: migrate, serve, answer /healthz and /readyz."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from linkage.store import upgrade
from linkage.store.models import LOOKUP_INDEXES

ROOT = Path(__file__).parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dockerfile_command_runs_outside_docker(tmp_path: Path) -> None:
    command = re.search(r'CMD \["sh", "-c", "(.*)"\]', (ROOT / "Dockerfile").read_text())
    assert command is not None
    port = free_port()
    script = command.group(1).replace("0.0.0.0", "127.0.0.1").replace("8000", str(port))
    script = script.replace("cci serve", "cci serve --workers 1")
    cci_dir = str(Path(sys.executable).parent)
    # A registry whose first load stopped before its run, without one look-up index: the
    # service builds it before it answers (linkage/store/lookup_indexes.py).
    upgrade(f"sqlite:///{tmp_path / 'cci.db'}")
    with sqlite3.connect(tmp_path / "cci.db") as db:
        db.execute(f"DROP INDEX {LOOKUP_INDEXES[0][0]}")
    env = dict(
        os.environ,
        CCI_DATABASE_URL=f"sqlite:///{tmp_path / 'cci.db'}",
        PATH=cci_dir + os.pathsep + os.environ["PATH"],
    )
    process = subprocess.Popen(
        ["sh", "-c", script],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: nothing outlives the test
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "service did not start"
                time.sleep(0.3)
        assert response.status_code == 200 and response.json() == {"status": "ok"}
        with sqlite3.connect(tmp_path / "cci.db") as db:
            names = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        assert {name for name, _ in LOOKUP_INDEXES} <= names
        # Migrated and reachable, but not ready to match until a model is active.
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 503
        assert ready.headers["content-type"] == "application/problem+json"
        assert "no active model" in ready.json()["detail"]
        # `exec` in the command: the shell became the server, so a stop signal reaches it.
        assert process.poll() is None
        process.terminate()
        process.wait(timeout=20)
        with pytest.raises(httpx.TransportError):  # the server went with it, not orphaned
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)
        if process.stdout:
            process.stdout.close()
