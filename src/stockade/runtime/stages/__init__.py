"""The pipeline's stages that belong to no other package: what :mod:`stockade.runtime.pipeline`
runs between the engine and the sinks (:mod:`~stockade.runtime.stages.aggregate`: bursts of
identical alerts passed on as one). The order of every stage is in the pipeline's docstring."""
