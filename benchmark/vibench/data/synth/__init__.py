"""The built-in synthetic datasets: procedural pedestrians written in the real SYSU-MM01, RegDB
and LLCM layouts, so the real loaders read them (see docs/synthetic.md)."""
from vibench.data.synth.cache import ensure_synthetic, synthetic_root
from vibench.data.synth.scales import DATASETS, SCALES, ScaleSpec, get_scale
from vibench.data.synth.writer import GENERATOR_VERSION, MARKER, generate, read_marker

__all__ = ["DATASETS", "GENERATOR_VERSION", "MARKER", "SCALES", "ScaleSpec", "ensure_synthetic",
           "generate", "get_scale", "read_marker", "synthetic_root"]
