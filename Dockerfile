# etlua: drains the login-queue SQS queue into PostgreSQL.
#   docker build -t etlua .
#   docker run --rm -e SQS_QUEUE_URL=... -e DATABASE_URL=... -e ETLUA_MASK_KEY_FILE=/run/secrets/etlua_mask_key etlua
# Default command: the bundled pipeline, draining the queue once and exiting 0 when it is empty.

# ---- build -------------------------------------------------------------------------------------
FROM debian:12 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake pkg-config gcc make libc6-dev \
      liblua5.4-dev libcurl4-openssl-dev libpq-dev libssl-dev libexpat1-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr -DETLUA_TESTS=OFF \
 && cmake --build /build --target etlua -j"$(nproc)" \
 && DESTDIR=/out cmake --install /build --strip

# ---- runtime -----------------------------------------------------------------------------------
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      liblua5.4-0 lua-cjson libcurl4 libpq5 libexpat1 libssl3 libmicrohttpd12 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin etlua
COPY --from=build /out/usr/ /usr/
USER etlua
ENV AWS_REGION=us-east-1 \
    ETLUA_SQS_PROTOCOL=auto
ENTRYPOINT ["etlua"]
CMD ["/usr/share/etlua/scripts/login_etl.lua", "--drain"]
