# Switchyard's container image: a drop-in for Marathon-LB's.
#
#   docker build -t switchyard .
#   docker run --net=host switchyard                 # Marathon-LB's Universe arguments (CMD)
#   docker run --net=host switchyard poll -m http://m1:8080 -m http://m2:8080 --group '*'
#   docker run --rm switchyard routes --marathon http://marathon.mesos:8080
#   docker run --rm switchyard man > switchyard.1            # also: completions bash|zsh|fish
#
# Arguments after the image name replace CMD and go to the binary (ENTRYPOINT), as with
# Marathon-LB. tests/packaging/dockerfile/ checks this file against the CLI (`cargo test --test suite dockerfile::`).

# ---- build: the release binary ----------------------------------------------------------------
# The tag follows `rust-version` in Cargo.toml; bookworm matches the runtime's glibc.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src

# The release profile keeps line tables (debug = 1) for profiling; the image does not need them.
# Symbols stay, so panics still name functions.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo

# Dependencies first, in their own layer, rebuilt only when the manifest or lock file changes.
# The manifest declares [[bench]] and [[test]] targets, and cargo refuses to load it unless their
# files exist, so benches/ and the two test roots come in with it (only the roots: the modules
# they name are not read by a build). src/ is a stub here.
COPY Cargo.toml Cargo.lock ./
COPY benches/ benches/
COPY tests/suite.rs tests/lookup_alloc.rs tests/
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin switchyard \
    && rm -rf src

# The real sources. COPY keeps the files' modification times, which may be older than the stub's
# build: touch the crate roots so cargo rebuilds the crate.
COPY src/ src/
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin switchyard \
    && ./target/release/switchyard --version

# ---- runtime ------------------------------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates: https Marathon URLs and the DC/OS login endpoint (or pass --marathon-ca-cert).
# Nothing else: the HEALTHCHECK below is the binary itself.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

COPY --from=build /src/target/release/switchyard /usr/local/bin/switchyard

# Runs as root, as Marathon-LB's image does: the balancer binds ports 80 and 443 (and, on the
# host network, the apps' service ports). A non-root user would need CAP_NET_BIND_SERVICE as a
# file capability on the binary (setcap), which a COPY between stages does not reliably carry
# (it is an extended attribute; whether it survives depends on the builder); or --http-port and
# --https-port above 1023; or, off the host network,
# `docker run --sysctl net.ipv4.ip_unprivileged_port_start=0 --user 65534 ...`.

# --http-port, --https-port, --admin-port, --app-id-port (the CLI's defaults). Service ports are
# the apps' own (10000 and up): use the host network (--net=host), as Marathon-LB does.
EXPOSE 80 443 9090 9091

# Marathon-LB's Universe health check: GET /_haproxy_health_check on the admin port. The
# subcommand reads --admin-port and --admin-bind-address from the same SWITCHYARD_* variables and
# config file (SWITCHYARD_CONFIG) as the balancer; an --admin-port given in CMD needs
# `docker run --health-cmd "switchyard healthcheck --admin-port N"`.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/switchyard", "healthcheck"]

# SIGTERM drains for up to --drain-timeout (30 s): stop with `docker stop -t 35` to let it finish.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["sse", "-m", "http://marathon.mesos:8080", "--health-check", "--group", "external"]
