"""Human-facing commands."""
