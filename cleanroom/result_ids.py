"""One form of query id everywhere: the full 64 hex digits, or an unambiguous prefix of them.

A query id is SHA-256 of the signed request (``docs/design.md``), so every command prints all 64
digits. A party may type any prefix of at least ``MIN_PREFIX`` digits; it is resolved against
the host's listing of stored results, and refused when it matches none or several. The listing
is unsigned and only picks the id: the result fetched for it is verified like any other, so a
host lying in its listing can only make a command fail, never make it accept another result.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from protocol.errors import InvalidInput, NotFound, ProtocolError

__all__ = ["MIN_PREFIX", "listing_pages", "parse_query_id", "resolve_query_id"]

MIN_PREFIX = 8
_HEX = re.compile(r"[0-9a-f]+")
_QUERY_ID = re.compile(r"[0-9a-f]{64}")


def parse_query_id(text: str) -> str:
    """``text`` as lowercase hex: a full id or a prefix of at least ``MIN_PREFIX`` digits.

    :raise InvalidInput: not hex, too short, or longer than a query id.
    """
    value = text.strip().lower()
    if not _HEX.fullmatch(value) or not MIN_PREFIX <= len(value) <= 64:
        raise InvalidInput(f"a query id is 64 hex digits (or a prefix of at least {MIN_PREFIX}), "
                           f"not {text!r}")
    return value


def resolve_query_id(text: str, listing: Callable[[], list[dict[str, Any]]]) -> bytes:
    """The full query id ``text`` names; ``listing()`` is asked only for a prefix.

    :raise InvalidInput: malformed, or a prefix of several listed ids (they are named).
    :raise NotFound: a prefix of no listed id.
    """
    value = parse_query_id(text)
    if len(value) == 64:
        return bytes.fromhex(value)
    matches = sorted({e["query_id"] for e in listing() if e["query_id"].startswith(value)})
    if not matches:
        raise NotFound(f"no stored result for you has a query id starting {value}; "
                       "`cleanroom results list` shows them")
    if len(matches) > 1:
        raise InvalidInput(f"query id prefix {value} is ambiguous: it starts "
                           f"{', '.join(matches[:5])}{', ...' if len(matches) > 5 else ''}; "
                           "type more digits")
    return bytes.fromhex(matches[0])


def _entry(item: object) -> dict[str, Any]:
    if (not isinstance(item, dict) or not isinstance(item.get("query_id"), str)
            or not _QUERY_ID.fullmatch(item["query_id"]) or not isinstance(item.get("created_at"), int)
            or not isinstance(item.get("recipients"), list)):
        raise ProtocolError("the results listing is malformed")
    return {"query_id": item["query_id"], "created_at": item["created_at"],
            "recipients": [str(r) for r in item["recipients"]]}


def listing_pages(request: Callable[[str, str], Any], recipient: str | None) -> list[dict[str, Any]]:
    """Every page of ``GET /v1/results`` (``request(method, path)`` returns the decoded JSON)."""
    entries: list[dict[str, Any]] = []
    params = {} if recipient is None else {"recipient": recipient}
    while True:
        path = "/v1/results" + ("?" + urllib.parse.urlencode(params) if params else "")
        page = request("GET", path)
        if not isinstance(page, dict) or not isinstance(page.get("results"), list):
            raise ProtocolError("the results listing is malformed")
        entries.extend(_entry(item) for item in page["results"])
        if not page.get("more") or not page["results"]:
            return entries
        params["after"] = entries[-1]["query_id"]
