"""The `wcbench` command line (typer). One module per command group under `wcbench/cli/`.

Every user error is one line on stderr and exit status 2; a traceback appears only with --debug.
"""

from __future__ import annotations

import errno
import importlib
import pkgutil
import sys
import warnings

import typer

from wcbench import cpus
from wcbench.cli.app import app, console_err
from wcbench.errors import Interrupted, WcbenchError
from wcbench.interrupts import interrupt_handlers

_loaded = False
_HELP_ONLY = frozenset({"--help", "-h", "--version"})
_INTERRUPTED = "interrupted; rerun the same command to resume"


def _load_commands() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for info in pkgutil.iter_modules(__path__):
        if info.name != "app":
            importlib.import_module(f"{__name__}.{info.name}")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


#: errno values of OSErrors the user causes (a path that is missing, unwritable, a file where a folder
#: is needed, a full disk): one line and exit 2, naming the path, never "internal error".
_USER_ERRNOS = {
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a file stands where a folder is needed",
    errno.EISDIR: "a folder stands where a file is needed",
    errno.EEXIST: "a file stands where a folder is needed",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many symbolic links",
}


def user_os_error(exc: OSError) -> str | None:
    """The one-line message of an OSError the user caused, or None for one that is wcbench's."""
    what = _USER_ERRNOS.get(exc.errno) if exc.errno is not None else None
    path = exc.filename
    if what is None or path is None:
        return None
    fix = (
        "free some space or choose another --out"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT)
        else ("check the path, or choose another --out/--runs-dir")
    )
    return f"{path}: {what}; {fix}"


def _main(args: list[str], debug: bool) -> int:
    _load_commands()
    command = typer.main.get_command(app)
    try:
        if not _HELP_ONLY.intersection(args):  # help and --version need no torch: they stay fast
            cpus.configure_threads()  # torch's intra-op threads within the allowed CPUs (wcbench.cpus)
        with interrupt_handlers():  # Ctrl-C and SIGTERM raise Interrupted (wcbench.interrupts)
            result = command.main(args=args, prog_name="wcbench", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except Interrupted as exc:
        print(_INTERRUPTED, file=sys.stderr)
        return exc.exit_code
    except typer.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # a second Ctrl-C, or one outside a command
            print(_INTERRUPTED, file=sys.stderr)
        else:
            console_err.print("error: aborted")
        return 130
    except typer.TyperException as exc:  # usage errors: bad option, missing argument, ...
        if debug:
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":
            print(exc.format_message())
            return 2
        hint = ""
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            hint = f" (see `{ctx.command_path} --help`)"
        print(f"error: {_one_line(exc.format_message())}{hint}", file=sys.stderr)
        return 2
    except WcbenchError as exc:
        if debug:
            raise
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(_INTERRUPTED, file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - last resort: one line unless --debug
        if debug:
            raise
        message = user_os_error(exc) if isinstance(exc, OSError) else None
        if message is not None:
            print(f"error: {_one_line(message)}", file=sys.stderr)
            return 2
        print(
            f"error: internal error {type(exc).__name__}: {_one_line(str(exc))}; rerun with --debug for the "
            f"traceback and report it",
            file=sys.stderr,
        )
        return 1
    return result if isinstance(result, int) else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status.

    Warnings (torch's, numpy's) raised while a command runs are held back: shown after a success, or
    with --debug, and dropped when the command fails, so an error is exactly one line on stderr.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    with warnings.catch_warnings(record=True) as caught:
        rc = 1
        try:
            rc = _main(args, debug)
        finally:
            held = list(caught)
    if rc == 0 or debug:
        for w in held:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return rc


def run() -> None:  # pragma: no cover - console script shim
    # `import wcbench` (above, before torch) already set OMP_WAIT_POLICY; see wcbench.cpus
    sys.exit(main())
