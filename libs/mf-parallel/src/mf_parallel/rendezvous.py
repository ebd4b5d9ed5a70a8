"""The launchers of a multi-node job talking to each other: who joined, who failed, stop all.

MindSpore's scheduler knows when a rank stops sending heartbeats, but it tells the other ranks
only when their next collective times out (minutes), and it cannot say which node never came.
So each node's launcher also keeps one TCP connection to node 0's launcher (next to the
scheduler's port), carrying one JSON object per line:

    node k -> node 0   hello {node, host, pid, ranks, fingerprint}, ranks {states},
                       failed {rank, exit_code, message}, finished, ping
    node 0 -> node k   welcome {job}, refuse {message}, abort {message},
                       restart {attempt, resume}, done, ping

Node 0 knows which nodes joined (and names the ones that did not, after the join timeout); a
rank dying anywhere reaches every launcher in well under a second; a launcher that vanishes
(its connection closes, or nothing arrives for SILENCE_SECONDS) is a lost node. Plain
sockets and threads; messages are handed to the owner's poll loop through a queue.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from mf_parallel.errors import ParallelError

PING_SECONDS = 2.0
# Several missed pings: a launcher that is busy never stalls this long (its loop polls every
# fraction of a second), so silence this long means the node or the network is gone.
SILENCE_SECONDS = 20.0


class _Connection:
    """One socket: a reader thread feeding `inbox`, a locked writer."""

    def __init__(self, sock: socket.socket, node: int, inbox: queue.Queue) -> None:
        self.sock = sock
        self.node = node
        self.inbox = inbox
        self.lock = threading.Lock()
        self.last_heard = time.time()
        self.last_sent = 0.0
        self.open = True

    def send(self, message: Mapping[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        with self.lock:
            if not self.open:
                return
            try:
                self.sock.sendall(data)
                self.last_sent = time.time()
            except OSError:
                self.open = False

    def read_forever(self, reader: Any) -> None:
        try:
            for line in reader:
                self.last_heard = time.time()
                try:
                    message = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(message, dict) and message.get("type") != "ping":
                    self.inbox.put((self.node, message))
        except OSError:
            pass
        if self.open:
            self.open = False
            self.inbox.put((self.node, {"type": "lost", "why": "its connection closed"}))

    def heartbeat(self) -> None:
        now = time.time()
        if self.open and now - self.last_sent >= PING_SECONDS:
            self.send({"type": "ping"})
        if self.open and now - self.last_heard > SILENCE_SECONDS:
            self.open = False
            self.inbox.put((self.node, {
                "type": "lost", "why": f"nothing heard for {SILENCE_SECONDS:.0f} s"}))

    def close(self) -> None:
        with self.lock:
            self.open = False
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()


class ControlServer:
    """Node 0's side: accepts one connection per other node.

    `check_hello(hello)` returns None to accept a node or the one-line reason to refuse it;
    a refusal is also put in the inbox (type "refused"), so the owner can end the job.
    """

    def __init__(self, host: str, port: int, nodes: int, welcome: Mapping[str, Any],
                 check_hello: Callable[[Mapping[str, Any]], str | None] | None = None) -> None:
        self.expected = set(range(1, nodes))
        self.welcome = dict(welcome)
        self.check_hello = check_hello
        self.inbox: queue.Queue = queue.Queue()
        self.connections: dict[int, _Connection] = {}
        self.hellos: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.listener.bind((host, port))
        except OSError as exc:
            self.listener.close()
            raise ParallelError(
                f"cannot listen on {host}:{port} for the other nodes' launchers: "
                f"{exc.strerror}") from None
        self.listener.listen(16)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True, name="mf-control-accept").start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._greet, args=(sock,), daemon=True).start()

    def _greet(self, sock: socket.socket) -> None:
        sock.settimeout(10.0)
        reader = sock.makefile("r", encoding="utf-8")
        try:
            hello = json.loads(reader.readline() or "null")
        except (OSError, json.JSONDecodeError):
            sock.close()
            return
        sock.settimeout(None)
        node = hello.get("node") if isinstance(hello, dict) else None
        reason = self._refusal(hello, node)
        if reason is not None:
            try:
                sock.sendall((json.dumps({"type": "refuse", "message": reason}) + "\n").encode())
            except OSError:
                pass
            sock.close()
            self.inbox.put((node if isinstance(node, int) else -1,
                            {"type": "refused", "message": reason}))
            return
        connection = _Connection(sock, node, self.inbox)
        with self.lock:
            self.connections[node] = connection
            self.hellos[node] = hello
        connection.send({"type": "welcome", **self.welcome})
        self.inbox.put((node, {**hello, "type": "joined"}))
        connection.read_forever(reader)

    def _refusal(self, hello: Any, node: Any) -> str | None:
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            return "not an mf launcher's hello"
        if not isinstance(node, int) or node not in self.expected:
            return (f"node rank {node!r} is not one of this job's other nodes "
                    f"{sorted(self.expected)}")
        with self.lock:
            if node in self.connections:
                return f"node {node} has already joined (from {self.hellos[node].get('host')})"
        if self.check_hello is not None:
            return self.check_hello(hello)
        return None

    @property
    def missing(self) -> list[int]:
        with self.lock:
            return sorted(self.expected - set(self.connections))

    def messages(self) -> list[tuple[int, dict[str, Any]]]:
        out = []
        while True:
            try:
                out.append(self.inbox.get_nowait())
            except queue.Empty:
                return out

    def send(self, node: int, message: Mapping[str, Any]) -> None:
        with self.lock:
            connection = self.connections.get(node)
        if connection is not None:
            connection.send(message)

    def broadcast(self, message: Mapping[str, Any]) -> None:
        with self.lock:
            connections = list(self.connections.values())
        for connection in connections:
            connection.send(message)

    def heartbeat(self) -> None:
        with self.lock:
            connections = list(self.connections.values())
        for connection in connections:
            connection.heartbeat()

    def close(self) -> None:
        self.closed = True
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            connections = list(self.connections.values())
        for connection in connections:
            connection.close()


class ControlClient:
    """Node k's side: one connection to node 0's launcher."""

    def __init__(self, connection: _Connection, welcome: dict[str, Any]) -> None:
        self.connection = connection
        self.welcome = welcome

    @classmethod
    def connect(cls, host: str, port: int, hello: Mapping[str, Any], timeout: float,
                ) -> ControlClient:
        """Connect (retrying until `timeout`), say hello, return once welcomed.

        Raises ParallelError with one line when node 0 cannot be reached in time or refuses.
        """
        deadline = time.time() + timeout
        last_error = "no answer"
        while True:
            try:
                sock = socket.create_connection((host, port), timeout=5.0)
                break
            except OSError as exc:
                last_error = exc.strerror or str(exc)
            if time.time() >= deadline:
                raise ParallelError(
                    f"could not reach node 0's launcher at {host}:{port} within {timeout:.0f} s "
                    f"({last_error}); is node 0 running?")
            time.sleep(0.5)
        sock.settimeout(max(5.0, deadline - time.time()))
        reader = sock.makefile("r", encoding="utf-8")
        try:
            sock.sendall((json.dumps({"type": "hello", **hello}) + "\n").encode())
            answer = json.loads(reader.readline() or "null")
        except (OSError, json.JSONDecodeError) as exc:
            sock.close()
            raise ParallelError(
                f"node 0's launcher at {host}:{port} did not answer ({exc})") from None
        if not isinstance(answer, dict) or answer.get("type") not in ("welcome", "refuse"):
            sock.close()
            raise ParallelError(f"{host}:{port} is not an mf launcher (it answered {answer!r:.60})")
        if answer["type"] == "refuse":
            sock.close()
            raise ParallelError(f"node 0 refused this node: {answer.get('message')}")
        sock.settimeout(None)
        connection = _Connection(sock, 0, queue.Queue())
        threading.Thread(target=connection.read_forever, args=(reader,), daemon=True,
                         name="mf-control-read").start()
        return cls(connection, answer)

    def messages(self) -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(self.connection.inbox.get_nowait()[1])
            except queue.Empty:
                return out

    def send(self, message: Mapping[str, Any]) -> None:
        self.connection.send(message)

    def heartbeat(self) -> None:
        self.connection.heartbeat()

    def close(self) -> None:
        self.connection.close()
