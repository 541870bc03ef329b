"""Train the vBMD 3D ResUNet from scratch (or resume) on patches from `vbmd export-patches`.

  /usr/bin/python3 models/train/train.py --data models/train/data/train-a,models/train/data/train-b \
      --run models/train/runs/r1 --steps 3000

Resumes from RUN/last.pt when it exists (same command again). Logs to RUN/train.log. Not part of CI.

Site data: export a manifest of QCT-labelled scans (`vbmd export-patches --manifest site.csv --out DIR`) and add
DIR to --data (or pass --manifest site.csv --vbmd-cli "npx tsx src/cli.ts" to export it first). Those samples have
no mask truth (hasMask false): they train only the regression and class heads.
"""
import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# src/research/training-data/cases.ts HELDOUT_SEED_BASE: seeds from here on are the held-out set.
HELDOUT_SEED_BASE = 900000

from common import PatchSet, ResUNet3d, count_params, dice, load_checkpoint, mask_readout, predict  # noqa: E402


def log(run, msg):
    line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {msg}"
    print(line, flush=True)
    with open(os.path.join(run, "train.log"), "a") as f:
        f.write(line + "\n")


def split_by_study(data, val_fraction):
    """Validation = whole studies (seeds / inputs), never levels of a training study. The choice is a stable hash
    of the study, so a data folder that grows while training (an export still running) keeps its split."""
    def is_val_study(name):
        return int(hashlib.md5(name.encode()).hexdigest()[:8], 16) / 2 ** 32 < val_fraction
    ids = np.arange(len(data))
    is_val = np.array([is_val_study(r["input"]) for r in data.index], dtype=bool)
    return ids[~is_val], ids[is_val]


def present(folders):
    """Folders an export has started writing (with --reload a later one may not exist yet)."""
    return [f for f in folders if os.path.exists(os.path.join(f, "meta.json"))]


def load_data(folders):
    data = PatchSet(present(folders))
    held = sorted({r["seed"] for r in data.index if r["seed"] is not None and r["seed"] >= HELDOUT_SEED_BASE})
    if held:
        raise SystemExit(f"--data holds held-out phantom seeds ({held[0]}...; seeds >= {HELDOUT_SEED_BASE}, src/research/training-data/cases.ts): never train on the held-out set.")
    return data


def index_lines(folders):
    n = 0
    for f in present(folders):
        with open(os.path.join(f, "index.jsonl")) as fh:
            n += sum(1 for line in fh if line.strip())
    return n


def soft_dice_loss(logits, target, weight):
    p = torch.sigmoid(logits)
    dims = (1, 2, 3, 4)
    inter = (p * target).sum(dims)
    denom = p.sum(dims) + target.sum(dims)
    d = 1 - (2 * inter + 1) / (denom + 1)
    return (d * weight).sum() / weight.sum().clamp(min=1)


