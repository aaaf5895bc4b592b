"""Fixtures: the real `outrider` binary on 127.0.0.1:0 and a recording loopback sink."""

import contextlib
import json
import os
import pathlib
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ADMIN_KEY = "python-admin-key-0123456789"


class Sink:
    """A loopback HTTP server that records every request and answers scripted statuses."""

    def __init__(self):
        self.requests = []
        self.script = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                sink.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                status = sink.script.pop(0) if sink.script else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def wait_for(self, count, timeout=15.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.requests) >= count:
                return self.requests
            time.sleep(0.05)
        raise AssertionError(f"expected {count} requests, got {len(self.requests)}")


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.server.shutdown()


@contextlib.contextmanager
def outrider_server(binary=None, plugins_dir=None, extra_env=None, quiet=False):
    """The real binary on 127.0.0.1:0 with a fresh data dir; yields {"url", "key"}."""
    binary = binary or os.environ.get("OUTRIDER_BIN", str(ROOT / "target" / "debug" / "outrider"))
    assert os.path.exists(binary), f"{binary} missing: run `cargo xtask test`"
    plugins_dir = plugins_dir or str(ROOT / "target" / "plugins")
    with tempfile.TemporaryDirectory() as data_dir:
        env = dict(os.environ)
        env.update(
            OUTRIDER_API_KEY=ADMIN_KEY,
            OUTRIDER_ENCRYPTION_KEY="k1:python-test-encryption-key",
            OUTRIDER_ALLOW_NETWORKS="127.0.0.0/8",
            OUTRIDER_RETRY_SCHEDULE="100ms,200ms,300ms",
            # Compiled plugins shared by every server of the run (fresh data dirs).
            OUTRIDER_CACHE_DIR=str(pathlib.Path(binary).parent / "test-plugin-cache"),
        )
        env.update(extra_env or {})
        proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
             "--plugins-dir", plugins_dir],
            env=env, stdout=subprocess.PIPE, text=True,
            stderr=subprocess.DEVNULL if quiet else None,
        )
        line = proc.stdout.readline()
        assert line.startswith("outrider listening on "), f"server did not start: {line!r}"
        base = line.split()[-1]
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        try:
            yield {"url": base + "/api/v1", "key": ADMIN_KEY}
        finally:
            proc.terminate()
            proc.wait(timeout=20)


@pytest.fixture
def server():
    with outrider_server() as s:
        yield s


def decode(body):
    return json.loads(body.decode())
