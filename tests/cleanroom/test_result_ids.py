"""One id form: full 64-hex query ids, unambiguous prefixes of at least 8, and the paged listing."""

from __future__ import annotations

import pytest

from cleanroom.result_ids import listing_pages, parse_query_id, resolve_query_id
from protocol.errors import InvalidInput, NotFound, ProtocolError

A, B, C = "12345678" + "a" * 56, "12345678" + "b" * 56, "fedcba98" + "0" * 56


def _listing():
    return [{"query_id": q, "created_at": 1, "recipients": ["publisher"]} for q in (A, B, C)]


def test_full_ids_and_prefixes():
    assert parse_query_id(" " + A.upper() + " ") == A
    assert resolve_query_id(C[:8], _listing) == bytes.fromhex(C)
    assert resolve_query_id(A[:9], _listing) == bytes.fromhex(A)
    assert resolve_query_id(A, lambda: pytest.fail("a full id needs no listing")) == bytes.fromhex(A)


@pytest.mark.parametrize("bad", ["1234567", "g" * 64, "a" * 65, "", "12345678-"])
def test_malformed_ids_are_refused(bad):
    with pytest.raises(InvalidInput, match="at least 8"):
        parse_query_id(bad)


def test_ambiguous_and_unknown_prefixes():
    with pytest.raises(InvalidInput, match="ambiguous") as info:
        resolve_query_id("12345678", _listing)
    assert A in info.value.message and B in info.value.message
    with pytest.raises(NotFound, match="results list"):
        resolve_query_id("00000000", _listing)


def test_listing_follows_every_page_with_after():
    pages = {"/v1/results?recipient=publisher": {"results": _listing()[:2], "more": True},
             f"/v1/results?recipient=publisher&after={B}": {"results": _listing()[2:], "more": False}}
    asked = []

    def request(method, path):
        asked.append(path)
        return pages[path]

    assert [e["query_id"] for e in listing_pages(request, "publisher")] == [A, B, C]
    assert asked == list(pages)


@pytest.mark.parametrize("page", [[], {"results": "x"}, {"results": [{"query_id": "zz"}]},
                                  {"results": [{"query_id": A, "created_at": "1", "recipients": []}]}])
def test_a_malformed_listing_is_a_protocol_error(page):
    with pytest.raises(ProtocolError):
        listing_pages(lambda method, path: page, None)
