"""What an Azure VM size name says about the node: its CPU architecture.

Size names follow ``Standard_<family><vCPUs>[-<constrained>]<features>[_<accelerator>][_v<n>]``.
The lower-case feature letters after the vCPU count carry the architecture: ``p`` means an Arm64
processor (Ampere Altra in ``Dpsv5``/``Epsv5``, Azure Cobalt 100 in ``Dpsv6``/``Epsv6``,
``Bpsv2``). A ``P`` in the family (``NP10s``, FPGA) is not that letter.
"""

from __future__ import annotations

import re

ARM64 = "arm64"
AMD64 = "amd64"

_SIZE = re.compile(
    r"^(?:standard|basic)_(?P<family>[a-z]+)(?P<cpus>\d+)(?:-\d+)?(?P<features>[a-z]*)"
    r"(?:_[a-z0-9]+)*$",
    re.IGNORECASE,
)


def vm_size_architecture(size: str) -> str | None:
    """``arm64`` or ``amd64`` for a size name such as ``Standard_D4ps_v5``; None if unparsable."""
    match = _SIZE.match(size.strip())
    if match is None:
        return None
    return ARM64 if "p" in match["features"].lower() else AMD64
