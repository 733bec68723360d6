"""Build hook: with CHATGUARD_COMPILE=1, compile the policy engine's
per-message modules with mypyc (chatguard/native.py says which and why).
Everything else about the package is in pyproject.toml."""

import os
import runpy

from setuptools import setup

native = runpy.run_path(os.path.join("chatguard", "native.py"))
ext_modules = []
if os.environ.get(native["ENVIRONMENT"]) == "1":
    from mypyc.build import mypycify

    # In an isolated build the runtime dependencies are not installed: their
    # values are typed Any there, which compiles to the same behaviour.
    ext_modules = mypycify(["--ignore-missing-imports", *native["module_paths"]()], opt_level="3")

setup(ext_modules=ext_modules)
