#!/usr/bin/env python3
"""Fine-tunes a MobileNetV2 (the whole network, or the layers above --freeze-blocks) on the tensor cache that
`npm run train` writes, and exports it as a TF.js layers model the service runs.

Training only: the product never imports this file. `npm run train` calls it; run by hand it takes the same
flags (`--help`). It needs PyTorch (Debian's python3-torch 1.13 or pip's torch) and numpy, nothing else.

What it reads (written by model/train/tensor-cache.ts, so the pixels are exactly the service's preprocessing):
  <cache>/index.json  {"view": {...}, "count": N, "samples": [{"label", "split", "set"}, ...]}
  <cache>/pixels.u8   N x view.size x view.size x 3 bytes, RGB, row-major HWC

What it writes (under --out):
  network/model.json, network/weights.bin   the whole network, batch norms folded, as a TF.js layers model
  network/reference.json                     inputs and PyTorch's probabilities, so TF.js can be checked against it
  training.json                              the recipe and the validation accuracy after every epoch
  checkpoint.pt                              resumable state (deleted only by hand)
  features-<key>/                            with --feature-copies: the frozen layers' output per stored view
                                             (float16, resumable; deleted only by hand)
"""

import argparse
import base64
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# MobileNetV2's inverted-residual schedule (expansion t, repeats n, first stride s), as in Keras Applications.
# Channel counts are read from the base weights, so any width multiplier loads.
SCHEDULE = [(1, 1, 1), (6, 2, 2), (6, 3, 2), (6, 4, 2), (6, 3, 1), (6, 3, 2), (6, 1, 1)]
BN_EPS = 1e-3  # Keras' MobileNetV2 batch-norm epsilon; torch's default 1e-5 would shift every activation


def log(msg, **fields):
    line = {"t": time.strftime("%H:%M:%S"), "msg": msg, **fields}
    print(json.dumps(line), flush=True)


# ------------------------------------------------------------------------------------------------------------
# TF.js layers files


def read_tfjs(dir_or_json):
    """Weights of a TF.js layers model as {name: float32 array}, plus its topology."""
    path = dir_or_json if dir_or_json.endswith(".json") else os.path.join(dir_or_json, "model.json")
    with open(path) as f:
        model = json.load(f)
    base = os.path.dirname(path)
    weights = {}
    for group in model["weightsManifest"]:
        blob = b"".join(open(os.path.join(base, p), "rb").read() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q:
                dtype = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}[q["dtype"]]
                raw = np.frombuffer(blob, dtype=dtype, count=count, offset=offset)
                offset += raw.nbytes
                if q["dtype"] == "float16":
                    value = raw.astype(np.float32)
                else:
                    value = raw.astype(np.float32) * q["scale"] + q["min"]
            else:
                assert w["dtype"] == "float32", f"{w['name']}: dtype {w['dtype']} is not read here"
                value = np.frombuffer(blob, dtype=np.float32, count=count, offset=offset).copy()
                offset += value.nbytes
            weights[w["name"]] = value.reshape(w["shape"])
    return weights, model.get("modelTopology")


def conv_units(weights):
    """The base network's convolutions in order, each with its batch norm (Keras names) or its folded bias."""
    units = []
    names = list(weights.keys())
    for name in names:
        layer, _, kind = name.rpartition("/")
        if kind not in ("kernel", "depthwise_kernel") or len(weights[name].shape) != 4:
            continue
        bn = next(
            (b for b in (f"bn_{layer}", f"{layer}_BN", f"{layer}_bn") if f"{b}/gamma" in weights),
            None,
        )
        units.append(
            {
                "name": layer,
                "depthwise": kind == "depthwise_kernel",
                "kernel": weights[name],
                "bias": weights.get(f"{layer}/bias"),
                "bn": None
                if bn is None
                else {k: weights[f"{bn}/{k}"] for k in ("gamma", "beta", "moving_mean", "moving_variance")},
            }
        )
    return units


# ------------------------------------------------------------------------------------------------------------
# The network


