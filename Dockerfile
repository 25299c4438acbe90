# filpy in a container: a Filecoin full node in Python (docs/testnet.md).
#
#   docker build -t filpy .                    (here: podman build --network=host -t filpy .)
#   docker run --rm -v filpy:/data -p 1234:1234 filpy            a devnet, RPC on port 1234
#   docker compose up                           a testnet of four nodes (docker-compose.yml)
#
# Debian bookworm's Python 3.11 with the headers and libraries the pinned set builds against (GMP for
# fastecdsa, OpenSSL and the Python headers for the proofs extension); the node runs as the non-root
# user `filpy`, its repo in the volume /data (FILPY_REPO names the repo the healthcheck asks).
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc make libgmp-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin filpy \
    && mkdir -p /data && chown filpy:filpy /data

WORKDIR /opt/filpy
ENV VIRTUAL_ENV=/opt/filpy/.venv PATH=/opt/filpy/.venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1
# The dependencies first (a source change does not reinstall them): pyproject.toml's runtime ones, at the
# versions requirements.lock pins (the lock also pins the test and lint tools, which the image leaves
# out). Behind a TLS-intercepting proxy, mount its CA bundle into the build and name it (docs/testnet.md):
#   --volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/host-ca.crt:ro --build-arg PIP_CERT=/etc/ssl/host-ca.crt
ARG PIP_CERT=""
COPY pyproject.toml requirements.lock README.md Makefile ./
RUN python3 -m venv "$VIRTUAL_ENV" \
    && python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
       > /tmp/runtime.txt \
    && pip install --no-cache-dir -c requirements.lock -r /tmp/runtime.txt \
    && rm /tmp/runtime.txt
COPY chain chain
COPY actors actors
COPY proofs proofs
COPY node node
COPY rpc rpc
COPY cli cli
COPY docker docker
RUN python -m proofs.build_ext && python -m chain.encoding.build_ext && pip install --no-cache-dir --no-deps . && rm -rf build *.egg-info

USER filpy
ENV FILPY_REPO=/data/devnet
VOLUME /data
WORKDIR /data
EXPOSE 1234 4001
# Filecoin.Version over the RPC address the node wrote into its repo (needs no token).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["python3", "/opt/filpy/docker/healthcheck.py"]
ENTRYPOINT ["filpy"]
CMD ["devnet", "--repo", "/data/devnet", "--api", "0.0.0.0:1234", "--listen", "/ip4/0.0.0.0/tcp/4001"]
