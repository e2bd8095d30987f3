"""A TCP relay in front of the Prefect server that the test can take down and bring back."""

import socket
import threading

from tests.prefect_fixtures import free_port

BAD_GATEWAY = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class Outage:
    """Clients talk to the server through this relay: `up`, `refused` (nothing listens) or `bad_gateway`.

    `bad_gateway` is what a reverse proxy answers while the server behind it is down. Changing the
    mode drops every open connection, as the server's death would.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.mode = "up"
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listen()

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def set(self, mode: str) -> None:
        assert mode in {"up", "refused", "bad_gateway"}
        self.mode = mode
        with self._lock:
            for conn in self._open:
                _close(conn)
            self._open.clear()
        if mode == "refused" and self._listener is not None:
            _close(self._listener)
            self._listener = None
        elif mode != "refused" and self._listener is None:
            self._listen()

    def close(self) -> None:
        self.set("refused")

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.mode == "bad_gateway":
                threading.Thread(target=self._refuse, args=(client,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _refuse(client: socket.socket) -> None:
        try:
            client.recv(65536)
            client.sendall(BAD_GATEWAY)
        except OSError:
            pass
        _close(client)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._open -= {src, dst}
        _close(src)
        _close(dst)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
