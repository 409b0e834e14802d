"""LlamaIndex: a node postprocessor that reranks retrieved nodes with rerankq.

    from rerankq.integrations.llama_index import RerankqRerank
    engine = index.as_query_engine(similarity_top_k=20,
                                   node_postprocessors=[RerankqRerank(base_url=URL, top_n=5)])

Node scores become rerankq relevance scores. Nodes scored by the degraded fallback are copies
whose metadata says `rerankq_degraded: True` and names `rerankq_model`.
"""

from __future__ import annotations

from typing import Any, List, Optional

try:
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("rerankq.integrations.llama_index needs llama-index-core: "
                      "pip install 'rerankq[llama-index]'") from error
from pydantic import Field, PrivateAttr

from rerankq.sdk import AsyncRerankClient, RerankClient
from rerankq.schemas import RerankResponse


class RerankqRerank(BaseNodePostprocessor):
    """Keep the `top_n` nodes rerankq ranks most relevant to the query, best first."""

    base_url: Optional[str] = Field(None, description="Default: RERANKQ_URL, else http://127.0.0.1:8000.")
    api_key: Optional[str] = Field(None, description="Default: RERANKQ_API_KEY.", repr=False)
    top_n: Optional[int] = Field(3, description="Nodes to keep; None keeps all.")
    model: Optional[str] = None
    instruction: Optional[str] = None
    timeout: float = 60.0
    _client: Optional[RerankClient] = PrivateAttr(None)

    @classmethod
    def class_name(cls) -> str:
        return "RerankqRerank"

    def _request(self, nodes: List[NodeWithScore], query_bundle: Optional[QueryBundle]) -> tuple[str, list[str]]:
        if query_bundle is None:
            raise ValueError("RerankqRerank needs the query (query_bundle or query_str)")
        return query_bundle.query_str, [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]

    def _options(self) -> dict[str, Any]:
        return dict(top_n=self.top_n, model=self.model, instruction=self.instruction)

    def _postprocess_nodes(self, nodes: List[NodeWithScore],
                           query_bundle: Optional[QueryBundle] = None) -> List[NodeWithScore]:
        if not nodes:
            return []
        query, texts = self._request(nodes, query_bundle)
        if self._client is None:
            self._client = RerankClient(self.base_url, self.api_key, timeout=self.timeout)
        return ranked_nodes(nodes, self._client.rerank(query, texts, **self._options()))

    async def _apostprocess_nodes(self, nodes: List[NodeWithScore],
                                  query_bundle: Optional[QueryBundle] = None) -> List[NodeWithScore]:
        if not nodes:
            return []
        query, texts = self._request(nodes, query_bundle)
        async with AsyncRerankClient(self.base_url, self.api_key, timeout=self.timeout) as client:
            return ranked_nodes(nodes, await client.rerank(query, texts, **self._options()))


def ranked_nodes(nodes: List[NodeWithScore], response: RerankResponse) -> List[NodeWithScore]:
    ranked = []
    for result in response.results:
        node = nodes[result.index].node
        if response.meta.degraded:
            node = node.model_copy(update={"metadata": {**node.metadata, "rerankq_degraded": True,
                                                        "rerankq_model": response.meta.model}})
        ranked.append(NodeWithScore(node=node, score=result.relevance_score))
    return ranked
