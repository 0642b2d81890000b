"""Scheduled quality audits: incremental state, alerts, the HTML report (Spark-free parts)."""
