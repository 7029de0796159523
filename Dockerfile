# One image for every Job and the controller; each Job picks its command.
# Build: docker build -t nba-backfill .   Run: docker run --rm nba-backfill build/cli/main.js --help
# Stage 1 pods run build/jobs/phase2-date/main.js, the Stage 3 pod build/jobs/phase3-runner/main.js.

FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Scripts are skipped here because `prepare` needs the sources, which come next.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY core ./core
COPY cli ./cli
COPY jobs ./jobs
COPY controller ./controller
COPY charts-src ./charts-src
COPY bench ./bench
RUN npm run build

FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/build ./build
COPY data ./data
COPY plans ./plans
COPY NOTICE ./
# The node image's unprivileged user (uid 1000); manifests run with runAsNonRoot and a read-only root.
USER 1000:1000
ENTRYPOINT ["node"]
CMD ["build/cli/main.js", "--help"]
