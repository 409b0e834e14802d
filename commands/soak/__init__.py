"""`rerankq soak`: a randomized chaos soak of a whole local stack, checked against the invariants."""
