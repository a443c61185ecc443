"""Helpers shared by test tiers that are not pytest fixtures."""
