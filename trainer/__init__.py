"""trainer: a self-hosted backend for an endurance-training mobile app."""

__version__ = "0.1.0"
