"""Backbone initialisation: the ``model.init`` / ``model.weights`` config keys, the ImageNet weight
files they name, where those files live, and the record stored with every result.

* ``model.init: imagenet`` loads the ImageNet weights the papers' code starts from (the table
  :data:`KNOWN_WEIGHTS`, one entry per backbone name): torchvision's
  ``ResNet50_Weights.IMAGENET1K_V1`` for ResNet-50, and timm's
  ``vit_base_patch16_224.orig_in21k_ft_in1k`` (the ImageNet-21k -> 1k ``jx_vit_base_p16_224``
  file TransReID and PMT load) for ViT-B/16. The file is looked up in the torch hub cache
  (``$TORCH_HOME/hub/checkpoints``, where ``torchvision`` and timm's URL weights go), fetched
  there on first use unless offline (``VIBENCH_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``), and checked
  against the table's sha256 (the full digest where it is recorded, else the prefix the file
  name carries). ``model.weights`` may point at a local copy instead; it is checked the same way.
* ``model.init: file`` loads ``model.weights`` (any state dict of the backbone); its sha256 is
  recorded, not checked.
* ``model.init: random`` starts from the backbone's random initialisation.

:func:`resolve_init` turns a config's :class:`InitSpec` into the record (kind, name, file,
sha256) the engine stores in a cell's spec and model record; :func:`check_random_init` is the
rule that keeps a paper config from training from random weights unless asked to. The module
imports torch only to locate or download a file (the runner's planning module stays torch-free).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterable, Literal, Mapping, Sequence

from vibench.engine.schema import Problem, Section, option
from vibench.errors import VibenchError, did_you_mean
from vibench.io import sha256_file

INIT_KINDS = ("imagenet", "file", "random")
InitKind = Literal["imagenet", "file", "random"]

#: environment switches that forbid downloads (the second is the Hugging Face hub's own)
OFFLINE_ENV = ("VIBENCH_OFFLINE", "HF_HUB_OFFLINE")


@dataclass(frozen=True)
class KnownWeights:
    """One published weight file: the backbone it fits, the ecosystem's name for it, the file
    name (with the sha256 prefix torch hub names carry), its URL and, where recorded, its full
    sha256."""

    arch: str
    name: str
    file: str
    url: str
    sha256: str | None = None

    @property
    def hash_prefix(self) -> str:
        """The hex digits after the last '-' of the file name (torch hub's convention)."""
        stem = self.file.split(".")[0]
        return stem.rsplit("-", 1)[-1] if "-" in stem else ""

    @property
    def expected(self) -> str:
        """The full sha256 when known, else the prefix followed by '...'."""
        return self.sha256 or f"{self.hash_prefix}..."


#: backbone name (``model.backbone`` / ``model.size``) -> its ImageNet weights. Tests and plugins
#: add entries with :func:`register_weights` (or ``monkeypatch.setitem`` on this dict).
KNOWN_WEIGHTS: dict[str, KnownWeights] = {}


def register_weights(entry: KnownWeights, *, replace: bool = False) -> None:
    """Add `entry` to :data:`KNOWN_WEIGHTS` (refused for a name already there unless `replace`)."""
    if entry.arch in KNOWN_WEIGHTS and not replace and KNOWN_WEIGHTS[entry.arch] != entry:
        raise VibenchError(f"ImageNet weights for {entry.arch!r} are already registered "
                           f"({KNOWN_WEIGHTS[entry.arch].name}); pass replace=True to change them")
    KNOWN_WEIGHTS[entry.arch] = entry


_TV = "https://download.pytorch.org/models/"
for _entry in (
    KnownWeights("resnet18", "torchvision ResNet18_Weights.IMAGENET1K_V1", "resnet18-f37072fd.pth", _TV + "resnet18-f37072fd.pth"),
    KnownWeights("resnet34", "torchvision ResNet34_Weights.IMAGENET1K_V1", "resnet34-b627a593.pth", _TV + "resnet34-b627a593.pth"),
    KnownWeights("resnet50", "torchvision ResNet50_Weights.IMAGENET1K_V1", "resnet50-0676ba61.pth", _TV + "resnet50-0676ba61.pth",
                 sha256="0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a"),
    KnownWeights("resnet101", "torchvision ResNet101_Weights.IMAGENET1K_V1", "resnet101-63fe2227.pth", _TV + "resnet101-63fe2227.pth"),
    KnownWeights("vit_base", "timm vit_base_patch16_224.orig_in21k_ft_in1k", "jx_vit_base_p16_224-80ecf9dd.pth",
                 "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-vitjx/jx_vit_base_p16_224-80ecf9dd.pth"),
):
    register_weights(_entry)


def known_weights(arch: str) -> KnownWeights:
    """The ImageNet weights of backbone `arch`, or a VibenchError listing the backbones that have them."""
    entry = KNOWN_WEIGHTS.get(arch)
    if entry is None:
        raise VibenchError(f"no ImageNet weights are known for backbone {arch!r}{did_you_mean(arch, KNOWN_WEIGHTS)} "
                           f"(known: {', '.join(sorted(KNOWN_WEIGHTS))}); use model.init: random, or "
                           "model.init: file with model.weights: PATH")
    return entry


def hub_checkpoints() -> Path:
    """The torch hub cache folder of weight files: ``$TORCH_HOME/hub/checkpoints`` (default
    ``~/.cache/torch/hub/checkpoints``), where torchvision and timm keep URL weights."""
    import torch.hub  # lazy: vibench.runner.cells imports this module and stays torch-free

    return Path(torch.hub.get_dir()) / "checkpoints"


def offline() -> bool:
    """True when ``VIBENCH_OFFLINE`` or ``HF_HUB_OFFLINE`` is set to 1/true/yes/on."""
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on") for k in OFFLINE_ENV)


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a file, computed once per (path, size, mtime) in this process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def _where_to_put(entry: KnownWeights) -> str:
    return (f"put {entry.file} (sha256 {entry.expected}, from {entry.url}) into {hub_checkpoints()}/, "
            f"or give a local copy with `vibench run --weights {entry.arch}=PATH` (or --weights-dir DIR, "
            "or --set model.weights=PATH)")


def verify(path: Path, entry: KnownWeights) -> str:
    """The file's sha256, after checking it against `entry` (full digest, else the name's prefix)."""
    digest = file_sha256(path)
    if entry.sha256 is not None:
        ok, want = digest == entry.sha256, entry.sha256
    else:
        ok, want = bool(entry.hash_prefix) and digest.startswith(entry.hash_prefix), f"{entry.hash_prefix}... (the prefix in {entry.file})"
    if not ok:
        raise VibenchError(f"ImageNet weights {path} for {entry.arch} ({entry.name}) have sha256 {digest}, "
                           f"expected {want}: the file is damaged or another file; {_where_to_put(entry)}")
    return digest


def fetch(entry: KnownWeights) -> tuple[Path, str]:
    """(path, how) of `entry`'s file in the hub cache: already there ("cache") or downloaded now
    ("downloaded"); offline or on a failed download, a VibenchError saying where to put it."""
    path = hub_checkpoints() / entry.file
    if path.is_file():
        return path, "cache"
    if offline():
        raise VibenchError(f"ImageNet weights for {entry.arch} ({entry.name}) are not cached and downloads are off "
                           f"({'/'.join(OFFLINE_ENV)}): {path} does not exist; {_where_to_put(entry)}")
    import torch.hub  # lazy: vibench.runner.cells imports this module and stays torch-free

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(entry.url, str(path), progress=True)
    except Exception as exc:  # network, proxy, disk: all end in the same instruction
        raise VibenchError(f"ImageNet weights for {entry.arch} ({entry.name}) are not cached and the download of "
                           f"{entry.url} failed ({type(exc).__name__}: {exc}); {_where_to_put(entry)}") from None
    return path, "downloaded"


@dataclass(frozen=True)
class InitSpec:
    """What a config asks for: `kind` (imagenet | file | random) for backbone `arch`, with an
    optional local `weights` file."""

    kind: str
    arch: str
    weights: str | None = None


def resolve_init(spec: InitSpec) -> dict[str, Any]:
    """The initialisation record of `spec`, with the weight file located and verified:

    * imagenet: {"kind", "arch", "name", "file", "sha256", "expected_sha256", "url", "source"}
      (source: cache | downloaded | local file);
    * file: {"kind", "arch", "file", "sha256"};
    * random: {"kind", "arch"}.
    """
    if spec.kind == "random":
        return {"kind": "random", "arch": spec.arch}
    if spec.kind == "file":
        path = _local(spec.weights, f"model.weights for model.init: file ({spec.arch})")
        return {"kind": "file", "arch": spec.arch, "file": str(path), "sha256": file_sha256(path)}
    if spec.kind != "imagenet":
        raise VibenchError(f"model.init must be one of {', '.join(INIT_KINDS)}, got {spec.kind!r}")
    entry = known_weights(spec.arch)
    if spec.weights:
        path, how = _local(spec.weights, f"model.weights (the {entry.file} of {entry.name})"), "local file"
    else:
        path, how = fetch(entry)
    return {"kind": "imagenet", "arch": spec.arch, "name": entry.name, "file": str(path),
            "sha256": verify(path, entry), "expected_sha256": entry.sha256 or entry.hash_prefix,
            "url": entry.url, "source": how}


def _local(weights: str | None, what: str) -> Path:
    if not weights:
        raise VibenchError(f"{what} is not set: give a local state-dict file")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise VibenchError(f"{what}: {path} does not exist")
    return path.resolve()


def init_label(record: Mapping[str, Any] | None) -> str:
    """A short human label of an init record, for reports: 'imagenet (torchvision ...)',
    'file resnet50.pth (sha256 1a2b3c4d)', 'random', 'random (explicitly allowed: ...)'."""
    if not record:
        return "not recorded"
    kind = str(record.get("kind", "unknown"))
    if kind == "imagenet":
        return f"imagenet ({record.get('name', '?')}, sha256 {str(record.get('sha256', ''))[:8]})"
    if kind == "file":
        return f"file {Path(str(record.get('file', '?'))).name} (sha256 {str(record.get('sha256', ''))[:8]})"
    if kind == "random" and record.get("allowed"):
        return f"random (explicitly allowed: {record['allowed']})"
    return kind


@dataclass(frozen=True)
class BackboneInit(Section):
    """``model.init`` and ``model.weights`` of a backbone's config section. Subclasses name the
    field holding the backbone name (``arch_field``) the ImageNet table is keyed by."""

    arch_field: ClassVar[str] = "backbone"

    init: InitKind = option("random", doc="imagenet | file | random (docs/training.md, 'Backbone initialisation')")
    weights: str | None = option(None, doc="a local weight file: the ImageNet file itself (init imagenet) or any state dict (init file)")

    @property
    def arch(self) -> str:
        return str(getattr(self, self.arch_field))

    @property
    def pretrained(self) -> InitSpec:
        """What the backbone builders load (:func:`resolve_init`)."""
        return InitSpec(self.init, self.arch, self.weights)

    def problems(self) -> Iterable[Problem]:
        if self.init == "file" and not self.weights:
            yield "weights", "is required with model.init: file (a local state-dict file)"
        if self.init == "random" and self.weights:
            yield "weights", (f"is set ({self.weights}) but model.init is random: set model.init to file "
                              "(any state dict) or imagenet (the known ImageNet file), or drop model.weights")
        if self.init == "imagenet" and self.arch not in KNOWN_WEIGHTS:
            yield "init", (f"no ImageNet weights are known for {self.arch} (known: {', '.join(sorted(KNOWN_WEIGHTS))}); "
                           "use random, or file with model.weights")


def init_spec(cfg: Mapping[str, Any]) -> InitSpec | None:
    """The InitSpec of a resolved config's ``model`` section, or None when it has no ``init``."""
    model = cfg.get("model")
    if not isinstance(model, Mapping) or "init" not in model:
        return None
    arch = model.get("backbone", model.get("size"))
    return InitSpec(str(model["init"]), str(arch), model.get("weights"))


def without_weights(cfg: dict[str, Any]) -> dict[str, Any]:
    """`cfg` (in place) set to random initialisation: for models built only to be counted or
    timed (meta device, latency), which never need the weight files."""
    if isinstance(cfg.get("model"), dict):
        cfg["model"]["weights"] = None
        if "init" in cfg["model"]:
            cfg["model"]["init"] = "random"
    return cfg


def _set_random(overrides: Sequence[str]) -> str | None:
    """The ``--set`` item that sets model.init to random, if any (the last one setting model.init wins)."""
    found = None
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() == "model.init":
            found = item if value.strip().strip("'\"") == "random" else None
    return found


def check_random_init(method: str, config: str, source: str, cfg: Mapping[str, Any], overrides: Sequence[str],
                      *, paper: bool, allow: bool) -> str | None:
    """The rule for random initialisation. A paper config trains from random weights only when the
    user asks for it (`allow`, i.e. ``--allow-random-init``, or a ``--set model.init=random``);
    otherwise a VibenchError names the method, the config file, the weights expected and how to
    provide them. Returns why random init is allowed (recorded with the cell), or None when the
    config does not train from random weights or is not a paper config."""
    spec = init_spec(cfg)
    if spec is None or spec.kind != "random" or not paper:
        return None
    item = _set_random(overrides)
    if item is not None:
        return f"--set {item}"
    if allow:
        return "--allow-random-init"
    entry = KNOWN_WEIGHTS.get(spec.arch)
    if entry is not None:
        need = (f"the paper starts from ImageNet weights: {entry.name}, file {entry.file} (sha256 {entry.expected}). "
                f"To provide them, set model.init: imagenet in the config, then {_where_to_put(entry)}")
    else:
        need = (f"the paper starts from pretrained weights and no ImageNet file is known for backbone {spec.arch}. "
                "To provide one, set model.init: file and model.weights: PATH")
    raise VibenchError(
        f"{method}: the paper config {source} would train from random initialisation, but {need}. To train "
        "from random weights anyway, pass --allow-random-init or --set model.init=random (the choice is "
        "recorded with the results)."
    )
