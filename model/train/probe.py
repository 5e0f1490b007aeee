#!/usr/bin/env python3
"""Frozen-feature linear probes on the tensor cache's split: what a backbone's features are worth on the dishes
and sources left out, before anyone fine-tunes it (issue 23, item 4). Training only.

  probe.py features --cache C --out D --backbone NAME=SPEC …   pooled features of a subset of the cache, stored
      SPEC: mobilenet:<TF.js base dir> (finetune.py's MobileNetV2), exported:<network dir> (a finetune.py
      export, e.g. v5), fastvit:<model.onnx> (its pooled 384); a MobileNetV2 spec may end in @<px>, the input
      side the 224 px view is resized to (a cheaper branch), e.g. mobilenet:<dir>@160
  probe.py score --cache C --out D --set NAME=A+B … [--seeds 1 2] [--onnx model.onnx]
      a linear softmax head per feature set; a part `<name>-probs` is FastViT's 101 Food-101 probabilities,
      computed from the stored pooled features `<name>` with the ONNX network's own final layer (--onnx)

The subset: every photo of every set but `lowres`, whose training photos are cut to --lowres-train per class
and whose validation photos to --lowres-validation (an even spread by index), because a 64 px photo costs as much
to run as a sharp one and the question is about real photos. Features are stored per backbone under
<out>/features/<NAME>.npy (float32, rows in the order of <out>/subset.json), resumable in chunks.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fastvit  # noqa: E402
import finetune  # noqa: E402

LEFT_OUT_SOURCES = ("full/Liang-yc", "full/brokenerk", "full/priyanv25")


def log(msg, **fields):
    print(json.dumps({"t": time.strftime("%H:%M:%S"), "msg": msg, **fields}), flush=True)


def subset(cache, lowres_train, lowres_validation):
    """Indices of the photos probed (see the module's docstring), in cache order."""
    keep = np.ones(len(cache.labels), dtype=bool)
    low = cache.set == "lowres"
    keep[low] = False
    for c in range(int(cache.labels.max()) + 1):
        idx = np.nonzero(low & (cache.split == "train") & (cache.labels == c))[0]
        keep[idx[np.linspace(0, len(idx) - 1, min(lowres_train, len(idx))).astype(int)]] = True
    idx = np.nonzero(low & (cache.split == "validation"))[0]
    keep[idx[np.linspace(0, len(idx) - 1, min(lowres_validation, len(idx))).astype(int)]] = True
    return np.nonzero(keep)[0]


def extractor(spec):
    """(function of RGB bytes N×3×224×224 → features) for a backbone spec."""
    kind, _, path = spec.partition(":")
    path, _, size = path.rpartition("@") if kind in ("mobilenet", "exported") and "@" in path else (path, "", "")
    if kind == "mobilenet":
        weights, _ = finetune.read_tfjs(path)
        net = finetune.MobileNetV2(finetune.conv_units(weights), 11, int(size or 224), 0.0).eval()
        return lambda x: net.top(net.blocks(net.stem(net.resize(x) / 127.5 - 1))).mean(dim=(2, 3))
    if kind == "exported":
        net = finetune.load_exported(path)
        if size:
            net.input_size = int(size)
        return lambda x: net.top(net.blocks(net.stem(net.resize(x) / 127.5 - 1))).mean(dim=(2, 3))
    if kind == "fastvit":
        net = fastvit.load(path)
        return net.features
    raise SystemExit(f"probe: unknown backbone kind '{kind}'")


@torch.no_grad()
def features(args):
    cache = finetune.Cache(args.cache)
    os.makedirs(os.path.join(args.out, "features"), exist_ok=True)
    idx = subset(cache, args.lowres_train, args.lowres_validation)
    subset_path = os.path.join(args.out, "subset.json")
    if os.path.exists(subset_path):
        assert json.load(open(subset_path)) == idx.tolist(), "subset.json is of another subset; use another --out"
    else:
        json.dump(idx.tolist(), open(subset_path, "w"))
    log("subset", photos=len(idx))
    for spec in args.backbone:
        name, _, what = spec.partition("=")
        path = os.path.join(args.out, "features", f"{name}.npy")
        if os.path.exists(path):
            log("have", backbone=name)
            continue
        run = extractor(what)
        part = path + ".part"
        done = []
        if os.path.exists(part + ".npy"):
            done = [np.load(part + ".npy")]
        start = sum(len(d) for d in done)
        t0 = time.time()
        for s in range(start, len(idx), args.batch):
            x, _ = cache.batch(idx[s:s + args.batch])
            done.append(run(x).float().numpy())
            if (s // args.batch) % 10 == 9 or s + args.batch >= len(idx):
                np.save(part + ".npy", np.concatenate(done))
                done = [np.concatenate(done)]
                n = len(done[0])
                log("progress", backbone=name, photos=n,
                    ms_per_photo=round(1000 * (time.time() - t0) / max(1, n - start), 1))
        np.save(path, np.concatenate(done))
        os.remove(part + ".npy")
        log("done", backbone=name, ms_per_photo=round(1000 * (time.time() - t0) / max(1, len(idx) - start), 1))


def groups_of(cache, idx):
    """Named groups of positions into idx: the scores the issue asks for."""
    split, s, src = cache.split[idx], cache.set[idx], cache.source[idx]
    ud, us = cache.unseen_dish[idx], cache.unseen_source[idx]
    val = split == "validation"
    g = {
        "unseen dishes (full)": val & ud & (s == "full") & ~us,
        "unseen dishes (all sets)": val & ud & ~us,
        "unseen sources": val & us,
    }
    for name in LEFT_OUT_SOURCES:
        g[f"unseen source {name.split('/')[1]}"] = val & us & (src == name)
    for name in ("full", "photos", "sharp", "lowres"):
        g[f"validation {name}"] = val & ~ud & ~us & (s == name)
    return {k: np.nonzero(v)[0] for k, v in g.items() if v.any()}


def macro(pred, truth):
    return float(np.mean([(pred[truth == c] == c).mean() for c in np.unique(truth)]))


def train_head(x, y, classes, seed, epochs, threads, batch=1024):
    """A linear softmax layer on standardised features, classes weighted to balance, feature dropout 0.3
    (the recipe of the probes in ../shared/MODEL-NOTES.md)."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    counts = torch.bincount(y, minlength=classes).float()
    weight = counts.sum() / (classes * counts.clamp(min=1))
    head = torch.nn.Linear(x.shape[1], classes)
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-4)
    # Few, large steps: on a shared machine a step's fixed cost, not its arithmetic, is what a probe pays.
    steps = epochs * ((len(y) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=gen)
        for b in range(0, len(y), batch):
            i = perm[b:b + batch]
            loss = F.cross_entropy(head(F.dropout(x[i], 0.3)), y[i], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return head.eval()


def stored(args, name):
    if name.endswith("-probs") and not os.path.exists(os.path.join(args.out, "features", f"{name}.npy")):
        net = fastvit.load(args.onnx)
        gemm = next(n for n in net.nodes if n[0] == "Gemm")
        w, b = net.weight(gemm[1][1]).detach(), net.weight(gemm[1][2]).detach()
        feats = torch.from_numpy(stored(args, name[: -len("-probs")]))
        return F.softmax(feats @ w.t() + b, dim=1).numpy()
    return np.load(os.path.join(args.out, "features", f"{name}.npy"))


def score(args):
    cache = finetune.Cache(args.cache)
    idx = np.array(json.load(open(os.path.join(args.out, "subset.json"))))
    groups = groups_of(cache, idx)
    train = np.nonzero((cache.split[idx] == "train") & ~cache.unseen_dish[idx] & ~cache.unseen_source[idx])[0]
    y = cache.labels[idx]
    classes = int(cache.labels.max()) + 1
    rows = []
    for spec in args.set:
        name, _, parts = spec.partition("=")
        x = np.concatenate([stored(args, p) for p in parts.split("+")], 1)
        mu, sd = x[train].mean(0), x[train].std(0) + 1e-6
        x = ((x - mu) / sd).astype(np.float32)
        for seed in args.seeds:
            head = train_head(x[train], y[train], classes, seed, args.epochs, args.threads)
            with torch.no_grad():
                pred = head(torch.from_numpy(x)).argmax(1).numpy()
            row = {"features": name, "dims": int(x.shape[1]), "seed": seed,
                   **{g: round(100 * macro(pred[i], y[i]), 1) for g, i in groups.items()}}
            rows.append(row)
            log("scored", **row)
    out = os.path.join(args.out, args.scores)
    previous = json.load(open(out)) if os.path.exists(out) else []
    keep = [r for r in previous if (r["features"], r["seed"]) not in {(r2["features"], r2["seed"]) for r2 in rows}]
    json.dump(keep + rows, open(out, "w"), indent=1)
    counts = {g: int(len(i)) for g, i in groups.items()}
    print(markdown(keep + rows, counts, len(train)))


def markdown(rows, counts, train):
    cols = list(counts)
    lines = [f"Linear probe, trained on {train} photos (the training split of the probed subset); mean per-class "
             "recall (%), one line per seed.", "",
             "| features | dims | seed | " + " | ".join(f"{c} ({counts[c]})" for c in cols) + " |",
             "|---|---:|---:|" + "---:|" * len(cols)]
    for r in rows:
        lines.append(f"| {r['features']} | {r['dims']} | {r['seed']} | " + " | ".join(
            str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["features", "score"])
    p.add_argument("--cache", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--backbone", nargs="*", default=[])
    p.add_argument("--set", nargs="*", default=[])
    p.add_argument("--seeds", type=int, nargs="*", default=[1, 2])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--lowres-train", type=int, default=270)
    p.add_argument("--lowres-validation", type=int, default=2500)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--scores", default="scores.json", help="file under --out the rows are added to (one per "
                   "concurrent run)")
    p.add_argument("--onnx", help="FastViT's model.onnx, for <name>-probs feature sets")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    features(args) if args.command == "features" else score(args)


if __name__ == "__main__":
    main(sys.argv[1:])
