# filpy node image: Python 3.11 with GMP headers (fastecdsa builds from source) and the pinned set.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends gcc make libgmp-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/filpy
COPY pyproject.toml requirements.lock README.md Makefile ./
COPY chain chain
COPY actors actors
COPY proofs proofs
COPY node node
COPY rpc rpc
COPY cli cli
RUN pip install --no-cache-dir -r requirements.lock \
    && python -m proofs.build_ext \
    && pip install --no-cache-dir --no-deps .
EXPOSE 1234
ENTRYPOINT ["filpy"]
CMD ["--help"]
