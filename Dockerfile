# Multi-stage build: a static binary in a minimal image, run as non-root.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags='-s -w' -o /out/portail ./cmd/portail

FROM gcr.io/distroless/static-debian12:nonroot
WORKDIR /app
# Templates and migrations are embedded in the binary; tenants and configs are
# shipped beside it for `portail tenants apply` and as a reference.
COPY --from=build /out/portail /app/portail
COPY --from=build /src/tenants /app/tenants
COPY --from=build /src/configs /app/configs
COPY --from=build /src/templates /app/templates
COPY --from=build /src/migrations /app/migrations
USER nonroot:nonroot
EXPOSE 8080
ENV PORTAIL_TENANTS_DIR=/app/tenants
ENTRYPOINT ["/app/portail"]
CMD ["serve"]
