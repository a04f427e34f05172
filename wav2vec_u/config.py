"""Typed, nested configs: dataclasses loaded from YAML with strict keys and dotted overrides.

Every component owns a dataclass with its defaults (the one place a default lives). A
command builds its config from an optional YAML file plus ``a.b=value`` overrides::

    from wav2vec_u.config import load_config
    cfg = load_config(GanConfig, "configs/gan/w2vu.yaml", ["trainer.max_updates=100"])
    save_config(cfg, outdir / "config.yaml")

Unknown keys and values of the wrong type raise :class:`ConfigError` naming the dotted key,
so ``trainer.max_update=100`` (a typo) fails instead of being silently ignored. A field may
declare the range its value must lie in, beside its default, and every config this loader
builds is checked against it (a batch size of 0 fails here, not as a torch error an hour later)::

    @dataclass
    class TrainerConfig:
        max_updates: int = at_least(1, default=150_000)
        dropout: float = in_range(0.0, 1.0, default=0.1)

The error names the key, the value, the rule and where the value came from (the YAML file or
the command line). Numbers follow YAML 1.2: ``1e-4`` is a float, as everyone writes it.
A renamed key keeps working under its old spelling, with a warning (:func:`renamed`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import types
import typing
import warnings
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from wav2vec_u.io import atomic_write_text

T = TypeVar("T")

log = logging.getLogger("wav2vec_u.config")


class ConfigError(ValueError):
    """A config file or override that does not fit the typed schema; ``key`` is the dotted key when known."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


# ---------------------------------------------------------------------------------------------
# YAML with YAML 1.2 numbers
# ---------------------------------------------------------------------------------------------

class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading floats as YAML 1.2 does.

    PyYAML implements YAML 1.1, where a float needs a dot: ``1e-4`` and ``1E5`` are strings
    there, so ``optim.lr_g=1e-4`` failed with "expected float". YAML 1.2 (and every other
    language) reads them as numbers.
    """


_FLOAT_WITHOUT_DOT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_WITHOUT_DOT, list("-+0123456789."))


def yaml_load(text: str) -> Any:
    """``yaml.safe_load`` with YAML 1.2 floats (the one YAML reader of configs and overrides)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


# ---------------------------------------------------------------------------------------------
# Constraints declared beside each field
# ---------------------------------------------------------------------------------------------

_RULE = "wav2vec_u.rule"
_RENAMED = "__config_renamed__"


@dataclasses.dataclass(frozen=True)
class Rule:
    """Bounds on a number (on each number of a list or tuple); None = no bound on that side."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def holds(self, x: float) -> bool:
        if isinstance(x, float) and math.isnan(x):
            return False
        return ((self.ge is None or x >= self.ge) and (self.gt is None or x > self.gt)
                and (self.le is None or x <= self.le) and (self.lt is None or x < self.lt))

    def describe(self) -> str:
        lo = f"[{_num(self.ge)}" if self.ge is not None else f"({_num(self.gt)}" if self.gt is not None else ""
        hi = f"{_num(self.le)}]" if self.le is not None else f"{_num(self.lt)})" if self.lt is not None else ""
        if lo and hi:
            return f"must be in {lo}, {hi}"
        if lo:
            return f"must be {'>=' if self.ge is not None else '>'} {lo[1:]}"
        if hi:
            return f"must be {'<=' if self.le is not None else '<'} {hi[:-1]}"
        return "any number"


def _num(x: float | None) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _bounded(rule: Rule, default: Any, default_factory: Any) -> Any:
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={_RULE: rule})
    return dataclasses.field(default=default, metadata={_RULE: rule})


_NO = dataclasses.MISSING


def at_least(n: float, *, default: Any = _NO, default_factory: Any = _NO) -> Any:
    """A field whose value must be >= ``n`` (counts, sizes, intervals: ``at_least(1, default=100)``)."""
    return _bounded(Rule(ge=n), default, default_factory)


def positive(*, default: Any = _NO, default_factory: Any = _NO) -> Any:
    """A field whose value must be > 0 (learning rates, durations, temperatures)."""
    return _bounded(Rule(gt=0), default, default_factory)


def non_negative(*, default: Any = _NO, default_factory: Any = _NO) -> Any:
    """A field whose value must be >= 0 (penalty weights, margins; 0 often means "off")."""
    return _bounded(Rule(ge=0), default, default_factory)


def in_range(lo: float, hi: float, *, default: Any = _NO, default_factory: Any = _NO, lo_open: bool = False,
             hi_open: bool = False) -> Any:
    """A field whose value must lie in [lo, hi]; ``lo_open``/``hi_open`` exclude that end (dropout < 1)."""
    rule = Rule(ge=None if lo_open else lo, gt=lo if lo_open else None,
                le=None if hi_open else hi, lt=hi if hi_open else None)
    return _bounded(rule, default, default_factory)


def field_rule(f: dataclasses.Field) -> Rule | None:
    return f.metadata.get(_RULE)


def _check_rule(value: Any, rule: Rule, key: str) -> None:
    items = value if isinstance(value, (list, tuple)) else [value]
    for x in items:
        if isinstance(x, (int, float)) and not isinstance(x, bool) and not rule.holds(x):
            raise ConfigError(f"{key} = {value!r}: {rule.describe()}", key=key)


# ---------------------------------------------------------------------------------------------
# Renamed keys
# ---------------------------------------------------------------------------------------------

def renamed(**old_to_new: str) -> Any:
    """Class decorator: keys of this config that were renamed, still read under the old name.

    ``@renamed(self_train="ctc")`` over a config dataclass makes ``self_train:`` in a YAML file
    and ``self_train.epochs=3`` on the command line mean ``ctc``, with a warning naming both
    spellings, so files and scripts written for the old name keep working.
    """

    def wrap(cls: type[T]) -> type[T]:
        setattr(cls, _RENAMED, {**getattr(cls, _RENAMED, {}), **old_to_new})
        return cls

    return wrap


def _warn_renamed(old: str, new: str, where: str) -> None:
    msg = f"config key '{old}' is deprecated, use '{new}'{where}"
    log.warning("%s", msg)
    warnings.warn(msg, DeprecationWarning, stacklevel=3)


def _rename_keys(cls: type, data: dict[str, Any], prefix: str, where: str = "") -> dict[str, Any]:
    """``data`` with the old spellings of ``cls``'s renamed keys replaced by the new ones."""
    aliases = getattr(cls, _RENAMED, {})
    if not aliases or not any(old in data for old in aliases):
        return data
    out = dict(data)
    for old, new in aliases.items():
        if old not in out:
            continue
        if new in out:
            raise ConfigError(f"both '{prefix}{old}' (the old spelling) and '{prefix}{new}' are set; keep only "
                              f"'{prefix}{new}'", key=prefix + new)
        _warn_renamed(prefix + old, prefix + new, where)
        out[new] = out.pop(old)
    return out


