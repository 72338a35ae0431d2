"""The IPython edge: ``%%track``, ``%nbtrack`` and in-notebook displays.

This is the only package of nbtrack that imports IPython.
"""
