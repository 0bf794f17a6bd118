"""The party's HTTP transport to the clean-room host (docs/http-api.md): bytes in, JSON out.

Nothing here trusts the host; it only moves bytes and turns HTTP failures into the typed errors
of ``protocol.errors``. The standard library is the whole stack. JSON calls use
``urllib.request``. An upload is streamed with ``http.client`` and chunked transfer encoding:
the ciphertext size is only known after the whole file is read, and a computed
``Content-Length`` would mean reading (normalising and hashing) the file twice or spooling the
ciphertext to disk. Chunked bodies are read by both gunicorn and Werkzeug (they set
``wsgi.input_terminated``). ``http.client`` also lets the client read an early error response
(say, a refused signature) after the host stops reading the body.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from typing import Any

from protocol.errors import CleanroomError, EnclaveUnavailable, InvalidInput, ProtocolError, error_from_wire

__all__ = ["HostConnection", "b64_field"]

_MAX_JSON_RESPONSE = 256 * 1024 * 1024  # results can be large, but not unbounded


def _error_from_body(status: int, raw: bytes) -> CleanroomError:
    try:
        payload = json.loads(raw)
        return error_from_wire(payload["error"])
    except (ValueError, KeyError, TypeError):
        return ProtocolError(f"the host answered HTTP {status} without an error body")


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ProtocolError("the host's response is not JSON") from None


def b64_field(value: object, what: str) -> bytes:
    """A base64 field of a host response; ``ProtocolError`` names ``what`` when it is not one."""
    if not isinstance(value, str):
        raise ProtocolError(f"{what} is missing from the host's response")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"{what} in the host's response is not base64") from None


class HostConnection:
    """One host's base URL and timeout; each call is one HTTP request.

    Args:
        base_url: e.g. ``http://127.0.0.1:8080`` (callers add the ``/v1`` paths).
        timeout: seconds for connecting and for each socket read or write.

    :raise InvalidInput: the URL is not ``http(s)://HOST[:PORT]``.
    """

    def __init__(self, base_url: str, timeout: float) -> None:
        try:
            parsed = urllib.parse.urlsplit(base_url)
            parsed.port  # noqa: B018 - validates the port now rather than at the first request
        except ValueError:
            raise InvalidInput("host URL must look like http://HOST:PORT or https://HOST:PORT") from None
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InvalidInput("host URL must look like http://HOST:PORT or https://HOST:PORT")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._split = parsed

    def _unreachable(self, reason: object) -> EnclaveUnavailable:
        return EnclaveUnavailable(f"cannot reach the clean-room host at {self.base_url} ({reason})")

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send ``body`` as JSON (if any); return the decoded JSON answer or raise its error."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self.base_url + path, data=data, method=method,
            headers={"Accept": "application/json",
                     **({"Content-Type": "application/json"} if data is not None else {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return _json(response.read(_MAX_JSON_RESPONSE))
        except urllib.error.HTTPError as exc:
            with exc:
                raw = exc.read(64 * 1024) if exc.fp is not None else b""
            raise _error_from_body(exc.code, raw) from None
        except urllib.error.URLError as exc:
            raise self._unreachable(getattr(exc.reason, "strerror", None) or exc.reason) from None
        except (TimeoutError, ConnectionError) as exc:
            raise self._unreachable(type(exc).__name__) from None

    def post_stream(self, path: str, chunks: Iterable[bytes]) -> Any:
        """POST ``chunks`` with chunked transfer encoding; return the decoded JSON answer."""
        split = self._split
        connection_class = (http.client.HTTPSConnection if split.scheme == "https"
                            else http.client.HTTPConnection)
        conn = connection_class(split.hostname, split.port, timeout=self.timeout)
        prefix = split.path.rstrip("/")
        try:
            # If the host stops reading early (say, a refused signature), its answer says why.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                conn.request("POST", prefix + path, body=chunks, encode_chunked=True,
                             headers={"Content-Type": "application/octet-stream",
                                      "Transfer-Encoding": "chunked",
                                      "Accept": "application/json"})
            try:
                response = conn.getresponse()
                raw = response.read(_MAX_JSON_RESPONSE)
            except (http.client.HTTPException, ConnectionError) as exc:
                raise self._unreachable(type(exc).__name__) from None
        except ConnectionRefusedError:
            raise self._unreachable("connection refused") from None
        except TimeoutError:
            raise self._unreachable("timed out") from None
        except OSError as exc:
            raise self._unreachable(exc.strerror or type(exc).__name__) from None
        finally:
            conn.close()
        if response.status >= 400:
            raise _error_from_body(response.status, raw)
        return _json(raw)
