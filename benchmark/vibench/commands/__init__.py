"""The ``vibench`` sub-commands, one module per subsystem they drive (the top layer: they may
import every other part of vibench; nothing imports them but :mod:`vibench.cli`, which loads
each one only when its command is used, so ``vibench --help`` stays fast and torch-free)."""
