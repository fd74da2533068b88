"""Griffe extension: `__all__` entries that name a list of strings.

safeloss.losses builds its `__all__` as ``[...] + PUBLIC_LOSSES``, a list
literal in the same module, and safeloss re-exports it with
``from safeloss.losses import *``. Griffe reads the source without importing
it and expands only ``module.__all__`` entries, so the wildcard import
exported nothing and ``::: safeloss.TripletLoss`` could not be found.
Importing the package instead (mkdocstrings' `force_inspection`) works too,
but imports Keras and a backend: over 10 s more per build.
"""

import ast

import griffe


class ListConstantExports(griffe.Extension):
    """Replaces an `__all__` entry that names a list (or tuple) of string
    literals defined in the same module by those strings."""

    def on_module_members(self, *, mod, **kwargs):
        if not mod.exports:
            return
        expanded = []
        for export in mod.exports:
            expanded.extend(_literal_names(mod, export) or [export])
        mod.exports = expanded


def _literal_names(module, export):
    if isinstance(export, str):
        return None
    member = module.members.get(getattr(export, "name", None))
    if member is None or member.is_alias or not member.is_attribute:
        return None
    try:
        names = ast.literal_eval(str(member.value))
    except (ValueError, SyntaxError):
        return None
    if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
        return list(names)
    return None
