# syntax=docker/dockerfile:1
# mqtt-broker in a small image: built with the Rust toolchain, run from a
# distroless base (no shell, no package manager) as a non-root user.
#
#   docker build -t mqtt-broker .
#   docker run -p 1883:1883 -v mqtt-data:/var/lib/mqtt-broker mqtt-broker

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
# /data becomes the image's data directory: owned by the runtime user here
# as well as by COPY --chown below (the runtime image has no shell to
# chown it), whichever ownership the builder gives a directory COPY makes.
RUN cargo build --release --locked -p mqtt-engine-broker --bin mqtt-broker \
    && mkdir -p /data \
    && chown 65532:65532 /data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/mqtt-broker /usr/local/bin/mqtt-broker
COPY --from=build --chown=65532:65532 /data /var/lib/mqtt-broker
COPY packaging/docker.toml /etc/mqtt-broker/broker.toml
USER 65532:65532
VOLUME ["/var/lib/mqtt-broker"]
EXPOSE 1883 8883
ENTRYPOINT ["/usr/local/bin/mqtt-broker"]
CMD ["-c", "/etc/mqtt-broker/broker.toml", "--data-dir", "/var/lib/mqtt-broker"]
