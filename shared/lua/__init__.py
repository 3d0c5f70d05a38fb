"""The kernel's Redis scripts, one ``.lua`` file each, read with importlib.resources.

Each file opens with a comment stating its KEYS/ARGV contract; an editor's Lua support
and a reviewer see the script as Lua, not as a Python string.
"""

from __future__ import annotations

from importlib.resources import files


def script(name: str) -> str:
    """The text of ``<name>.lua`` beside this module."""
    return files(__name__).joinpath(f"{name}.lua").read_text(encoding="utf-8")
