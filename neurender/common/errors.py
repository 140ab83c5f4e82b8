"""The one base class for problems with what the user asked for (a bad file, a bad option, a bad value).

Every room's input errors subclass it, so the CLI prints any of them as one line and exits 2, while a bug
(a numpy error, a KeyError in our code) still shows its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with what the user asked for; printed without a traceback."""