def evaluate(model, data, ids, device):
    prob, reg, logits = predict(model, data, ids, device=device)
    dens = data.density[ids]
    readout, n = mask_readout(dens, prob)
    target = data.target[ids]
    ok = ~np.isnan(readout)
    hm = data.has_mask[ids]
    res = {
        "n": int(len(ids)),
        "mask_mae": float(np.mean(np.abs(readout[ok] - target[ok]))) if ok.any() else float("nan"),
        "reg_mae": float(np.mean(np.abs(reg - target))),
        # Bland-Altman bias (readout - target) of both readouts: the readout is chosen on validation, not on the test set.
        "mask_bias": float(np.mean(readout[ok] - target[ok])) if ok.any() else float("nan"),
        "reg_bias": float(np.mean(reg - target)),
        "dice": float(np.mean(dice(prob[hm], data.mask[ids][hm]))) if hm.any() else float("nan"),
        "class_acc": float(np.mean(np.argmax(logits, 1) == data.cls[ids])),
        "empty_masks": int((~ok).sum()),
    }
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="comma-separated export folders")
    ap.add_argument("--manifest", help="site manifest CSV (input,level,qct_vbmd): exported first with --vbmd-cli")
    ap.add_argument("--vbmd-cli", default="npx tsx src/cli.ts", help="how to run the vbmd CLI for --manifest")
    ap.add_argument("--run", required=True, help="run folder (checkpoints, log)")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--base", type=int, default=8, help="base channels")
    ap.add_argument("--levels", type=int, default=4, help="resolution levels (>= 3)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--val-fraction", type=float, default=0.08)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--max-minutes", type=float, default=0, help="stop (with a checkpoint) after this wall time; 0 = no limit")
    ap.add_argument("--budget-minutes", type=float, default=0,
                    help="fit the schedule to a wall-time budget: the learning rate anneals over whichever of --steps or this "
                         "comes first, and training ends there (for a lent GPU whose speed is not known ahead); 0 = steps only")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (a GPU is optional; CPU is the supported path)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--init", help="start a new run from these weights (fine-tuning): a last.pt, or the shipped models/<name>-<version>.weights.npz")
    ap.add_argument("--reload", action="store_true", help="reread --data at each evaluation when an export is still adding to it")
    args = ap.parse_args()
    if args.levels < 3:
        raise SystemExit("--levels must be >= 3 (issue 7: >= 3 resolution levels).")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    os.makedirs(args.run, exist_ok=True)
    folders = [f for f in args.data.split(",") if f]
    if args.manifest:
        site_dir = os.path.join(args.run, "site-patches")
        cmd = args.vbmd_cli.split() + ["export-patches", "--manifest", args.manifest, "--out", site_dir]
        log(args.run, "exporting site manifest: " + " ".join(cmd))
        subprocess.run(cmd, check=True)
        folders.append(site_dir)
    data = load_data(folders)
    tr, va = split_by_study(data, args.val_fraction)
    config = {k: getattr(args, k) for k in ("base", "levels", "batch", "lr", "steps", "seed")}
    config["input_scale"] = data.meta["inputScaleMgCm3"]
    model = ResUNet3d(base=args.base, levels=args.levels, input_scale=data.meta["inputScaleMgCm3"]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    step = 0
    ck = os.path.join(args.run, "last.pt")
    rng = np.random.RandomState(args.seed)
    if os.path.exists(ck):
        state = torch.load(ck, map_location=device, weights_only=False)
        if state["config"]["base"] != args.base or state["config"]["levels"] != args.levels:
            raise SystemExit(f"{ck} holds another architecture; use a new --run folder.")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        log(args.run, f"resumed at step {step}")
    else:
        torch.manual_seed(args.seed)
        if args.init:
            # Fine-tuning (e.g. on a site's QCT-labelled scans): start from trained weights, fresh optimiser.
            init = load_checkpoint(args.init)
            if init["config"]["base"] != args.base or init["config"]["levels"] != args.levels:
                raise SystemExit(f"{args.init} holds another architecture (base {init['config']['base']}, levels {init['config']['levels']}).")
            model.load_state_dict(init["model"])
            log(args.run, f"initialised from {args.init} (step {init['step']})")
        log(args.run, f"start: {len(tr)} train / {len(va)} val samples from {folders}; {count_params(model)} parameters; config {json.dumps(config)}")

    def save(path):
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "rng": rng.get_state(), "torch_rng": torch.get_rng_state(), "config": config}, path + ".tmp")
        os.replace(path + ".tmp", path)
        # The weights alone as plain arrays: export.py reads them with any torch version (a checkpoint written by a
        # newer torch on a lent GPU machine need not load in Debian's).
        np.savez(path[: -len(".pt")] + ".weights.npz.tmp.npz", config=json.dumps(config), step=step,
                 **{k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
        os.replace(path[: -len(".pt")] + ".weights.npz.tmp.npz", path[: -len(".pt")] + ".weights.npz")

    warm = 100
    t_start = time.time()
    t_last = t_start
    run_loss = {}
    budget_s = args.budget_minutes * 60

    def progress():
        # Fraction of the schedule done: by steps, or by wall time when a budget is set (whichever is further).
        p = step / args.steps
        return max(p, (time.time() - t_start) / budget_s) if budget_s else p

    on_gpu = None
    while progress() < 1:
        model.train()
        ids = np.sort(rng.choice(tr, size=args.batch, replace=False))
        if device.type == "cuda":
            # The whole set lives on the GPU (a few GB): batches are gathered there, not copied per step.
            if on_gpu is None or on_gpu[0] is not data:
                on_gpu = (data, data.network_input(np.arange(len(data))).to(device), torch.from_numpy(data.mask).to(device))
            ids_d = torch.from_numpy(ids).to(device)
            x = on_gpu[1][ids_d]
            y_mask = on_gpu[2][ids_d][:, None].float()
        else:
            x = data.network_input(ids)
            y_mask = torch.from_numpy(data.mask[ids][:, None].astype(np.float32))
        y_v = torch.from_numpy(data.target[ids])
        y_c = torch.from_numpy(data.cls[ids])
        w_mask = torch.from_numpy(data.has_mask[ids].astype(np.float32))
        # Regression/class targets everywhere (data.target accounts for the patch's calibration, common.py).
        w_reg = torch.ones(len(ids))
        # Left-right flip: the anatomy is mirror-symmetric to first order (W is R->L).
        if rng.rand() < 0.5:
            x = torch.flip(x, dims=[4])
            y_mask = torch.flip(y_mask, dims=[4])
        lr = args.lr * min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress())))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y_mask, y_v, y_c, w_mask, w_reg = (t.to(device, non_blocking=True) for t in (x, y_mask, y_v, y_c, w_mask, w_reg))
        roi, v, c = model(x)
        bce = (F.binary_cross_entropy_with_logits(roi, y_mask, reduction="none").mean(dim=(1, 2, 3, 4)) * w_mask).sum() / w_mask.sum().clamp(min=1)
        dl = soft_dice_loss(roi, y_mask, w_mask)
        # L1 on vBMD in units of 10 mg/cm3 (so its size is comparable to the Dice/BCE terms).
        l1 = (torch.abs(v[:, 0] - y_v) / 10.0 * w_reg).sum() / w_reg.sum().clamp(min=1)
        ce = (F.cross_entropy(c, y_c, reduction="none") * w_reg).sum() / w_reg.sum().clamp(min=1)
        loss = bce + dl + 0.5 * l1 + 0.3 * ce
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        for k, val in (("loss", loss), ("bce", bce), ("dice", dl), ("l1x10", l1), ("ce", ce)):
            run_loss[k] = run_loss.get(k, 0.0) + float(val)
        if step % 20 == 0:
            now = time.time()
            log(args.run, f"step {step} lr {lr:.2e} " + " ".join(f"{k} {val / 20:.4f}" for k, val in run_loss.items()) + f" s/step {(now - t_last) / 20:.2f}")
            run_loss = {}
            t_last = now
        if step % args.ckpt_every == 0:
            save(ck)
        if step % args.eval_every == 0:
            if args.reload and index_lines(folders) != len(data):
                data = load_data(folders)
                tr, va = split_by_study(data, args.val_fraction)
                log(args.run, f"reloaded data: {len(tr)} train / {len(va)} val samples")
            if len(va):
                res = evaluate(model, data, va, device)
                log(args.run, f"val step {step}: " + json.dumps(res))
        if args.max_minutes and (time.time() - t_start) / 60 > args.max_minutes:
            save(ck)
            log(args.run, f"stopping at step {step} after {args.max_minutes} min (resume with the same command)")
            break
    save(ck)
    if len(va):
        log(args.run, f"val step {step} (final): " + json.dumps(evaluate(model, data, va, device)))
    log(args.run, f"done at step {step}; wall {(time.time() - t_start) / 60:.1f} min this session")


if __name__ == "__main__":
    main()
