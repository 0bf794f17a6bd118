"""Example bodies of the OpenAPI document (``host/openapi.py`` merges them in).

They are the bodies of one real session, the known-answer vectors' (``tests/vectors/http.json``,
docs/wire.md#vectors): every signature verifies with the vectors' test keys
(``tests/vectors/keys.json``) and every document decodes as docs/wire.md says.
``tests/vectors/test_wire_extra.py`` checks that they still equal those vectors and match the
document's schemas, so regenerating the vectors after a wire change shows here as a failure:
then copy the bodies again from the new ``http.json``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EXAMPLES", "add_examples"]

# (path, method, "request" or a status) -> the example body
# The co-signing examples share one enclave-signed proposal (from tests/vectors/http.json).
_PROPOSAL = (
            "jKZhbW91bnSjMS8yqWFwcHJvdmVyc4KqYWR2ZXJ0aXNlcpGnd2l0bmVzc6lwdWJsaXNoZXKRp3dpdG5lc3Ow"
            "Y29sbGFib3JhdGlvbl9pZLx3aXJlLXRlc3QtdmVjdG9ycy13aXRuZXNzLXYxqGRhdGFzZXRzkqtjb252ZXJz"
            "aW9uc6tpbXByZXNzaW9uc6VkZWx0YaEwq3BvbGljeV9oYXNoxCAptBtvOvGTvWIfFyBX1w7Nivjw/J2/NMrK"
            "AOzZtXxTpqlwcmV2X2hlYWSCpGhhc2jEINqMmxFVdHFC4Jm3SYRjHy/CYTjL0wbBInwZEDwp80exo3NlcQKo"
            "cXVlcnlfaWTEIFlLzSGTfcMkqWYRydR732BpAUCe3qiIaQP+5IfYtCvFp3JlcXVlc3TFAjCJqGFuYWx5c2lz"
            "oLBjb2xsYWJvcmF0aW9uX2lkvHdpcmUtdGVzdC12ZWN0b3JzLXdpdG5lc3MtdjGpaXNzdWVkX2F0zmtJ0gCl"
            "bm9uY2XEEA8eLTxLWml4h5altMPS4fCmcGFyYW1zgKVwYXJ0eaphZHZlcnRpc2VypHBsYW6FqGRhdGFzZXRz"
            "kqtpbXByZXNzaW9uc6tjb252ZXJzaW9uc6hncm91cF9ieZG0aW1wcmVzc2lvbnMuY2FtcGFpZ26mc2VsZWN0"
            "koOjYXJnpnBlcnNvbqJhc6ZidXllcnOiZm6uY291bnRfZGlzdGluY3SDo2FyZ7Fjb252ZXJzaW9ucy52YWx1"
            "ZaJhc6dyZXZlbnVlomZuo3N1baF2AaV3aGVyZZGDpmNvbHVtbrRpbXByZXNzaW9ucy5jYW1wYWlnbqJvcKZu"
            "b3RfaW6mdmFsdWVzkaZhdXR1bW6rcG9saWN5X2hhc2jEICm0G2868ZO9Yh8XIFfXDs2K+PD8nb80ysoA7Nm1"
            "fFOmo3NxbNmjU0VMRUNUIGkuY2FtcGFpZ24sIENPVU5UKERJU1RJTkNUIHBlcnNvbikgQVMgYnV5ZXJzLCBT"
            "VU0oYy52YWx1ZSkgQVMgcmV2ZW51ZSBGUk9NIGltcHJlc3Npb25zIGkgSk9JTiBjb252ZXJzaW9ucyBjIFdI"
            "RVJFIGkuY2FtcGFpZ24gPD4gJ2F1dHVtbicgR1JPVVAgQlkgaS5jYW1wYWlnbrFyZXF1ZXN0X3NpZ25hdHVy"
            "ZcRAwAyzdzFnmWzx7MzESiy1mHnG1hDmhUyYg3v+33nJE84qcSnIVCsc/ilMOtvOQJdeN7q6eZMCA7Jw1oZA"
            "W+LwB6xyZXF1ZXN0ZWRfYnmqYWR2ZXJ0aXNlcqR1bml0p2Vwc2lsb24="
)
_PROPOSAL_SIGNATURE = (
            "OKO3KUsg3141DE7hESkbKA+csJSCJhGeenSOlX1cRweGJqQx8SJt3RuWfQJ86Lp10tO6MMfDEJEKCKnfNce5DQ=="
)


def _awaiting_approval(approved_by: list[str]) -> dict[str, Any]:
    """The co-signing proposal's state, before (POST /v1/queries) and after one approval."""
    return {
        "query_id": "594bcd21937dc324a96611c9d47bdf606901409edea8886903fee487d8b42bc5",
        "proposal": _PROPOSAL,
        "signature": _PROPOSAL_SIGNATURE,
        "approvers": {"advertiser": ["witness"], "publisher": ["witness"]},
        "approved_by": approved_by,
        "status": "approval_required",
    }


