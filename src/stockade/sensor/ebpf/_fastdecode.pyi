"""The native hot path (``_fastdecode.c``, built by scripts/build-native.sh): see events.Decoder.native."""

from collections.abc import Callable
from typing import Any

class Walker:
    """The ring-buffer walk and syscall decoding of a Decoder, in C."""

    def __init__(
        self,
        *,
        plans: dict[int, tuple[Any, ...]],
        procs: dict[int, Any],
        boot: int,
        open_flags: dict[int, tuple[str, bool, bool, bool]],
        open_flags_fn: Callable[[int], tuple[str, bool, bool, bool]],
        errnames: dict[int, str],
        join: Callable[[bytes | None, str], str],
        normalize: Callable[[str], str],
    ) -> None: ...
    def decode(self, buf: Any, off: int, size: int) -> dict[str, Any] | None: ...
    def consume(
        self,
        data: Any,
        cons_addr: int,
        prod_addr: int,
        mask: int,
        max_records: int,
        decode: Callable[[Any, int, int], Any],
        out: list[Any],
        on_error: Callable[[Exception], None] | None,
    ) -> int: ...
