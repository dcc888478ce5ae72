"""``pytorch_lightning.utilities``: the submodules Lightning's tests import."""
