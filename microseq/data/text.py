"""Text that ships with every Python, and the user's own text files.

Nothing is downloaded. The default corpus is the help text behind pydoc's
topics (`pydoc_data.topics`: about 465k characters of English prose with
some code in it); `stdlib_docstrings` gathers more prose from the standard
library's own docstrings. A lesson run on the user's file goes through
`load_text(path)`, which turns every reading problem into one clear error.
"""
import importlib
import inspect
import re
from pathlib import Path
from pydoc_data.topics import topics as _PYDOC_TOPICS


class DataError(ValueError):
    """Input the data package cannot use: an unreadable file, a symbol
    missing from a vocabulary, an impossible request to a generator.
    The message names the file, symbol or argument at fault."""


def load_text(path=None, min_chars=1):
    """The text of the UTF-8 file at `path`, or the default corpus.

    With no path this is `pydoc_topics()`. Line endings are normalised to
    "\\n" and a leading byte-order mark is dropped, so the same text saved on
    Windows gives the same vocabulary. A missing, unreadable or non-UTF-8
    file raises DataError naming the path (and, for bad bytes, the line and
    the byte's offset within that line); so does a text shorter than
    `min_chars` characters (the size a model's batches need) or one that
    repeats a single character (there is nothing to predict).
    """
    if path is None:
        return pydoc_topics()
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: {_where(raw, e.start)}") from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DataError(f"{path}: file is empty (there is no text to learn from)")
    if len(text) < min_chars:
        raise DataError(f"{path}: {len(text):,} characters, too short: at least {min_chars:,} "
                        "are needed (give a longer file)")
    if len(set(text.strip())) == 1:
        raise DataError(f"{path}: the text is one character, {text.strip()[0]!r}, repeated: "
                        "there is nothing to learn from (give a text with more than one "
                        "character)")
    return text


def _where(raw, pos):
    """Describe the undecodable byte at `pos` the way an editor would find it."""
    line_start = raw.rfind(b"\n", 0, pos) + 1
    line = raw.count(b"\n", 0, pos) + 1
    offset = pos - line_start
    return f"line {line}: not UTF-8 (byte 0x{raw[pos]:02x} at offset {offset} in the line)"


def pydoc_topics():
    """The pydoc topic help texts joined by blank lines (about 465k characters).

    Topics are taken in sorted order so the corpus, and every vocabulary
    built from it, is the same on every run.
    """
    return "\n\n".join(_PYDOC_TOPICS[key].strip() for key in sorted(_PYDOC_TOPICS))


# Pure-Python modules present in every Python from 3.10 on, none of which
# prints, opens a window or starts a thread when imported.
_STDLIB_MODULES = (
    "abc", "argparse", "ast", "base64", "bisect", "calendar", "collections",
    "contextlib", "copy", "csv", "dataclasses", "difflib", "email.message",
    "enum", "fractions", "ftplib", "functools", "getopt", "gettext", "glob",
    "gzip", "heapq", "hmac", "html.parser", "http.client", "inspect",
    "ipaddress", "json", "logging", "mailbox", "mimetypes", "numbers",
    "optparse", "pathlib", "pickle", "pprint", "queue", "random", "shlex",
    "shutil", "smtplib", "statistics", "string", "tarfile", "textwrap",
    "threading", "timeit", "tokenize", "traceback", "urllib.parse",
    "urllib.request", "uuid", "warnings", "zipfile",
)


def stdlib_docstrings(max_chars=None):
    """Docstrings of a fixed list of standard-library modules, joined by blank lines.

    For each module: its own docstring, then those of its public classes
    (with their public methods) and functions, in sorted name order. A
    docstring seen before is skipped, so text inherited by many methods
    counts once. `max_chars` cuts the result to at most that many
    characters, without importing more modules than needed.
    """
    parts, seen, total = [], set(), 0
    for doc in _docstrings():
        if doc in seen:
            continue
        seen.add(doc)
        parts.append(doc)
        total += len(doc) + 2
        if max_chars is not None and total >= max_chars:
            break
    return "\n\n".join(parts)[:max_chars]


def _docstrings():
    """Yield the cleaned docstrings of `_STDLIB_MODULES`, in a fixed order."""
    for name in _STDLIB_MODULES:
        module = importlib.import_module(name)
        yield from _clean(module.__doc__)
        for obj in _public_members(module, name):
            yield from _clean(obj.__doc__)
            if inspect.isclass(obj):
                for method in _public_members(obj, name):
                    yield from _clean(method.__doc__)


def _public_members(namespace, module_name):
    """Public classes and functions defined in `module_name` (or a submodule
    of it), sorted by name: names a module merely imports are left out."""
    members = []
    for name, obj in sorted(vars(namespace).items()):
        owner = getattr(obj, "__module__", None) or ""
        if (not name.startswith("_")
                and (inspect.isclass(obj) or inspect.isfunction(obj))
                and (owner == module_name or owner.startswith(module_name + "."))):
            members.append(obj)
    return members


def _clean(doc):
    """The docstring dedented, as a one-item list, or nothing if it is blank."""
    doc = inspect.cleandoc(doc) if isinstance(doc, str) else ""
    return [doc] if doc else []


_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def words(text):
    """Lowercase word tokens of `text`: runs of ASCII letters, keeping one
    inner apostrophe ("don't", "python's"); digits and punctuation are dropped."""
    return _WORD.findall(text.lower())
