# countersign's image: the compiled build (bin/build.js -> dist/) on Node 20, production
# dependencies only, run as the image's unprivileged `node` user. docs/production.md says what
# to set at run time (NODE_ENV=production refuses to start without it) and compose.yaml runs it
# with Redis. test/e2e/deploy-files.redis.test.ts runs this file's CMD and HEALTHCHECK directly.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: `prepare` would build before the sources are here (it is the next step).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY src ./src
COPY adapters ./adapters
RUN npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
# HOST: listen on the container's interfaces (the default, 127.0.0.1, is unreachable from outside).
# COUNTERSIGN_RUN_FROM=dist: the image holds the build, not the sources it was made from.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    COUNTERSIGN_RUN_FROM=dist \
    POLICY_FILE=/etc/countersign/policy.yaml \
    COUNTERSIGN_DATA_DIR=/tmp/countersign
WORKDIR /app
# Owned by root and read-only to the user that runs it.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist ./dist
USER node
EXPOSE 3000
# Ready = listening and Redis answers (GET /readyz); red while stopping or while Redis is away.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/readyz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# countersign drains on SIGTERM within SHUTDOWN_TIMEOUT (10s): give `docker stop -t 15` or
# compose's stop_grace_period a few seconds more.
STOPSIGNAL SIGTERM
CMD ["node", "--max-old-space-size=512", "bin/countersign.js", "start"]
