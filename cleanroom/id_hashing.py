"""SHA-256 of many identifiers at once, spread over the party machine's cores.

Hashing is the client's largest single cost (about 0.5 µs per identifier in CPython, most of it
per-call overhead that no vectorised library removes for short inputs), and hashlib keeps the
GIL for inputs this small, so threads do not help: large blocks go to worker processes instead.

Workers are forked (``spawn`` and ``forkserver`` would re-import the caller's ``__main__``,
which breaks any script without a ``__main__`` guard). A fork of a process running pyarrow's
threads is safe here because a worker never calls into pyarrow: it only runs the functions of
this module (and, for phone numbers, the published scalar normalisation of
``cleanroom.identifiers``) on plain bytes and strings it receives through its pipe.

Every function returns the digests in input order, so whichever process computed them, the
bytes are those of ``hashlib.sha256(normalised.encode("utf-8")).digest()``
(docs/normalisation.md).
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

__all__ = ["PARALLEL_MIN", "HashPool", "Pending", "digest_lines", "digest_values", "normalise_and_digest"]

PARALLEL_MIN = 32_768  # below this many values a worker round trip costs more than it saves
_ZERO = bytes(32)


def digest_lines(joined: bytes) -> bytes:
    """Digests of the values of ``joined``, each followed by ``\\n`` (values never contain one)."""
    sha = hashlib.sha256
    parts = joined.split(b"\n")
    parts.pop()  # what follows the last separator: nothing
    return b"".join([sha(part).digest() for part in parts])


def digest_values(values: list[bytes]) -> bytes:
    """Digests of arbitrary byte strings (``exact`` identifiers may contain a newline)."""
    sha = hashlib.sha256
    return b"".join([sha(value).digest() for value in values])


def normalise_and_digest(kind: str, default_country_code: str | None, values: list[str],
                         start: int = 0) -> tuple[bytes, list[tuple[int, str]]]:
    """Normalise each value with the published scalar rule, then hash it.

    Returns the digests (32 zero bytes for a refused value) and ``(index, reason)`` for each
    refusal; ``index`` counts from ``start``. Used for phone numbers, which only
    libphonenumber can parse.
    """
    from cleanroom.identifiers import normalizer

    normalise = normalizer(kind, default_country_code=default_country_code)
    sha = hashlib.sha256
    out: list[bytes] = []
    refused: list[tuple[int, str]] = []
    for index, value in enumerate(values, start=start):
        try:
            out.append(sha(normalise(value).encode("utf-8")).digest())
        except UnicodeEncodeError:
            refused.append((index, "not valid Unicode text"))
            out.append(_ZERO)
        except ValueError as exc:  # IdentifierError: ``reason`` never quotes the value
            refused.append((index, str(getattr(exc, "reason", exc))))
            out.append(_ZERO)
    return b"".join(out), refused


class Pending:
    """Digests being computed: ``result()`` waits and returns them (with any refusals)."""

    def __init__(self, parts: list[Future[Any]] | None = None, done: Any = None) -> None:
        self._parts = parts
        self._done = done

    def result(self) -> Any:
        if self._parts is None:
            return self._done
        results = [part.result() for part in self._parts]
        if results and isinstance(results[0], tuple):
            digests = b"".join(r[0] for r in results)
            return digests, [item for r in results for item in r[1]]
        return b"".join(results)


class HashPool:
    """Worker processes for hashing, started on first use; ``close()`` stops them.

    ``workers`` defaults to the number of cores this process may run on. With one worker (or
    for small inputs) everything runs in the calling process.
    """

    def __init__(self, workers: int | None = None) -> None:
        if workers is None:
            workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        self.workers = max(1, workers or 1)
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("fork")
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        return self._pool

    def _parallel(self, count: int) -> bool:
        return self.workers > 1 and count >= PARALLEL_MIN

    def lines(self, joined: bytes, count: int) -> Pending:
        """``digest_lines(joined)`` for ``count`` values, split across the workers."""
        if not self._parallel(count):
            return Pending(done=digest_lines(joined))
        cuts, size = [0], len(joined)
        for k in range(1, self.workers):
            cut = joined.find(b"\n", size * k // self.workers) + 1
            cuts.append(max(cut, cuts[-1]) if cut > 0 else size)
        cuts.append(size)
        return Pending([self._executor().submit(digest_lines, joined[a:b])
                        for a, b in itertools.pairwise(cuts) if b > a])

    def values(self, values: list[bytes]) -> Pending:
        """``digest_values(values)``, split across the workers."""
        return self._split(values, lambda part, _start: (digest_values, part))

    def normalised(self, kind: str, default_country_code: str | None, values: list[str]) -> Pending:
        """``normalise_and_digest`` split across the workers; the result is (digests, refusals)."""
        return self._split(values, lambda part, start: (normalise_and_digest, kind,
                                                        default_country_code, part, start),
                           local=lambda: normalise_and_digest(kind, default_country_code, values))

    def _split(self, values: list[Any], task: Callable[[list[Any], int], tuple[Any, ...]],
               local: Callable[[], Any] | None = None) -> Pending:
        if not self._parallel(len(values)):
            fn, *args = task(values, 0)
            return Pending(done=local() if local is not None else fn(*args))
        step = -(-len(values) // self.workers)
        futures = []
        for start in range(0, len(values), step):
            fn, *args = task(values[start:start + step], start)
            futures.append(self._executor().submit(fn, *args))
        return Pending(futures)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> HashPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
