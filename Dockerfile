# sealwatch in a container (docs/deploy.md, "Docker and compose").
#
#   scripts/wheelhouse                        # dist/wheelhouse: every wheel, built where pip
#   docker build -t sealwatch:0.1.0 .         # can reach the index; the image installs from
#                                             # it with --no-index
#
# The wheelhouse is built for the host's Python and platform: build it with Python 3.11 on
# x86_64 Linux (glibc), as the base image below is. Nothing is downloaded at run time; the
# only network the daemon uses is the broker's and its own HTTP port.

# --- stage 1: the virtualenv, from the wheelhouse only --------------------------------------
FROM python:3.11-slim-bookworm AS install
COPY dist/wheelhouse /wheelhouse
RUN python -m venv /opt/sealwatch \
    && /opt/sealwatch/bin/pip install --no-cache-dir --disable-pip-version-check \
       --no-index --find-links /wheelhouse sealwatch \
    && /opt/sealwatch/bin/pip uninstall --yes pip

# --- stage 2: the runtime -------------------------------------------------------------------
FROM python:3.11-slim-bookworm
# The archive's PDF: WeasyPrint lays text out with Pango; Chinese text needs a CJK font.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       libpango-1.0-0 libpangoft2-1.0-0 fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 990 sealwatch \
    && useradd --system --uid 990 --gid sealwatch --home-dir /var/lib/sealwatch \
       --shell /usr/sbin/nologin sealwatch \
    && install -d -o sealwatch -g sealwatch -m 0700 /var/lib/sealwatch \
    && install -d -m 0755 /etc/sealwatch
COPY --from=install /opt/sealwatch /opt/sealwatch
ENV PATH=/opt/sealwatch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SEALWATCH_DATA_DIR=/var/lib/sealwatch \
    SEALWATCH_HTTP=0.0.0.0:8080
USER sealwatch
WORKDIR /var/lib/sealwatch
# The store, the ledger's signing key (unless given as a secret), the dashboard's users.
VOLUME ["/var/lib/sealwatch"]
EXPOSE 8080
# /healthz answers 200 while the daemon serves (its body says "ok" or "degraded": a degraded
# daemon still alerts, so it is not restarted for it). Keep SEALWATCH_HTTP on port 8080.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["sealwatch"]
CMD ["run", "--config", "/etc/sealwatch/site.yaml"]
