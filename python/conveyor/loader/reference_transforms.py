"""torchvision's training references' own joint transforms, recognised by their exact source.

``references/segmentation/transforms.py`` of torchvision (what ``train.py --dataset voc`` runs,
through ``presets.SegmentationPresetTrain``) defines its own ``(image, target)`` classes: they
resize the PIL mask with PIL's NEAREST, pad it right/bottom with 255 and turn it into an int64
``[H, W]`` tensor. They are user code, not importable from torchvision, so a class is
recognised only when it provably is a known version:

* the SHA-256 of ``inspect.getsource(cls)`` is one of :data:`KNOWN_SOURCES` (digests of the
  published versions; the code itself is not stored here);
* its bases are ``(object,)`` and the methods it holds are exactly those compiled from that
  source (same byte code, names and constants: a method patched after import is caught);
* the module globals its methods read are the objects the reference means (``F`` is
  ``torchvision.transforms.functional``, ``random`` the standard module, ``pad_if_smaller``
  the known function, ...).

Anything else stays in Python (the planner's warning names the class). Presets are seen through
by :func:`delegated_transforms` when their ``__call__`` only returns ``self.transforms(...)``.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import random
import textwrap
import types
from typing import Any, Callable, Dict, FrozenSet, List, Optional

import numpy as np
import torch
import torchvision.transforms
import torchvision.transforms.functional

# name -> SHA-256 of inspect.getsource() of each known version (torchvision's
# references/segmentation/transforms.py as published in 2024, with PILToTensor and ToDtype)
KNOWN_SOURCES: Dict[str, FrozenSet[str]] = {
    "pad_if_smaller": frozenset(
        {"c21e52ee1e62155f3e67c2c6d9e193d436674541e9df62d2084889f651b5dbb0"}
    ),
    "Compose": frozenset({"e52ceb81e3a0a92915705b063d9dcdbf02d8a5961db515000447967aa8d9d340"}),
    "RandomResize": frozenset({"5245bdcbea3e58291f94561a06043a0001d8e5cfbaffe6637471e4ccbc2e2ea2"}),
    "RandomHorizontalFlip": frozenset(
        {"8858872a9961409763ca8512e0c5ba8f86b90fd255987b09de09bc1ab714fa21"}
    ),
    "RandomCrop": frozenset({"6c096c8beb218e7189081431aa4503eadd0a540e9a7898e1a09d54ad12bfdb7d"}),
    "PILToTensor": frozenset({"ed7be0b739f7d1400ebc754a864d2f9393b0b3cfb102459a52215f34d264ee48"}),
    "ToDtype": frozenset({"8286ab5771b3cdcaff32e026f3aef27df3c6f07a5d9a44c84f2f1feeb1666763"}),
    "Normalize": frozenset({"b815af4da31b1676bc0e2de83ce1a09a40564e104fff23a56c72bedc3eb50adb"}),
}

# the module globals the known sources read, and what each must be
_EXPECTED_GLOBALS: Dict[str, Callable[[Any], bool]] = {
    "F": lambda value: value is torchvision.transforms.functional,
    "T": lambda value: value is torchvision.transforms,
    "random": lambda value: value is random,
    "torch": lambda value: value is torch,
    "np": lambda value: value is np,
    "pad_if_smaller": lambda value: _is_known_function(value, "pad_if_smaller"),
}


# The reference module binds these names by imports; CPython compiles ``name.attr(...)`` on an
# imported name differently (LOAD_ATTR, not LOAD_METHOD), so the known source is compiled after
# the same imports to compare byte code. Never executed.
_IMPORTS = (
    "import random\nimport numpy as np\nimport torch\n"
    "from torchvision import transforms as T\nfrom torchvision.transforms import functional as F\n"
)


def _compiled(source: str) -> types.CodeType:
    """The code object of the one definition in ``source``, compiled as its module does."""
    module = compile(_IMPORTS + source, "<known>", "exec")
    codes = [c for c in module.co_consts if isinstance(c, types.CodeType)]
    return codes[-1]


def _digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def _same_code(live: types.CodeType, compiled: types.CodeType) -> bool:
    """Whether two code objects do the same thing (line numbers and file names aside)."""
    if (
        live.co_code != compiled.co_code
        or live.co_names != compiled.co_names
        or live.co_varnames != compiled.co_varnames
        or live.co_argcount != compiled.co_argcount
        or live.co_kwonlyargcount != compiled.co_kwonlyargcount
        or len(live.co_consts) != len(compiled.co_consts)
    ):
        return False
    for a, b in zip(live.co_consts, compiled.co_consts):
        if isinstance(a, types.CodeType) or isinstance(b, types.CodeType):
            if not (isinstance(a, types.CodeType) and isinstance(b, types.CodeType)):
                return False
            if not _same_code(a, b):
                return False
        elif type(a) is not type(b) or a != b:
            return False
    return True


def _globals_ok(code: types.CodeType, scope: Dict[str, Any]) -> bool:
    # every global name the code reads that the module defines must be the expected object;
    # names it does not define are builtins (range, min, ...) unless shadowed
    import builtins

    for name in code.co_names:
        if name in scope:
            check = _EXPECTED_GLOBALS.get(name)
            if check is not None:
                if not check(scope[name]):
                    return False
            elif hasattr(builtins, name) and scope[name] is not getattr(builtins, name):
                return False
    for const in code.co_consts:
        if isinstance(const, types.CodeType) and not _globals_ok(const, scope):
            return False
    return True


def _source(obj: Any) -> Optional[str]:
    try:
        return textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        return None


def _is_known_function(function: Any, name: str) -> bool:
    if not isinstance(function, types.FunctionType) or function.__name__ != name:
        return False
    source = _source(function)
    if source is None or _digest(source) not in KNOWN_SOURCES[name]:
        return False
    compiled = _compiled(source)
    return (
        _same_code(function.__code__, compiled)
        and _same_defaults(function, _literal_defaults(source)[name])
        and _globals_ok(function.__code__, function.__globals__)
    )


def _literal_defaults(source: str) -> Dict[str, Any]:
    """Each function's (and method's) ``(defaults, kwdefaults)`` as its source writes them."""
    found: Dict[str, Any] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            args = node.args
            defaults = tuple(ast.literal_eval(d) for d in args.defaults) or None
            kw = {
                a.arg: ast.literal_eval(d)
                for a, d in zip(args.kwonlyargs, args.kw_defaults)
                if d is not None
            }
            found[node.name] = (defaults, kw or None)
    return found


def _same_defaults(function: types.FunctionType, expected: Any) -> bool:
    # defaults can be reassigned after the definition; the source's must still hold
    defaults, kwdefaults = expected
    return bool(function.__defaults__ == defaults and function.__kwdefaults__ == kwdefaults)


def _is_code(value: Any) -> bool:
    return isinstance(value, types.CodeType)


def _known_class_name(cls: type) -> Optional[str]:
    """The name in :data:`KNOWN_SOURCES` that ``cls`` provably is, else None (checked at each
    plan: a class or function patched since is caught)."""
    name = cls.__name__
    if name not in KNOWN_SOURCES or cls.__bases__ != (object,) or name == "pad_if_smaller":
        return None
    source = _source(cls)
    if source is None or _digest(source) not in KNOWN_SOURCES[name]:
        return None
    body = _compiled(source)
    compiled = {c.co_name: c for c in body.co_consts if _is_code(c)}
    live = {key: value for key, value in vars(cls).items() if isinstance(value, types.FunctionType)}
    extra = set(vars(cls)) - set(live) - {"__module__", "__qualname__", "__dict__", "__weakref__"}
    extra -= {"__doc__", "__firstlineno__", "__static_attributes__"}
    if extra or set(live) != set(compiled):
        return None
    module = inspect.getmodule(cls)
    scope = vars(module) if module is not None else {}
    defaults = _literal_defaults(source)
    for key, function in live.items():
        if not _same_code(function.__code__, compiled[key]) or function.__globals__ is not scope:
            return None
        if function.__closure__ or not _same_defaults(function, defaults[key]):
            return None
        if not _globals_ok(function.__code__, scope):
            return None
    return name


def known_class_name(transform: Any) -> Optional[str]:
    """``"RandomResize"`` (...) when ``transform`` is an instance of a known version of the
    segmentation reference's class of that name, else None."""
    return _known_class_name(type(transform))


