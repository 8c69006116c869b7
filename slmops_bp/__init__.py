"""slmops-bp: blueprints for small language models on fleets of mixed edge hardware."""

__version__ = "0.1.0"
API_VERSION = "slmops.bp/v1"
