"""Models built from microseq layers and plain counts, shared by the lessons.

`load(directory)` gives back a model a lesson saved, ready to `answer`."""
from microseq.models.saved import TrainedModel, load, save

__all__ = ["TrainedModel", "load", "save"]
