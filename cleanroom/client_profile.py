"""The party's client profile: everyday settings so commands need no repeated flags.

Five settings (``SETTINGS``): the host, your copy of the policy, your key file, your verifier
policy and the insecure simulation opt-in. Each is looked up in this order, the first found wins:

1. the command's own flag (``--host``, ...);
2. the environment (``CLEANROOM_HOST``, ...);
3. the profile file, ``$CLEANROOM_HOME/profile.toml`` (default ``~/.cleanroom/profile.toml``),
   or the file ``CLEANROOM_PROFILE`` names.

The profile file is TOML with exactly these keys; an unknown key is an error, so a typo cannot
silently drop a setting. Relative paths in it are relative to the file's own folder (``profile
set`` stores absolute ones). Nothing here touches the network or the party's keys.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.errors import InvalidInput

__all__ = ["PROFILE_ENV", "SETTINGS", "Resolved", "Setting", "cleanroom_home", "load_profile",
           "parse_bool", "profile_path", "resolve", "save_profile", "setting"]

PROFILE_ENV = "CLEANROOM_PROFILE"


@dataclass(frozen=True)
class Setting:
    name: str  # the key in profile.toml and the attribute on the parsed arguments
    flag: str
    env: str
    kind: str  # "text", "path" or "bool"
    meaning: str


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "--host", "CLEANROOM_HOST", "text", "the clean-room host URL"),
    Setting("policy", "--policy", "CLEANROOM_POLICY", "path", "your copy of the collaboration policy"),
    Setting("keys", "--keys", "CLEANROOM_KEYS", "path", "your <party>.key.json"),
    Setting("verifier_policy", "--verifier-policy", "CLEANROOM_VERIFIER_POLICY", "path",
            "your verifier policy (the enclave measurements you accept)"),
    Setting("insecure_allow_simulation", "--insecure-allow-simulation",
            "CLEANROOM_INSECURE_ALLOW_SIMULATION", "bool",
            "INSECURE: accept a simulated enclave (testing only)"),
)
_BY_NAME = {s.name: s for s in SETTINGS}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Resolved:
    """A setting's value and where it came from (shown by ``cleanroom profile show``)."""

    value: Any  # str, Path or bool; None when unset
    source: str  # "flag --host", "environment CLEANROOM_HOST", "profile FILE" or "unset"


def setting(name: str) -> Setting:
    """The setting called ``name`` (``verifier-policy`` and ``verifier_policy`` both work).

    :raise InvalidInput: no such setting; the message lists the valid names.
    """
    found = _BY_NAME.get(name.replace("-", "_"))
    if found is None:
        raise InvalidInput(f"no profile setting {name!r}; the settings are: "
                           + ", ".join(s.name.replace("_", "-") for s in SETTINGS))
    return found


def cleanroom_home(env: Mapping[str, str] | None = None) -> Path:
    """``$CLEANROOM_HOME``, default ``~/.cleanroom``: the client's own memory and profile."""
    env = os.environ if env is None else env
    return Path(env.get("CLEANROOM_HOME") or Path.home() / ".cleanroom")


def profile_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env[PROFILE_ENV]) if env.get(PROFILE_ENV) else cleanroom_home(env) / "profile.toml"


def parse_bool(text: str, where: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidInput(f"{where} must be true or false (1/0, yes/no, on/off), not {text!r}")


def _typed(s: Setting, value: Any, where: str, base: Path) -> Any:
    if s.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            return parse_bool(value, where)
        raise InvalidInput(f"{where} must be true or false")
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{where} must be a non-empty string")
    if s.kind == "path":
        path = Path(value).expanduser()
        return path if path.is_absolute() else base / path
    return value


def load_profile(path: Path | None = None) -> dict[str, Any]:
    """The profile file's settings, typed (paths absolute); {} when there is no file.

    :raise InvalidInput: not TOML, an unknown key, or a value of the wrong type.
    """
    path = profile_path() if path is None else path
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"{path}: not a valid TOML profile ({exc})") from None
    values = {}
    for key, value in doc.items():
        s = _BY_NAME.get(key)
        if s is None:
            raise InvalidInput(f"{path}: unknown key {key!r}; the keys are: "
                               + ", ".join(_BY_NAME))
        values[key] = _typed(s, value, f"{path}: {key}", path.parent)
    return values


def _toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:  # TOML forbids raw control characters
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def save_profile(path: Path, values: Mapping[str, Any]) -> None:
    """Write ``values`` (setting name -> str, Path or bool) as the profile, atomically."""
    lines = ["# cleanroom client profile: `cleanroom profile show` explains each value.",
             "# Flags override these, and so do the CLEANROOM_* environment variables."]
    for s in SETTINGS:
        if s.name in values:
            value = values[s.name]
            lines.append(f"{s.name} = " + (("true" if value else "false") if s.kind == "bool"
                                           else _toml_string(str(value))))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".profile-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def resolve(name: str, flag_value: Any = None, *, env: Mapping[str, str] | None = None,
            profile: Mapping[str, Any] | None = None, profile_file: Path | None = None) -> Resolved:
    """Where ``name``'s value comes from: the flag, else the environment, else the profile.

    ``flag_value`` None means the flag was not given. ``profile`` defaults to ``load_profile()``.

    :raise InvalidInput: a malformed environment value or profile file.
    """
    s = setting(name)
    if flag_value is not None:
        return Resolved(flag_value, f"flag {s.flag}")
    env = os.environ if env is None else env
    if env.get(s.env, "") != "" or (s.kind == "bool" and s.env in env):
        return Resolved(_typed(s, env[s.env], f"environment variable {s.env}", Path()),
                        f"environment {s.env}")
    if profile is None:
        profile_file = profile_path(env) if profile_file is None else profile_file
        profile = load_profile(profile_file)
    if name.replace("-", "_") in profile:
        where = profile_path(env) if profile_file is None else profile_file
        return Resolved(profile[s.name], f"profile {where}")
    return Resolved(False if s.kind == "bool" else None, "unset")
