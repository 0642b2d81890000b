"""The audit's Spark side; its Spark-free half (options, alerts, summary, report) is
``deepiqa_core.audit``. ``job.run_audit`` is the entry point (``jobs/audit.py``, ``deepiqa
audit``); ``state``, ``library``, ``stats``, ``numbers`` and ``report`` are its steps."""
