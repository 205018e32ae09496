"""Work started before the command line is parsed: the ``rvforge_prestart`` hook.

Start-up (Python, typer, the plugins, parsing) takes a few tenths of a second before a
command knows what it will launch. A plugin that can guess it from the words of the command
line starts it meanwhile (rvforge-qemu restores the guest the same command line restored
last time) and returns a :class:`Prestart` handle. The command's context holds the handles
(:attr:`rvforge.BuildContext.prestarted`); the component that finds its guess right takes
its handle (:meth:`rvforge.BuildContext.take_prestarted`) and uses what was started, and
every handle nobody took is closed when the command ends, undoing the work. A guess is
only ever a head start: what runs is what the parsed command asks for.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence

GLOBAL_OPTIONS_WITH_VALUE = frozenset({"--log-format"})
"""rvforge's global options that take the next word as their value."""
ENVIRONMENT_PREFIXES = ("RVFORGE_", "XDG_")
ENVIRONMENT_NAMES = frozenset({"HOME", "PATH", "SOURCE_DATE_EPOCH"})
"""What of the environment may change what a command launches (the cache, the config, the
QEMU found on PATH...)."""
DISABLE_VARIABLE = "RVFORGE_NO_PRESTART"
"""Set (to ``1``): no hook is called."""


class Prestart(ABC):
    """What a plugin started before the command line was parsed (see the module)."""

    @abstractmethod
    def close(self) -> None:
        """Undo what was started: nobody took it. Called once, also on Ctrl-C."""


def command_word(args: Sequence[str]) -> str | None:
    """The command ``args`` (the words after ``rvforge``) name: the first word that is
    neither a global option nor an option's value."""
    words = iter(args)
    for word in words:
        if word in GLOBAL_OPTIONS_WITH_VALUE:
            next(words, None)
        elif word == "--":
            return None
        elif not word.startswith("-"):
            return word
    return None


def invocation_digest(args: Sequence[str], cwd: str, environ: dict[str, str]) -> str:
    """SHA-256 naming a command line as typed in a directory and an environment, without
    what follows ``--`` (``rvforge run IMG -- CMD``: the guest's command changes from run
    to run, what is launched does not)."""
    words = list(args)
    if "--" in words:
        words = words[:words.index("--")]
    env = {k: v for k, v in environ.items()
           if k.startswith(ENVIRONMENT_PREFIXES) or k in ENVIRONMENT_NAMES}
    text = json.dumps({"args": words, "cwd": cwd, "env": env}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def prestart(args: Sequence[str]) -> list[Prestart]:
    """Call ``rvforge_prestart`` for the command line ``args``; the handles returned. A
    plugin that fails here is left for the command to report (it loads the plugins again).
    No hook is called for a command line that asks for help, nor with
    ``$RVFORGE_NO_PRESTART`` set (to ``1``)."""
    command = command_word(args)
    if command is None or "--help" in args or "-h" in args:
        return []
    from rvforge.context import default_cache_dir
    from rvforge.errors import RvforgeError
    from rvforge.log import loading_plugins
    from rvforge.plugins import env_flag, get_plugin_manager

    if env_flag(DISABLE_VARIABLE):
        return []
    try:
        with loading_plugins():
            hook = get_plugin_manager().hook.rvforge_prestart
            handles = hook(command=command, invocation=invocation_digest(
                args, os.getcwd(), dict(os.environ)), cache_dir=default_cache_dir())
    except (RvforgeError, OSError):
        return []
    return [h for h in handles if isinstance(h, Prestart)]
