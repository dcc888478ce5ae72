"""Build command-line flags from a class's constructor, as Lightning 1.x did.

Types come from the constructor's type hints, help text from its Google-style docstring
(``Args:`` block), defaults from its signature. ``Trainer`` and ``DataModule`` expose these as
classmethods; any user class can do the same in two lines::

    parser = conveyor.argparse.add_argparse_args(MyModel, parser)
    model = conveyor.argparse.from_argparse_args(MyModel, args)

Environment variables ``CONVEYOR_<CLASS>_<ARGUMENT>`` (see :func:`parse_env_variables`) give
``Trainer`` its defaults.
"""

from __future__ import annotations

import ast
import inspect
import os
import types as pytypes
import typing
from argparse import ArgumentParser, ArgumentTypeError, Namespace, _ArgumentGroup
from typing import Any, Callable, Dict, List, Sequence, Tuple, Type, Union, cast

__all__ = [
    "add_argparse_args",
    "from_argparse_args",
    "parse_argparser",
    "get_init_arguments_and_types",
    "parse_env_variables",
    "str_to_bool",
    "str_to_bool_or_int",
    "str_to_bool_or_str",
]

ENV_TEMPLATE = "CONVEYOR_%(cls_name)s_%(cls_argument)s"
_IGNORED_PARAMETERS = ("self", "args", "kwargs")
_ALLOWED_TYPES = (str, int, float, bool)  # the fixed order in which hinted types are kept
_TRUE_WORDS = ("y", "yes", "t", "true", "on", "1")
_FALSE_WORDS = ("n", "no", "f", "false", "off", "0")


def str_to_bool_or_str(value: str) -> Union[str, bool]:
    """A boolean word (y/yes/t/true/on/1, n/no/f/false/off/0, any case) as a bool, else the string."""
    lowered = str(value).lower()
    if lowered in _TRUE_WORDS:
        return True
    if lowered in _FALSE_WORDS:
        return False
    return value


def str_to_bool(value: str) -> bool:
    """A boolean word as a bool.

    Raises:
        ArgumentTypeError: ``value`` is not one of the accepted words (argparse exits with 2).
    """
    converted = str_to_bool_or_str(value)
    if isinstance(converted, bool):
        return converted
    raise ArgumentTypeError(
        f"invalid boolean value {value!r}: use one of {', '.join(_TRUE_WORDS + _FALSE_WORDS)}"
    )


def str_to_bool_or_int(value: str) -> Union[bool, int, str]:
    """A boolean word as a bool, else an int if it parses, else the string itself."""
    converted = str_to_bool_or_str(value)
    if isinstance(converted, bool):
        return converted
    try:
        return int(converted)
    except ValueError:
        return converted


def _gpus_allowed_type(value: str) -> Union[int, str]:
    """``gpus``: a comma list stays a string ("1,2", "0,"), anything else is an int."""
    if "," in value:
        return str(value)
    return int(value)


def _int_or_float_type(value: str) -> Union[int, float]:
    """Parameters hinted exactly ``Union[int, float]``: a float when written with a dot."""
    if "." in str(value):
        return float(value)
    return int(value)


def _precision_allowed_type(value: str) -> Union[int, str]:
    """``precision``: an int when it parses ("16"), else the string ("bf16", "16-mixed")."""
    try:
        return int(value)
    except ValueError:
        return value


def get_init_arguments_and_types(cls: Any) -> List[Tuple[str, Tuple, Any]]:
    """The constructor parameters of ``cls`` as ``(name, types, default)`` triples.

    Args:
        cls: a class (its signature excludes ``self``) or a callable such as ``cls.__init__``.

    Returns:
        One triple per parameter: ``types`` is the annotation's ``__args__`` when it has them
        (``Optional[int]`` gives ``(int, NoneType)``), else ``(annotation,)``; an unannotated
        parameter gives ``(inspect.Parameter.empty,)`` and a required one has default
        ``inspect.Parameter.empty``.
    """
    parameters = inspect.signature(cls).parameters
    triples = []
    for name, parameter in parameters.items():
        annotation = parameter.annotation
        if isinstance(annotation, str):  # postponed evaluation (from __future__ import annotations)
            annotation = _resolve_string_annotation(cls, annotation)
        try:
            types = tuple(annotation.__args__)
        except (AttributeError, TypeError):
            types = (annotation,)
        triples.append((name, types, parameter.default))
    return triples


