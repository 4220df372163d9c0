"""Keeping the process's memory what it uses, on glibc (Linux); elsewhere these do nothing.

glibc gives each thread that allocates its own arena and keeps freed memory in it, so a server
whose thread pool decodes large images one after another grows to the sum of its threads'
peaks and never shrinks. Capping the arenas and trimming after large work keeps resident memory
near the high-water mark of the work itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_ARENA_MAX = -8


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim  # noqa: B018  (glibc only)
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(count: int = 2) -> None:
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, count)


def release_free_memory() -> None:
    """Hand freed heap memory back to the system."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
