"""How the NVML exporter sorts what a read raised: lost GPU, permanent refusal, or a failure of
this cycle. Anything may come out of a read (a missing pynvml function, a None where a number
was due), and each must cost only what it touched."""

from __future__ import annotations

import pynvml

# Answers that do not change while the exporter runs: the GPU, the driver or the user's
# privileges do not allow the read.
_PERMANENT = (pynvml.NVMLError_NotSupported, pynvml.NVMLError_FunctionNotFound, pynvml.NVMLError_NoPermission)


class Unreadable(Exception):
    """A read NVML answered without an error but with no usable value."""


def permanent(exc: BaseException) -> bool:
    """True when asking again can never succeed, so the read is counted once and not repeated:
    NVML's NotSupported, FunctionNotFound (an older driver) or NoPermission, or a function this
    nvidia-ml-py does not have."""
    if isinstance(exc, AttributeError):
        return exc.obj is pynvml
    return isinstance(exc, _PERMANENT)


def expected(exc: BaseException) -> bool:
    """An answer NVML gives, as opposed to a bug or an odd value worth a traceback in the log."""
    return isinstance(exc, pynvml.NVMLError | Unreadable) or permanent(exc)
