"""Facts about Alertmanager receivers that the spec's checks and the generators share, kept out of
spec/ so generators read only the model and these."""

from __future__ import annotations

# The receiver the generated routing tree sends what no route claims to: it delivers nowhere.
DISCARD_RECEIVER = "gpuobs-discard"
RECEIVER_KINDS = ("webhook", "slack", "pagerduty", "email")


def secret_files(receiver) -> list[tuple[str, str]]:
    """(path below the receiver, file) of every secret file a receiver names."""
    found = []
    for kind in RECEIVER_KINDS:
        section = getattr(receiver, kind)
        if section is None:
            continue
        for key, value in section:
            if key.endswith("_file") and value:
                found.append((f"{kind}.{key}", value))
        auth = getattr(section, "basic_auth", None)
        if auth is not None:
            found.append((f"{kind}.basic_auth.password_file", auth.password_file))
    return found