def same_padding(size, kernel, stride):
    """TensorFlow's 'same': the extra pixel goes after (bottom/right), unlike torch's symmetric padding."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ConvUnit(nn.Module):
    """Convolution ('same' padding as TF), then batch norm (or a bias where the base had them folded), ReLU6."""

    def __init__(self, cin, cout, kernel, stride, depthwise, relu, bn):
        super().__init__()
        self.kernel, self.stride, self.depthwise, self.relu = kernel, stride, depthwise, relu
        groups = cin if depthwise else 1
        self.conv = nn.Conv2d(cin, cout, kernel, stride, 0, groups=groups, bias=not bn)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS) if bn else None

    def forward(self, x):
        if self.kernel > 1:
            top, bottom = same_padding(x.shape[2], self.kernel, self.stride)
            left, right = same_padding(x.shape[3], self.kernel, self.stride)
            x = F.pad(x, (left, right, top, bottom))
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu6(x) if self.relu else x


class Block(nn.Module):
    def __init__(self, units, residual):
        super().__init__()
        self.units = nn.ModuleList(units)
        self.residual = residual

    def forward(self, x):
        y = x
        for u in self.units:
            y = u(y)
        return x + y if self.residual else y


def service_resize(x, size):
    """The service's resize from the view to a network's input side: bilinear with half-pixel centres (TF.js
    resizeBilinear(halfPixelCenters=true)); a view already at that side is left as it is."""
    if x.shape[2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x


class MobileNetV2(nn.Module):
    """Takes RGB bytes at the view's size (N, 3, v, v as floats 0..255); resizes and scales like the service."""

    def __init__(self, units, classes, input_size, dropout):
        super().__init__()
        self.input_size = input_size
        it = iter(units)

        def unit(stride, relu):
            u = next(it)
            k = u["kernel"]
            kh = k.shape[0]
            cin = k.shape[2]
            cout = k.shape[2] if u["depthwise"] else k.shape[3]
            m = ConvUnit(cin, cout, kh, stride, u["depthwise"], relu, u["bn"] is not None)
            m.source = u
            return m

        self.stem = unit(2, True)
        blocks = []
        for t, n, s in SCHEDULE:
            for i in range(n):
                stride = s if i == 0 else 1
                us = ([unit(1, True)] if t != 1 else []) + [unit(stride, True), unit(1, False)]
                cin = us[0].conv.in_channels
                cout = us[-1].conv.out_channels
                blocks.append(Block(us, residual=stride == 1 and cin == cout))
        self.blocks = nn.Sequential(*blocks)
        self.top = unit(1, True)
        rest = list(it)
        if rest and rest[0]["kernel"].shape[:2] != (1, 1):
            raise SystemExit(f"finetune: unexpected layers after the network's last convolution: {rest[0]['name']}")
        self.features = self.top.conv.out_channels
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.features, classes)
        self._load(units)

    def conv_units(self):
        return [m for m in self.modules() if isinstance(m, ConvUnit)]

    def _load(self, units):
        mine = self.conv_units()
        for m in mine:
            u = m.source
            k = torch.from_numpy(u["kernel"])
            # Keras kernels are [kh, kw, in, out]; depthwise [kh, kw, in, 1].
            w = k.permute(2, 3, 0, 1) if m.depthwise else k.permute(3, 2, 0, 1)
            if tuple(w.shape) != tuple(m.conv.weight.shape):
                raise SystemExit(f"finetune: {u['name']} has shape {tuple(w.shape)}, expected {tuple(m.conv.weight.shape)}")
            m.conv.weight.data.copy_(w)
            if m.bn is not None:
                bn = u["bn"]
                m.bn.weight.data.copy_(torch.from_numpy(bn["gamma"]))
                m.bn.bias.data.copy_(torch.from_numpy(bn["beta"]))
                m.bn.running_mean.copy_(torch.from_numpy(bn["moving_mean"]))
                m.bn.running_var.copy_(torch.from_numpy(bn["moving_variance"]))
            elif u["bias"] is not None:
                m.conv.bias.data.copy_(torch.from_numpy(u["bias"]))
            del m.source

    def resize(self, x):
        return service_resize(x, self.input_size)

    def lower(self, x, blocks):
        """RGB 0..255 at the view's size, or already at the input size (an augmented batch), scaled x / 127.5 - 1
        as the service scales it, through the stem and the first `blocks` inverted-residual blocks."""
        x = self.resize(x) / 127.5 - 1
        return self.blocks[:blocks](self.stem(x))

    def upper(self, h, blocks):
        """The rest of the network, from the output of block `blocks` to the class logits."""
        h = self.top(self.blocks[blocks:](h))
        return self.classifier(self.dropout(h.mean(dim=(2, 3))))

    def forward(self, x):
        return self.upper(self.lower(x, 0), 0)

    def pooled(self, x):
        """The pooled features (N, C) of RGB 0..255 already at the input side (the head probe's input)."""
        return self.top(self.blocks(self.stem(x / 127.5 - 1))).mean(dim=(2, 3))

    def frozen_modules(self, blocks):
        """The stem and the first `blocks` blocks: what --freeze-blocks keeps at its ImageNet weights."""
        if not 0 <= blocks <= len(self.blocks):
            raise SystemExit(f"finetune: --freeze-blocks takes 0 to {len(self.blocks)}")
        return [self.stem, *self.blocks[:blocks]] if blocks > 0 else []


# ------------------------------------------------------------------------------------------------------------
# Export to TF.js


def folded(m):
    """(kernel in Keras layout, bias) of a unit with its batch norm folded in."""
    w = m.conv.weight.detach().double()
    b = m.conv.bias.detach().double() if m.conv.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
    if m.bn is not None:
        scale = m.bn.weight.detach().double() / torch.sqrt(m.bn.running_var.double() + m.bn.eps)
        b = (b - m.bn.running_mean.double()) * scale + m.bn.bias.detach().double()
        w = w * scale.reshape(-1, 1, 1, 1)
    # Back to Keras' layouts: [kh, kw, in, out], depthwise [kh, kw, in, 1].
    k = w.permute(2, 3, 0, 1) if m.depthwise else w.permute(2, 3, 1, 0)
    return k.float().numpy(), b.float().numpy()


