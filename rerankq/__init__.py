"""rerankq: the public package for users' code (the client SDK and the CLI entry point).

    from rerankq import RerankClient
    with RerankClient("http://127.0.0.1:8000", api_key="rrq_...") as client:
        ranked = client.rerank("capital of France?", ["Paris is in France.", "Berlin is in Germany."])
"""

import client
from client import *  # noqa: F401,F403 - the SDK's clients and errors are this package's API
from core.schemas import JobAccepted, JobView, RerankResponse

__version__ = "0.1.0"

__all__ = [*client.__all__, "JobAccepted", "JobView", "RerankResponse"]
