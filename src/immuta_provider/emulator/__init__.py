"""A stateful local Immuta Connections API emulator (FastAPI on uvicorn) with fault injection.

Install with the ``[emulator]`` extra. Run it with ``immuta-emulator`` or
``python -m immuta_provider.emulator``; start it from Python or pytest with
``immuta_provider.emulator.process.run_emulator``. This package imports nothing at import time, so
``process`` (which only needs httpx) works without FastAPI installed.
"""
