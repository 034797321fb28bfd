#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the browser tests (tests/it/ui.rs): installed when
# missing, a no-op when both are present. The browser tests fail loudly without them.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if have chromium && have chromedriver; then
    exit 0
fi
as_root=()
if [ "$(id -u)" != 0 ]; then
    if have sudo; then as_root=(sudo); else
        echo "tests/browser/install.sh: chromium/chromedriver missing and not root (no sudo)" >&2
        exit 1
    fi
fi
"${as_root[@]}" apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
have chromium && have chromedriver || {
    echo "tests/browser/install.sh: chromium or chromedriver still missing after apt-get" >&2
    exit 1
}
