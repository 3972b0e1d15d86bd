# The shape every Python task image shares (extract, load): dataops-task STEP, where STEP is the
# image's folder name, passed as the TASK build argument by `dataops images build`. A folder under
# images/ with no Dockerfile of its own is built from this file; transform has its own (dbt).
# Built with host networking; site/ holds the locked Python packages and the dataops task code.
ARG BASE_IMAGE=dataops/base:bookworm
FROM ${BASE_IMAGE}

ARG TASK
ARG SOURCE_COMMIT=unknown
ARG BUILD_TIME=unknown
ARG VERSION=0.0.0
LABEL org.opencontainers.image.title="dataops-${TASK}" \
      org.opencontainers.image.description="dataops task image: ${TASK}" \
      org.opencontainers.image.revision="${SOURCE_COMMIT}" \
      org.opencontainers.image.created="${BUILD_TIME}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY site/ /opt/dataops/site/
ENV PYTHONPATH=/opt/dataops/site \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATAOPS_DATA_DIR=/data \
    DATAOPS_TASK=${TASK}

# Byte-compiled once here, so no task start compiles its modules again.
RUN python3 -m compileall -qq -j 0 --invalidation-mode unchecked-hash /opt/dataops/site || true

# No shell, no package manager run, no secret: the warehouse password arrives as PGPASSWORD.
# With no arguments the container runs its own step (DATAOPS_TASK).
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["python3", "-m", "dataops.task.main"]
