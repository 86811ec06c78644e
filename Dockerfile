# presenced in a small image: built in a Rust image, run from a slim Debian as a
# non-root user. Build with `docker build -t presenced .`; compose.yaml runs three nodes
# and Redis from it.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p presence-server \
    && install -m 0755 target/release/presenced /usr/local/bin/presenced

FROM debian:bookworm-slim
# ca-certificates: rediss:// to a Redis whose certificate a public CA signed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin presenced
COPY --from=build /usr/local/bin/presenced /usr/local/bin/presenced
USER presenced
EXPOSE 8080
# SIGTERM drains: clients are closed with 1012 and restore on another node.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/presenced"]
CMD ["--listen", "0.0.0.0:8080", "--log-format", "json"]
