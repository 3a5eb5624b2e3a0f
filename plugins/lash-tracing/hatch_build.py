"""Build-time metadata hook: declare the ``Framework :: Lash`` classifier.

hatchling checks ``project.classifiers`` against the registered trove classifiers and rejects
unknown ones; ``Framework :: Lash`` is not registered (yet), so the classifiers are set here and
that one is declared known through ``get_known_classifiers``. Only the build uses this file.
"""

from __future__ import annotations

from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface

CLASSIFIERS = ["Framework :: Lash", "Programming Language :: Python :: 3"]


class LashClassifiersHook(MetadataHookInterface):
    """Set ``classifiers`` (declared dynamic in pyproject.toml)."""

    PLUGIN_NAME = "custom"

    def update(self, metadata: dict[str, Any]) -> None:
        """Write the classifiers into the core metadata."""
        metadata["classifiers"] = list(CLASSIFIERS)

    def get_known_classifiers(self) -> list[str]:
        """Classifiers hatchling must accept although trove does not list them."""
        return ["Framework :: Lash"]
