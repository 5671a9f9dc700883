"""The `wcbench` command line (typer). One module per command group under `wcbench/cli/`.

Every user error is one line on stderr and exit status 2; a traceback appears only with --debug.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
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
        print(
            f"error: internal error {type(exc).__name__}: {_one_line(str(exc))}; rerun with --debug for the "
            f"traceback and report it",
            file=sys.stderr,
        )
        return 1
    return result if isinstance(result, int) else 0


def run() -> None:  # pragma: no cover - console script shim
    # `import wcbench` (above, before torch) already set OMP_WAIT_POLICY; see wcbench.cpus
    sys.exit(main())
