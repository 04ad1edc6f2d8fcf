"""The policy's x86-64 syscall table against libseccomp's resolver, the kernel headers and the
sensor's own table."""

from __future__ import annotations

import ctypes
import ctypes.util
import re
from pathlib import Path

from helpers import need, need_file
from stockade.policy.syscalls import SYSCALL_NUMBERS, is_syscall
from stockade.sensor.ebpf.syscalls import SYSCALLS

AUDIT_ARCH_X86_64 = 0xC000003E
#: the numbers libseccomp 2.5 and Linux 6.1's headers may not know yet
NEWEST_KNOWN_BY_ALL = 450


def _libseccomp() -> ctypes.CDLL:
    return ctypes.CDLL(need(ctypes.util.find_library("seccomp"), "needs libseccomp (libseccomp2)"))


def test_names_and_numbers_agree_with_libseccomp() -> None:
    lib = _libseccomp()
    resolve = lib.seccomp_syscall_resolve_name_arch
    resolve.argtypes, resolve.restype = [ctypes.c_uint32, ctypes.c_char_p], ctypes.c_int
    for name, nr in SYSCALL_NUMBERS.items():
        got = resolve(AUDIT_ARCH_X86_64, name.encode())
        assert got == nr or (got < 0 and nr > NEWEST_KNOWN_BY_ALL), (name, nr, got)


def test_every_syscall_libseccomp_names_is_in_the_table() -> None:
    lib = _libseccomp()
    name_of = lib.seccomp_syscall_resolve_num_arch
    name_of.argtypes, name_of.restype = [ctypes.c_uint32, ctypes.c_int], ctypes.c_void_p
    libc = ctypes.CDLL(None)
    libc.free.argtypes = [ctypes.c_void_p]
    for nr in range(1024):
        ptr = name_of(AUDIT_ARCH_X86_64, nr)
        if ptr:
            name = ctypes.string_at(ptr).decode()
            libc.free(ptr)
            assert SYSCALL_NUMBERS.get(name) == nr, (nr, name)


def test_the_table_holds_the_kernel_headers() -> None:
    header = need_file(Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"))
    found = dict(re.findall(r"#define __NR_(\w+) (\d+)", header.read_text()))
    assert found
    assert {n: int(nr) for n, nr in found.items()} == {
        n: nr for n, nr in SYSCALL_NUMBERS.items() if n in found or nr <= NEWEST_KNOWN_BY_ALL
    }


def test_the_sensors_syscalls_are_known_by_name_and_number() -> None:
    for name, sc in SYSCALLS.items():
        assert is_syscall(name) and SYSCALL_NUMBERS[name] == sc.nr, name
    assert not is_syscall("procexit") and not is_syscall("socketcall")
