"""Every ZOO_* environment variable the project reads outside the server's settings, so a typo can be named."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

PREFIX = "ZOO_"

# Read by the training side, the CLI and the test suite; the server's own variables come from ServerSettings.
OTHER_VARIABLES: dict[str, str] = {
    "ZOO_CACHE_DIR": "where slow dataset loaders cache their arrays (zoo.data.builtin)",
    "ZOO_FASHION_MNIST_DIR": "folder of the Fashion-MNIST IDX files (zoo.data.builtin)",
    "ZOO_AUTH_TOKEN_FILE": "zoo predict: file holding the server's bearer token",
    "ZOO_CONTAINER_CACHE": "test suite: where the container test caches its debootstrapped base",
    "ZOO_DEBIAN_MIRROR": "test suite: the Debian mirror the container test debootstraps from",
    "ZOO_IMAGE_ORT": "test suite: the onnxruntime flavour the container test builds into the image",
}


def unknown_variables(environ: Mapping[str, str], known: Iterable[str]) -> list[str]:
    """One line per ZOO_* variable in environ that nothing reads, naming the closest real one."""
    names = sorted(set(known) | set(OTHER_VARIABLES))
    lines = []
    for var in sorted(k for k in environ if k.startswith(PREFIX) and k not in names):
        close = difflib.get_close_matches(var, names, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        lines.append(f"unknown variable {var}{hint}")
    return lines
