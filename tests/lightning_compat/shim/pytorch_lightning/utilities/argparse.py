"""``pytorch_lightning.utilities.argparse`` mapped onto :mod:`conveyor.argparse`.

Lightning's tests also import the module's type helpers by their underscore names; conveyor
has the same helpers under the same names (``_get_abbrev_qualified_cls_name`` included).
"""

from conveyor.training.argparse import *  # noqa: F401,F403
from conveyor.training.argparse import (  # noqa: F401
    _get_abbrev_qualified_cls_name,
    _gpus_allowed_type,
    _int_or_float_type,
    _parse_args_from_docstring,
    _precision_allowed_type,
)
