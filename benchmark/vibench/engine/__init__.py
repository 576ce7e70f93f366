"""The training engine shared by all methods: sampler, augmentations, optimisers and schedules,
the training loop with checkpoints and exact resume, feature extraction, and latency/parameter
measurement. A method only supplies what is new about it (see :mod:`vibench.engine.api`)."""
