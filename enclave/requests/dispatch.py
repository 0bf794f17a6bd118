"""Message type -> handler: the enclave's entire interface on one screen."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from enclave.requests.session import Reply, Session
from protocol.errors import CleanroomError, InternalError, MessageTooLarge, ProtocolError
from protocol.wire import MAX_FRAME_BYTES, Message, pack, unpack

__all__ = ["HANDLERS", "error_frame", "handle", "handle_frame"]

HANDLERS: dict[str, Callable[[Session, dict[str, Any]], Reply]] = {
    "init": Session.init,
    "health": Session.health,
    "attest": Session.attest,
    "upload_begin": Session.upload_begin,
    "upload_chunk": Session.upload_chunk,
    "upload_commit": Session.upload_commit,
    "upload_abort": Session.upload_abort,
    "list_uploads": Session.list_uploads,
    "query": Session.query,
    "delete": Session.delete,
    "budget": Session.budget,
    "audit_flush": Session.audit_flush,
}


def handle(session: Session, message: Message) -> Reply:
    handler = HANDLERS.get(message.type)
    if handler is None:
        raise ProtocolError("the enclave does not accept this message type")
    return handler(session, message.body)


def handle_frame(session: Session, frame: bytes) -> bytes:
    """One request frame in, one response frame out; errors become ``error`` messages.

    Only errors of our own tree are reported with their code and message (which never carry
    data values). Anything else is reported as ``internal`` with no detail, because an
    unexpected exception's text could contain plaintext.
    """
    try:
        reply_type, body = handle(session, unpack(frame, max_size=MAX_FRAME_BYTES))
        reply = pack(reply_type, body)
        if len(reply) > MAX_FRAME_BYTES:  # a reply too large for a frame is an error, not a crash
            raise MessageTooLarge("the reply exceeds the frame size limit")
        return reply
    except CleanroomError as exc:
        return error_frame(exc)
    except Exception:
        return error_frame(InternalError("internal enclave error"))


def error_frame(exc: CleanroomError) -> bytes:
    return pack("error", {"code": exc.code, "message": exc.message[:1024]})
