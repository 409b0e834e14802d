"""LangChain: a document compressor that reranks retrieved documents with rerankq.

    from langchain_classic.retrievers import ContextualCompressionRetriever
    from rerankq.integrations.langchain import RerankqRerank
    retriever = ContextualCompressionRetriever(base_compressor=RerankqRerank(base_url=URL, top_n=5),
                                               base_retriever=vector_store.as_retriever())

Each returned document carries `relevance_score` in its metadata; results of the degraded
fallback also carry `rerankq_degraded: True` and `rerankq_model` (the model that scored them).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

try:
    from langchain_core.callbacks import Callbacks
    from langchain_core.documents import BaseDocumentCompressor, Document
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("rerankq.integrations.langchain needs langchain-core: "
                      "pip install 'rerankq[langchain]'") from error
from pydantic import ConfigDict, Field, PrivateAttr

from rerankq.sdk import AsyncRerankClient, RerankClient
from rerankq.schemas import RerankResponse


class RerankqRerank(BaseDocumentCompressor):
    """Keep the `top_n` documents rerankq ranks most relevant to the query, best first."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    base_url: Optional[str] = None  # default: RERANKQ_URL, else http://127.0.0.1:8000
    api_key: Optional[str] = Field(None, repr=False)  # default: RERANKQ_API_KEY; kept out of repr and logs
    top_n: Optional[int] = 3  # None keeps every document
    model: Optional[str] = None
    instruction: Optional[str] = None
    timeout: float = 60.0
    _client: Optional[RerankClient] = PrivateAttr(None)

    def _options(self) -> dict[str, Any]:
        return dict(top_n=self.top_n, model=self.model, instruction=self.instruction)

    def compress_documents(self, documents: Sequence[Document], query: str,
                           callbacks: Optional[Callbacks] = None) -> Sequence[Document]:
        if not documents:
            return []
        if self._client is None:
            self._client = RerankClient(self.base_url, self.api_key, timeout=self.timeout)
        response = self._client.rerank(query, [d.page_content for d in documents], **self._options())
        return ranked_documents(documents, response)

    async def acompress_documents(self, documents: Sequence[Document], query: str,
                                  callbacks: Optional[Callbacks] = None) -> Sequence[Document]:
        if not documents:
            return []
        async with AsyncRerankClient(self.base_url, self.api_key, timeout=self.timeout) as client:
            response = await client.rerank(query, [d.page_content for d in documents], **self._options())
        return ranked_documents(documents, response)


def ranked_documents(documents: Sequence[Document], response: RerankResponse) -> list[Document]:
    marks = {"rerankq_degraded": True, "rerankq_model": response.meta.model} if response.meta.degraded else {}
    return [
        Document(page_content=documents[r.index].page_content, id=documents[r.index].id,
                 metadata={**documents[r.index].metadata, "relevance_score": r.relevance_score, **marks})
        for r in response.results
    ]
