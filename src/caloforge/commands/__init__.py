"""Sub-commands of the ``caloforge`` CLI, one module each (see :mod:`caloforge.cli`)."""
