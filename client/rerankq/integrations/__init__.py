"""Framework adapters over the SDK, each behind an optional extra:
`pip install rerankq[langchain]` -> rerankq.integrations.langchain.RerankqRerank (a document compressor),
`pip install rerankq[llama-index]` -> rerankq.integrations.llama_index.RerankqRerank (a node postprocessor)."""
