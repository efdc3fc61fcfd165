"""Assemble a model file from the voxel network of one checkpoint and the layer-energy network of another.

How the bundled ds2 model v2 was made (docs/diffusion.md): its training run predates the per-part
selection of ``model.pt`` (caloforge.train.best_parts), its layer-energy MLP overfitted after
epoch 33 while the voxel U-Net kept improving to the end, so the two best parts were joined:

    python examples/compose_model.py --voxel-from RUN/last.pt --layer-from RUN/model.pt --out model.pt

``--voxel-from`` / ``--layer-from``: a model file (``model.pt``) or a training state (``last.pt``,
whose EMA weights are used). Both must have the same architecture and preprocessing.
"""

from __future__ import annotations

import argparse

import torch

from caloforge.train import load_model_file, save_model_file
from caloforge.train.checkpoint import STATE_FORMAT, build_model, load_training_state


def load_any(path: str):
    """(model, training metadata) from a model file or the EMA weights of a training state."""
    if torch.load(path, map_location="cpu", weights_only=True).get("format") == STATE_FORMAT:
        state = load_training_state(path)
        model = build_model(path, state["config"]["model"], state["geometry"], state["ema"]["model"])
        last = state["history"][-1] if state["history"] else {}
        return model, {"epoch": state["epoch"], "step": state["step"], "val_voxel_loss": last.get("val_voxel_loss"),
                       "val_layer_loss": last.get("val_layer_loss"), "train_config": state["config"],
                       "seed": state["seed"], "elapsed_s": state["elapsed_s"], "source": f"{path} (EMA weights)"}
    model, meta = load_model_file(path)
    return model, {**meta["training"], "source": path}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxel-from", required=True)
    parser.add_argument("--layer-from", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    voxel_model, voxel_meta = load_any(args.voxel_from)
    layer_model, layer_meta = load_any(args.layer_from)
    state = voxel_model.state_dict()
    for key, value in layer_model.state_dict().items():
        if key.startswith("layer_denoiser."):
            state[key] = value
        elif not torch.equal(state[key], value) and not key.startswith("voxel_denoiser."):
            raise SystemExit(f"compose_model: the checkpoints differ in {key} (preprocessing): not the same run")
    voxel_model.load_state_dict(state)
    keep = ("epoch", "step", "val_voxel_loss", "val_layer_loss", "source")
    training = {**{k: v for k, v in layer_meta.items() if k not in keep},
                **{k: v for k, v in voxel_meta.items() if k not in keep},
                "voxel_part": {k: voxel_meta.get(k) for k in keep}, "layer_part": {k: layer_meta.get(k) for k in keep}}
    save_model_file(args.out, voxel_model, training)
    print(f"wrote {args.out}: voxel network from {args.voxel_from}, layer-energy network from {args.layer_from}")


if __name__ == "__main__":
    main()
