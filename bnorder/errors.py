"""User-facing errors: one line that names the field, the bad value, the valid choices and the
closest match. The CLI prints ``str(error)`` on stderr and exits with the error's ``exit_code``:
2 when the command line or a file it names is wrong (:class:`ConfigError`), 1 when a correct
command could not be carried out (:class:`DataError`, a failed write)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import ClassVar

__all__ = ["BnorderError", "ConfigError", "DataError", "closest"]


class BnorderError(Exception):
    """Base of every error caused by user input or the user's environment (not a bug)."""

    # 1, as for any failed run: only an error known to be bad input claims 2, the usage code,
    # so that a script never takes a full disk or a lost download for its own mistake
    exit_code: ClassVar[int] = 1


def closest(
    value: object, choices: Iterable[str], aliases: dict[str, str] | None = None
) -> str | None:
    """The valid choice nearest to ``value`` (also matched against ``aliases``, which map other
    spellings to a choice), or None when nothing is close."""
    names = {c.lower(): c for c in choices} | {k.lower(): v for k, v in (aliases or {}).items()}
    text = str(value).lower()
    for candidate in (text, text.replace("-", "").replace("_", "")):
        matches = difflib.get_close_matches(candidate, list(names), n=1, cutoff=0.6)
        if matches:
            return names[matches[0]]
    return None


class ConfigError(BnorderError, ValueError):
    """A bad value for a named field.

    The message reads ``<field>: <problem> <value>; did you mean <x>? valid: a, b, c``; a
    ``problem`` containing ``{value}`` gets the value there instead of at its end.

    Args:
        field: where the value came from, e.g. ``ordering`` or ``sweeps/grid.yaml: orderings[2]``.
        value: the value received.
        problem: what is wrong, e.g. ``unknown op``; the value is quoted after it.
        choices: valid values, listed and used for the suggestion.
        hint: one more clause on how to fix it.
        aliases: other accepted spellings -> the choice they stand for (for the suggestion).
    """

    exit_code: ClassVar[int] = 2  # a usage error: what was given is wrong, retrying cannot help

    def __init__(
        self,
        field: str,
        value: object,
        problem: str = "invalid value",
        *,
        choices: Iterable[str] = (),
        hint: str | None = None,
        aliases: dict[str, str] | None = None,
    ) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        self.choices = tuple(choices)
        self.hint = hint
        self.aliases = dict(aliases or {})
        super().__init__(self._format())

    def _format(self) -> str:
        if "{value}" in self.problem:
            text = f"{self.field}: " + self.problem.replace("{value}", repr(self.value))
        else:
            text = f"{self.field}: {self.problem} {self.value!r}"
        suggestion = closest(self.value, self.choices, self.aliases) if self.choices else None
        if suggestion is not None and suggestion != str(self.value):
            text += f"; did you mean {suggestion!r}?"
        if self.choices:
            text += f"{';' if suggestion is None else ''} valid: {', '.join(self.choices)}"
        if self.hint:
            text += f"; {self.hint}"
        return text

    def __reduce__(self) -> tuple:
        # picklable and copyable (Ray ships a trial's exception back to the driver)
        return (
            _config_error,
            (self.field, self.value, self.problem, self.choices, self.hint, self.aliases),
        )

    def at(self, field: str) -> ConfigError:
        """The same error re-labelled with another field name (e.g. a CLI flag or a YAML path)."""
        return ConfigError(
            field,
            self.value,
            self.problem,
            choices=self.choices,
            hint=self.hint,
            aliases=self.aliases,
        )


def _config_error(field, value, problem, choices, hint, aliases) -> ConfigError:
    return ConfigError(field, value, problem, choices=choices, hint=hint, aliases=aliases)


class DataError(BnorderError):
    """A dataset that cannot be found, read or downloaded; the message says where bnorder looked."""

    exit_code: ClassVar[int] = 1  # the command was right; the data root or network was not