def export_tfjs(model, out_dir, dtype, classes):
    """A Keras-2-style functional topology TF.js loads with tf.loadLayersModel, and the weights it names."""
    os.makedirs(out_dir, exist_ok=True)
    layers, weights = [], []
    size = model.input_size

    def add(cls, name, config, inputs):
        layers.append(
            {
                "class_name": cls,
                "name": name,
                "config": {"name": name, "trainable": False, **config},
                "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]] if inputs else [],
            }
        )
        return name

    x = add("InputLayer", "input", {"batch_input_shape": [None, size, size, 3], "dtype": "float32", "sparse": False}, [])
    counter = [0]

    def conv(m, x):
        counter[0] += 1
        k, b = folded(m)
        name = f"{'depthwise' if m.depthwise else 'conv'}_{counter[0]}"
        config = {
            "kernel_size": [m.kernel, m.kernel],
            "strides": [m.stride, m.stride],
            "padding": "same",
            "data_format": "channels_last",
            "dilation_rate": [1, 1],
            "activation": "linear",
            "use_bias": True,
        }
        if m.depthwise:
            config["depth_multiplier"] = 1
            weights.append((f"{name}/depthwise_kernel", k))
        else:
            config["filters"] = int(k.shape[3])
            weights.append((f"{name}/kernel", k))
        weights.append((f"{name}/bias", b))
        y = add("DepthwiseConv2D" if m.depthwise else "Conv2D", name, config, [x])
        if m.relu:
            y = add("ReLU", f"{name}_relu", {"max_value": 6.0}, [y])
        return y

    x = conv(model.stem, x)
    for i, block in enumerate(model.blocks):
        y = x
        for u in block.units:
            y = conv(u, y)
        x = add("Add", f"add_{i}", {}, [x, y]) if block.residual else y
    x = conv(model.top, x)
    x = add("GlobalAveragePooling2D", "pool", {"data_format": "channels_last"}, [x])
    add("Dense", "logits", {"units": classes, "activation": "softmax", "use_bias": True}, [x])
    weights.append(("logits/kernel", model.classifier.weight.detach().t().contiguous().numpy()))
    weights.append(("logits/bias", model.classifier.bias.detach().numpy()))

    manifest, blob = [], bytearray()
    for name, value in weights:
        value = np.ascontiguousarray(value, dtype=np.float32)
        entry = {"name": name, "shape": list(value.shape), "dtype": "float32"}
        if dtype == "float16":
            entry["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            blob += value.astype(np.float16).tobytes()
        else:
            blob += value.tobytes()
        manifest.append(entry)
    topology = {
        "class_name": "Model",
        "config": {
            "name": "gourmetgram",
            "layers": layers,
            "input_layers": [["input", 0, 0]],
            "output_layers": [["logits", 0, 0]],
        },
        "keras_version": "2.13.1",
        "backend": "tensorflow",
    }
    with open(os.path.join(out_dir, "weights.bin"), "wb") as f:
        f.write(bytes(blob))
    with open(os.path.join(out_dir, "model.json"), "w") as f:
        json.dump(
            {
                "format": "layers-model",
                "generatedBy": "gourmetgram model/train/finetune.py",
                "convertedBy": None,
                "modelTopology": topology,
                "weightsManifest": [{"paths": ["weights.bin"], "weights": manifest}],
            },
            f,
        )


def load_exported(out_dir):
    """The exported network back in PyTorch (weights as stored, e.g. rounded to float16), batch norms folded."""
    weights, topology = read_tfjs(out_dir)
    size = topology["config"]["layers"][0]["config"]["batch_input_shape"][1]
    classes = weights["logits/bias"].shape[0]
    model = MobileNetV2(conv_units(weights), classes, size, 0.0)
    model.classifier.weight.data.copy_(torch.from_numpy(weights["logits/kernel"]).t())
    model.classifier.bias.data.copy_(torch.from_numpy(weights["logits/bias"]))
    return model.eval()


# ------------------------------------------------------------------------------------------------------------
# Data


class Cache:
    def __init__(self, path):
        with open(os.path.join(path, "index.json")) as f:
            self.index = json.load(f)
        v = self.index["view"]["size"]
        self.size = v
        self.pixels = np.memmap(os.path.join(path, "pixels.u8"), dtype=np.uint8, mode="r").reshape(-1, v, v, 3)
        samples = self.index["samples"]
        assert len(samples) == self.pixels.shape[0], "index.json and pixels.u8 disagree on the photo count"
        self.labels = np.array([s["label"] for s in samples], dtype=np.int64)
        self.split = np.array([s["split"] for s in samples])
        self.set = np.array([s["set"] for s in samples])
        # Caches written before sources and dish splits were recorded read as one source per set.
        self.source = np.array([s.get("source", s["set"]) for s in samples])
        self.unseen_dish = np.array([bool(s.get("unseenDish", False)) for s in samples])
        self.unseen_source = np.array([bool(s.get("unseenSource", False)) for s in samples])

    def batch(self, idx):
        x = torch.from_numpy(np.ascontiguousarray(self.pixels[idx]))
        return x.permute(0, 3, 1, 2).float(), torch.from_numpy(self.labels[idx])


def augment(x, out_size, gen, strength, faults=0.0):
    """Random mirror, zoom (keeps 65-100 % of the side), shift and a little colour change, resampled straight
    to the network's input (one grid_sample: the same half-pixel bilinear sampling the service's resize uses);
    then, for a `faults` share of the photos, what phones do to them (`phone_faults`)."""
    n = x.shape[0]
    scale = 1 - torch.rand(n, generator=gen) * 0.35 * strength
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    room = 1 - scale
    tx = (torch.rand(n, generator=gen) * 2 - 1) * room + (torch.rand(n, generator=gen) * 2 - 1) * 0.06 * strength
    ty = (torch.rand(n, generator=gen) * 2 - 1) * room + (torch.rand(n, generator=gen) * 2 - 1) * 0.06 * strength
    faulty = torch.rand(n, generator=gen) < faults
    kinds = torch.randint(len(FAULTS), (n, 2), generator=gen)
    # A tilted photo (a phone held askew) is a fault of its own, made in the same resampling as the zoom.
    tilted = faulty & ((kinds[:, 0] == FAULTS.index("tilt")) | (kinds[:, 1] == FAULTS.index("tilt")))
    angle = torch.where(tilted, (torch.rand(n, generator=gen) * 2 - 1) * math.radians(30), torch.zeros(n))
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale * flip * cos
    theta[:, 0, 1] = -scale * sin
    theta[:, 1, 0] = scale * flip * sin
    theta[:, 1, 1] = scale * cos
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, (n, 3, out_size, out_size), align_corners=False)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    # Brightness, contrast, saturation: phone photos are lit every way.
    b = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * 0.25 * strength
    c = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * 0.25 * strength
    s = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * 0.25 * strength
    mean = y.mean(dim=(1, 2, 3), keepdim=True)
    y = (y - mean) * c + mean * b
    grey = y.mean(dim=1, keepdim=True)
    y = ((y - grey) * s + grey).clamp(0, 255)
    for i in torch.nonzero(faulty).flatten().tolist():
        # One fault, or two (blur in low light, then noise and compression, as a phone stacks them).
        chosen = [FAULTS[k] for k in kinds[i].tolist()][: 1 + int(torch.rand(1, generator=gen) < 0.5)]
        y[i] = phone_faults(y[i : i + 1], [f for f in FAULTS if f in chosen], gen)[0]
    return y


# What users' phone photos suffer from, in the order a camera adds them. `tilt` is made in augment's resampling.
FAULTS = ["tilt", "lowres", "defocus", "motion", "dark", "noise", "jpeg"]


