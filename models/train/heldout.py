"""Held-out check (issue 7) on patches exported with `vbmd export-patches --held-out` (seeds 900000+, the scanner's
true calibration), to choose the readout. The authoritative table is `vbmd evaluate`'s.

  /usr/bin/python3 models/train/heldout.py --run models/train/runs/r1 --data models/train/data/heldout [--json OUT]

Compares, on the same vertebrae: the model's mask readout (mean unclipped density over p >= 0.5), its regression
head, the engine's geometric ROI (as exported, all levels, included or not), and the truth-mask readout (ceiling).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import PatchSet, dice, load_model, mask_readout, predict  # noqa: E402


MIN_MODEL_ROI_VOXELS = 149


def ranks(a):
    order = np.argsort(a, kind="mergesort")
    r = np.empty(len(a), dtype=np.float64)
    s = np.asarray(a)[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2.0
        i = j + 1
    return r


def pearson(a, b):
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def auc(score, positive):
    """ROC AUC = P(score of a positive > score of a negative), ties count 1/2 (Mann-Whitney)."""
    pos = score[positive]
    neg = score[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    r = ranks(np.concatenate([pos, neg])) + 1
    return float((r[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def cls_of(v):
    return np.where(v > 120, 0, np.where(v >= 80, 1, 2))


def metrics(pred, truth):
    ok = ~np.isnan(pred)
    p, t = pred[ok], truth[ok]
    d = p - t
    return {
        "n": int(ok.sum()),
        "missing": int((~ok).sum()),
        "spearman": pearson(ranks(p), ranks(t)),
        "pearson": pearson(p, t),
        "mae": float(np.mean(np.abs(d))),
        "bias": float(np.mean(d)),
        "loa_low": float(np.mean(d) - 1.96 * np.std(d, ddof=1)),
        "loa_high": float(np.mean(d) + 1.96 * np.std(d, ddof=1)),
        "max_abs_err": float(np.max(np.abs(d))),
        "auc_lt80": auc(-p, t < 80),
        "auc_le120": auc(-p, t <= 120),
        "class_acc": float(np.mean(cls_of(p) == cls_of(t))),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--ckpt", default="last.pt", help="last.pt or last.weights.npz")
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = PatchSet(args.data.split(","))
    model, state = load_model(os.path.join(args.run, args.ckpt))
    ids = np.arange(len(data))
    prob, reg, logits = predict(model, data, ids)
    readout, nvox = mask_readout(data.density, prob)
    # The pipeline reports no model value when the predicted ROI is under src/model/infer-levels.ts
    # MIN_MODEL_ROI_VOXELS (= ceil(500 mm3 / 1.5^3) = 149, the geometric ROI's minimum volume).
    readout[nvox < MIN_MODEL_ROI_VOXELS] = np.nan
    # What a perfect measurement reads with the patch's own calibration (common.py PatchSet.target): the truth for
    # the held-out set (true calibration); for a validation split of training seeds, which mixes calibrations, the
    # truth read back through the patch's calibration line.
    truth = data.target
    geo = np.array([np.nan if r["geometricVbmdMgCm3"] is None else r["geometricVbmdMgCm3"] for r in data.index])
    ceiling = np.array([np.nan if r["truthMaskMeanMgCm3"] is None else r["truthMaskMeanMgCm3"] for r in data.index])
    lesion = np.array([r["lesion"] is not None for r in data.index])
    fracture = np.array([r["fracture"] for r in data.index])
    contrast = np.array([r["contrast"] for r in data.index])
    geo_incl = np.array([r["geometricIncluded"] for r in data.index])
    out = {
        "step": state["step"],
        "samples": len(data),
        "studies": len({r["input"] for r in data.index}),
        "seeds": [min(r["seed"] for r in data.index), max(r["seed"] for r in data.index)],
        "dice": float(np.mean(dice(prob, data.mask))),
        "class_head_acc": float(np.mean(np.argmax(logits, 1) == data.truth_cls)),
        "class_head_auc_lt80": auc(torch.softmax(torch.from_numpy(logits), 1).numpy()[:, 2], truth < 80),
        "groups": {},
    }
    groups = {
        "all": np.ones(len(data), bool),
        "no_contrast": ~contrast,
        "contrast": contrast,
        "lesion": lesion,
        "fracture": fracture,
        "clean_no_contrast": ~lesion & ~fracture & ~contrast,
        "geometric_included": geo_incl,
    }
    for g, sel in groups.items():
        if sel.sum() < 3:
            continue
        out["groups"][g] = {
            "model_mask": metrics(readout[sel], truth[sel]),
            "model_regression": metrics(reg[sel].astype(np.float64), truth[sel]),
            "geometric_roi": metrics(geo[sel], truth[sel]),
            "truth_mask_ceiling": metrics(ceiling[sel], truth[sel]),
        }
    # Readout threshold sweep (information for the choice; the pipeline uses p >= 0.5, i.e. logit >= 0).
    out["threshold_sweep"] = {}
    for th in (0.3, 0.5, 0.7, 0.9):
        r, n = mask_readout(data.density, prob, th)
        r[n < MIN_MODEL_ROI_VOXELS] = np.nan
        out["threshold_sweep"][str(th)] = metrics(r, truth)
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
