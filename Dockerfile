# Builds the one `offhook` binary; docker-compose.yml runs it as each service.
FROM rust:1-bookworm AS build
# cpal (the sound card line) links ALSA.
RUN apt-get update && apt-get install -y --no-install-recommends libasound2-dev libpulse-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p offhook

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libasound2 libpulse0 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/offhook /usr/local/bin/offhook
ENV OFFHOOK_DATABASE_URL=sqlite:///var/lib/offhook/offhook.db
VOLUME /var/lib/offhook
ENTRYPOINT []
CMD ["offhook", "demo"]