def _section_type(tp: Any) -> Any:
    """The dataclass a field's annotation names (through Optional), else None."""
    if dataclasses.is_dataclass(tp):
        return tp
    if get_origin(tp) in (Union, types.UnionType):
        found = [a for a in get_args(tp) if dataclasses.is_dataclass(a)]
        return found[0] if len(found) == 1 else None
    return None


def _rename_yaml(cls: type, data: Any, prefix: str, where: str) -> Any:
    """Rename old keys at every level of a YAML mapping (so an override can then use the new spelling)."""
    if not isinstance(data, dict):
        return data
    data = _rename_keys(cls, data, prefix, where)
    hints = typing.get_type_hints(cls)
    for name, value in list(data.items()):
        sub = _section_type(hints.get(name))
        if sub is not None and isinstance(value, dict):
            data[name] = _rename_yaml(sub, value, f"{prefix}{name}.", where)
    return data


def _rename_path(cls: type, path: list[str]) -> list[str]:
    """An override's key path with old spellings replaced (warning once per renamed part)."""
    out: list[str] = []
    tp: Any = cls
    for part in path:
        aliases = getattr(tp, _RENAMED, {}) if tp is not None else {}
        if part in aliases:
            old = ".".join([*out, part])
            part = aliases[part]
            _warn_renamed(old, ".".join([*out, part]), " (on the command line)")
        out.append(part)
        is_section = tp is not None and dataclasses.is_dataclass(tp)
        tp = _section_type(typing.get_type_hints(tp).get(part)) if is_section else None
    return out


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert only where lossless (int -> float)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}", key=key)
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(a) for a in get_args(tp))
            raise ConfigError(f"{key}: expected one of {choices}, got {value!r}", key=key)
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}", key=key)
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{key}: expected {len(args)} items, got {len(value)}", key=key)
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}", key=key)
        kt, vt = get_args(tp) or (Any, Any)
        return {_coerce(k, kt, key): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping for {tp.__name__}, got {value!r}", key=key)
        return from_dict(tp, value, prefix=f"{key}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected bool (true/false), got {value!r}", key=key)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():  # 1e5 reads as a float; it is a whole number
            return int(value)
        raise ConfigError(f"{key}: expected int, got {value!r}", key=key)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected float, got {value!r}", key=key)
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected str, got {value!r}", key=key)
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise ConfigError(f"{key}: expected a path, got {value!r}", key=key)
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{key}: unsupported type {_type_name(tp)} for value {value!r}", key=key)


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys, wrong types and values outside a
    field's declared range raise ConfigError. Renamed keys are read under their old spelling."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}",
                          key=prefix.rstrip(".") or None)
    data = _rename_keys(cls, data, prefix)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"unknown config key '{prefix}{unknown[0]}' (known keys here: {known})",
                          key=prefix + unknown[0])
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            continue
        given = data[name]
        if (dataclasses.is_dataclass(hints[name]) and isinstance(given, dict)
                and f.default_factory is not dataclasses.MISSING):
            # a section given in part keeps the parent's defaults for the rest (a parent may set
            # defaults of its own for a nested config, e.g. the decipherment's HMM self-loop)
            given = _deep_merge(to_dict(f.default_factory()), given)
        kwargs[name] = value = _coerce(given, hints[name], prefix + name)
        rule = field_rule(f)
        if rule is not None:
            _check_rule(value, rule, prefix + name)
    return cls(**kwargs)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-data form of a config (paths and tuples become strings and lists) for YAML/JSON."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return plain(cfg)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=3"`` -> (["a", "b"], 3); the value is parsed as YAML (so ``true``, ``[1,2]`` work)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key.path=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str], cls: type | None = None) -> dict[str, Any]:
    """Set dotted keys in a nested dict (creating sections); validation happens in from_dict.

    With ``cls``, renamed keys in an override's path are translated to their new spelling.
    """
    for text in overrides:
        path, value = parse_override(text)
        _set_path(data, _rename_path(cls, path) if cls is not None else path, value, text)
    return data


