# The serving image: the README's "Installing by hand" steps, serving only (ONNX Runtime and gRPC, no torch).
#   docker build -t neurender:0.1.0 .        then push it where your cluster pulls from (deploy/kubernetes)
FROM python:3.11-slim-bookworm
# A C compiler, so pip builds the CPU backends' native one-hot kernel (without one the install goes on, slower).
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/neurender
COPY . .
RUN python3.11 -m venv .venv && . .venv/bin/activate && pip install -e .
EXPOSE 50051 9464
# PID 1 is the server itself, so SIGTERM (and the Deployment's preStop) drains it.
ENTRYPOINT ["/opt/neurender/.venv/bin/neurender"]
CMD ["serve", "--models", "/models", "--config", "/etc/neurender/serve.yaml"]
