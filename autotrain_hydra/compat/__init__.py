"""Every hook on a library's private API, one module per library (``compat.hydra``, ``compat.trl``).

Where a public API does the job, the code uses it; what is left is here, named, and guarded by a test per module
(``tests/compat/``) that fails loudly, naming the hook, when an upgrade of the library breaks it.
"""
