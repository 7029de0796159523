# One image for every Job and for the controller; each Kubernetes object picks its program with `command`:
#   Stage 1 pods   node build/jobs/phase2-date/main.js
#   Stage 3 pod    node build/jobs/phase3-runner/main.js
#   controller     node build/controller/main.js
#   CLI            node build/cli/main.js ...   (docker run --rm nba-backfill build/cli/main.js --help)
# Build: docker build -t nba-backfill:latest .   (docs/kubernetes.md; the kind workflow builds it the same way)
#
# Node.js 22 is the active LTS line (the development machines run 20.19+, which package.json's engines allow;
# every dependency works on both). Override with --build-arg NODE_IMAGE=node:20-bookworm-slim if needed.
ARG NODE_IMAGE=node:22-bookworm-slim

# ---- build: all dependencies, then the TypeScript programs -------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Scripts are skipped: `prepare` compiles the sources, which are copied next (protobufjs's postinstall only
# prints a version notice).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY core ./core
COPY cli ./cli
COPY jobs ./jobs
COPY controller ./controller
# charts-src/ and bench/ are not copied: the image runs no chart synthesis and no benchmark.
RUN npm run build

# ---- production dependencies only ----------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- runtime ---------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json NOTICE ./
COPY --from=build /app/build ./build
# The bundled Phase 1 source and the committed plans (Stage 3 and the controller read plans/).
COPY data ./data
COPY plans ./plans
# The base image's unprivileged `node` user, by number so that Kubernetes can check runAsNonRoot. The manifests
# run with runAsUser 1000, a read-only root filesystem and an emptyDir at /tmp (BACKFILL_LOG_DIR points there).
USER 1000:1000
ENTRYPOINT ["node"]
CMD ["build/cli/main.js", "--help"]
