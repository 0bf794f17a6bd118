"""``cleanroom profile show | set | unset``: defaults for the flags every command repeats."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cleanroom.commands.arguments import command

__all__ = ["register"]

_DETAIL = ("Five settings: host, policy, keys, verifier-policy and insecure-allow-simulation. Each "
           "command takes its own flag first, then the environment (CLEANROOM_HOST, "
           "CLEANROOM_POLICY, CLEANROOM_KEYS, CLEANROOM_VERIFIER_POLICY, "
           "CLEANROOM_INSECURE_ALLOW_SIMULATION), then the profile file "
           "$CLEANROOM_HOME/profile.toml (or the file CLEANROOM_PROFILE names).")


def register(subparsers: Any) -> None:
    group = command(subparsers, "profile",
                    "Show or set the defaults for --host, --policy, --keys and the verifier", _DETAIL)
    commands = group.add_subparsers(dest="profile_command", metavar="COMMAND", required=True)
    p = command(commands, "show", "Show each setting, its value and where it comes from",
                "Flags are not considered here: what a command would use without them.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_show)
    p = command(commands, "set", "Save a setting in the profile file",
                "Paths are stored absolute. Example: cleanroom profile set host http://127.0.0.1:8700")
    p.add_argument("name", metavar="SETTING", help="host, policy, keys, verifier-policy or "
                                                   "insecure-allow-simulation")
    p.add_argument("value", metavar="VALUE", help="the value (true/false for the opt-in)")
    p.set_defaults(func=_set)
    p = command(commands, "unset", "Remove a setting from the profile file", "")
    p.add_argument("name", metavar="SETTING", help="the setting to remove")
    p.set_defaults(func=_unset)


def _show(args: argparse.Namespace) -> int:
    from cleanroom.client_profile import SETTINGS, load_profile, profile_path, resolve

    where = profile_path()
    profile = load_profile(where)
    found = {s.name: resolve(s.name, profile=profile, profile_file=where) for s in SETTINGS}
    if args.json:
        print(json.dumps({"profile_file": str(where), "exists": where.exists(),
                          "settings": {name: {"value": None if r.value is None else
                                              r.value if isinstance(r.value, bool) else str(r.value),
                                              "source": r.source} for name, r in found.items()}},
                         indent=2))
        return 0
    print(f"profile file: {where}" + ("" if where.exists() else " (does not exist yet)"))
    width = max(len(s.name) for s in SETTINGS) + 1
    for s in SETTINGS:
        r = found[s.name]
        value = "-" if r.value is None else ("true" if r.value is True else
                                             "false" if r.value is False else str(r.value))
        print(f"{s.name.replace('_', '-'):{width}} {value}   ({r.source})")
    print("explicit flags override every value shown here")
    return 0


def _set(args: argparse.Namespace) -> int:
    from cleanroom.client_profile import load_profile, parse_bool, profile_path, save_profile, setting

    s = setting(args.name)
    value: Any = args.value
    if s.kind == "bool":
        value = parse_bool(value, s.name.replace("_", "-"))
    elif s.kind == "path":
        value = Path(value).expanduser().resolve()
        if not value.is_file():
            print(f"note: {value} does not exist (yet)")
    elif not value.startswith(("http://", "https://")):
        from protocol.errors import InvalidInput

        raise InvalidInput(f"host must be an http:// or https:// URL, not {value!r}")
    where = profile_path()
    profile = load_profile(where)
    profile[s.name] = value
    save_profile(where, profile)
    shown = ("true" if value else "false") if isinstance(value, bool) else value
    print(f"{s.name.replace('_', '-')} = {shown}  (saved in {where})")
    if s.kind == "bool" and value:
        print("WARNING: every command will now accept a SIMULATED enclave, which protects nothing; "
              "for testing only")
    return 0


def _unset(args: argparse.Namespace) -> int:
    from cleanroom.client_profile import load_profile, profile_path, save_profile, setting

    s = setting(args.name)
    where = profile_path()
    profile = load_profile(where)
    if profile.pop(s.name, None) is None:
        print(f"{s.name.replace('_', '-')} was not set in {where}")
        return 0
    save_profile(where, profile)
    print(f"removed {s.name.replace('_', '-')} from {where}")
    return 0
