"""ML scoring backends behind one small interface (see base.py).

Only torch-free modules are imported here: the API and CLI import `models` without loading a model.
"""

from models.base import Encoded, ModelInfo, Pair, ScoringBackend
from models.loading import ModelLoadError, load_backend

__all__ = ["Encoded", "ModelInfo", "ModelLoadError", "Pair", "ScoringBackend", "load_backend"]