# --------------------------------------------------------------------------------- presets


def _delegate_joint(self: Any, image: Any, target: Any) -> Any:  # compared by code, never called
    return self.transforms(image, target)


def _delegate_single(self: Any, image: Any) -> Any:  # compared by code, never called
    return self.transforms(image)


def _delegates(code: types.CodeType, template: types.CodeType) -> bool:
    return (
        code.co_code == template.co_code
        and code.co_names == template.co_names
        and code.co_argcount == template.co_argcount
        and code.co_kwonlyargcount == 0
        and code.co_flags & 0x0C == 0  # no *args / **kwargs
        and code.co_consts == template.co_consts
    )


def delegated_transforms(transform: Any, joint: bool) -> Optional[Any]:
    """``transform.transforms`` when ``transform`` is a preset object whose ``__call__`` only
    returns ``self.transforms(image, target)`` (``joint``; else ``self.transforms(image)``), as
    torchvision's references' ``SegmentationPresetTrain`` / ``DetectionPresetTrain`` do; else
    None.

    Proven on the byte code, not the name: the class's ``__call__`` is a plain function with
    exactly that code (no defaults, no closure), attribute access is the default one, and
    ``transforms`` is an instance attribute (no property or descriptor runs)."""
    cls = type(transform)
    call = cls.__dict__.get("__call__")
    if not isinstance(call, types.FunctionType) or call.__closure__ or call.__defaults__:
        return None
    template = _delegate_joint if joint else _delegate_single
    if not _delegates(call.__code__, template.__code__):
        return None
    if any("__getattribute__" in vars(base) for base in cls.__mro__ if base is not object):
        return None  # attribute access of its own
    if any("transforms" in vars(base) for base in cls.__mro__):
        return None  # a class attribute or descriptor named transforms: not plain data
    instance = getattr(transform, "__dict__", None)
    if not isinstance(instance, dict) or "transforms" not in instance:
        return None
    return instance["transforms"]


def reference_compose_items(transform: Any) -> Optional[List[Any]]:
    """The transforms of a known reference ``Compose`` (it calls each ``t(image, target)`` in
    order), else None."""
    if known_class_name(transform) != "Compose":
        return None
    items = vars(transform).get("transforms")
    return list(items) if isinstance(items, (list, tuple)) else None
