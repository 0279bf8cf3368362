"""Which Python code a policy may make us import: a policy file is data, not a program.

A `[safety.custom.NAME] callable = "module:function"` imports `module` (running its top-level
code) and calls `function` on every screened text. So a policy alone never decides to load
code: the user allows modules outside the policy, with `--allow-code MODULE` on the command
line or the `GUARDED_RL_ALLOW_CODE` environment variable (comma-separated). Modules that run
commands, load code or reach the system are refused even when allowed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from guarded_rl.errors import PolicyError

if TYPE_CHECKING:
    from guarded_rl.policy import SafetyPolicy

#: Environment variable with more allowed modules (comma or space separated).
ENV_ALLOW = "GUARDED_RL_ALLOW_CODE"

#: Top-level modules whose functions run commands, load code or touch the system: never loaded.
DENIED = frozenset(
    {
        "os", "posix", "nt", "subprocess", "builtins", "__builtin__", "sys", "shutil",
        "importlib", "pickle", "_pickle", "marshal", "ctypes", "_ctypes", "socket", "_socket",
        "runpy", "code", "codeop", "pty", "pdb", "bdb", "multiprocessing", "concurrent",
        "asyncio", "threading", "_thread", "signal", "fcntl", "resource", "io", "_io",
        "pathlib", "tempfile", "glob", "webbrowser", "http", "urllib", "ftplib", "smtplib",
        "telnetlib", "xmlrpc", "shelve", "dbm", "sqlite3", "zipimport", "pkgutil", "platform",
        "inspect", "gc", "types", "operator", "functools", "timeit", "trace", "profile",
        "cProfile", "tarfile", "zipfile", "select", "selectors", "mmap", "_posixsubprocess",
    }
)  # fmt: skip

_granted: list[str] = []


def _root(module: str) -> str:
    return module.split(".", 1)[0]


def allowed_modules() -> tuple[str, ...]:
    """Modules allowed now: those granted by the command line, then the environment's."""
    from_env = os.environ.get(ENV_ALLOW, "").replace(",", " ").split()
    return tuple(dict.fromkeys([*_granted, *from_env]))


def grant(modules: Iterable[str]) -> None:
    """Allow `modules` for the rest of this process (a command-line run: one process)."""
    _granted.extend(m.strip() for m in modules if m.strip())


@contextlib.contextmanager
def allowing(modules: Iterable[str]) -> Iterator[None]:
    """Allow `modules` (and their submodules) to be loaded by policies, for this block."""
    added = [m.strip() for m in modules if m.strip()]
    _granted.extend(added)
    try:
        yield
    finally:
        for module in added:
            _granted.remove(module)


def is_denied(module: str) -> bool:
    """Whether `module` is one that is never loaded, allowed or not."""
    return module in DENIED or _root(module) in DENIED


def policy_code(safety: SafetyPolicy) -> list[tuple[str, str]]:
    """`(field, "module:function")` of every custom scorer the policy's screen would load."""
    return [
        (f"safety.custom.{name}.callable", safety.custom[name].callable)
        for name in safety.filters
        if name in safety.custom
    ]


def require_policy_code_allowed(safety: SafetyPolicy, *, file: str | None = None) -> None:
    """Refuse a policy that names code the user did not allow (before anything is written)."""
    for field, spec in policy_code(safety):
        require_allowed(spec, field=field, file=file)


def require_allowed(spec: str, *, field: str, file: str | None = None) -> None:
    """Refuse, before anything is imported, a callable whose module the user did not allow."""
    module = spec.partition(":")[0]
    if is_denied(module):
        raise PolicyError(
            f"module '{module}' can run commands or load code and is never loaded",
            file=file,
            field=field,
            got=spec,
            expected="a scorer in your own module",
        )
    allowed = allowed_modules()
    if not any(module == a or module.startswith(a + ".") for a in allowed):
        raise PolicyError(
            f"the policy would load code from module '{module}', which is not allowed",
            file=file,
            field=field,
            got=spec,
            expected=f"--allow-code {module} (or {ENV_ALLOW}={module}) if you trust that code",
        )


def require_safe_function(fn: object, *, spec: str, field: str) -> None:
    """Refuse an allowed module's name for a function of a denied one (`from os import system`)."""
    defined_in = getattr(fn, "__module__", None) or ""
    if is_denied(defined_in):
        raise PolicyError(
            f"names a function of module '{defined_in}', which is never loaded",
            field=field,
            got=spec,
            expected="a scorer defined in your own module",
        )