def _resolve_string_annotation(cls: Any, annotation: str) -> Any:
    """Evaluate a string annotation in the namespace of the module defining ``cls``."""
    import sys
    import typing

    target = cast(Any, cls).__init__ if isinstance(cls, type) else cls
    module = sys.modules.get(getattr(target, "__module__", ""), None)
    namespace = dict(vars(typing))
    if module is not None:
        namespace.update(vars(module))
    try:
        return eval(annotation, namespace)  # noqa: S307 - annotations of our own classes
    except Exception:
        return annotation


def _parse_args_from_docstring(docstring: str) -> Dict[str, str]:
    """Map parameter names to their description in a Google-style ``Args:`` block."""
    block_indent = None
    current = None
    parsed: Dict[str, str] = {}
    for line in docstring.split("\n"):
        stripped = line.lstrip()
        if not stripped:
            continue
        indent = len(line) - len(stripped)
        if stripped.startswith(("Args:", "Arguments:", "Parameters:")):
            block_indent = indent + 4
        elif block_indent is None:
            continue
        elif indent < block_indent:
            break
        elif indent == block_indent:
            if ":" not in stripped:
                continue
            current, description = stripped.split(":", 1)
            current = current.split(" (", 1)[0].strip()  # "name (int): ..." style
            parsed[current] = description.lstrip()
        elif current is not None:
            parsed[current] += f" {stripped}"
    return parsed


def _is_container(symbol: Any, name: str) -> bool:
    """Whether parameter ``name`` is hinted as a parameterized container (``List[int]``...)."""
    annotation = inspect.signature(symbol).parameters[name].annotation
    if isinstance(annotation, str):
        annotation = _resolve_string_annotation(symbol, annotation)
    origin = typing.get_origin(annotation)
    if origin is None or origin is Union or origin is getattr(pytypes, "UnionType", Union):
        return False
    return isinstance(origin, type)


def _get_abbrev_qualified_cls_name(cls: Type) -> str:
    """The argument-group title for ``cls`` (Lightning's helper name): ``conveyor.<Name>`` for
    conveyor's own classes, else ``<module>.<qualname>``."""
    if cls.__module__.startswith("conveyor."):
        return f"conveyor.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _choose_type(name: str, kept: Sequence[type]) -> Tuple[Callable, Dict[str, Any]]:
    """The argparse ``type`` callable and extra keywords for one parameter."""
    extra: Dict[str, Any] = {}
    if bool in kept:
        extra.update(nargs="?", const=True)
        if len(kept) == 1:
            use_type: Callable = str_to_bool
        elif int in kept:
            use_type = str_to_bool_or_int
        elif str in kept:
            use_type = str_to_bool_or_str
        else:
            use_type = [t for t in kept if t is not bool][0]
    else:
        use_type = kept[0]
    if name in ("gpus", "tpu_cores"):
        use_type = _gpus_allowed_type
    if len(kept) == 2 and set(kept) == {int, float}:
        use_type = _int_or_float_type
    if name == "precision":
        use_type = _precision_allowed_type
    return use_type, extra


