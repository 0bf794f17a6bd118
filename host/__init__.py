"""The untrusted host: an HTTP relay between the parties and one enclave process.

It holds no keys and never sees plaintext: it stores ciphertext, forwards opaque bytes and keeps
the enclave running (docs/design.md). Importing this package does nothing;
``create_app`` builds the Flask app and starts the enclave.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["create_app", "shutdown_app"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app, start the enclave and replay stored uploads into it.

    ``config`` overrides the ``CLEANROOM_*`` environment (keys are the variable names, see
    ``host/config.py``); other keys go to Flask unchanged.

    Raises:
        ValueError: a setting is missing or invalid.
        OSError: the policy file or the state directory is not usable.
        CleanroomError: the enclave did not start (e.g. ``policy_invalid``, ``enclave_unavailable``).
    """
    # Imported here so that `import host.relay` (or host.storage) does not pull in the web stack.
    from flask import Flask

    from host import api, api_approvals
    from host.audit_store import AuditStore
    from host.config import load_config
    from host.errors import register_error_handlers
    from host.read_guard import ReadLimits, StallWatchdog
    from host.storage import ResultStore, UploadStore
    from host.supervisor import EnclaveSupervisor, SupervisorSettings, replay_uploads

    settings = load_config(config)
    state_dir: Path = settings["CLEANROOM_STATE_DIR"]
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    policy = settings["CLEANROOM_POLICY_FILE"].read_bytes()

    app = Flask(__name__)
    app.config.update(settings)
    # Control requests are small JSON; the upload view raises its own limit per request.
    app.config["MAX_CONTENT_LENGTH"] = settings["CLEANROOM_MAX_JSON_BYTES"]
    register_error_handlers(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(api_approvals.bp)

    uploads = UploadStore(state_dir)
    audit = AuditStore(state_dir)

    def on_start(call: Any) -> None:
        replay_uploads(uploads, call)
        # Entries the enclave made just before a crash and never handed over are published now.
        reply = call("audit_flush", {})
        if reply.type == "audit_entries":
            audit.append(reply.body["audit"])

    supervisor = EnclaveSupervisor(SupervisorSettings.from_config(settings), policy, on_start=on_start)
    app.extensions["cleanroom"] = api.Services(
        supervisor=supervisor,
        uploads=uploads,
        results=ResultStore(state_dir),
        audit=audit,
        attestation=api.AttestationService(
            supervisor,
            pki_dir=state_dir / "simulation-pki",
            collateral_config=settings,
            cache_seconds=settings["CLEANROOM_ATTESTATION_CACHE_SECONDS"],
        ),
        upload_slots=threading.BoundedSemaphore(settings["CLEANROOM_MAX_CONCURRENT_UPLOADS"]),
        max_upload_bytes=settings["CLEANROOM_MAX_UPLOAD_BYTES"],
        upload_connections=threading.BoundedSemaphore(settings["CLEANROOM_MAX_UPLOAD_CONNECTIONS"]),
        read_limits=ReadLimits.from_config(settings),
        watchdog=StallWatchdog(),
    )
    supervisor.start()
    return app


def shutdown_app(app: Flask) -> None:
    """Stop the app's enclave (also registered with ``atexit``); safe to call twice."""
    services = app.extensions.get("cleanroom")
    if services is not None:
        services.watchdog.stop()
        services.supervisor.stop()
