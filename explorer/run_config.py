"""What defines a run, without TensorFlow: the page's sidebar builds these before TensorFlow is
imported (see explorer/loss_registry.py); explorer/training.py trains them."""

from __future__ import annotations

from dataclasses import dataclass, field

# The U-Net's normalization layers (explorer/model.py): the setting's values and their names.
NORMALIZATIONS = {"group": "group normalization", "batch": "batch normalization", "none": "no normalization"}
DEFAULT_NORMALIZATION = "group"


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. `loss_params` are the loss's own parameters (floats and
    the booleans `batch`, `include_background`); `class_weights` are final per-class weights
    (None: uniform), used by losses whose registry entry says so."""

    loss_id: str = "ce"
    loss_params: dict = field(default_factory=dict)
    class_weights: tuple[float, ...] | None = None
    learning_rate: float = 1e-3
    batch_size: int = 16
    seed: int = 0
    depth: int = 3
    width: int = 8
    normalization: str = DEFAULT_NORMALIZATION

    def architecture(self) -> tuple:
        """What must match for two runs to share weights."""
        return (self.depth, self.width, self.seed, self.normalization)
