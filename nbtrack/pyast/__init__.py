"""Rules about Python code, defined once and shared by capture and export.

Pure :mod:`ast` work: nothing here runs code, imports IPython or imports the rest of
nbtrack (only :mod:`nbtrack.errors`). Each module owns one kind of rule:

- :mod:`~nbtrack.pyast.positions`: ast positions → character offsets, text edits;
- :mod:`~nbtrack.pyast.bindings`: what a parameter binding is, and rewriting one;
- :mod:`~nbtrack.pyast.effects`: which calls read or write files, seed or draw from RNGs;
- :mod:`~nbtrack.pyast.names`: dotted names, argument, imported and bound names.
"""
