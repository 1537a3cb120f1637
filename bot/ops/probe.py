"""`python -m bot.ops.probe`: exit 0 while `/healthz` says ok; Docker's HEALTHCHECK runs it.

No curl in the slim image, so the check is this small script. With SW_HTTP_PORT unset there is
no endpoint to ask, and the check passes: the container's own exit then tells the story.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from bot.config import load_settings

WILDCARDS = ("0.0.0.0", "::", "")


def probe(host: str, port: int, timeout: float = 4.0) -> tuple[bool, str]:
    """(healthy, what /healthz said)."""
    target = "127.0.0.1" if host in WILDCARDS else host
    url = f"http://{target}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200, resp.read(2000).decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:
        return False, exc.read(2000).decode("utf-8", "replace").strip()
    except OSError as exc:
        return False, f"{url}: {exc}"


def main() -> int:
    settings = load_settings()
    if settings.http_port is None:
        return 0
    healthy, said = probe(settings.http_host, settings.http_port)
    print(said)  # Docker keeps the output in `docker inspect`'s health log
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
