"""Observability: counters and CloudWatch EMF (`metrics`), log records (`logs`) and
OpenTelemetry spans (`tracing`)."""
