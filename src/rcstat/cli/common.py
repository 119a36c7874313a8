"""What every command shares: the parser, writing output, and errors in one line with the flag they
concern. Imports nothing heavy: the library loads inside commands."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from rcstat.errors import RCStatError

# what to tell a user when the library names an option that is not a flag of the command
HINTS = {"haystack": "fetch it once with `rcstat data fetch`"}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; each option's help ends with its default, where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text, default = action.help or "", action.default
        if "%(default)" in text or default is None or default is False or default in (argparse.SUPPRESS, []):
            return text
        shown = ",".join(map(str, default)) if isinstance(default, tuple | list) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})".lstrip()


class Parser(argparse.ArgumentParser):
    """Usage errors in one line (``rcstat attribute: error: … (see … --help)``), exit code 2; a
    command's unknown flag points to that command's help."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and self._subparsers is None:  # a command (not a group): its own help says what it takes
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def parse_args(self, args=None, namespace=None):
        """The flags, refused in one line when an output would overwrite an input (before any work)."""
        parsed = super().parse_args(args, namespace)
        clash = overwritten_input(parsed)
        if clash:
            self.exit(2, f"rcstat: error: {clash}\n")
        return parsed

    def _get_values(self, action, arg_strings):
        # argparse drops a "--" given as an option's value (--per-task=--) and then skips the type check
        if action.option_strings and action.nargs is None and arg_strings in (["--"], []):
            self.error(f"argument {'/'.join(action.option_strings)}: expected one value")
        return super()._get_values(action, arg_strings)


# the flags that name files a command reads, and those that name what it writes
INPUTS = ("context", "sources", "data", "qa_data", "profile", "head_weights")
OUTPUTS = ("output", "plot", "report")


def overwritten_input(args: argparse.Namespace) -> str | None:
    """Why an output flag names the file of an input flag (nothing given is ever overwritten), or None."""
    from rcstat.io import same_file

    for out in OUTPUTS:
        for given in INPUTS:
            target, source = getattr(args, out, None), getattr(args, given, None)
            if isinstance(target, str) and isinstance(source, str) and same_file(target, source):
                flag, source_flag = (f"--{name.replace('_', '-')}" for name in (out, given))
                return f"{flag} {target} is the {source_flag} file; refusing to overwrite an input ({flag})"
    return None


def from_args(cls, args: argparse.Namespace, **given):
    """A library dataclass (a run's options) from the flags of the same names; ``given`` for the rest."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)} - set(given)
    return cls(**{n: getattr(args, n) for n in names if hasattr(args, n)}, **given)


def examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def command(sub, name: str, summary: str, description: str, *example_lines: str) -> Parser:
    """A command's parser with its one-line help, description and examples."""
    return sub.add_parser(name, help=summary, description=description, epilog=examples(*example_lines))


def group(sub, name: str, summary: str, metavar: str, *example_lines: str):
    """A command whose own sub-commands are required (``rcstat model …``, ``rcstat bench …``)."""
    parser = sub.add_parser(name, help=summary, description=summary, epilog=examples(*example_lines))
    inner = parser.add_subparsers(dest=f"{name}_command", metavar=metavar)
    inner.required = True
    return inner


# ---- input -------------------------------------------------------------------------------------


def read_context(args: argparse.Namespace) -> str | list[str]:
    """The context of ``--context`` (a text file, ``-`` for stdin) or ``--sources`` (the chunks of a
    JSONL file of ``{"text": …}`` rows, each checked); a file of the other kind is told which flag fits."""
    from rcstat.io import read_records, read_text
    from rcstat.schemas import Chunk

    if getattr(args, "sources", None):
        try:
            records = read_records(args.sources, Chunk)
        except RCStatError as err:
            if "malformed JSON" not in str(err):
                raise
            raise RCStatError(
                f'{err}; --sources takes JSONL, one {{"text": …}} per line (plain text goes to --context)'
            ) from None
        records.done()
        return [row.text for _, row in records.rows]
    path = args.context
    if path != "-" and not Path(path).exists():
        sentence = " " in path.strip()  # most likely the text itself, given where its file goes
        raise RCStatError(
            f"{path}: no such file; --context takes a file path, or - for standard input"
            + (", not the text itself" if sentence else "")
        )
    return read_text(path)


# ---- output ------------------------------------------------------------------------------------


def check_output(output: str | None, option: str = "output", directory: bool = False) -> None:
    """Before any long work starts: refuse an output path that cannot be written (a file, or a
    directory of outputs with ``directory``), naming the flag."""
    from rcstat.io import check_output_dir, check_output_file

    if output is None:
        return
    try:
        (check_output_dir if directory else check_output_file)(output)
    except RCStatError as err:
        raise RCStatError(str(err), option=option) from None


def emit(text: str, output: str | None) -> None:
    """Print, or write the file whole (never half-written)."""
    if output is None:
        print(text)
        return
    from rcstat.io import write_atomic

    write_atomic(Path(output), (text + "\n").encode())
    say(f"wrote {output}")


# ---- errors ------------------------------------------------------------------------------------


def flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of ``parser`` and its sub-commands."""
    found = set()
    for action in parser._actions:
        found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= flags(sub)
    return found


def describe(err: RCStatError, known: set[str]) -> str:
    """The library's message, with the flag (or the hint) for the option it names."""
    message = str(err)
    option = getattr(err, "option", None)
    if option is None:
        return message
    flag = "--" + option.replace("_", "-")
    if flag in known and flag not in message:
        return f"{message} ({flag})"
    return f"{message}; {HINTS[option]}" if option in HINTS else message


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """rcstat's warnings as one line on stderr (``rcstat: warning: …``); others as Python shows them."""
    from rcstat.errors import RCStatWarning

    if issubclass(category, RCStatWarning):
        print(f"rcstat: warning: {message}", file=sys.stderr, flush=True)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line), end="", file=sys.stderr)
