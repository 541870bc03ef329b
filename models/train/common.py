"""Shared pieces of the vBMD network's training (issue 7): the patch data written by `vbmd export-patches`
(src/research/training-data/export-patches.ts; Python never re-implements the preprocessing) and the 3D ResUNet.

The contract (src/model/contract.ts) is read from each data folder's meta.json, never restated here: patch
size, clip and scale all come from the files the TypeScript exporter wrote.
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CLASS_ORDER = ("normal", "osteopenia", "osteoporosis")


def read_meta(folder):
    with open(os.path.join(folder, "meta.json")) as f:
        meta = json.load(f)
    if meta.get("schema") != "vbmd.model-patches/1":
        raise SystemExit(f"{folder}/meta.json is not vbmd.model-patches/1; export it with `vbmd export-patches`.")
    return meta


class PatchSet:
    """All samples of one or more export folders in memory (a few hundred MB at most)."""

    def __init__(self, folders):
        self.meta = None
        dens, masks, index = [], [], []
        for folder in folders:
            meta = read_meta(folder)
            if self.meta is None:
                self.meta = meta
            elif any(self.meta[k] != meta[k] for k in ("patchVoxels", "patchSpacingMm", "inputClipMgCm3", "inputScaleMgCm3")):
                raise SystemExit(f"{folder} was exported with another contract than {folders[0]}.")
            with open(os.path.join(folder, "index.jsonl")) as f:
                rows = [json.loads(line) for line in f if line.strip()]
            v = meta["patchVoxels"]
            n = len(rows)
            d = np.fromfile(os.path.join(folder, "density.f32"), dtype="<f4", count=n * v ** 3).reshape(n, v, v, v)
            m = np.fromfile(os.path.join(folder, "mask.u8"), dtype=np.uint8, count=n * v ** 3).reshape(n, v, v, v)
            if d.shape[0] != n or m.shape[0] != n:
                raise SystemExit(f"{folder}: binaries shorter than the index; rerun the export to resume it.")
            dens.append(d)
            masks.append(m)
            index.extend(rows)
        self.density = np.concatenate(dens) if dens else np.zeros((0,))
        self.mask = np.concatenate(masks) if masks else np.zeros((0,))
        self.index = index
        self.truth = np.array([r["truthVbmdMgCm3"] for r in index], dtype=np.float32)
        # What a perfect measurement reads with the patch's own calibration: truth for the true (site) line; for
        # the phantomless chain the truth HU (true line) read back through that chain's line. The network cannot see
        # calibration error, so this, not the truth, is its learnable target (issue 7: calibration belongs before it).
        tgt = []
        for r in index:
            t, c, tc = r["truthVbmdMgCm3"], r["calibration"], r.get("trueCalibration")
            tgt.append(t if tc is None else (tc["intercept"] + tc["slope"] * t - c["intercept"]) / c["slope"])
        self.target = np.array(tgt, dtype=np.float32)
        self.cls = np.array([0 if v > 120 else 1 if v >= 80 else 2 for v in self.target], dtype=np.int64)
        self.truth_cls = np.array([r["classIndex"] for r in index], dtype=np.int64)
        self.has_mask = np.array([r["hasMask"] for r in index], dtype=bool)
        self.known_cal = np.array([r["source"] == "site" or r["calibration"]["method"] == "phantom" for r in index], dtype=bool)

    def __len__(self):
        return len(self.index)

    def network_input(self, ids):
        lo, hi = self.meta["inputClipMgCm3"]
        x = np.clip(self.density[ids], lo, hi) / self.meta["inputScaleMgCm3"]
        return torch.from_numpy(x[:, None].astype(np.float32))


def norm(c):
    return nn.BatchNorm3d(c)


class ResBlock(nn.Module):
    """Two 3x3x3 convolutions with a residual connection (1x1x1 projection when channels change)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.c1 = nn.Conv3d(cin, cout, 3, padding=1, bias=False)
        self.n1 = norm(cout)
        self.c2 = nn.Conv3d(cout, cout, 3, padding=1, bias=False)
        self.n2 = norm(cout)
        self.skip = None if cin == cout else nn.Sequential(nn.Conv3d(cin, cout, 1, bias=False), norm(cout))

    def forward(self, x):
        y = F.relu(self.n1(self.c1(x)))
        y = self.n2(self.c2(y))
        return F.relu(y + (x if self.skip is None else self.skip(x)))


