# taskwired as a container image. A build stage builds the binaries with
# Bazel on Debian 12; the runtime stages hold only the binaries and the
# shared libraries they load. See README.md, "Running as a container".
#
#   docker build -t taskwired .                        # the server (last stage)
#   docker build -t taskwire-example-worker --target worker .
#   docker run -p 50051:50051 -v taskwire-data:/var/lib/taskwire taskwired
#
# With podman, add `--format docker` so that the HEALTHCHECK is kept.
#
# The base images are arguments so that a machine without a registry can
# build from images it made itself (tests/container does, with debootstrap).
# Their packages then must already be there: the build runs offline.
ARG BUILD_BASE=debian:bookworm
ARG RUNTIME_BASE=debian:bookworm-slim

FROM ${BUILD_BASE} AS build
# The packages first, in a layer of their own: they change far less often
# than the code. Does nothing when the base image already has them.
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN bash /src/scripts/install-deps.sh --build-only \
 && rm -rf /var/lib/apt/lists/*
COPY . /src
WORKDIR /src
# Optimized, but without .bazelrc's --config=opt, whose -march=native would
# tie the image to the CPU it was built on.
ARG BAZEL_FLAGS="--compilation_mode=opt --copt=-O2 --copt=-DNDEBUG --strip=always"
# Bazel's disk cache: a cache mount by default, so that a rebuild after a
# code change compiles only what changed. A builder may point it elsewhere
# (podman build --volume HOST_DIR:/cache --build-arg BAZEL_DISK_CACHE=/cache).
ARG BAZEL_DISK_CACHE=/var/cache/bazel-disk
# --batch: no Bazel server outlives the step. --spawn_strategy=local: the
# container is the sandbox (Bazel's own needs privileges it lacks here).
RUN --mount=type=cache,target=/var/cache/bazel-disk \
    bazel --batch --output_user_root=/tmp/bazel build \
      --spawn_strategy=local --disk_cache="${BAZEL_DISK_CACHE}" \
      --color=no --curses=no --show_progress_rate_limit=60 \
      ${BAZEL_FLAGS} \
      //server:taskwired //client/cli:taskwire //client/examples:example_worker \
 && install -D -m 0755 -t /out/bin \
      bazel-bin/server/taskwired bazel-bin/client/cli/taskwire \
      bazel-bin/client/examples/example_worker \
 && rm -rf /tmp/bazel bazel-*

# What both runtime images share: the shared libraries and a user that is
# not root.
FROM ${RUNTIME_BASE} AS runtime
COPY deploy/container/install-runtime-deps.sh /tmp/install-runtime-deps.sh
RUN bash /tmp/install-runtime-deps.sh \
 && rm /tmp/install-runtime-deps.sh \
 && groupadd --system --gid 10001 taskwire \
 && useradd --system --uid 10001 --gid taskwire --home-dir /var/lib/taskwire \
      --no-create-home --shell /usr/sbin/nologin taskwire \
 && install -d -o taskwire -g taskwire -m 0750 /var/lib/taskwire
# Numeric, so that Kubernetes can check runAsNonRoot without /etc/passwd.
USER 10001:10001

# The example worker (client/examples/worker.cc): connects to
# $TASKWIRE_SERVER and runs wordcount, sha256, hold, flaky and raise tasks.
FROM runtime AS worker
COPY --from=build /out/bin/example_worker /usr/local/bin/
# Fails the build if a library is missing from install-runtime-deps.sh.
RUN ! ldd /usr/local/bin/example_worker | grep 'not found'
ENV TASKWIRE_SERVER=taskwired:50051
STOPSIGNAL SIGTERM
ENTRYPOINT ["example_worker"]

# The server, the default image. taskwire is there for the health check
# (and for `docker exec ... taskwire ls`).
FROM runtime AS server
COPY --from=build /out/bin/taskwired /out/bin/taskwire /usr/local/bin/
RUN ! ldd /usr/local/bin/taskwired /usr/local/bin/taskwire | grep 'not found'
# Every flag of taskwired has an environment variable (README.md,
# "Configuration"); these are the ones a container needs changed: every
# interface, tasks kept on the volume, Prometheus metrics on 9464.
ENV TASKWIRE_LISTEN=0.0.0.0:50051 \
    TASKWIRE_DATA_DIR=/var/lib/taskwire \
    TASKWIRE_METRICS_LISTEN=0.0.0.0:9464 \
    TASKWIRE_SERVER=127.0.0.1:50051
VOLUME /var/lib/taskwire
EXPOSE 50051 9464
# `taskwire health` exits 0 only when the server answers SERVING; on SIGTERM
# it turns NOT_SERVING while calls in flight drain (--drain-grace, 10 s by
# default) and then exits 0. Give `docker stop` more than that: -t 30.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["taskwire", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["taskwired"]
