// Errors carry the stable codes of docs/wire.md#errors; the message names the field or line.

export type ErrorCode =
  | "bad_message" | "bad_version" | "decrypt_failed" | "policy_invalid" | "bad_signature"
  | "policy_denied" | "budget_exhausted" | "not_found" | "method_not_allowed"
  | "request_timeout" | "replay" | "conflict" | "witness_refused" | "message_too_large"
  | "unsupported_media_type" | "invalid_input" | "internal" | "state_invalid"
  | "rollback_detected" | "attestation_failed" | "quote_invalid" | "collateral_expired"
  | "tcb_status_not_allowed" | "debug_enclave" | "measurement_mismatch"
  | "report_data_mismatch" | "policy_mismatch" | "simulation_not_allowed" | "stale_nonce"
  | "enclave_unavailable" | "enclave_busy" | "approval_timeout" | "usage";

export class CleanroomError extends Error {
  readonly code: ErrorCode | string;
  readonly status?: number;

  constructor(code: ErrorCode | string, message: string, status?: number) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

/** The one check helper: refuse with `code` unless `ok`. */
export function check(ok: boolean, code: ErrorCode, message: string): asserts ok {
  if (!ok) throw new CleanroomError(code, message);
}
