"""Pure capture functions: code and namespace in, JSON-able records out.

Nothing here imports IPython; torch and pandas are touched only when the user's code
already imported them.
"""
