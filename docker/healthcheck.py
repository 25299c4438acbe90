"""The container's healthcheck: Filecoin.Version over the RPC address the node wrote into its repo.

Exit status 0 when the node answers, 1 otherwise (what HEALTHCHECK expects). The repo is $FILPY_REPO; its
`api` file holds the RPC multiaddr (/ip4/<host>/tcp/<port>/http), present while the node runs. Standard
library only: it runs with the system Python, whatever the venv holds.
"""

import json
import os
import sys
import urllib.request
from pathlib import Path

TIMEOUT = 4.0


def rpc_url(multiaddr: str) -> str:
    parts = [p for p in multiaddr.strip().split("/") if p]
    host = parts[parts.index("ip4") + 1] if "ip4" in parts else "127.0.0.1"
    if host == "0.0.0.0":
        host = "127.0.0.1"
    port = parts[parts.index("tcp") + 1]
    return f"http://{host}:{port}/rpc/v1"


def main() -> int:
    repo = Path(os.environ.get("FILPY_REPO", "/data/devnet"))
    try:
        url = rpc_url((repo / "api").read_text())
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "Filecoin.Version", "params": []}).encode()
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            answer = json.loads(response.read())
        version = answer["result"]["Version"]
    except (OSError, ValueError, KeyError, IndexError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    print(f"healthy: filpy {version} at {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
