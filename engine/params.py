"""The contract every tool follows: parameters declared once, typed inputs and results.

A tool's job kind is one torch-free module exporting `Params`, `Inputs`, `Result` and
`run(inputs, params, out_dir, progress) -> Result` (torch is imported inside `run`). Each
parameter's default, range, choices and help are declared once with `param`; the job system
reads them with `Params.from_dict`, the CLI with `add_arguments` / `from_args`, the web tabs
with `spec`. Modelled on InvokeAI's invocation fields and transformers' HfArgumentParser.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import tempfile
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from engine.errors import UserInputError

NamedFile = tuple[str, Path]
"""(the name the user gave, the path of the file): how every tool receives its input files."""


@dataclasses.dataclass(frozen=True)
class Spec:
    """What the UI and the CLI need to know of one parameter."""

    name: str
    default: Any
    help: str
    label: str
    ge: float | None = None
    le: float | None = None
    choices: tuple[Any, ...] | None = None


def param(default: Any, help: str, *, ge: float | None = None, le: float | None = None,
          choices: tuple[Any, ...] | None = None, label: str | None = None) -> Any:
    """A parameter field: its default and what is accepted, in one place.

    `ge`/`le` bound numbers (and the length of lists), `choices` lists the accepted strings;
    a mutable default (list) is copied per instance.
    """
    metadata = {"help": help, "ge": ge, "le": le, "choices": choices, "label": label}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _describe(kind: Any) -> str:
    if kind is bool:
        return "true or false"
    if kind is int:
        return "a whole number"
    if kind is float:
        return "a number"
    if kind is str:
        return "text"
    if typing.get_origin(kind) in (list, tuple):
        return "a list of " + _items(kind)
    return str(kind)


def _items(kind: Any) -> str:
    """What the items of the list type `kind` are, plural; numbers in a list are finite, as one number is."""
    item = typing.get_args(kind)[0]
    return "finite numbers" if item is float else _describe(item).removeprefix("a ") + "s"


def _coerce(kind: Any, value: Any) -> Any:
    """`value` (from JSON, a form or a command line) as `kind`; ValueError if it is not one."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(kind)
        if value is None or (value == "" and type(None) in members):
            if type(None) in members:
                return None
            raise ValueError
        for member in sorted((m for m in members if m is not type(None)), key=lambda m: m is str):  # text last
            with contextlib.suppress(ValueError, TypeError):
                return _coerce(member, value)
        raise ValueError
    if origin is typing.Literal:
        if value in typing.get_args(kind):
            return value
        raise ValueError
    if origin in (list, tuple):
        items = [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError
        (item_kind, *_rest) = typing.get_args(kind) or (Any,)
        coerced = [_coerce(item_kind, item) for item in items]
        return tuple(coerced) if origin is tuple else coerced
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.strip().lower() in ("true", "1", "yes")
        raise ValueError
    if kind is int:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            return int(value.strip())
        raise ValueError
    if kind is float:
        if isinstance(value, bool):
            raise ValueError
        number = float(value.strip() if isinstance(value, str) else value)
        if not math.isfinite(number):
            raise ValueError
        return number
    if kind is str:
        if isinstance(value, str):
            return value
        raise ValueError
    if kind is Any:
        return value
    raise TypeError(f"unsupported parameter type {kind}")


@dataclasses.dataclass(frozen=True)
class Params:
    """Base of every tool's parameters: a frozen dataclass whose fields are declared with `param`.

    Building one checks every field (type, range, choices); a bad value raises UserInputError
    naming the field and what is accepted. `check` adds rules that involve several fields.
    """

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            object.__setattr__(self, field.name, self._checked(field, hints[field.name], value))
        self.check()

    def check(self) -> None:
        """Rules across fields; override and raise UserInputError naming the fields."""

    def presets(self) -> tuple[str, ...]:
        """The model presets a run with these parameters loads: a submit refuses one whose weights are missing on a
        machine that downloads none (`engine.weights.check_runnable`). None by default."""
        return ()

    def saved_model(self) -> str | None:
        """The saved fine-tuned model a run uses, by name (None for none; "" when one is needed and none named):
        a submit refuses one its owner has not, and its base preset's weights are needed too."""
        return None

    def check_saved_model(self, meta: Mapping[str, Any], files: Mapping[str, Sequence[NamedFile]]) -> None:
        """Refuse at submit a saved model (its model.json `meta`, found for the job's owner) that these parameters or
        `files` cannot use; override where a tool has such a rule."""

    def check_inputs(self, files: Mapping[str, Sequence[NamedFile]]) -> None:
        """Refuse at submit, before anything is stored, input files these parameters cannot work with (`files`:
        (name, path) of those given per role, a zip as one, not yet read); override where a tool has such a rule."""

    @classmethod
    def _checked(cls, field: dataclasses.Field, kind: Any, value: Any) -> Any:
        spec, given = cls.spec(field.name), value
        try:
            value = _coerce(kind, value)
        except (ValueError, TypeError, OverflowError):  # OverflowError: an integer past the float range
            raise UserInputError(f"{field.name}: {_accepted(kind, spec)}, not {_shown(value)}.") from None
        measured = len(value) if isinstance(value, list | tuple | str) and not spec.choices else value
        numeric = isinstance(measured, int | float) and not isinstance(measured, bool)
        if numeric and ((spec.ge is not None and measured < spec.ge) or (spec.le is not None and measured > spec.le)):
            shown = given if isinstance(value, list | tuple) else value  # a list as typed: "1,2,3", not (1.0, 2.0, 3.0)
            raise UserInputError(f"{field.name}: {_accepted(kind, spec)}, not {_shown(shown)}.")
        if spec.choices is not None and value is not None and value not in spec.choices:
            raise UserInputError(f"{field.name}: {_accepted(kind, spec)}, not {_shown(value)}.")
        return value

    @classmethod
    def spec(cls, name: str) -> Spec:
        field = next((f for f in dataclasses.fields(cls) if f.name == name), None)
        if field is None:
            raise KeyError(f"{cls.__qualname__} has no parameter {name!r}")
        meta = field.metadata
        default = field.default_factory() if field.default is dataclasses.MISSING else field.default
        return Spec(name, default, meta.get("help", ""), meta.get("label") or name.replace("_", " ").capitalize(),
                    meta.get("ge"), meta.get("le"), meta.get("choices"))

    @classmethod
    def specs(cls) -> list[Spec]:
        return [cls.spec(field.name) for field in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None = None, **overrides: Any) -> Self:
        """Parameters from JSON-like values (a job's record, an API call, a form); missing ones take
        their default, unknown names are refused with the list of accepted ones."""
        given = {**(values or {}), **overrides}
        names = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise UserInputError(f"Unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                                 f"accepted: {', '.join(names)}.")
        return cls(**given)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (tuples as lists), as stored in a job's record."""
        return {field.name: _jsonable(getattr(self, field.name)) for field in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)


def _jsonable(value: Any) -> Any:
    """Values as JSON holds them: dataclasses and dicts by field, tuples as lists, paths as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _jsonable(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _accepted(kind: Any, spec: Spec) -> str:
    if spec.choices is not None:
        return "one of " + ", ".join(str(choice) for choice in spec.choices)
    members = [m for m in typing.get_args(kind) if m is not type(None)] if typing.get_origin(kind) in (
        typing.Union, types.UnionType) else [kind]
    text = " or ".join(_describe(m) for m in members)
    if typing.get_origin(kind) is typing.Literal:
        text = "one of " + ", ".join(str(v) for v in typing.get_args(kind))
    sequences = [m for m in members if typing.get_origin(m) in (list, tuple)]
    if sequences and spec.ge is not None and spec.ge == spec.le:  # a fixed length: "exactly 4", not "from 4 to 4"
        return f"exactly {spec.ge:g} {_items(sequences[0])} ({spec.help})"
    if spec.ge is not None and spec.le is not None:
        text += f" from {spec.ge:g} to {spec.le:g}"
    elif spec.ge is not None:
        text += f" of at least {spec.ge:g}"
    elif spec.le is not None:
        text += f" of at most {spec.le:g}"
    if any(m is list or typing.get_origin(m) in (list, tuple) for m in members) and (spec.ge or spec.le):
        text += " items"
    return text


def add_arguments(parser: argparse.ArgumentParser, params: type[Params], skip: tuple[str, ...] = ()) -> None:
    """One `--option` per parameter (dashes for underscores), its help naming the default and the range;
    values are parsed and checked by `from_args`, so the CLI accepts exactly what a job accepts."""
    for spec in params.specs():
        if spec.name in skip:
            continue
        option = "--" + spec.name.replace("_", "-")
        accepted = f" ({', '.join(map(str, spec.choices))})" if spec.choices else ""
        bounds = "" if spec.ge is None and spec.le is None else f" [{spec.ge if spec.ge is not None else ''}.." \
                                                                 f"{spec.le if spec.le is not None else ''}]"
        default = f"; default {spec.default}" if spec.default not in (None, "", []) else ""
        if isinstance(spec.default, bool):
            parser.add_argument(option, dest=spec.name, action=argparse.BooleanOptionalAction, default=None,
                                help=f"{spec.help}{default}")
        else:
            parser.add_argument(option, dest=spec.name, default=None, help=f"{spec.help}{accepted}{bounds}{default}")


def from_args(params: type[Params], args: argparse.Namespace, **overrides: Any) -> Params:
    """The parameters given on the command line (the others keep their defaults), checked as a job's are."""
    given = {spec.name: getattr(args, spec.name) for spec in params.specs()
             if getattr(args, spec.name, None) is not None}
    return params.from_dict(given, **overrides)


@dataclasses.dataclass
class Result:
    """Base of every tool's result: typed fields, plus the names of the files written in `out_dir`
    (in the order they are shown). `to_json` is what a job's record keeps as its result."""

    outputs: list[str] = dataclasses.field(default_factory=list, kw_only=True)

    def to_json(self) -> dict[str, Any]:
        return {field.name: _jsonable(getattr(self, field.name)) for field in dataclasses.fields(self)
                if field.name != "outputs"}


def check_one(given: Sequence[NamedFile], message: str, optional: bool = False) -> None:
    """Refuse a role that takes one file (or none, if `optional`) given another number of them: at submit, where
    a job would fail at once, and in the run (the CLI); `message` says what is accepted."""
    if len(given) > 1 or (not given and not optional):
        raise UserInputError(f"{message.rstrip('.')}; {len(given) or 'none'} given.")


@dataclasses.dataclass(frozen=True)
class Inputs:
    """Base of every tool's input files: one field per role, each a list of `NamedFile`."""

    @classmethod
    def from_roles(cls, files_of: Callable[[str], list[NamedFile]]) -> Self:
        """Inputs read role by role (a job's stored files: `files_of(role)`)."""
        return cls(**{field.name: list(files_of(field.name)) for field in dataclasses.fields(cls)})


@contextlib.contextmanager
def scratch(out_dir: Path) -> Iterator[Path]:
    """A scratch folder beside `out_dir` (extracted zips, decoded frames), removed when the run ends."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".scratch-", dir=out_dir.parent) as folder:
        yield Path(folder)
