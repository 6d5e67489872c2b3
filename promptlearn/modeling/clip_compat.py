"""Import OpenAI's CLIP package (PyPI ``clip-anytorch``) unmodified.

Its ``clip/clip.py`` does ``from pkg_resources import packaging``. Current setuptools no longer ships
``pkg_resources`` (or its vendored ``packaging``), while torch 2.14 needs setuptools >= 77. Before the
import we therefore register a minimal ``pkg_resources`` module exposing the real ``packaging``
package -- only when the real ``pkg_resources`` cannot provide it. Everything in this project imports
CLIP through :func:`import_clip` (or the ``clip`` attribute of this module).

``clip._download`` uses ``urllib.request`` after only ``import urllib``; importing the submodule here
makes its download path work.
"""
import importlib
import sys
import types
import urllib.request  # noqa: F401  (needed by clip._download)


def _ensure_pkg_resources_packaging() -> None:
    try:
        from pkg_resources import packaging  # noqa: F401
        return
    except Exception:
        pass
    import packaging
    import packaging.version

    shim = sys.modules.get("pkg_resources")
    if shim is None:
        shim = types.ModuleType("pkg_resources")
        shim.__doc__ = "Minimal stand-in registered by promptlearn.modeling.clip_compat for OpenAI CLIP."
        sys.modules["pkg_resources"] = shim
    shim.packaging = packaging


def import_clip():
    """Return OpenAI's ``clip`` module."""
    _ensure_pkg_resources_packaging()
    return importlib.import_module("clip")


clip = import_clip()