def _set_path(data: dict[str, Any], path: list[str], value: Any, text: str) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override '{text}': '{part}' is not a section", key=".".join(path))
        node = child
    node[path[-1]] = value


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping; ``FILE#a.b`` reads the section ``a.b`` of FILE (a recipe gives each command
    its section of one composite config, e.g. ``configs/demo/en.yaml#train.gan``)."""
    text = str(path)
    if "#" in text and not Path(text).is_file():
        file, _, section = text.partition("#")
        data = load_yaml(file)
        for part in section.split(".") if section else []:
            if not isinstance(data, dict):
                raise ConfigError(f"config file {file}: {section!r} is not a section (no mapping at {part!r})")
            if part not in data:  # a composite config leaves out the sections that keep their defaults
                logging.getLogger(__name__).info("config file %s has no section %r: its defaults apply", file, section)
                return {}
            data = data[part]
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"section {section!r} of {file} is not a mapping")
        return data
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at top level")
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Defaults of ``cls``, updated by the YAML file at ``path``, then by ``overrides``.

    An error says where the offending value came from: the YAML file, or the command line
    (the overrides), so a bad ``trainer.max_updates=0`` is not blamed on the file.
    """
    data = load_yaml(path) if path else {}
    data = _rename_yaml(cls, data, "", f" (in {path})")
    set_on_command_line = []
    for text in overrides or []:
        key_path, value = parse_override(text)
        key_path = _rename_path(cls, key_path)
        _set_path(data, key_path, value, text)
        set_on_command_line.append(key_path)
    try:
        return from_dict(cls, data)
    except ConfigError as exc:
        key = _strip_indices(exc.key) if exc.key else None
        if key is not None and any(_overlaps(key.split("."), p) for p in set_on_command_line):
            where = " (from the command line)"
        elif path:
            where = f" (from {path})"
        else:
            where = ""
        raise ConfigError(f"{exc}{where}", key=exc.key) from None


def _strip_indices(key: str) -> str:
    return re.sub(r"\[\d+\]", "", key)


def _overlaps(a: list[str], b: list[str]) -> bool:
    """One dotted path lies inside the other (an override of a section covers its keys)."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def dump_config(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML, atomically."""

    return atomic_write_text(path, dump_config(cfg))


def add_config_arguments(parser: Any, default_config: str | Path | None = None) -> None:
    """``--config FILE`` and trailing ``key.path=value`` overrides, shared by every command."""
    parser.add_argument("--config", type=Path, default=default_config,
                        help=f"YAML config file (default: {default_config or 'built-in defaults'})")
    parser.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE",
                        help="dotted config overrides, e.g. trainer.max_updates=100")


def add_tracking_arguments(parser: Any, tracked: bool = True) -> None:
    """``--wandb`` / ``--no-wandb`` (``args.wandb``), on every command so one script can pass them to all.

    Commands with a Tracker log to Weights & Biases when it is installed, unless ``--no-wandb``;
    the others (``tracked=False``) accept both flags and ignore them.
    """
    if tracked:
        on, off = ("log to Weights & Biases when it is installed (the default)",
                   "do not log to Weights & Biases even when it is installed")
    else:
        on = off = "accepted so scripts can pass it to every command; this command does not log to Weights & Biases"
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--wandb", dest="wandb", action="store_true", help=on)
    group.add_argument("--no-wandb", dest="wandb", action="store_false", help=off)
    parser.set_defaults(wandb=tracked)


def config_from_args(cls: type[T], args: Any) -> T:
    return load_config(cls, getattr(args, "config", None), getattr(args, "overrides", []))


def add_stage_arguments(parser: Any, force: bool = True) -> None:
    """``--no-progress`` (sets ``args.progress``) and, for cached stages, ``--force``."""
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    if force:
        parser.add_argument("--force", action="store_true", help="recompute even if the outputs are current")
