# Guardian's images, built in the cluster by Kaniko (.github/workflows/nextgen-pipeline.yml)
# or locally with any builder:
#
#   docker build -t guardian .                                 # the last stage: guardian
#   docker build --target backup -t nextgen-backup .           # the nightly backup of NEXTGEN prod
#
# Plain layers only (no BuildKit cache mounts or heredocs, no COPY --chmod): Kaniko builds it
# as it is, and its --cache=true keeps the dependency layer in the registry between builds.
# .dockerignore lets in only what these stages copy.

# ---------------------------------------------------------------------------------------------
# builder: the release binary. Rust 1.95.0 is the repository's toolchain (edition 2024);
# bookworm's glibc (2.36) is the runtime image's, so the binary runs there.
FROM rust:1.95.0-bookworm AS builder
WORKDIR /build
ENV CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0

# Dependencies first, in a layer of their own that only Cargo.toml and Cargo.lock key: stub
# sources let cargo compile every dependency, so a change under src/ rebuilds just guardian.
# (The [[bench]] files are not needed: `cargo build` does not resolve bench targets.)
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src target/release/guardian target/release/deps/guardian-* \
        target/release/deps/libguardian-* target/release/.fingerprint/guardian-*

# The sources: the crate, the SQL migrations embedded by sqlx::migrate!, and the example
# config embedded by `guardian demo`.
COPY src ./src
COPY migrations ./migrations
COPY examples/nextgen.yaml ./examples/nextgen.yaml
# COPY may keep the files' old modification times: touch the crate roots so cargo cannot
# take the stubs' build for a fresh one. The release profile keeps line tables (file:line in
# panics and backtraces); compressed, they take 63 MB instead of 160 MB, and std's backtraces
# still read them.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && objcopy --compress-debug-sections=zlib target/release/guardian /build/guardian \
    && /build/guardian --version

# ---------------------------------------------------------------------------------------------
# backup: the nightly pg_dump of nextgen_production (the prod CronJob runs it as
# registry.digitalocean.com/blueocean/nextgen-backup). pg_dump and pg_restore 16 come with
# the image; the script needs bash, curl and coreutils' sha256sum besides.
FROM postgres:16-alpine AS backup
RUN apk add --no-cache bash coreutils curl jq
COPY deploy/scripts/backup-nextgen-prod.sh deploy/scripts/lib.sh /usr/local/bin/
RUN chmod 0755 /usr/local/bin/backup-nextgen-prod.sh /usr/local/bin/lib.sh
# 70 is the image's postgres user; the CronJob runs as 70:70 too.
USER 70:70
WORKDIR /tmp
ENTRYPOINT ["/usr/local/bin/backup-nextgen-prod.sh"]

# ---------------------------------------------------------------------------------------------
# guardian: the service. Last, so a build without --target yields it. Distroless "cc" has
# glibc, libgcc and the CA certificates (rustls with the platform verifier reads them); the
# time zone database is compiled in (jiff, tzdb-bundle-always), SQLite is bundled (sqlx) and
# the crypto is aws-lc-rs, statically linked. 65532 is distroless' nonroot user, the
# Deployment's runAsUser.
FROM gcr.io/distroless/cc-debian12:nonroot AS guardian
LABEL org.opencontainers.image.title="guardian" \
      org.opencontainers.image.description="Guards the NEXTGEN platform's Kubernetes rollouts: probes, SLOs, go/no-go gate, pause and rollback"
COPY --from=builder /build/guardian /usr/local/bin/guardian
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/guardian"]
CMD ["run", "-c", "/etc/guardian/guardian.yaml"]
