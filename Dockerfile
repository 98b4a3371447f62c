# Production image: the production build (-tags prod: no development tooling),
# static, on a minimal base with CA certificates, run as non-root.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Templates, static assets, migrations, the default configuration and the
# Europe/Paris time zone (time/tzdata) are embedded in the binary.
RUN CGO_ENABLED=0 go build -tags prod -trimpath -buildvcs=false -ldflags='-s -w' -o /out/portail ./cmd/portail

FROM gcr.io/distroless/static-debian12:nonroot
WORKDIR /app
COPY --from=build /out/portail /app/portail
# The communes' tenant.yaml files, for `portail tenants apply`.
COPY --from=build /src/tenants /app/tenants
USER nonroot:nonroot
EXPOSE 8080
ENV PORTAIL_TENANTS_DIR=/app/tenants
ENTRYPOINT ["/app/portail"]
CMD ["serve"]
