// Identifier normalisation, docs/normalisation.md: the normalised string whose UTF-8 SHA-256 is
// a row's id, or a refusal reason. Phone numbers: only input already in E.164 form (see README).
import { sha256 } from "@noble/hashes/sha2.js";
import { utf8 } from "./bytes.js";
import { CALLING_CODES } from "./phone-metadata.js";
import { casefold, isRefusedCategory, isWellFormed, trimSpace, WHITESPACE } from "./unicode.js";

export type IdNormalization = "email" | "phone" | "exact";

export type Normalised = { ok: true; value: string } | { ok: false; reason: string };

const refuse = (reason: string): Normalised => ({ ok: false, reason });

function hex4(cp: number): string {
  return "U+" + cp.toString(16).toUpperCase().padStart(4, "0");
}

// Printable non-space ASCII with exactly one "@" and text on both sides: every step of the
// rule reduces to lower-casing A-Z (the spec's fast path, byte-identical to the full rule).
const SIMPLE_ASCII_EMAIL = /^[\x21-\x3f\x41-\x7e]+@[\x21-\x3f\x41-\x7e]+$/;

export function normaliseEmail(input: string): Normalised {
  if (!isWellFormed(input)) return refuse("not valid Unicode text");
  if (SIMPLE_ASCII_EMAIL.test(input)) return { ok: true, value: input.replace(/[A-Z]/g, (c) => c.toLowerCase()) };
  const s = trimSpace(casefold(input.normalize("NFKC")).normalize("NFKC"));
  const at = s.split("@").length - 1;
  if (at !== 1) return refuse("an email address needs exactly one '@'");
  const [local, domain] = s.split("@");
  if (local === "" || domain === "") return refuse("an email address needs text before and after the '@'");
  for (const c of s) {
    if (WHITESPACE.has(c.codePointAt(0)!)) return refuse(`an email address must not contain whitespace (${hex4(c.codePointAt(0)!)})`);
  }
  for (const c of s) {
    const cp = c.codePointAt(0)!;
    if (isRefusedCategory(cp)) return refuse(`an email address must not contain the invisible or unassigned character ${hex4(cp)}`);
  }
  return { ok: true, value: s };
}

export const NOT_E164 =
  "this client accepts phone numbers only in E.164 form ('+', the country code, then the number, digits only, e.g. +442079460958); convert others first";

const compiled = new Map<string, RegExp[]>();

function patternsOf(cc: string): RegExp[] {
  let r = compiled.get(cc);
  if (!r) {
    r = CALLING_CODES[cc][2].map((p) => new RegExp(`^(?:${p})$`));
    compiled.set(cc, r);
  }
  return r;
}

/**
 * Steps 1, 5 (a leading '+' names the country), 7 and 8 of the phone rule for a number already
 * in E.164 form, which is then its own E.164 formatting. Anything else is refused: parsing
 * national forms needs libphonenumber.
 */
export function normalisePhone(input: string): Normalised {
  if (!isWellFormed(input)) return refuse("not valid Unicode text");
  const s = trimSpace(input.normalize("NFKC"));
  if (!/^\+[0-9]+$/.test(s)) return refuse(NOT_E164);
  const digits = s.slice(1);
  const cc = [1, 2, 3].map((n) => digits.slice(0, n)).find((p) => p in CALLING_CODES);
  if (cc === undefined) return refuse("not a phone number (unknown country calling code)");
  const [lengths, nationalPrefix, _patterns] = CALLING_CODES[cc];
  const nsn = digits.slice(cc.length);
  // libphonenumber may strip a trunk prefix here and so hash another string; E.164 has none.
  if (nationalPrefix !== null && new RegExp(`^(?:${nationalPrefix})`).test(nsn)) {
    return refuse(`an E.164 number of +${cc} must not start with the national prefix (${NOT_E164})`);
  }
  if (!lengths.includes(nsn.length)) {
    const why = nsn.length < Math.min(...lengths) ? "too short" : nsn.length > Math.max(...lengths) ? "too long" : "a length not used";
    return refuse(`not a possible phone number: ${why} for its country`);
  }
  if (!patternsOf(cc).some((p) => p.test(nsn))) return refuse(`not a number of the shape used in +${cc}`);
  return { ok: true, value: s };
}

export function normaliseExact(input: string): Normalised {
  if (!isWellFormed(input)) return refuse("not valid Unicode text");
  if (input === "") return refuse("the identifier is empty");
  return { ok: true, value: input };
}

export function normalise(kind: IdNormalization, input: string): Normalised {
  if (kind === "email") return normaliseEmail(input);
  if (kind === "phone") return normalisePhone(input);
  return normaliseExact(input);
}

export function identifierDigest(normalised: string): Uint8Array {
  return sha256(utf8.encode(normalised));
}
