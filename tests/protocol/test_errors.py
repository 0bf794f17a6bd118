from __future__ import annotations

from protocol import errors
from protocol.errors import CleanroomError, error_class_for_code, error_from_wire


def _classes() -> list[type[CleanroomError]]:
    return [getattr(errors, name) for name in errors.__all__
            if isinstance(getattr(errors, name), type) and issubclass(getattr(errors, name), CleanroomError)]


def test_codes_are_unique_except_internal() -> None:
    codes = [cls.code for cls in _classes() if cls.code != "internal"]
    assert len(codes) == len(set(codes))


def test_every_code_roundtrips_through_the_wire() -> None:
    for cls in _classes():
        rebuilt = error_from_wire(cls("why").to_wire())
        assert rebuilt.code == cls.code and rebuilt.message == "why"
        if cls.code != "internal":
            assert type(rebuilt) is cls and error_class_for_code(cls.code) is cls


def test_unknown_code_keeps_its_code() -> None:
    err = error_from_wire({"code": "from_the_future", "message": "m"})
    assert err.code == "from_the_future" and isinstance(err, CleanroomError)


def test_malformed_error_payload() -> None:
    assert error_from_wire("nope").code == "bad_message"
    assert error_from_wire({"code": 1}).code == "bad_message"
