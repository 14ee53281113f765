"""`TlsFront`: HTTPS on loopback in front of a local engine, for the TLS paths' tests.

The engines speak plain HTTP; real DynamoDB speaks only HTTPS. A `TlsFront` ends TLS
with a certificate it makes itself (for ``localhost`` and ``127.0.0.1``, valid for a
day, written to `ca_file` so a client can trust it) and pipes the bytes, unchanged,
to the engine. Needs ``cryptography`` (it comes with the ``engine`` extra).

Example:
    ``with TlsFront(engine.endpoint_url) as front:`` then
    ``configure(endpoint_url=front.endpoint_url, verify=front.ca_file)``.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["TlsFront"]


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A key and a self-signed certificate for localhost, as PEM files in `folder`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = folder / "key.pem", folder / "cert.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


class TlsFront:
    """HTTPS on ``127.0.0.1`` (a free port), piped to the plain-HTTP `upstream`.

    Args:
        upstream: the engine's ``http://host:port`` URL.
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._folder = tempfile.TemporaryDirectory(prefix="portchops-tls-")
        key_file, cert_file = _self_signed(Path(self._folder.name))
        self.ca_file = str(cert_file)
        """The certificate to trust (it is its own authority)."""
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert_file, key_file)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.endpoint_url = f"https://localhost:{self.port}"
        """The URL to point clients at (the certificate names ``localhost``)."""
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._accepting = threading.Thread(target=self._accept, name="tls-front", daemon=True)

    def __enter__(self) -> TlsFront:
        self._accepting.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop listening and close every connection."""
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        self._accepting.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)
        self._folder.cleanup()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.add(sock)

    def _serve(self, raw: socket.socket) -> None:
        self._track(raw)
        try:
            client = self._context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):  # e.g. a client that does not trust the certificate
            raw.close()
            return
        self._track(client)
        try:
            upstream = socket.create_connection(self._upstream)
        except OSError:
            client.close()
            return
        self._track(upstream)
        back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        back.start()
        _pipe(client, upstream)
        back.join(timeout=5)


def _pipe(source: socket.socket, target: socket.socket) -> None:
    """Copy bytes from `source` to `target` until either end closes; then close both."""
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
