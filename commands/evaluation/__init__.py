"""`rerankq eval`: ranking quality of the served model(s) on a BEIR-format collection or on reviewed cases.

collection (BEIR files) -> first stage (a TREC run or BM25) -> scorers (the service over HTTP, or the
worker's backend in this process) -> measures (ir-measures) -> significance (paired t-test) -> report.
"""
