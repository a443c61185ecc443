"""What the operator tells about itself: Prometheus metrics, gauges computed from the
registry, structured logs with secrets scrubbed, and giving freed memory back."""