def add_argparse_args(
    cls: Type, parent_parser: ArgumentParser, *, use_argument_group: bool = True
) -> ArgumentParser:
    """Add one ``--<name>`` flag per str/int/float/bool constructor parameter of ``cls``.

    Args:
        cls: the class whose constructor describes the flags.
        parent_parser: the parser to extend (not an argument group).
        use_argument_group: add the flags to a group titled after the class and return
            ``parent_parser``; when False return a new parser with ``parent_parser`` as parent.

    Returns:
        The parser holding the new flags.

    Raises:
        RuntimeError: ``parent_parser`` is an argument group.
    """
    if isinstance(parent_parser, _ArgumentGroup):
        raise RuntimeError("Please only pass an ArgumentParser instance.")
    if use_argument_group:
        parser: Any = parent_parser.add_argument_group(_get_abbrev_qualified_cls_name(cls))
    else:
        parser = ArgumentParser(parents=[parent_parser], add_help=False)

    ignored = list(_IGNORED_PARAMETERS)
    if hasattr(cls, "get_deprecated_arg_names"):
        ignored += list(cls.get_deprecated_arg_names())

    triples: List[Tuple[str, Tuple, Any]] = []
    for symbol in (cls, cls.__init__):
        triples = [t for t in get_init_arguments_and_types(symbol) if t[0] not in ignored]
        if triples:
            break

    help_by_name = _parse_args_from_docstring(cls.__init__.__doc__ or cls.__doc__ or "")
    for name, types, default in triples:
        if _is_container(symbol, name):
            continue  # List[int], Dict[str, int]: their __args__ are element types, not the flag's
        kept = [t for t in _ALLOWED_TYPES if t in types]
        if not kept:
            continue  # List, Dict, callables, unannotated: not expressible as one flag
        use_type, extra = _choose_type(name, kept)
        parser.add_argument(
            f"--{name}",
            dest=name,
            default=default,
            type=use_type,
            help=help_by_name.get(name),
            **extra,
        )
    return parent_parser if use_argument_group else parser


def parse_argparser(cls: Type, arg_parser: Union[ArgumentParser, Namespace]) -> Namespace:
    """Parse (when given a parser) and turn bare boolean flags parsed as None into True.

    Args:
        cls: the class whose constructor describes the flags.
        arg_parser: a parser to run on ``sys.argv``, or an already parsed namespace.

    Returns:
        The namespace, with ``None`` replaced by ``True`` for parameters typed bool whose
        default is a bool.
    """
    args = arg_parser.parse_args() if isinstance(arg_parser, ArgumentParser) else arg_parser
    types_and_defaults = {
        name: (types, default) for name, types, default in get_init_arguments_and_types(cls)
    }
    modified = {}
    for key, value in vars(args).items():
        if key in types_and_defaults and value is None:
            types, default = types_and_defaults[key]
            if bool in types and isinstance(default, bool):
                value = True
        modified[key] = value
    return Namespace(**modified)


def from_argparse_args(
    cls: Type, args: Union[Namespace, ArgumentParser, dict], **kwargs: Any
) -> Any:
    """Instantiate ``cls`` from parsed arguments.

    Args:
        cls: the class to build.
        args: a namespace (or a dict, or a parser to run). Keys that are not constructor
            parameters of ``cls`` are ignored, so one namespace can feed several classes.
        **kwargs: applied on top of ``args`` unfiltered (an unknown one raises ``TypeError``).

    Returns:
        ``cls(**arguments)``.
    """
    if isinstance(args, ArgumentParser):
        # through the class's own classmethod when it has one, so that an override is honoured
        parse = getattr(cls, "parse_argparser", None)
        args = parse(args) if callable(parse) else parse_argparser(cls, args)
    params = dict(args) if isinstance(args, dict) else vars(args)
    valid = inspect.signature(cls.__init__).parameters
    arguments = {
        name: params[name] for name in valid if name in params and name not in _IGNORED_PARAMETERS
    }
    arguments.update(**kwargs)
    return cls(**arguments)


def parse_env_variables(cls: Type, template: str = ENV_TEMPLATE) -> Namespace:
    """Read constructor arguments of ``cls`` from environment variables.

    Args:
        cls: the class; its upper-cased name and parameter names fill ``template``.
        template: the variable name pattern, ``CONVEYOR_<CLASS>_<ARGUMENT>`` by default.

    Returns:
        A namespace with the set, non-empty variables, each value through
        ``ast.literal_eval`` (the raw string when that fails).
    """
    found = {}
    for name, _, _ in get_init_arguments_and_types(cls):
        variable = template % {"cls_name": cls.__name__.upper(), "cls_argument": name.upper()}
        value: Any = os.environ.get(variable)
        if value is None or value == "":
            continue
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
        found[name] = value
    return Namespace(**found)
