"""Reading image-pull error text: unwrap the layers around it, then take it apart.

:mod:`shared.classify` decides the cause family from what these modules find.
"""

from shared.pullerror.anatomy import Anatomy, read
from shared.pullerror.unwrap import unwrap

__all__ = ["Anatomy", "read", "unwrap"]