def blur_kernel(kernel):
    """A normalised 2-D kernel as a depthwise convolution over the 3 channels, padded to keep the size."""
    k = kernel / kernel.sum()
    return lambda y: F.conv2d(F.pad(y, [k.shape[1] // 2] * 2 + [k.shape[0] // 2] * 2, mode="reflect"),
                              k.expand(3, 1, *k.shape).contiguous(), groups=3)


def phone_faults(y, faults, gen):
    """One photo (1, 3, s, s, values 0..255) with the given faults, each of a random strength: the 64 px look
    (scaled down and back up), defocus blur, motion blur along a random direction, low light (gain and gamma,
    often a warm cast), sensor noise, heavy JPEG compression."""
    s = y.shape[2]
    u = lambda lo, hi: lo + (hi - lo) * float(torch.rand(1, generator=gen))
    for f in faults:
        if f == "lowres":
            small = int(u(40, 100))
            y = F.interpolate(F.interpolate(y, size=(small, small), mode="area"), size=(s, s), mode="bilinear",
                              align_corners=False)
        elif f == "defocus":
            sigma = u(0.8, 3.5) * s / 224
            r = max(1, int(math.ceil(2.5 * sigma)))
            t = torch.arange(-r, r + 1, dtype=torch.float32)
            g = torch.exp(-(t**2) / (2 * sigma**2))
            y = blur_kernel(g[:, None] * g[None, :])(y)
        elif f == "motion":
            length = u(5, 25) * s / 224
            r = max(1, int(math.ceil(length / 2)))
            a = u(0, math.pi)
            t = torch.linspace(-length / 2, length / 2, 4 * r + 1)
            k = torch.zeros(2 * r + 1, 2 * r + 1)
            k[(t * math.sin(a)).round().long() + r, (t * math.cos(a)).round().long() + r] = 1
            y = blur_kernel(k)(y)
        elif f == "dark":
            gain, gamma = u(0.25, 0.8), u(1.0, 2.2)
            y = 255 * (y / 255).clamp(0, 1) ** gamma * gain
            if float(torch.rand(1, generator=gen)) < 0.5:
                y = y * torch.tensor([1.0, u(0.8, 0.95), u(0.6, 0.85)]).reshape(1, 3, 1, 1)
        elif f == "noise":
            sigma = u(3, 18)
            y = y + torch.randn(y.shape, generator=gen) * sigma * (0.5 + (y / 255).clamp(0, 1) ** 0.5)
        elif f == "jpeg":
            y = jpeg_round_trip(y.clamp(0, 255), int(u(8, 45)))
        y = y.clamp(0, 255)
    return y


def jpeg_round_trip(y, quality):
    """The photo through a JPEG encoder at this quality (Pillow, training only)."""
    import io

    from PIL import Image  # checked at start-up when --faults is on

    buf = io.BytesIO()
    Image.fromarray(y[0].permute(1, 2, 0).round().byte().numpy()).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    z = torch.from_numpy(np.array(Image.open(buf).convert("RGB"))).permute(2, 0, 1).float()
    return z[None]


@torch.no_grad()
def predict(model, cache, idx, flip, batch=256):
    model.eval()
    out = []
    for start in range(0, len(idx), batch):
        x, _ = cache.batch(idx[start : start + batch])
        p = F.softmax(model(x), dim=1)
        if flip:
            p = (p + F.softmax(model(torch.flip(x, dims=[3])), dim=1)) / 2
        out.append(p)
    return torch.cat(out) if out else torch.zeros(0, model.classifier.out_features)


def validation_groups(cache):
    """The validation photos by data set, by source where a set has several, the dishes left out whole, and all."""
    val = np.nonzero(cache.split == "validation")[0]
    groups = {name: val[cache.set[val] == name] for name in sorted(set(cache.set[val]))}
    for name in sorted(set(cache.source[val])):
        if name not in groups:
            groups[name] = val[cache.source[val] == name]
    if cache.unseen_dish[val].any():
        groups["unseen dishes"] = val[cache.unseen_dish[val]]
    if cache.unseen_source[val].any():
        groups["unseen sources"] = val[cache.unseen_source[val]]
    groups["all"] = val
    return groups


def scores_of(pred, truth, classes):
    recalls = [float((pred[truth == c] == c).mean()) for c in range(classes) if (truth == c).any()]
    return {"photos": int(len(truth)), "accuracy": float((pred == truth).mean()), "macro": float(np.mean(recalls))}


def evaluate(model, cache, flip, classes, limit=0, size=None):
    """Validation accuracy and mean per-class recall, per group (validation_groups); with `limit`, on that many
    validation photos evenly spread (a quick score between epochs), at input side `size` (default the model's)."""
    val = np.nonzero(cache.split == "validation")[0]
    if limit and limit < len(val):
        val = val[np.linspace(0, len(val) - 1, limit).astype(int)]
    pred = np.full(len(cache.labels), -1, dtype=np.int64)
    saved = model.input_size
    model.input_size = size or saved
    try:
        pred[val] = predict(model, cache, val, flip).argmax(1).numpy()
    finally:
        model.input_size = saved
    scored = np.zeros(len(cache.labels), dtype=bool)
    scored[val] = True
    groups = {name: idx[scored[idx]] for name, idx in validation_groups(cache).items()}
    return {name: scores_of(pred[idx], cache.labels[idx], classes) for name, idx in groups.items() if len(idx)}


# ------------------------------------------------------------------------------------------------------------
# Training


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", required=True, help="tensor cache folder (index.json + pixels.u8)")
    p.add_argument("--base", required=True,
                   help="TF.js layers MobileNetV2 with ImageNet weights (folder or model.json), or FastViT's ONNX graph "
                        "(model.onnx or its folder; fastvit.py)")
    p.add_argument("--out", required=True)
    p.add_argument("--input-size", type=int, default=128,
                   help="the network's input side (the exported network's); the view is resized to it")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--small-input-size", type=int, default=0,
                   help="train the first --small-epochs epochs at this smaller input side (about half the cost a "
                        "step at 160 against 224), the last ones at --input-size; 0: every epoch at --input-size")
    p.add_argument("--small-epochs", type=int, default=0)
    p.add_argument("--epoch-photos", type=int, default=0,
                   help="photos drawn an epoch (the class-source sampler draws with replacement); 0: as many as "
                        "there are training photos")
    p.add_argument("--probe-head", type=int, default=0,
                   help="before fine-tuning, fit the new classifier layer alone on the frozen network's features "
                        "of this many training photos (linear probe, then fine-tune: the pretrained features are "
                        "not torn up by a random head's first gradients); 0: start from a random head")
    p.add_argument("--init-from", default="",
                   help="start from the weights of an earlier run's checkpoint.pt (or its folder) of the same "
                        "network and classes, with a new learning-rate schedule: a longer run continued (a warm "
                        "restart) without throwing away the hours already spent")
    p.add_argument("--eval-photos", type=int, default=0,
                   help="score each epoch on this many validation photos, evenly spread (the exported network is "
                        "scored on all of them); 0: all")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of the new classifier layer")
    p.add_argument("--backbone-lr", type=float, default=1e-3, help="peak learning rate of the pretrained layers")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--augment", type=float, default=1.0, help="augmentation strength, 0 for none")
    p.add_argument("--faults", type=float, default=0.0,
                   help="share of training views given phone-photo faults (tilt, 64 px look, defocus and motion "
                        "blur, low light, noise, JPEG); needs Pillow")
    p.add_argument("--balance", choices=["class-source", "none"], default="class-source",
                   help="class-source: draw every class equally often, and within a class each source in "
                        "proportion to the square root of its photos; none: every photo once an epoch, with "
                        "inverse-frequency class weights")
    p.add_argument("--source-weight", action="append", default=[], metavar="SOURCE=FACTOR",
                   help="with --balance class-source: draw this source's photos FACTOR times as often within each "
                        "of its classes (repeat for several)")
    p.add_argument("--freeze-blocks", type=int, default=0,
                   help="the stem and this many inverted-residual blocks keep their ImageNet weights")
    p.add_argument("--feature-copies", type=int, default=0,
                   help="with --freeze-blocks: compute the frozen layers' output once for this many augmented "
                        "views of each training photo, and train the rest on those (0: augment at every step)")
    p.add_argument("--test-time-flip", action="store_true")
    p.add_argument("--weights-dtype", choices=["float32", "float16"], default="float32")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--limit-steps", type=int, default=0, help="stop each epoch after this many steps (for tests)")
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    return p.parse_args(argv)


def onnx_base(base):
    """FastViT's ONNX graph if --base names one (model.onnx, or a folder holding it and no model.json), else None."""
    if base.endswith(".onnx"):
        return base
    if os.path.isdir(base) and os.path.exists(os.path.join(base, "model.onnx")) \
            and not os.path.exists(os.path.join(base, "model.json")):
        return os.path.join(base, "model.onnx")
    return None


def build_model(args, classes):
    """The network --base names, with a new softmax layer for these classes."""
    graph = onnx_base(args.base)
    if graph:
        try:
            import fastvit  # beside this file; needs python3-onnx
        except ImportError as e:
            raise SystemExit(f"finetune: a FastViT --base needs python3-onnx ({e})")
        try:
            net = fastvit.load(graph)
        except Exception as e:  # onnx's parse errors have no common base class
            raise SystemExit(f"finetune: --base {graph} is not an ONNX graph this runner reads ({type(e).__name__}: {e})")
        return fastvit.FastViTClassifier(net, classes, args.input_size, args.dropout)
    weights, _ = read_tfjs(args.base)
    return MobileNetV2(conv_units(weights), classes, args.input_size, args.dropout)


def recipe_of(args):
    keys = ["base", "input_size", "epochs", "batch", "lr", "backbone_lr", "weight_decay", "label_smoothing",
            "dropout", "augment", "faults", "balance", "freeze_blocks", "feature_copies", "seed", "limit_steps"]
    recipe = {k: getattr(args, k) for k in keys}
    # Recorded only when used, so a checkpoint of an earlier recipe (without them) still resumes.
    for k in ["small_input_size", "small_epochs", "epoch_photos", "probe_head", "init_from"]:
        if getattr(args, k):
            recipe[k] = getattr(args, k)
    if args.source_weight:
        recipe["source_weight"] = source_weights_of(args)
    return recipe


def input_size_of(args, epoch):
    """The input side of an epoch (0-based): --small-input-size for the first --small-epochs, then --input-size."""
    return args.small_input_size if args.small_input_size and epoch < args.small_epochs else args.input_size


@torch.no_grad()
def pooled_features(model, cache, idx, size, batch=128):
    """The frozen network's pooled features (before the classifier) of these photos at this input side."""
    model.eval()
    out = []
    for start in range(0, len(idx), batch):
        x, _ = cache.batch(idx[start : start + batch])
        out.append(model.pooled(service_resize(x, size)))
    return torch.cat(out)


def probe_head(model, cache, train_idx, draw_p, args, classes):
    """The classifier layer fitted alone on the pretrained network's features (a linear probe), drawn as the
    sampler draws so the classes and sources are balanced: fine-tuning then starts from a head that already points
    the right way, and the first steps' gradients do not distort the pretrained features (linear probe then
    fine-tune, Kumar et al. 2022: better out of distribution than fine-tuning from a random head)."""
    rng = np.random.default_rng(args.seed + 7)
    n = min(args.probe_head, len(train_idx))
    pick = np.sort(rng.choice(len(train_idx), size=n, replace=False, p=draw_p))
    size = input_size_of(args, 0)
    started = time.time()
    feats = pooled_features(model, cache, train_idx[pick], size)
    labels = torch.from_numpy(cache.labels[train_idx[pick]])
    head = nn.Linear(feats.shape[1], classes)
    opt = torch.optim.AdamW(head.parameters(), lr=1e-2, weight_decay=1e-3)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    gen = torch.Generator().manual_seed(args.seed)
    for _ in range(300):
        keep = (torch.rand(feats.shape, generator=gen) >= args.dropout).float() / (1 - args.dropout)
        loss = loss_fn(head(feats * keep), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        train_acc = float((head(feats).argmax(1) == labels).float().mean())
        model.classifier.weight.copy_(head.weight)
        model.classifier.bias.copy_(head.bias)
    log("probe head", photos=n, input_size=size, loss=round(loss.item(), 4), train_accuracy=round(train_acc, 4),
        seconds=round(time.time() - started, 1))


def photos_trained_in(root, key):
    """The files another tensor cache under `root` trained on, or None where that cache is not there."""
    try:
        with open(os.path.join(root, str(key), "index.json")) as f:
            samples = json.load(f)["samples"]
    except (OSError, ValueError, KeyError):
        return None
    return {s["file"] for s in samples if s["split"] == "train"}


def source_weights_of(args):
    """--source-weight's SOURCE=FACTOR pairs as a dict, sorted by source."""
    weights = {}
    for pair in args.source_weight:
        name, _, factor = pair.rpartition("=")
        try:
            value = float(factor)
        except ValueError:
            value = 0.0
        if not name or not value > 0 or not math.isfinite(value):
            raise SystemExit(f"finetune: --source-weight {pair}: give SOURCE=FACTOR, the factor a number > 0")
        weights[name] = value
    return dict(sorted(weights.items()))


def sampling_weights(cache, train_idx, classes, source_weight=None):
    """Each class drawn equally often; within a class, each source in proportion to the square root of its
    photos, so that Dessert's thousands do not drown Soup's hundreds and no one source is all a class is; times
    its --source-weight, where one is given. Returns the photos' weights and each class's share per source."""
    source_weight = source_weight or {}
    labels, sources = cache.labels[train_idx], cache.source[train_idx]
    missing = sorted(set(source_weight) - set(sources))
    if missing:
        raise SystemExit(f"finetune: --source-weight {', '.join(missing)}: no training photo comes from it")
    w = np.zeros(len(train_idx))
    shares = {}
    for c in range(classes):
        in_class = labels == c
        names = sorted(set(sources[in_class]))
        groups = [np.nonzero(in_class & (sources == name))[0] for name in names]
        mass = [math.sqrt(len(g)) * source_weight.get(name, 1.0) for name, g in zip(names, groups)]
        total = sum(mass)
        for g, m in zip(groups, mass):
            w[g] = m / total / len(g)
        shares[c] = {name: round(m / total, 4) for name, m in zip(names, mass)}
    return w / w.sum(), shares


class FrozenFeatures:
    """What the frozen layers (--freeze-blocks) make of `copies` augmented views of every training photo, and of
    the plain view of every validation photo, computed once and kept as float16 under --out: each epoch then runs
    only the layers being trained. Written a chunk at a time with its progress, so a stopped run resumes it."""

    CHUNK = 64

    def __init__(self, model, cache, args, train_idx, val_idx):
        self.model, self.cache, self.args = model, cache, args
        self.train_idx, self.val_idx = train_idx, val_idx
        # The copies are made one after another, each in a file of its own: a run asked for more copies than an
        # earlier one with the same recipe keeps the earlier copies and adds the rest.
        key = json.dumps([cache.index.get("key"), args.base, args.freeze_blocks, args.input_size, args.augment,
                          args.faults, args.seed])
        self.dir = os.path.join(args.out, "features-" + hashlib.sha256(key.encode()).hexdigest()[:12])
        os.makedirs(self.dir, exist_ok=True)
        with torch.no_grad():
            probe = model.lower(torch.zeros(1, 3, args.input_size, args.input_size), args.freeze_blocks)
        self.shape = tuple(probe.shape[1:])
        self.progress_file = os.path.join(self.dir, "progress.json")
        self.progress = {"validation": 0, "train": []}
        if os.path.exists(self.progress_file):
            with open(self.progress_file) as f:
                self.progress = json.load(f)
        self.progress["train"] += [0] * (args.feature_copies - len(self.progress["train"]))
        self.train = [self._memmap(f"train-{k + 1}.f16", (len(train_idx),)) for k in range(args.feature_copies)]
        self.val = self._memmap("validation.f16", (len(val_idx),))

    def _memmap(self, name, lead):
        path = os.path.join(self.dir, name)
        mode = "r+" if os.path.exists(path) else "w+"
        return np.memmap(path, dtype=np.float16, mode=mode, shape=lead + self.shape)

    def _save_progress(self):
        for copy in self.train:
            copy.flush()
        self.val.flush()
        with open(self.progress_file + ".tmp", "w") as f:
            json.dump(self.progress, f)
        os.replace(self.progress_file + ".tmp", self.progress_file)

    @torch.no_grad()
    def build(self):
        model, args, blocks = self.model, self.args, self.args.freeze_blocks
        model.eval()
        started, done_before = time.time(), self.progress["validation"] + sum(self.progress["train"]) * self.CHUNK
        for start in range(self.progress["validation"], len(self.val_idx), self.CHUNK):
            x, _ = self.cache.batch(self.val_idx[start : start + self.CHUNK])
            self.val[start : start + len(x)] = model.lower(x, blocks).numpy().astype(np.float16)
            self.progress["validation"] = start + len(x)
            self._save_progress()
        chunks = math.ceil(len(self.train_idx) / self.CHUNK)
        for copy in range(args.feature_copies):
            for chunk in range(self.progress["train"][copy], chunks):
                idx = self.train_idx[chunk * self.CHUNK : (chunk + 1) * self.CHUNK]
                # Each chunk's augmentation depends only on the seed, the copy and the chunk: a resumed run makes
                # the same views.
                gen = torch.Generator().manual_seed(args.seed * 1_000_003 + copy * 100_003 + chunk)
                x, _ = self.cache.batch(idx)
                view = augment(x, args.input_size, gen, args.augment, args.faults) if args.augment > 0 else x
                rows = slice(chunk * self.CHUNK, chunk * self.CHUNK + len(idx))
                self.train[copy][rows] = model.lower(view, blocks).numpy().astype(np.float16)
                self.progress["train"][copy] = chunk + 1
                if chunk % 20 == 19 or chunk == chunks - 1:
                    self._save_progress()
                    done = self.progress["validation"] + sum(self.progress["train"]) * self.CHUNK - done_before
                    log("features", copy=copy + 1, of=args.feature_copies, chunk=chunk + 1, chunks=chunks,
                        ms_per_photo=round(1000 * (time.time() - started) / max(done, 1), 2))
        self._save_progress()

    def batch(self, copies, positions):
        """Training features for (copy, position in the training photos) pairs, as float32."""
        out = np.empty((len(positions),) + self.shape, dtype=np.float32)
        for i, (copy, position) in enumerate(zip(copies, positions)):
            out[i] = self.train[copy][position]
        return torch.from_numpy(out)

    @torch.no_grad()
    def evaluate(self, classes):
        """As evaluate(), from the stored features of the validation photos."""
        self.model.eval()
        pred = np.zeros(len(self.cache.labels), dtype=np.int64)
        for start in range(0, len(self.val_idx), 256):
            h = torch.from_numpy(np.asarray(self.val[start : start + 256], dtype=np.float32))
            pred[self.val_idx[start : start + 256]] = self.model.upper(h, self.args.freeze_blocks).argmax(1).numpy()
        return {name: scores_of(pred[idx], self.cache.labels[idx], classes)
                for name, idx in validation_groups(self.cache).items() if len(idx)}


def main(argv):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    if args.faults > 0:
        try:
            import PIL  # noqa: F401  (the JPEG fault)
        except ImportError:
            raise SystemExit("finetune: --faults needs Pillow (Debian: apt-get install python3-pil; pip: pillow)")
    if args.feature_copies and not args.freeze_blocks:
        raise SystemExit("finetune: --feature-copies stores the frozen layers' output: give --freeze-blocks too")
    cache = Cache(args.cache)
    classes = int(cache.index["classes"])
    model = build_model(args, classes)
    if args.small_input_size and not isinstance(model, MobileNetV2):
        raise SystemExit("finetune: --small-input-size is for MobileNetV2; FastViT's graph runs at one size")
    if args.weights_dtype != "float32" and not isinstance(model, MobileNetV2):
        raise SystemExit("finetune: --weights-dtype float16 is for MobileNetV2; FastViT exports float32")
    frozen = model.frozen_modules(args.freeze_blocks)
    frozen_ids = {id(p) for m in frozen for p in m.parameters()}
    for m in frozen:
        m.requires_grad_(False)
    log("network", features=model.features, parameters=sum(p.numel() for p in model.parameters()),
        trained=sum(p.numel() for p in model.parameters() if id(p) not in frozen_ids),
        architecture=type(model).__name__)

    train_idx = np.nonzero(cache.split == "train")[0]
    val_idx = np.nonzero(cache.split == "validation")[0]
    counts = np.bincount(cache.labels[train_idx], minlength=classes).astype(np.float64)
    if args.source_weight and args.balance != "class-source":
        raise SystemExit("finetune: --source-weight weighs the class-source sampler: not with --balance none")
    if args.balance == "none":
        # Inverse-frequency class weights (mean 1), so Dairy product's 830 photos weigh as much as Dessert's 3,800.
        class_weights = torch.tensor(
            np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / (counts > 0).sum(), 0), dtype=torch.float32)
        draw_p = None
    else:
        class_weights = None  # the sampling balances the classes
        weighted = source_weights_of(args)
        draw_p, shares = sampling_weights(cache, train_idx, classes, weighted)
        if weighted:
            # What the weights did: each weighted source's share of its classes' draws.
            log("source weights", weights=weighted, shares={
                str(c): {n: v for n, v in s.items() if n in weighted} for c, s in shares.items()
                if any(n in weighted for n in s)})
    if args.small_input_size and args.feature_copies:
        raise SystemExit("finetune: --small-input-size changes the frozen layers' input: not with --feature-copies")
    if args.init_from and args.feature_copies:
        raise SystemExit("finetune: --init-from trains the whole network from a run's weights: not with --feature-copies")
    if args.probe_head and args.feature_copies:
        raise SystemExit("finetune: --probe-head fits the head on the whole network's features: not with --feature-copies")
    steps_per_epoch = (args.epoch_photos or len(train_idx)) // args.batch
    if args.limit_steps:
        steps_per_epoch = min(steps_per_epoch, args.limit_steps)
    total = steps_per_epoch * args.epochs
    head = list(model.classifier.parameters())
    head_ids = {id(p) for p in head}
    body = [p for p in model.parameters() if id(p) not in head_ids and id(p) not in frozen_ids]
    opt = torch.optim.AdamW([{"params": body, "lr": args.backbone_lr}, {"params": head, "lr": args.lr}],
                            weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[args.backbone_lr, args.lr], total_steps=max(total, 1),
                                                pct_start=0.15)
    loss_fn = nn.CrossEntropyLoss(weight=class_weights, label_smoothing=args.label_smoothing)

    features = None
    if args.feature_copies:
        features = FrozenFeatures(model, cache, args, train_idx, val_idx)
        features.build()

    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    history, epoch, step, gen_state = [], 0, 0, None
    recipe = recipe_of(args)
    resumed = False
    if os.path.exists(ckpt_path):
        state = torch.load(ckpt_path)
        if state["recipe"] == recipe and state["cache"] == cache.index.get("key"):
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            history, epoch, step = state["history"], state["epoch"], state["step"]
            gen_state = state.get("gen")
            resumed = True
            log("resumed", epoch=epoch, step=step)
        else:
            log("checkpoint is for another recipe or cache; starting over")

    def save(epoch, step, gen=None):
        torch.save({"gen": gen.get_state() if gen is not None else None, "recipe": recipe, "cache": cache.index.get("key"), "model": model.state_dict(),
                    "opt": opt.state_dict(), "sched": sched.state_dict(), "history": history,
                    "epoch": epoch, "step": step}, ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)

    if args.init_from and not resumed:
        init_path = os.path.join(args.init_from, "checkpoint.pt") if os.path.isdir(args.init_from) else args.init_from
        start = torch.load(init_path)
        fields = {}
        if start.get("cache") != cache.index.get("key"):
            trained = photos_trained_in(os.path.dirname(os.path.abspath(args.cache)), start.get("cache"))
            if trained is None:
                raise SystemExit(f"finetune: --init-from {args.init_from} was trained on another tensor cache "
                                 f"({start.get('cache')}), not beside this one: which photos it trained on is unknown, "
                                 "and it could score photos it trained on")
            scored = {cache.index["samples"][i]["file"] for i in val_idx}
            overlap = len(scored & trained)
            if overlap:
                raise SystemExit(f"finetune: --init-from {args.init_from} was trained on another tensor cache (another "
                                 f"split) and on {overlap} of this run's validation photos; it would score photos it "
                                 "trained on")
            # Its training photos all train here too (a source or share no longer left out): nothing it saw is scored.
            fields["cache"] = start.get("cache")
        model.load_state_dict(start["model"])
        log("init from", path=init_path, epochs=start["epoch"], **fields)
    if args.probe_head and not resumed and not args.init_from:
        probe_head(model, cache, train_idx, draw_p, args, classes)
    if (args.probe_head or args.init_from) and not resumed:
        save(0, 0)

    def logits_of(positions, gen, rng_copies, size):
        """A training batch's logits: from the stored frozen features, or from freshly augmented photos."""
        if features is not None:
            return model.upper(features.batch(rng_copies, positions), args.freeze_blocks)
        x, _ = cache.batch(train_idx[positions])
        if args.augment > 0:
            view = augment(x, size, gen, args.augment, args.faults)
        else:
            view = service_resize(x, size)
        if not frozen:
            return model(view)
        with torch.no_grad():
            h = model.lower(view, args.freeze_blocks)
        return model.upper(h, args.freeze_blocks)

    last_save = time.time()
    while epoch < args.epochs:
        # The draws of an epoch depend only on the seed and the epoch, so a resumed run sees the same batches.
        rng = np.random.default_rng(args.seed * 1000 + epoch)
        n = steps_per_epoch * args.batch
        order = rng.choice(len(train_idx), size=n, p=draw_p) if draw_p is not None else rng.permutation(len(train_idx))
        copies = rng.integers(max(args.feature_copies, 1), size=len(order))
        gen = torch.Generator().manual_seed(args.seed * 1000 + epoch)
        if gen_state is not None:
            gen.set_state(gen_state)
            gen_state = None
        model.train()
        for m in frozen:
            m.eval()  # frozen batch norms keep ImageNet's statistics
        started, seen, running = time.time(), 0, 0.0
        size = input_size_of(args, epoch)
        while step < steps_per_epoch:
            part = slice(step * args.batch, (step + 1) * args.batch)
            positions = order[part]
            logits = logits_of(positions, gen, copies[part], size)
            loss = loss_fn(logits, torch.from_numpy(cache.labels[train_idx[positions]]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            seen += len(positions)
            running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
            if step % 50 == 0:
                el = time.time() - started
                log("step", epoch=epoch + 1, step=step, of=steps_per_epoch, loss=round(running, 4),
                    input_size=size, ms_per_photo=round(1000 * el / seen, 2))
            if time.time() - last_save > args.checkpoint_minutes * 60:
                save(epoch, step, gen)
                last_save = time.time()
        elapsed = time.time() - started
        # Per epoch without the test-time flip (half the cost); the exported network is scored with it.
        if features is not None:
            scores = features.evaluate(classes)
        else:
            scores = evaluate(model, cache, False, classes, limit=args.eval_photos, size=size)
        history.append({"epoch": epoch + 1, "seconds": round(elapsed, 1), "inputSize": size, "validation": scores})
        log("epoch", epoch=epoch + 1, seconds=round(elapsed, 1), input_size=size,
            **{k: [round(v["accuracy"], 4), round(v["macro"], 4)] for k, v in scores.items()})
        epoch, step = epoch + 1, 0
        save(epoch, step)
        last_save = time.time()

    net_dir = os.path.join(args.out, "network")
    model.eval()
    if isinstance(model, MobileNetV2):
        export_tfjs(model, net_dir, args.weights_dtype, classes)
        exported = load_exported(net_dir)
    else:
        # Exported in float32, so the network as trained is the network as stored; reference.json (below) and the
        # TF.js scoring `npm run train` does next check the export itself.
        model.export(net_dir)
        exported = model
    scores = evaluate(exported, cache, args.test_time_flip, classes)
    log("exported", dtype=args.weights_dtype, **{k: round(v["accuracy"], 4) for k, v in scores.items()})
    write_reference(exported, cache, net_dir)
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump({"recipe": recipe, "view": cache.index["view"], "inputSize": args.input_size,
                   "testTimeFlip": args.test_time_flip, "weightsDtype": args.weights_dtype,
                   "history": history, "exported": scores, "trainPhotos": int(len(train_idx))}, f, indent=2)


def write_reference(model, cache, net_dir, n=4):
    """A few validation inputs and the probabilities PyTorch gives for them, for the TF.js equivalence test."""
    val = np.nonzero(cache.split == "validation")[0]
    pick = val[np.linspace(0, len(val) - 1, n).astype(int)] if len(val) else np.arange(min(n, len(cache.labels)))
    x, _ = cache.batch(pick)
    with torch.no_grad():
        p = F.softmax(model(x), dim=1)
    with open(os.path.join(net_dir, "reference.json"), "w") as f:
        json.dump({"viewSize": cache.size,
                   "inputs": [base64.b64encode(cache.pixels[i].tobytes()).decode() for i in pick],
                   "probabilities": p.numpy().astype(float).round(7).tolist()}, f)


def make_test_base(out_dir, seed=0):
    """A narrow MobileNetV2 with random weights (a few thousand), exported like a real base: for the tests of
    the training pipeline, which must not need the ImageNet weights of ../shared."""
    rng = np.random.default_rng(seed)
    units = []

    def unit(kh, cin, cout, depthwise=False):
        shape = (kh, kh, cin, 1) if depthwise else (kh, kh, cin, cout)
        fan_in = kh * kh * (1 if depthwise else cin)
        units.append({"name": f"u{len(units)}", "depthwise": depthwise,
                      "kernel": (rng.standard_normal(shape) * math.sqrt(2 / fan_in)).astype(np.float32),
                      "bias": (rng.standard_normal(cin if depthwise else cout) * 0.1).astype(np.float32), "bn": None})

    c = 4
    unit(3, 3, c)
    for t, n, _ in SCHEDULE:
        for _ in range(n):
            out = 4
            if t != 1:
                unit(1, c, c * 2)
            unit(3, c * 2 if t != 1 else c, None, depthwise=True)
            unit(1, c * 2 if t != 1 else c, out)
            c = out
    unit(1, c, 16)
    model = MobileNetV2(units, 3, 32, 0.0).eval()
    export_tfjs(model, out_dir, "float32", 3)


def export_untrained(base, input_size, out_dir, classes=11):
    """The base network at another input size with a new (untrained) classifier layer, exported as training
    would export it: for timing an architecture before spending hours training it (bench/networks.ts)."""
    weights, _ = read_tfjs(base)
    model = MobileNetV2(conv_units(weights), classes, input_size, 0.0).eval()
    export_tfjs(model, out_dir, "float32", classes)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--make-test-base"]:
        make_test_base(sys.argv[2])
    elif sys.argv[1:2] == ["--export-untrained"]:
        export_untrained(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main(sys.argv[1:])
