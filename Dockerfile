# syntax=docker/dockerfile:1
#
# One image for every Umbra service and the migration runner.
#
#   docker build -t ghcr.io/umbra-chat/umbra:0.1.0 .
#   docker run --read-only --tmpfs /tmp -e SERVICE=gateway ghcr.io/umbra-chat/umbra:0.1.0
#   docker run --read-only ghcr.io/umbra-chat/umbra:0.1.0 node dist/scripts/migrate.js
#
# SERVICE (build ARG and runtime ENV) picks the entry: gateway, key-directory, message-relay,
# media-upload or expiry-worker. Compose and Kubernetes pass the command explicitly instead.
# `npm ci` fails on some machines (the registry lacks other platforms' optional binaries, so the
# lockfile does not list them); `npm install` honours the lockfile.

ARG NODE_IMAGE=node:24.11.1-bookworm-slim

# ---- manifests: only each workspace's package.json, so the npm install layers below stay cached
# until a manifest changes (and every lib under libs/ is included without listing it here).
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY libs/ libs/
RUN mkdir -p /manifests \
 && for lib in libs/*/; do \
      if [ -f "${lib}package.json" ]; then mkdir -p "/manifests/${lib}" && cp "${lib}package.json" "/manifests/${lib}"; fi; \
    done

# ---- build: all dependencies, compile TypeScript to dist/ and libs/*/dist/ ----------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
COPY --from=manifests /manifests/ ./
RUN npm install --no-audit --no-fund --ignore-scripts --loglevel=error
COPY tsconfig*.json ./
COPY libs/ libs/
COPY services/ services/
COPY scripts/ scripts/
COPY bench/ bench/
# Then gather what the runtime needs of each lib (package.json and dist/) in /runtime/libs.
RUN npm run build \
 && find dist libs \( -path 'dist/*' -o -path 'libs/*/dist/*' \) \( -name '*.map' -o -name '*.d.ts' -o -name '.tsbuildinfo' \) -delete \
 && for lib in libs/*/; do \
      if [ -f "${lib}package.json" ]; then mkdir -p "/runtime/${lib}" && cp "${lib}package.json" "/runtime/${lib}"; fi; \
      if [ -d "${lib}dist" ]; then cp -R "${lib}dist" "/runtime/${lib}dist"; fi; \
    done

# ---- deps: production dependencies only, from the same lockfile --------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY --from=manifests /manifests/ ./
RUN npm install --omit=dev --no-audit --no-fund --ignore-scripts --loglevel=error \
 && npm cache clean --force

# ---- runtime -----------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ARG SERVICE=gateway
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="umbra" \
      org.opencontainers.image.description="Umbra E2EE messaging backend (all services, one image)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="AGPL-3.0-only" \
      org.opencontainers.image.source="https://github.com/umbra-chat/umbra"

# tini from Debian as PID 1: forwards SIGTERM to node (graceful drain) and reaps zombies.
# npm and corepack are not needed at run time: removed to shrink the attack surface.
# tini is not version-pinned: the pinned bookworm base fixes its release (0.19.0), and an exact
# Debian revision pin breaks the build at the next binNMU.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack

WORKDIR /app
ENV NODE_ENV=production \
    SERVICE=${SERVICE} \
    PORT=3000 \
    HOST=0.0.0.0

# Everything owned by root and read-only for the app user; the process writes nowhere but /tmp.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=deps /app/package.json ./package.json
COPY --from=build /runtime/libs ./libs
COPY --from=build /src/dist ./dist
COPY deploy/docker/healthcheck.cjs ./deploy/healthcheck.cjs

# The node image's unprivileged user (uid/gid 1000), by number so runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 3000

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "deploy/healthcheck.cjs"]

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["/bin/sh", "-c", "exec node \"dist/services/${SERVICE}/src/main.js\""]
