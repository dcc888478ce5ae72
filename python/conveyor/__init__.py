"""conveyor: a drop-in, much faster ``torch.utils.data.DataLoader`` for VOC-style image data.

The top-level names are imported lazily so that ``import conveyor`` stays cheap and each
subsystem loads only when used.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("conveyor")
except PackageNotFoundError:  # running from a source tree (``make inplace``)
    __version__ = "0.0.0+source"

_LAZY_ATTRIBUTES = {
    "DataLoader": "conveyor.loader",
    "Trainer": "conveyor.training",
    "Module": "conveyor.training",
    "DataModule": "conveyor.training",
    "seed_everything": "conveyor.training",
}

_SUBMODULES = (
    "errors",
    "io",
    "voc",
    "datasets",
    "datamodules",
    "collate",
    "transforms",
    "argparse",
    "training",
    "callbacks",
    "loader",
    "samplers",
    "cli",
)

__all__ = sorted(_LAZY_ATTRIBUTES) + list(_SUBMODULES) + ["__version__", "build_info"]


def __getattr__(name):
    if name in _LAZY_ATTRIBUTES:
        return getattr(import_module(_LAZY_ATTRIBUTES[name]), name)
    if name in _SUBMODULES:
        return import_module(f"conveyor.{name}")
    raise AttributeError(f"module 'conveyor' has no attribute {name!r}")


def build_info() -> str:
    """The conveyor version and the codec libraries its native core was built against."""
    from conveyor import _core

    return f"conveyor {__version__}; {_core.library_versions()}"
