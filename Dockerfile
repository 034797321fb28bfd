# The mcp-gitops image: `mcp-gitops controller` for the Helm chart (charts/mcp-gitops), and every
# other command. Not built on the development machines (they have no container engine); see the
# README's "Kubernetes: install".
#
#   docker build -t registry.example.com/mcp-gitops:0.1.0 .

# Build: a release binary with OpenSSL and zlib linked statically (only glibc stays dynamic).
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
ENV OPENSSL_STATIC=1 \
    LIBZ_SYS_STATIC=1 \
    CARGO_TERM_COLOR=never
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin mcp-gitops \
 && install -D -m 0755 target/release/mcp-gitops /out/mcp-gitops

# Run: distroless (glibc, CA certificates, no shell), as the unprivileged user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/mcp-gitops /usr/local/bin/mcp-gitops
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/mcp-gitops"]
CMD ["controller"]