class ResUNet3d(nn.Module):
    """3D residual U-Net (Wang et al. 2024 use a 3D ResUNet) with three heads per src/model/contract.ts.

    levels resolutions (32, 16, 8, 4 for a 32^3 patch), channels base * (1, 2, 4, 8).
    roi_logits: [N,1,D,H,W]. vbmd: mg/cm3, = the soft-mask mean of the (clipped) input density, plus a learned
    correction from pooled features (zero at initialisation, so training starts from the auditable readout).
    class_logits: [N,3] from pooled features and the vBMD estimate relative to the ACR cut-offs (80, 120).
    """

    def __init__(self, base=8, levels=4, input_scale=300.0):
        super().__init__()
        ch = [base * 2 ** i for i in range(levels)]
        self.input_scale = input_scale
        self.stem = nn.Sequential(nn.Conv3d(1, ch[0], 3, padding=1, bias=False), norm(ch[0]), nn.ReLU(inplace=True))
        self.enc = nn.ModuleList([ResBlock(ch[0], ch[0])] + [ResBlock(ch[i - 1], ch[i]) for i in range(1, levels)])
        self.down = nn.ModuleList([nn.Conv3d(ch[i], ch[i], 2, stride=2) for i in range(levels - 1)])
        self.up = nn.ModuleList([nn.ConvTranspose3d(ch[i + 1], ch[i], 2, stride=2) for i in range(levels - 1)])
        self.dec = nn.ModuleList([ResBlock(2 * ch[i], ch[i]) for i in range(levels - 1)])
        self.roi = nn.Conv3d(ch[0], 1, 1)
        feat = ch[-1] + ch[0]
        self.reg = nn.Sequential(nn.Linear(feat + 1, 32), nn.ReLU(inplace=True), nn.Linear(32, 1))
        nn.init.zeros_(self.reg[2].weight)
        nn.init.zeros_(self.reg[2].bias)
        self.cls = nn.Sequential(nn.Linear(feat + 2, 32), nn.ReLU(inplace=True), nn.Linear(32, 3))

    def forward(self, x):
        h = self.stem(x)
        skips = []
        for i, block in enumerate(self.enc):
            h = block(h)
            if i < len(self.down):
                skips.append(h)
                h = self.down[i](h)
        bottleneck = h.mean(dim=(2, 3, 4))
        for i in reversed(range(len(self.dec))):
            h = self.up[i](h)
            h = self.dec[i](torch.cat([h, skips[i]], dim=1))
        roi_logits = self.roi(h)
        p = torch.sigmoid(roi_logits)
        psum = p.sum(dim=(2, 3, 4)) + 1e-3
        # Soft-mask mean of the input density in mg/cm3 (input is density / input_scale, clipped).
        soft_mean = (p * x).sum(dim=(2, 3, 4)) / psum * self.input_scale
        masked_feat = (p * h).sum(dim=(2, 3, 4)) / psum
        z = torch.cat([bottleneck, masked_feat, soft_mean / 100.0], dim=1)
        vbmd = soft_mean + 20.0 * self.reg(z)
        cz = torch.cat([bottleneck, masked_feat, (vbmd - 80.0) / 20.0, (vbmd - 120.0) / 20.0], dim=1)
        class_logits = self.cls(cz)
        return roi_logits, vbmd, class_logits


def load_checkpoint(path):
    """A run's weights: last.pt (torch.save, this torch) or *.weights.npz (plain arrays that train.py writes beside it,
    readable whatever torch wrote them, e.g. a run on a lent GPU machine). Returns {config, step, model}."""
    if path.endswith(".npz"):
        z = np.load(path)
        return {"config": json.loads(str(z["config"])), "step": int(z["step"]),
                "model": {k: torch.from_numpy(z[k]) for k in z.files if k not in ("config", "step")}}
    return torch.load(path, map_location="cpu", weights_only=False)


def load_model(path):
    state = load_checkpoint(path)
    cfg = state["config"]
    model = ResUNet3d(base=cfg["base"], levels=cfg["levels"], input_scale=cfg["input_scale"])
    model.load_state_dict(state["model"])
    model.eval()
    return model, state


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def mask_readout(density, prob, threshold=0.5):
    """The pipeline's auditable readout: mean unclipped density over voxels with p >= threshold (NaN if none)."""
    m = prob >= threshold
    n = m.reshape(m.shape[0], -1).sum(1)
    s = (density * m).reshape(m.shape[0], -1).sum(1)
    out = np.full(m.shape[0], np.nan, dtype=np.float64)
    ok = n > 0
    out[ok] = s[ok] / n[ok]
    return out, n


def dice(prob, target, threshold=0.5):
    p = prob >= threshold
    t = target > 0
    inter = (p & t).reshape(p.shape[0], -1).sum(1)
    denom = p.reshape(p.shape[0], -1).sum(1) + t.reshape(t.shape[0], -1).sum(1)
    return np.where(denom > 0, 2 * inter / np.maximum(denom, 1), 1.0)


def predict(model, data, ids, batch=16, device="cpu"):
    model.eval()
    probs, regs, logits = [], [], []
    with torch.no_grad():
        for s in range(0, len(ids), batch):
            b = ids[s:s + batch]
            r, v, c = model(data.network_input(b).to(device))
            probs.append(torch.sigmoid(r)[:, 0].cpu().numpy())
            regs.append(v[:, 0].cpu().numpy())
            logits.append(c.cpu().numpy())
    return np.concatenate(probs), np.concatenate(regs), np.concatenate(logits)
