"""Protocols: declarative specs (``protocols/*.yaml``), per-trial samplers, materialised
query/gallery lists and the imbalance training variants (ARCHITECTURE.md "Protocols";
docs/protocols.md)."""
from vibench.protocols.build import ProtocolLists, build_lists, lists_sha256
from vibench.protocols.catalog import (
    get_catalog,
    get_protocol,
    list_protocols,
    protocol_groups,
    resolve_protocols,
)
from vibench.protocols.imbalance import apply_training_variant, plan_reduction
from vibench.protocols.spec import (
    RULES,
    ImageSetSpec,
    ProtocolSpec,
    ReductionSpec,
    SamplerSpec,
    load_protocol_file,
)

__all__ = [
    "ImageSetSpec", "ProtocolLists", "ProtocolSpec", "RULES", "ReductionSpec", "SamplerSpec",
    "apply_training_variant", "build_lists", "get_catalog", "get_protocol", "list_protocols",
    "lists_sha256", "load_protocol_file", "plan_reduction", "protocol_groups", "resolve_protocols",
]
