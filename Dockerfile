# syntax=docker/dockerfile:1
# The production image: Node 24 LTS, compiled JavaScript, production
# dependencies only, a non-root user. test/deploy/container.test.ts rebuilds
# what this file does (without Docker) and runs it; keep the two in step.

# Build stage: every dependency, then `tsc` into dist/.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: the build needs none (tsc is plain JavaScript), and none runs unasked.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json app.ts server.ts ./
COPY lib ./lib
COPY plugins ./plugins
COPY routes ./routes
RUN npm run build

# Runtime stage: production dependencies, the compiled code and the page.
# Files stay owned by root, so the service cannot change its own code.
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY --from=build /app/dist ./dist
COPY public ./public
# The image's `node` user, by number so Kubernetes can check runAsNonRoot.
USER 1000:1000
# PORT's default (PROTOCOL §6).
EXPOSE 3000
# Node is PID 1 and gets SIGTERM itself: server.ts drains on it (PROTOCOL §5).
CMD ["node", "dist/server.js"]
