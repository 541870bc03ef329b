"""Export a trained checkpoint to ONNX for the pipeline (src/model/model-runner.ts):

  /usr/bin/python3 models/train/export.py --run models/train/runs/r1 --out models/vbmd-resunet3d-0.1.0.onnx

Names and shapes follow src/model/contract.ts: input `density` [N,1,32,32,32] (clipped, scaled density),
outputs `roi_logits` [N,1,32,32,32], `vbmd` [N,1] (mg/cm3), `class_logits` [N,3]; dynamic batch axis.
Opset 17 (onnxruntime 1.30 loads opsets up to 21+; torch 1.13 exports up to 17). BatchNorm is folded into the
convolutions by the exporter in eval mode. Writes OUT and OUT with .sha256 (sha256sum format) beside it, plus a
small reference case (OUT .reference.json: a fixed input's outputs) for the pipeline's CI test.
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import count_params, load_model  # noqa: E402

INPUT_NAME = "density"
OUTPUTS = ["roi_logits", "vbmd", "class_logits"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--ckpt", default="last.pt", help="checkpoint in --run: last.pt, or last.weights.npz (plain arrays, any torch version)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args()
    model, state = load_model(os.path.join(args.run, args.ckpt))
    cfg = state["config"]
    x = torch.zeros(2, 1, 32, 32, 32)
    torch.onnx.export(
        model,
        x,
        args.out,
        input_names=[INPUT_NAME],
        output_names=OUTPUTS,
        dynamic_axes={INPUT_NAME: {0: "batch"}, **{o: {0: "batch"} for o in OUTPUTS}},
        opset_version=args.opset,
        do_constant_folding=True,
    )
    with open(args.out, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    sha_path = args.out[: -len(".onnx")] + ".sha256" if args.out.endswith(".onnx") else args.out + ".sha256"
    with open(sha_path, "w") as f:
        f.write(f"{digest}  {os.path.basename(args.out)}\n")
    size = os.path.getsize(args.out)
    # Reference case: a smooth synthetic body-like input (deterministic, no data needed) and its torch outputs.
    g = np.mgrid[0:32, 0:32, 0:32].astype(np.float32)
    r2 = ((g[0] - 15.5) / 9) ** 2 + ((g[1] - 15.5) / 10) ** 2 + ((g[2] - 15.5) / 13) ** 2
    dens = np.where(r2 < 1, 150.0, 0.0) + np.where((r2 >= 1) & (r2 < 1.3), 700.0, 0.0) - np.where(r2 >= 1.3, 0.0, 0.0)
    xin = torch.from_numpy((np.clip(dens, -200, 1200) / 300).astype(np.float32))[None, None]
    with torch.no_grad():
        r, v, c = model(xin)
    ref = {
        "note": "input: density 150 mg/cm3 inside an ellipsoid (semi-axes 9,10,13 voxels along D,H,W about 15.5), 700 in a shell to r^2<1.3, 0 outside; network input = clip/300",
        "vbmd": float(v[0, 0]),
        "class_logits": [float(t) for t in c[0]],
        "roi_logits_sum": float(r.sum()),
        "roi_logits_center": float(r[0, 0, 16, 16, 16]),
        "roi_voxels_p_ge_0_5": int((torch.sigmoid(r) >= 0.5).sum()),
    }
    with open(args.out[: -len(".onnx")] + ".reference.json", "w") as f:
        json.dump(ref, f, indent=2)
        f.write("\n")
    print(json.dumps({"out": args.out, "bytes": size, "sha256": digest, "step": state["step"], "parameters": count_params(model), "config": cfg, "reference": ref}, indent=2))


if __name__ == "__main__":
    main()