EXAMPLES: dict[tuple[str, str, str], Any] = {
    ("/v1/uploads", "post", "201"): {
        "upload_id": "c37e165d29ecea5a4e2f94e675716672",
        "rows": 6,
        "digest": "30e738bb24bff75a88b76b8da045ba4e02c9e1bfbbcaa3afb72a9c6b2fe9bb24",
        "receipt": (
            "i6thY2NlcHRlZF9hdM5rSdIAqmF1ZGl0X2hlYWSCpGhhc2jEIFzQst0u0NG6oX45otbPvrU+YIf5gpZQPjP0"
            "c04wXRNGo3NlcQGwY29sbGFib3JhdGlvbl9pZLR3aXJlLXRlc3QtdmVjdG9ycy12MadkYXRhc2V0q2ltcHJl"
            "c3Npb25zpmRpZ2VzdMQgMOc4uyS/91qIt2uNoEW6TgLJ4b+7yqOvtyqcay/puySvaWRlbXBvdGVuY3lfa2V5"
            "xBDDfhZdKezqWk4vlOZ1cWZypXBhcnR5qXB1Ymxpc2hlcqtwb2xpY3lfaGFzaMQgflYTKQIDK3VR2qZM4Fob"
            "fvD/vEhB9PP7zo/N2+Nru8Ckcm93cwapc2ltdWxhdGVkw6l1cGxvYWRfaWTEEMN+Fl0p7OpaTi+U5nVxZnI="
        ),
        "signature": (
            "AgAppHoW7++D4iNXsZVq0FfGKXFhzy0QqNRJRj9Rc20vlTDINUiHk/hhLVJZwU99c8NdxMoOxARRkr2x7UqEDg=="
        ),
    },
    ("/v1/uploads", "get", "200"): {
        "uploads": [
            {
                "upload_id": "c37e165d29ecea5a4e2f94e675716672",
                "party": "publisher",
                "dataset": "impressions",
                "rows": 6,
                "digest": "30e738bb24bff75a88b76b8da045ba4e02c9e1bfbbcaa3afb72a9c6b2fe9bb24",
                "accepted_at": 1800000000,
                "present": True,
            },
            {
                "upload_id": "62e8b013310ee494384687a02851ac7b",
                "party": "advertiser",
                "dataset": "conversions",
                "rows": 3,
                "digest": "e74d357ab06733932998b41341a85335f62bc758dfaac25e48969805f0b60263",
                "accepted_at": 1800000000,
                "present": True,
            },
        ],
        "more": False,
    },
    ("/v1/queries", "post", "request"): {
        "request": (
            "h6hhbmFseXNpc6dvdmVybGFwsGNvbGxhYm9yYXRpb25faWS0d2lyZS10ZXN0LXZlY3RvcnMtdjGpaXNzdWVk"
            "X2F0zmtJ0gClbm9uY2XEEAARIjNEVWZ3iJmqu8zd7v+mcGFyYW1zgahncm91cF9ieZG0aW1wcmVzc2lvbnMu"
            "Y2FtcGFpZ26lcGFydHmqYWR2ZXJ0aXNlcqtwb2xpY3lfaGFzaMQgflYTKQIDK3VR2qZM4FobfvD/vEhB9PP7"
            "zo/N2+Nru8A="
        ),
        "signature": (
            "yJmASIpJntaktyfhwVGTUIciNKxMEM2wJY7VtAbH1akzz8VHCoagEBh8srB+fpBnuGIFfq/eHANr53A7VagUCQ=="
        ),
    },
    ("/v1/queries", "post", "200"): {
        "query_id": "55c0daa2846782c6165d108b306aac1e7809baba7f674adf4a340d35d4d1ff1c",
        "results": {
            "advertiser": (
                "iCgnsYEfGq5ClR3ZMMdXEZ5WQPxw6+dA1PPRvS6eoHmz9Tn6UJYfipU4KCZ+IcIw/DUDYnTmveHYpTPb"
                "s3qYAYYXue0ziqA6EDDYROxyTYF7dqa/kq15emwGSybWtkpEWmoucz+feEDPOhoRyAGrEO07sdV5C3Fv"
                "OCfPFwExDo3Fh7+aOb0Sv7oV2Or3eW02tOWg0GNPar7OyjURUTnerPu2pk50h9ksGCfpYY5kK4pFqO3m"
                "e28G5aQITwDuLPXlvIRGbK5EJzmdDsf+taF3Cjv7kIyP272ZbttllfF84YJ2f0e1ji/x5KwBnCzYs+lh"
                "C8lYHPRjHj7aSZOzgjptXKpQxjrXSvIWAci0tE7+Q5FWdUs147W0N4xQmPPsj3P632wOsjwE3EcdTvNL"
                "FEO4fjWzVNhvcDiW/nqWk08J+kPYlVLoWBqrkthcj3WQeNRS+9SUWx1B2AJ4qJRraJw+FwZ+XASUOZu2"
                "r9ByHSO6ogG1o/Y3Ucrp4EqmClYz3jMxGNMDsK4/AdLFN3cFhi89LaFU8NRfapnFHdCyW6E/W1TmkykM"
                "zfyUV7AOsGvjyR/DiJ54r5m1uetPVkzA3tX27AtAr/jqb0dMeg0dJ2CacIwM5+mfo+LFmZ0OlknCZV3J"
                "wAiTwpMth2JgH0xwCsPqfmkUQPLl5J8RT0RktJM07P+mSKsWLoIuNqNnhEe0oveSE/cSVS0IC3S2SAtd"
                "fvlY1JvSzkP3WlT7jxjfWISD7Tm+77djmFTgo1pPnHZgmhaUhglle0PvuY23FI5hd91TRGvcG9TYSZwA"
                "TdosUnSKAKV/PbnZgHKwBcbddWS2fjkGzAQ58+E1aOJbf80niLyRLPkeIjIGnnqIwHhqycgl1EX8cXVC"
                "oLbscOWdsZ3U/DWmWAlPfK3IC7psV4phInGtSA6z9IILdD06x/IPnYnZ7Z2QvGYDy8MdfE+uFeZsYKLO"
                "HM7xvdesbBokJd/RpHj2wAjwftEhDuzGCzD8WbPFvoBHNq1tpXwzd+RgtHTlE3Kl79r4JyiREB1b+48o"
                "0FVpqQ/WFyKthLZPM/hIbfnJvM2C7C+RvHltowPaAjQflZvBEAvX4RgCuzY/q0Tph2I+RNRiSAh/54xS"
                "STDOGQZTo1Zbdi4L5Z2KLQdfxw79nFiUsO3tZ2TFEMnTHOI1rgzMPLT1vekAfPWPKzbFyguXQaPhUC+8"
                "QNsRffLsRE9zfVHaDwn1H1meyls67LqvO0j7/65nDeFWZp0Dfv/7u/H45Qc/ankUJZp0YloZDHL89F9f"
                "vqiK7o8zUVCz5V963WknTq9oRo5/+aXxuZU9NWIqasZnHKolk3C5oA=="
            ),
            "publisher": (
                "yomB45bKx9YKXCDXtVBLvQ28W9FGeDpcyZtFnoBYbDdbtpFN3ncu3ZvJRJpYlx/51XkYmrxZIn47sARh"
                "KobKLARUmRzT2000m0NGn/g6QHvNRO3WwcUhGYaRzPWfqACI2nkOXOXuW2P1DNQhU9vw45qs1PIu4T6u"
                "etvJWoTJ5GW+cs1Y12N8twx0l/AQuryxh9YfEhrsWbJkkfD1wfqz/sX34PjI1Fwd0sSwrOyypHQURZ/0"
                "U1LyZj+MnMwgf/ikXrsTzp2YlcaJMB7e5uxHBsvTwqZTImR2Ae5AAXAb111KsCQoHqSn0fdmgdgb4frc"
                "7rCdP4YrlkeMgtmaEs0aU4BAir8tI+CajmHc1lE7Yc8MVqkMSCw+V/P8IQSifji1WWAlqgc6zHcqHOsS"
                "e4plxxRxRgJUFBkdbG155733O3Zeu26452ZOhJQ3YaTZxquoHBDkn0KcbSFUBgRL/PvJb/WzilFVZmKP"
                "Ad58QppAV+06lMuOB/5MYXCnNLfrWBzQZICRVZmiP3sO99Mr+vV23v8DB1i8OEm5gU/uGNx3x5ElwCyE"
                "U9KXcmBy24LOx+ETahxmbdHPmKqjRZilJ8fSjOVA+ru0z5Ts7kqIK9wWNEVxWu9eWsJ7mRZSRS8RRK1P"
                "kj1EN4Zk2v4XrN7lkjMY0f7EMFq8MfG57Tgvb2V8DLDU8Q/6lxiI01658YYY4/mT7jHEyZHzJAGigWtL"
                "0yIhd5rapU2UIJL0RkbUgNm6zRVlM8EOowsqp7WBYqVaOk55WhxcWKNQIDZXXmLw5U3UmC0Cftnu6F2H"
                "/Amb0mwfdCOMbWhfvzZQJNlMJRs7DFTPUt9n1PjRESUH6AjiAiEL1gZhLkPGzQdteT0PvdoURHyqVgTL"
                "JmkHiKw7Glshi5humfwwpHyYBoa7AB4ZGFctgh6905H+PYQBfSMfTlxNy931LuYCTHDxzkSVnVytsOpX"
                "Pq5AQxjP9cXR9z/QfpV3GS6Gf7sjhn5JhLwep0dakvRW6LmzqVVwhRR9MweEyYd/WuHtZDPVlF8+wSkX"
                "PpYyVyK8zyyDcba2bRL+1lIz3JCBluJu8hBismLCJi9eQlQiYlBMye90d6GbSYg8k+0eIMMORqKOYdPc"
                "urq7ggGdFL59RCsD7HTdHt5b3BYKQhFTgufaZwnMhVLHqpodqNmNX/2vchzkJfE3siK0HsZaDsyh6eN0"
                "0GFzvqE/J9leXmtHEV1IOdSq0Kl5Rxwsby7mdhyf7Je78gHf1/QNYxkSDNF/Dew/MI7+XiAdidAS9R3b"
                "fnPiDYBOxEQwSUCvPgPeQfyWv4lEYsuWw4XbX/hhpIttWI1L2TihPw=="
            ),
        },
    },
    ("/v1/queries", "post", "202"): _awaiting_approval(approved_by=[]),
    ("/v1/approvals/{query_id}", "post", "request"): {
        "party": "publisher",
        "signature": (
            "vvQ8HZ1NdOMkVtuUG1FiTpZblmcPU96+vVeEDSZ2ZAVye8Dyn2imubDP1fBUbvXRHsaQToD3p+Xea8XcQM5JDA=="
        ),
    },
    ("/v1/approvals/{query_id}", "post", "200"): _awaiting_approval(approved_by=["publisher"]),
    ("/v1/results", "get", "200"): {
        "results": [
            {
                "query_id": "55c0daa2846782c6165d108b306aac1e7809baba7f674adf4a340d35d4d1ff1c",
                "created_at": 1800000000,
                "recipients": ["advertiser", "publisher"],
            },
        ],
        "more": False,
    },
    ("/v1/deletions", "post", "request"): {
        "request": (
            "hrBjb2xsYWJvcmF0aW9uX2lktHdpcmUtdGVzdC12ZWN0b3JzLXYxp2RhdGFzZXSraW1wcmVzc2lvbnOpaXNz"
            "dWVkX2F0zmtJ0gClbm9uY2XEEP/u3cy7qpmId2ZVRDMiEQClcGFydHmpcHVibGlzaGVyq3BvbGljeV9oYXNo"
            "xCB+VhMpAgMrdVHapkzgWht+8P+8SEH08/vOj83b42u7wA=="
        ),
        "signature": (
            "cT8EKm2EKu1pu5z4X7qsICVNZ7fEb8GnpkPeGco5azJ6FOgMGHHsmkH/FrRRj3+MjuwatgMAkIaZivgG/kAABg=="
        ),
    },
    ("/v1/deletions", "post", "200"): {
        "receipt": (
            "iqphdWRpdF9oZWFkgqRoYXNoxCB57R0Vwhq3BI3kIbMb56p0mPdojfg7BGUW/JulctKGdqNzZXEGsGNvbGxh"
            "Ym9yYXRpb25faWS0d2lyZS10ZXN0LXZlY3RvcnMtdjGnZGF0YXNldKtpbXByZXNzaW9uc6pkZWxldGVkX2F0"
            "zmtJ0gClcGFydHmpcHVibGlzaGVyq3BvbGljeV9oYXNoxCB+VhMpAgMrdVHapkzgWht+8P+8SEH08/vOj83b"
            "42u7wKpyZXF1ZXN0X2lkxCCAJ2o/MikBHPT84Oel4I0Ls27cy3tS/ztCHCPnDU++Nqxyb3dzX2RlbGV0ZWQG"
            "qXNpbXVsYXRlZMOqdXBsb2FkX2lkc5HEEMN+Fl0p7OpaTi+U5nVxZnI="
        ),
        "signature": (
            "rA0l1Ru8/1kCXNlS64LnyFNG0bdiZiCEakQRCUh4J83CkF2qKg7LqWPuLqE/6rd3nZY6Q5Cq9xHDbjCwQlS+AA=="
        ),
        "upload_ids": ["c37e165d29ecea5a4e2f94e675716672"],
    },
    ("/v1/audit", "get", "200"): {
        "entries": [
            (
                "gqRib2R5xOiGomF0zmtJ0gCwY29sbGFib3JhdGlvbl9pZLR3aXJlLXRlc3QtdmVjdG9ycy12MadkZXRh"
                "aWxzhadkYXRhc2V0q2ltcHJlc3Npb25zpmRpZ2VzdMQgMOc4uyS/91qIt2uNoEW6TgLJ4b+7yqOvtyqc"
                "ay/puySlcGFydHmpcHVibGlzaGVypHJvd3MGqXVwbG9hZF9pZMQQw34WXSns6lpOL5TmdXFmcqRraW5k"
                "r3VwbG9hZF9hY2NlcHRlZKRwcmV2xCAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAKNzZXEB"
                "qXNpZ25hdHVyZcRAwo+e2GsgJcpuPYGC9qpFF0xU1nKrWfgHyxE68xwSTxSXRAyKq23Lc5hacvIm+zaY"
                "FUuUZnIzQfALgzYa1xpNDQ=="
            ),
        ],
    },
    ("/v1/budget", "get", "200"): {
        "status": (
            "h6phdWRpdF9oZWFkgqRoYXNoxCDB50abatYd4JnWz8GIwIfgvSL82OE/XNC1KJRGqBky8qNzZXEFsGNvbGxh"
            "Ym9yYXRpb25faWS8d2lyZS10ZXN0LXZlY3RvcnMtd2l0bmVzcy12MapjcmVhdGVkX2F0zmtJ0gCoZGF0YXNl"
            "dHOCq2NvbnZlcnNpb25zhatkZWx0YV9zcGVudKEwr25vbl9kcF9yZWxlYXNlcwCpcmVtYWluaW5nozMvMqVz"
            "cGVudKMxLzKldG90YWyhMqtpbXByZXNzaW9uc4WrZGVsdGFfc3BlbnShMK9ub25fZHBfcmVsZWFzZXMAqXJl"
            "bWFpbmluZ6MzLzKlc3BlbnSjMS8ypXRvdGFsoTKrcG9saWN5X2hhc2jEICm0G2868ZO9Yh8XIFfXDs2K+PD8"
            "nb80ysoA7Nm1fFOmqXNpbXVsYXRlZMOkdW5pdKdlcHNpbG9u"
        ),
        "signature": (
            "LN5WTQDPVDCxaDHBuulCprPAHy19bf5umiPkVoeNx6rg6CBb6B+2xZyxPuTIjMrrsRv2UlfQPGmi4Bp/H0oCBg=="
        ),
    },
}
# The stored answer is the query's answer; a co-signed query's status is its pending entry.
EXAMPLES[("/v1/results/{query_id}", "get", "200")] = EXAMPLES[("/v1/queries", "post", "200")]
EXAMPLES[("/v1/queries/{query_id}", "get", "200")] = EXAMPLES[("/v1/queries", "post", "202")]


def add_examples(paths: dict[str, dict[str, Any]]) -> None:
    """Put each example on its operation's JSON request body or response (``paths`` is mutated)."""
    for (path, method, where), example in EXAMPLES.items():
        operation = paths[path][method]
        target = operation["requestBody"] if where == "request" else operation["responses"][where]
        target["content"]["application/json"]["example"] = example
