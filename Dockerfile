# ChatGuard sidecar image.

# The wheel, with the policy engine's per-message modules compiled
# (chatguard/native.py); this stage has the C compiler the slim one lacks.
FROM python:3.12 AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY chatguard ./chatguard
COPY examples ./examples
RUN CHATGUARD_COMPILE=1 pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

COPY --from=build /wheels /wheels
RUN pip install --no-compile /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /var/lib/chatguard --create-home chatguard

USER chatguard
WORKDIR /var/lib/chatguard
# The configuration is mounted at /etc/chatguard/chatguard.yaml. Listen on
# 0.0.0.0 there (listen.host, admin.host) so the ports are reachable.
EXPOSE 8000 8081
# Start-up loads the policy pack before it listens: checking every regex and
# compiling the matcher takes up to a few minutes on a slow machine the first
# time (afterwards data_dir/cache makes it seconds), so allow for it.
HEALTHCHECK --interval=15s --timeout=3s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=2).status == 200 else 1)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["chatguard"]
CMD ["run", "--config", "/etc/chatguard/chatguard.yaml"]
