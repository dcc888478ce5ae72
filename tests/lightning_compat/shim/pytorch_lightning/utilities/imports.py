"""Optional-package flags Lightning's tests branch on."""

from importlib.util import find_spec

_OMEGACONF_AVAILABLE = find_spec("omegaconf") is not None
