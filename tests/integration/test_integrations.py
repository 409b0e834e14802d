"""The LangChain and LlamaIndex adapters against the real app (the shared stack)."""

from __future__ import annotations

import asyncio

import pytest

from rerankq import RerankClient

QUERY = "What is the capital of China?"
TEXTS = ["Gravity is a force.", "The capital of China is Beijing.", "Paris is in France.", "北京是中国的首都。"]


@pytest.fixture(scope="module")
def expected(stack):
    """The ranking the SDK gets for the same request: the adapters must return exactly it."""
    with RerankClient(stack.base_url) as client:
        response = client.rerank(QUERY, TEXTS, top_n=2)
    return [(TEXTS[r.index], r.relevance_score) for r in response.results]


def test_langchain_document_compressor(stack, expected):
    pytest.importorskip("langchain_core", reason="needs langchain-core (pip install 'rerankq[langchain]')")
    from langchain_core.documents import Document

    from rerankq.integrations.langchain import RerankqRerank

    documents = [Document(page_content=t, metadata={"source": f"doc{i}"}, id=f"id{i}") for i, t in enumerate(TEXTS)]
    compressor = RerankqRerank(base_url=stack.base_url, top_n=2, api_key="not-shown")
    ranked = compressor.compress_documents(documents, QUERY)
    assert [(d.page_content, d.metadata["relevance_score"]) for d in ranked] == expected
    assert ranked[0].metadata["source"] == f"doc{TEXTS.index(ranked[0].page_content)}"
    assert ranked[0].id == f"id{TEXTS.index(ranked[0].page_content)}" and "rerankq_degraded" not in ranked[0].metadata
    again = asyncio.run(compressor.acompress_documents(documents, QUERY))
    assert [(d.page_content, d.metadata["relevance_score"]) for d in again] == expected
    assert compressor.compress_documents([], QUERY) == [] and "not-shown" not in repr(compressor)


def test_llama_index_node_postprocessor(stack, expected):
    pytest.importorskip("llama_index.core", reason="needs llama-index-core (pip install 'rerankq[llama-index]')")
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from rerankq.integrations.llama_index import RerankqRerank

    nodes = [NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=0.1) for i, t in enumerate(TEXTS)]
    postprocessor = RerankqRerank(base_url=stack.base_url, top_n=2)
    ranked = postprocessor.postprocess_nodes(nodes, query_str=QUERY)
    assert [(n.node.get_content(), n.score) for n in ranked] == expected
    assert ranked[0].node.node_id == f"n{TEXTS.index(ranked[0].node.get_content())}"
    again = asyncio.run(postprocessor.apostprocess_nodes(nodes, QueryBundle(QUERY)))
    assert [(n.node.get_content(), n.score) for n in again] == expected
    with pytest.raises(ValueError, match="needs the query"):
        postprocessor.postprocess_nodes(nodes)
