"""The ``cleanroom`` command groups, one module each; ``cleanroom.cli`` assembles them.

Each module's ``register(subparsers)`` adds its commands and sets ``func`` on every leaf parser:
``args.func(args)`` runs the command and returns its exit code. ``cleanroom.cli.COMMANDS`` names
every command with its module and summary, so that only the module of the command being run is
imported (a test checks the table against what the modules register). Commands parse flags, call the
library and print; the checks they rely on live in the library (``cleanroom.*``), so a library
user gets the same ones. Shared pieces: ``arguments`` (flags and what they turn into),
``output`` (printing) and ``verify_first`` (the attestation step before anything is sent).
"""
