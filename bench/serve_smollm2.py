"""The in-test Ollama-API server (tests/ollama_api_server.py, real SmolLM2 through llama.cpp) as a
process of its own: prints "READY <url>" and serves until killed."""

from __future__ import annotations

import threading

from tests.ollama_api_server import ollama_server

if __name__ == "__main__":
    with ollama_server() as (url, _):
        print(f"READY {url}", flush=True)
        threading.Event().wait()
