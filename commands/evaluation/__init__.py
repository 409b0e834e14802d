"""`rerankq eval`: ranking quality of the served model(s) on a BEIR-format collection or on reviewed cases.

collection (BEIR files) -> first stage (a TREC run or BM25) -> scorers (the service over HTTP, or the
worker's backend in this process) -> measures (ir-measures) -> significance (paired t-test) -> report.
"""

# Here, not in measures.py, so that `rerankq --help` and `rerankq up` work without the eval extra.
DEFAULT_METRICS = "nDCG@10,RR@10,R@100,AP"
