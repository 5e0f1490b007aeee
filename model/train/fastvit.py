#!/usr/bin/env python3
"""FastViT-t4 (Food-101; ../shared/data/backbones/fastvit_t4_food101) rebuilt in PyTorch from its ONNX graph, and
exported as a TF.js layers model the service's loader runs: for measuring what a food-trained second backbone is
worth (issue 23, item 4). Training only: the product never imports this file.

There is no ONNX runtime on these machines, so the graph is run op by op in PyTorch (`OnnxNet`) from the weights and
attributes python3-onnx reads. The exported network takes what the service feeds every network, x / 127.5 - 1, and
does FastViT's ImageNet normalisation itself.

  fastvit.py --check <model.onnx> <tensor cache> [--photos 400]   top-1 on Food-101 photos of the cache (the
                                                                   backbone README's check: 68.5 %)
  fastvit.py --export <model.onnx> <out dir> [--classes 11]        TF.js layers: FastViT's pooled features, a new
                                                                   (untrained) softmax layer; reference.json beside
  fastvit.py --export-two-branch <model.onnx> <mobilenet base> <out dir>
                                                                   MobileNetV2 and FastViT, maps concatenated,
                                                                   one (untrained) softmax layer
  fastvit.py --self-test <out dir>                                 a tiny synthetic graph against hand arithmetic
"""

import argparse
import base64
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import finetune  # beside this file: MobileNetV2, its export, and the service's resize

# What the ONNX network was trained on (timm's defaults): RGB in [0, 1], then these.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _attrs(node):
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class OnnxNet(nn.Module):
    """An ONNX graph of Conv, Clip, Relu, Add, Mul, HardSigmoid, AveragePool, GlobalAveragePool, Unsqueeze, Concat,
    Reshape, Flatten and Gemm, run in PyTorch. Weights are parameters (named after their initialisers) so the
    network can be fine-tuned; `forward` takes RGB bytes 0..255 (N, 3, H, W) as finetune.py's networks do.
    `features` is the input of the final Gemm (the pooled features)."""

    def __init__(self, model):
        import onnx.numpy_helper as nh

        super().__init__()
        g = model.graph
        self.nodes = [(n.op_type, list(n.input), list(n.output), _attrs(n)) for n in g.node]
        self.input_name = g.input[0].name
        self.input_size = int(g.input[0].type.tensor_type.shape.dim[2].dim_value)  # NCHW, exported at one size
        self.output_name = g.output[0].name
        self.params = nn.ParameterDict()
        self.key = {}
        for init in g.initializer:
            key = f"p{len(self.key)}"  # ParameterDict keys may not hold dots or slashes
            self.key[init.name] = key
            self.params[key] = nn.Parameter(torch.from_numpy(nh.to_array(init).astype(np.float32).copy()))
        self.constants = {}
        for op, _, outputs, a in self.nodes:
            if op == "Constant":
                self.constants[outputs[0]] = nh.to_array(a["value"])
        gemm = [n for n in self.nodes if n[0] == "Gemm"]
        self.feature_name = gemm[-1][1][0] if gemm else None
        # The final Gemm's weight is [classes, features] (transB): the width of `features`.
        self.feature_count = int(self.weight(gemm[-1][1][1]).shape[1]) if gemm else None
        gap = [n for n in self.nodes if n[0] == "GlobalAveragePool"]
        self.map_name = gap[-1][1][0] if gap else None
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1))

    def weight(self, name):
        return self.params[self.key[name]]

    def _value(self, env, name):
        if name in self.key:
            return self.weight(name)
        if name in self.constants:
            return self.constants[name]
        return env[name]

    def run(self, x, stop=None):
        """x already normalised as the ONNX graph expects; the value named `stop` (default: the output)."""
        env = {self.input_name: x}
        for op, inputs, outputs, a in self.nodes:
            if op == "Constant":
                continue
            v = [self._value(env, i) if i else None for i in inputs]
            if op == "Conv":
                pads = a.get("pads", [0, 0, 0, 0])
                h = F.pad(v[0], (pads[1], pads[3], pads[0], pads[2]))
                y = F.conv2d(h, v[1], v[2] if len(v) > 2 else None, a.get("strides", [1, 1]), 0,
                             a.get("dilations", [1, 1]), a.get("group", 1))
            elif op == "Clip":
                lo = float(v[1]) if len(v) > 1 and v[1] is not None else a.get("min", -np.inf)
                hi = float(v[2]) if len(v) > 2 and v[2] is not None else a.get("max", np.inf)
                y = torch.clamp(v[0], lo, hi)
            elif op == "Relu":
                y = F.relu(v[0])
            elif op == "Add":
                y = v[0] + v[1]
            elif op == "Mul":
                y = v[0] * v[1]
            elif op == "HardSigmoid":
                # ONNX: max(0, min(1, alpha * x + beta)), defaults 0.2 and 0.5 (not PyTorch's x / 6 + 1 / 2).
                y = torch.clamp(a.get("alpha", 0.2) * v[0] + a.get("beta", 0.5), 0, 1)
            elif op == "AveragePool":
                if a.get("pads", [0, 0, 0, 0]) != [0, 0, 0, 0] or a.get("ceil_mode", 0):
                    raise NotImplementedError("AveragePool with padding or ceil_mode")
                y = F.avg_pool2d(v[0], a["kernel_shape"], a.get("strides", a["kernel_shape"]))
            elif op == "GlobalAveragePool":
                y = v[0].mean(dim=(2, 3), keepdim=True)
            elif op == "Unsqueeze":
                y = v[0]
                for axis in sorted(a["axes"]):
                    y = y.unsqueeze(axis)
            elif op == "Concat":
                y = torch.cat(v, dim=a["axis"])
            elif op == "Reshape":
                # The graph was exported at batch 1: a leading 1 in a target shape is the batch.
                shape = [int(s) for s in v[1]]
                if shape[0] == 1:
                    shape[0] = v[0].shape[0]
                y = v[0].reshape(shape)
            elif op == "Flatten":
                y = v[0].flatten(a.get("axis", 1))
            elif op == "Gemm":
                b = v[1].t() if a.get("transB", 0) else v[1]
                y = a.get("alpha", 1.0) * (v[0] @ b)
                if len(v) > 2:
                    y = y + a.get("beta", 1.0) * v[2]
            else:
                raise NotImplementedError(f"ONNX op {op}")
            env[outputs[0]] = y
            if outputs[0] == stop:
                return y
        return env[self.output_name]

    def normalise(self, x):
        """RGB bytes 0..255 to what the network was trained on."""
        return (x / 255.0 - self.mean) / self.std

    def forward(self, x):
        return self.run(self.normalise(x))

    def features(self, x):
        """The pooled features (N, C) of RGB bytes 0..255."""
        return self.run(self.normalise(x), stop=self.feature_name).flatten(1)

    def feature_map(self, x):
        """The last feature map before the global pooling (N, C, H, W) of RGB bytes 0..255."""
        return self.run(self.normalise(x), stop=self.map_name)


class TwoBranch(nn.Module):
    """MobileNetV2 (finetune.py's) and FastViT side by side on the same view, their last feature maps (both 7×7 at
    224 px) concatenated, pooled and one softmax layer: the network item 4 of issue 23 asks about. Concatenating
    the maps before one pooling is the same as concatenating the pooled features, and keeps the export in the
    GlobalAveragePooling2D → Dense shape the service's loader expects."""

    def __init__(self, mobilenet, fast, classes, dropout=0.0):
        super().__init__()
        self.mobilenet, self.fastvit = mobilenet, fast
        self.input_size = mobilenet.input_size
        self.features = mobilenet.features + fast.feature_count
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.features, classes)

    def feature_map(self, x):
        x = self.mobilenet.resize(x)
        a = self.mobilenet.top(self.mobilenet.blocks(self.mobilenet.stem(x / 127.5 - 1)))
        return torch.cat([a, self.fastvit.feature_map(x)], dim=1)

    def forward(self, x):
        return self.classifier(self.dropout(self.feature_map(x).mean(dim=(2, 3))))


def load(path):
    import onnx

    return OnnxNet(onnx.load(path)).eval()


class FastViTClassifier(nn.Module):
    """FastViT alone, every weight trainable, under a new softmax layer: what finetune.py fine-tunes when --base is
    the ONNX graph ("instead of MobileNetV2", issue 23 item 4). It has the calls finetune.py makes of its
    MobileNetV2: RGB bytes at the view's size in, logits out; `pooled` for the head probe; no frozen prefix."""

    def __init__(self, fast, classes, input_size, dropout):
        super().__init__()
        if input_size != fast.input_size:
            # The graph's reshapes and its squeeze-excite pooling (a fixed AveragePool) hold the size it was
            # exported at (224 px for FastViT-t4).
            raise SystemExit(f"finetune: this FastViT graph runs at {fast.input_size} px only (--input-size "
                             f"{fast.input_size}, no --small-input-size)")
        self.fastvit = fast
        self.input_size = input_size
        self.features = fast.feature_count
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.features, classes)

    def pooled(self, x):
        """The pooled features (N, C) of RGB 0..255 already at the input side (the head probe's input)."""
        return self.fastvit.features(x)

    def forward(self, x):
        return self.classifier(self.dropout(self.pooled(finetune.service_resize(x, self.input_size))))

    def frozen_modules(self, blocks):
        if blocks:
            raise SystemExit("finetune: --freeze-blocks is for MobileNetV2; FastViT is fine-tuned whole")
        return []

    def export(self, out_dir):
        export_tfjs(self.fastvit, out_dir, self.input_size, self.classifier.out_features,
                    head=(_np(self.classifier.weight), _np(self.classifier.bias)))


# ------------------------------------------------------------------------------------------------------------
# TF.js layers export


class KerasGraph:
    """Layers and weights of a Keras-2-style functional topology, as finetune.py's export_tfjs writes them."""

    def __init__(self):
        self.layers, self.weights = [], []

    def add(self, cls, name, config, inputs):
        self.layers.append({
            "class_name": cls,
            "name": name,
            "config": {"name": name, "trainable": False, **config},
            "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]] if inputs else [],
        })
        return name

    def conv(self, name, x, kernel, bias, stride, depthwise, padding="valid"):
        """kernel in Keras layout: [kh, kw, in, out], depthwise [kh, kw, in, multiplier]."""
        config = {"kernel_size": list(kernel.shape[:2]), "strides": [stride, stride], "padding": padding,
                  "data_format": "channels_last", "dilation_rate": [1, 1], "activation": "linear",
                  "use_bias": True}
        if depthwise:
            config["depth_multiplier"] = int(kernel.shape[3])
            self.weights.append((f"{name}/depthwise_kernel", kernel))
        else:
            config["filters"] = int(kernel.shape[3])
            self.weights.append((f"{name}/kernel", kernel))
        self.weights.append((f"{name}/bias", bias))
        return self.add("DepthwiseConv2D" if depthwise else "Conv2D", name, config, [x])

    def write(self, out_dir, outputs, input_size):
        os.makedirs(out_dir, exist_ok=True)
        manifest, blob = [], bytearray()
        for name, value in self.weights:
            value = np.ascontiguousarray(value, dtype=np.float32)
            manifest.append({"name": name, "shape": list(value.shape), "dtype": "float32"})
            blob += value.tobytes()
        topology = {"class_name": "Model", "config": {
            "name": "gourmetgram", "layers": self.layers, "input_layers": [["input", 0, 0]],
            "output_layers": [[o, 0, 0] for o in outputs]}, "keras_version": "2.13.1", "backend": "tensorflow"}
        with open(os.path.join(out_dir, "weights.bin"), "wb") as f:
            f.write(bytes(blob))
        with open(os.path.join(out_dir, "model.json"), "w") as f:
            json.dump({"format": "layers-model", "generatedBy": "gourmetgram model/train/fastvit.py",
                       "convertedBy": None, "modelTopology": topology,
                       "weightsManifest": [{"paths": ["weights.bin"], "weights": manifest}]}, f)


def _np(t):
    return t.detach().double().numpy()


def emit_fastvit(net, kg, x, prefix="fv_"):
    """FastViT's layers into `kg` from the input `x` (a layer scaled x / 127.5 - 1, NHWC), up to its last feature
    map before the pooling (C channels, ReLU6'd); returns that layer's name. Every op maps to a layer the service's
    fused engine runs (convolutions, ReLU6, Add, Multiply, AveragePooling2D), with two rewrites:
    - ONNX pads a stride-2 convolution symmetrically, TF's 'same' puts the extra pixels after: explicit
      ZeroPadding2D and 'valid' wherever the two differ;
    - the squeeze-excite gate clip(a·z + b, 0, 1) (HardSigmoid) becomes relu6(6a·z + 6b) / 6, with 6a and 6b in the
      convolution before it and the 1/6 moved onto the feature map it multiplies (and undone, ×6, in the
      convolution that reads that map's average): ReLU6 fuses into a convolution on wasm, a clip at 1 does not."""
    by_output = {}
    consumers = {}
    for node in net.nodes:
        for o in node[2]:
            by_output[o] = node
        for i in node[1]:
            consumers.setdefault(i, []).append(node)
    names = {net.input_name: x}
    count = [0]

    def fresh(kind):
        count[0] += 1
        return f"{prefix}{kind}_{count[0]}"

    # The squeeze-excite rewrite above, planned before emitting: scale[name] multiplies a conv's kernel and bias.
    kernel_scale, bias_add, in_scale, kernel_only = {}, {}, {}, {}
    for op, inputs, outputs, a in net.nodes:
        if op != "HardSigmoid":
            continue
        alpha, beta = a.get("alpha", 0.2), a.get("beta", 0.5)
        expand = by_output[inputs[0]]
        assert expand[0] == "Conv", "HardSigmoid must follow a convolution"
        kernel_scale[expand[2][0]] = 6 * alpha
        bias_add[expand[2][0]] = 6 * beta
        # The map the gate multiplies: the other input of the Mul that reads the gate (through a Reshape).
        gate = outputs[0]
        while consumers[gate][0][0] == "Reshape":
            gate = consumers[gate][0][2][0]
        mul = consumers[gate][0]
        assert mul[0] == "Mul", "the gate must end in a Mul"
        fmap = [i for i in mul[1] if i != gate][0]
        in_scale[fmap] = 1 / 6
        # The squeeze reads the same map, through its average, into a convolution: ×6 there keeps it unchanged.
        readers = consumers[fmap]
        assert sorted(c[0] for c in readers) == ["AveragePool", "Mul"], "the gated map feeds the squeeze and the Mul"
        pool = next(c for c in readers if c[0] == "AveragePool")
        reduce = consumers[pool[2][0]]
        assert len(reduce) == 1 and reduce[0][0] == "Conv", "the squeeze is a convolution of the average"
        kernel_only[reduce[0][2][0]] = 6.0

    def conv_weights(node):
        _, inputs, outputs, a = node
        w = _np(net.weight(inputs[1]))
        b = _np(net.weight(inputs[2])) if len(inputs) > 2 else np.zeros(w.shape[0])
        s = kernel_scale.get(outputs[0], 1.0)
        return w * s * kernel_only.get(outputs[0], 1.0), b * s + bias_add.get(outputs[0], 0.0)

    def padded(src, node, kernel, stride, size):
        """The layer feeding a convolution and its Keras padding, with a ZeroPadding2D where TF's 'same' would
        pad differently from ONNX."""
        pads = node[3].get("pads", [0, 0, 0, 0])
        if pads == [0, 0, 0, 0]:
            return src, "valid"
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        if pads == [total // 2, total // 2, total - total // 2, total - total // 2]:
            return src, "same"
        return kg.add("ZeroPadding2D", fresh("pad"), {"padding": [[pads[0], pads[2]], [pads[1], pads[3]]],
                                                      "data_format": "channels_last"}, [src]), "valid"

    shapes = {}  # ONNX value -> spatial size, for the padding decision

    def spatial(name):
        return shapes[name]

    shapes[net.input_name] = kg.input_size
    pending_depthwise = {}  # Unsqueeze output -> (conv node)
    for node in net.nodes:
        op, inputs, outputs, a = node
        out = outputs[0]
        if op == "Constant":
            continue
        if op == "Conv":
            src = names[inputs[0]]
            size = spatial(inputs[0])
            w, b = conv_weights(node)
            k, stride, group = a["kernel_shape"][0], a.get("strides", [1, 1])[0], a.get("group", 1)
            cout, cin_g = w.shape[0], w.shape[1]
            shapes[out] = (size + a.get("pads", [0, 0, 0, 0])[0] + a.get("pads", [0, 0, 0, 0])[2] - k) // stride + 1
            if group > 1:
                assert cin_g == 1 and cout == group, "only depthwise grouped convolutions"
                # Two depthwise convolutions of one input, stacked channel by channel (Unsqueeze, Concat at axis 2,
                # Reshape) are one DepthwiseConv2D with depth multiplier 2: TF orders its outputs c·m + k too.
                if all(c[0] == "Unsqueeze" for c in consumers[out]):
                    pending_depthwise[consumers[out][0][2][0]] = (node, w, b, k, stride, size)
                    continue
                src, pad = padded(src, node, k, stride, size)
                names[out] = kg.conv(fresh("depthwise"), src, w.transpose(2, 3, 0, 1), b, stride, True, pad)
            else:
                src, pad = padded(src, node, k, stride, size)
                names[out] = kg.conv(fresh("conv"), src, w.transpose(2, 3, 1, 0), b, stride, False, pad)
            if out in in_scale:
                kg.weights[-2] = (kg.weights[-2][0], kg.weights[-2][1] * in_scale[out])
                kg.weights[-1] = (kg.weights[-1][0], kg.weights[-1][1] * in_scale[out])
        elif op == "Unsqueeze":
            assert inputs[0] in by_output and out in pending_depthwise
        elif op == "Concat":
            parts = [pending_depthwise.pop(i) for i in inputs]
            assert a["axis"] == 2 and len({p[0][1][0] for p in parts}) == 1, "stacked depthwise of one input"
            node0, _, _, k, stride, size = parts[0]
            kernel = np.stack([p[1][:, 0].transpose(1, 2, 0) for p in parts], axis=3)  # [kh, kw, C, m]
            bias = np.stack([p[2] for p in parts], axis=1).reshape(-1)  # channel c·m + k
            src, pad = padded(names[node0[1][0]], node0, k, stride, size)
            names[out] = kg.conv(fresh("depthwise"), src, kernel, bias, stride, True, pad)
            shapes[out] = shapes[node0[2][0]]
            if any(c[2][0] in in_scale for c in consumers[out] if c[0] == "Reshape"):
                kg.weights[-2] = (kg.weights[-2][0], kg.weights[-2][1] / 6)
                kg.weights[-1] = (kg.weights[-1][0], kg.weights[-1][1] / 6)
        elif op == "Reshape":
            # After a stacked depthwise pair or a gate the NHWC layers already have the shape ONNX reshapes to.
            assert by_output[inputs[0]][0] in ("Concat", "HardSigmoid"), "Reshape of something else"
            names[out] = names[inputs[0]]
            shapes[out] = shapes[inputs[0]]
        elif op == "Clip":
            lo = float(net.constants[inputs[1]]) if len(inputs) > 1 and inputs[1] else a.get("min")
            hi = float(net.constants[inputs[2]]) if len(inputs) > 2 and inputs[2] else a.get("max")
            assert lo == 0 and hi == 6, f"Clip({lo}, {hi}): only ReLU6"
            names[out] = kg.add("ReLU", fresh("relu6"), {"max_value": 6.0}, [names[inputs[0]]])
            shapes[out] = shapes[inputs[0]]
        elif op == "Relu":
            names[out] = kg.add("ReLU", fresh("relu"), {}, [names[inputs[0]]])
            shapes[out] = shapes[inputs[0]]
        elif op == "HardSigmoid":
            # relu6(6a·z + 6b); the 6s sit in the convolution before (planned above).
            names[out] = kg.add("ReLU", fresh("gate"), {"max_value": 6.0}, [names[inputs[0]]])
            shapes[out] = shapes[inputs[0]]
        elif op in ("Add", "Mul"):
            names[out] = kg.add("Add" if op == "Add" else "Multiply", fresh(op.lower()), {},
                                [names[i] for i in inputs])
            shapes[out] = max(shapes[i] for i in inputs)
        elif op == "AveragePool":
            kk = a["kernel_shape"]
            names[out] = kg.add("AveragePooling2D", fresh("avgpool"), {
                "pool_size": kk, "strides": a.get("strides", kk), "padding": "valid",
                "data_format": "channels_last"}, [names[inputs[0]]])
            shapes[out] = (shapes[inputs[0]] - kk[0]) // a.get("strides", kk)[0] + 1
        elif op == "GlobalAveragePool":
            return names[inputs[0]]
        else:
            raise NotImplementedError(f"export of ONNX op {op}")
    raise ValueError("the graph has no GlobalAveragePool")


def emit_mobilenet(model, kg, x, prefix="mn_"):
    """finetune.py's MobileNetV2 into `kg` as finetune.export_tfjs lays it out (batch norms folded, 'same'
    padding as the network pads), up to its last ReLU6'd feature map; returns that layer's name."""
    count = [0]

    def conv(m, x):
        count[0] += 1
        k, b = finetune.folded(m)
        name = f"{prefix}{'depthwise' if m.depthwise else 'conv'}_{count[0]}"
        y = kg.conv(name, x, k, b, m.stride, m.depthwise, "same")
        return kg.add("ReLU", f"{name}_relu", {"max_value": 6.0}, [y]) if m.relu else y

    x = conv(model.stem, x)
    for i, block in enumerate(model.blocks):
        y = x
        for u in block.units:
            y = conv(u, y)
        x = kg.add("Add", f"{prefix}add_{i}", {}, [x, y]) if block.residual else y
    return conv(model.top, x)


def export_two_branch(net, out_dir):
    """A TwoBranch network as one TF.js layers model: both branches from one input, their maps concatenated,
    GlobalAveragePooling2D, Dense(softmax)."""
    kg = KerasGraph()
    size = net.input_size
    kg.input_size = size
    x = kg.add("InputLayer", "input", {"batch_input_shape": [None, size, size, 3], "dtype": "float32",
                                       "sparse": False}, [])
    a = emit_mobilenet(net.mobilenet, kg, x)
    b = emit_fastvit(net.fastvit, kg, normalisation_layer(kg, x))
    both = kg.add("Concatenate", "branches", {"axis": -1}, [a, b])
    pool = kg.add("GlobalAveragePooling2D", "pool", {"data_format": "channels_last"}, [both])
    kg.add("Dense", "logits", {"units": net.classifier.out_features, "activation": "softmax", "use_bias": True},
           [pool])
    kg.weights.append(("logits/kernel", _np(net.classifier.weight).T))
    kg.weights.append(("logits/bias", _np(net.classifier.bias)))
    kg.write(out_dir, ["logits"], size)


def normalisation_layer(kg, x, name="fv_normalise"):
    """x / 127.5 - 1 (the service's scaling) to ((x + 1) / 2 - mean) / std, per channel: a 1x1 depthwise conv."""
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    kernel = (0.5 / std).reshape(1, 1, 3, 1)
    bias = (0.5 - mean) / std
    return kg.conv(name, x, kernel, bias, 1, True)


def export_tfjs(net, out_dir, input_size=224, classes=11, head=None):
    """FastViT as a TF.js layers model ending in GlobalAveragePooling2D → Dense(softmax) as the service expects;
    `head` (weight [classes, C], bias) or a random one (the timing does not depend on it)."""
    kg = KerasGraph()
    kg.input_size = input_size
    x = kg.add("InputLayer", "input", {"batch_input_shape": [None, input_size, input_size, 3], "dtype": "float32",
                                       "sparse": False}, [])
    fmap = emit_fastvit(net, kg, normalisation_layer(kg, x))
    pool = kg.add("GlobalAveragePooling2D", "pool", {"data_format": "channels_last"}, [fmap])
    kg.add("Dense", "logits", {"units": classes, "activation": "softmax", "use_bias": True}, [pool])
    features = net.feature_count
    if head is None:
        rng = np.random.default_rng(0)
        head = (rng.standard_normal((classes, features)) * 0.05, np.zeros(classes))
    kg.weights.append(("logits/kernel", np.asarray(head[0], dtype=np.float64).T))
    kg.weights.append(("logits/bias", np.asarray(head[1])))
    kg.write(out_dir, ["logits"], input_size)
    return head


def write_reference(out_dir, views, probabilities, features=None):
    """Inputs (RGB bytes, HWC) and what PyTorch gives for them, for checking TF.js against PyTorch."""
    ref = {"viewSize": int(views.shape[1]),
           "inputs": [base64.b64encode(np.ascontiguousarray(v).tobytes()).decode() for v in views],
           "probabilities": np.asarray(probabilities).astype(float).round(8).tolist()}
    if features is not None:
        ref["features"] = np.asarray(features).astype(float).round(7).tolist()
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump(ref, f)


def reference_views(n=4, size=224, seed=0):
    """Photo-like test inputs without photos: smooth colour fields with noise, as RGB bytes (N, size, size, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    views = []
    for _ in range(n):
        c = [128 + 100 * np.sin(rng.uniform(1, 9) * xx + rng.uniform(1, 9) * yy + rng.uniform(0, 6)) for _ in range(3)]
        img = np.stack(c, axis=2) + rng.normal(0, 20, (size, size, 3))
        views.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(views)


# ------------------------------------------------------------------------------------------------------------
# Commands


def check(onnx_path, cache_dir, photos, threads):
    """Top-1 over Food-101's 101 dishes on Food-101 photos of the cache (sets photos and sharp; file names
    <dish>__<id>.jpg), in the service's view."""
    torch.set_num_threads(threads)
    labels = open(os.path.join(os.path.dirname(onnx_path), "labels.txt")).read().split()
    index = json.load(open(os.path.join(cache_dir, "index.json")))
    v = index["view"]["size"]
    pixels = np.memmap(os.path.join(cache_dir, "pixels.u8"), dtype=np.uint8, mode="r").reshape(-1, v, v, 3)
    picks = []
    for i, s in enumerate(index["samples"]):
        if s["set"] in ("photos", "sharp"):
            dish = os.path.basename(s["file"]).split("__")[0]
            if dish in labels:
                picks.append((i, labels.index(dish)))
    picks = [picks[j] for j in np.linspace(0, len(picks) - 1, min(photos, len(picks))).astype(int)]
    net = load(onnx_path)
    right = {"imagenet": 0, "[-1,1]": 0, "[0,1]": 0}
    with torch.no_grad():
        for start in range(0, len(picks), 50):
            chunk = picks[start:start + 50]
            x = torch.from_numpy(np.ascontiguousarray(pixels[[i for i, _ in chunk]])).permute(0, 3, 1, 2).float()
            y = torch.tensor([l for _, l in chunk])
            for name, inp in (("imagenet", net.normalise(x)), ("[-1,1]", x / 127.5 - 1), ("[0,1]", x / 255)):
                right[name] += int((net.run(inp).argmax(1) == y).sum())
    print(json.dumps({"photos": len(picks), **{k: round(100 * r / len(picks), 1) for k, r in right.items()}}))


def export_two_branch_command(onnx_path, base, out_dir, classes):
    """Both backbones, an untrained (random) softmax layer, and a reference.json of PyTorch's answers."""
    weights, _ = finetune.read_tfjs(base)
    torch.manual_seed(0)
    mobilenet = finetune.MobileNetV2(finetune.conv_units(weights), classes, 224, 0.0)
    net = TwoBranch(mobilenet, load(onnx_path), classes).eval()
    export_two_branch(net, out_dir)
    views = reference_views(4, 224)
    with torch.no_grad():
        x = torch.from_numpy(views).permute(0, 3, 1, 2).float()
        feats = net.feature_map(x).mean(dim=(2, 3))
        p = F.softmax(net(x), dim=1)
    write_reference(out_dir, views, p.numpy(), feats.numpy())
    print(json.dumps({"out": out_dir, "features": int(feats.shape[1]), "classes": classes}))


def export_command(onnx_path, out_dir, classes, input_size):
    net = load(onnx_path)
    head = export_tfjs(net, out_dir, input_size, classes)
    views = reference_views(4, input_size)
    with torch.no_grad():
        x = torch.from_numpy(views).permute(0, 3, 1, 2).float()
        feats = net.features(x)
        logits = feats @ torch.tensor(head[0], dtype=torch.float32).t() + torch.tensor(head[1], dtype=torch.float32)
        p = F.softmax(logits, dim=1)
    write_reference(out_dir, views, p.numpy(), feats.numpy())
    print(json.dumps({"out": out_dir, "features": int(feats.shape[1]), "classes": classes}))


def tiny_onnx(path):
    """A synthetic graph with every op and pattern FastViT-t4 uses, at 8x8 (a stride-2 conv with symmetric pads,
    a stacked pair of depthwise convs, a squeeze-excite gate with HardSigmoid, Clip, Add, Gemm)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper as nh

    rng = np.random.default_rng(1)
    inits, nodes = [], []

    def w(name, *shape):
        inits.append(nh.from_array((rng.standard_normal(shape) * 0.5).astype(np.float32), name))
        return name

    def const(name, value, dtype=np.float32):
        nodes.append(helper.make_node("Constant", [], [name], value=nh.from_array(np.array(value, dtype=dtype))))
        return name

    lo, hi = const("lo", 0.0), const("hi", 6.0)
    nodes += [
        helper.make_node("Conv", ["x", w("c1w", 4, 3, 3, 3), w("c1b", 4)], ["c1"], kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], strides=[2, 2], group=1),
        helper.make_node("Clip", ["c1", lo, hi], ["r1"]),
        helper.make_node("Conv", ["r1", w("d1w", 4, 1, 3, 3), w("d1b", 4)], ["d1"], kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], strides=[1, 1], group=4),
        helper.make_node("Add", ["r1", "d1"], ["a1"]),
        helper.make_node("Conv", ["a1", w("e0w", 4, 1, 3, 3), w("e0b", 4)], ["e0"], kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], strides=[2, 2], group=4),
        helper.make_node("Conv", ["a1", w("e1w", 4, 1, 3, 3), w("e1b", 4)], ["e1"], kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], strides=[2, 2], group=4),
        helper.make_node("Unsqueeze", ["e0"], ["u0"], axes=[2]),
        helper.make_node("Unsqueeze", ["e1"], ["u1"], axes=[2]),
        helper.make_node("Concat", ["u0", "u1"], ["cat"], axis=2),
        helper.make_node("Reshape", ["cat", const("s1", [1, 8, 2, 2], np.int64)], ["m"]),
        helper.make_node("AveragePool", ["m"], ["ap"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["ap", w("rw", 3, 8, 1, 1), w("rb", 3)], ["red"], kernel_shape=[1, 1]),
        helper.make_node("Clip", ["red", lo, hi], ["rr"]),
        helper.make_node("Conv", ["rr", w("xw", 8, 3, 1, 1), w("xb", 8)], ["exp"], kernel_shape=[1, 1]),
        helper.make_node("HardSigmoid", ["exp"], ["hs"], alpha=1 / 6),
        helper.make_node("Reshape", ["hs", const("s2", [-1, 8, 1, 1], np.int64)], ["gate"]),
        helper.make_node("Mul", ["m", "gate"], ["se"]),
        helper.make_node("Clip", ["se", lo, hi], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"]),
        helper.make_node("Reshape", ["gap", const("s3", [1, -1], np.int64)], ["flat"]),
        helper.make_node("Gemm", ["flat", w("gw", 5, 8), w("gb", 5)], ["y"], transB=1),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return {i.name: nh.to_array(i).astype(np.float64) for i in inits}


def hand_forward(p, x):
    """tiny_onnx's graph in float64 numpy loops: the reference the PyTorch runner must match."""
    def conv(x, w, b, stride, pad, group):
        c, h, wd = x.shape
        xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
        k = w.shape[2]
        oh = (h + 2 * pad - k) // stride + 1
        out = np.zeros((w.shape[0], oh, oh))
        per = w.shape[0] // group
        for o in range(w.shape[0]):
            g = o // per
            for i in range(oh):
                for j in range(oh):
                    patch = xp[g * w.shape[1]:(g + 1) * w.shape[1], i * stride:i * stride + k, j * stride:j * stride + k]
                    out[o, i, j] = (patch * w[o]).sum() + b[o]
        return out

    r1 = np.clip(conv(x, p["c1w"], p["c1b"], 2, 1, 1), 0, 6)
    a1 = r1 + conv(r1, p["d1w"], p["d1b"], 1, 1, 4)
    e0, e1 = conv(a1, p["e0w"], p["e0b"], 2, 1, 4), conv(a1, p["e1w"], p["e1b"], 2, 1, 4)
    m = np.zeros((8, 2, 2))
    m[0::2], m[1::2] = e0, e1
    ap = m.mean(axis=(1, 2))
    rr = np.clip(p["rw"][:, :, 0, 0] @ ap + p["rb"], 0, 6)
    gate = np.clip((p["xw"][:, :, 0, 0] @ rr + p["xb"]) / 6 + 0.5, 0, 1)
    feats = np.clip(m * gate[:, None, None], 0, 6).mean(axis=(1, 2))
    return p["gw"] @ feats + p["gb"], feats


def self_test(out_dir):
    """The runner against hand arithmetic on a tiny synthetic graph, and the TF.js export of it with a reference
    (tests/model/fastvit.test.ts loads that export in TF.js and compares)."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "tiny.onnx")
    p = tiny_onnx(path)
    net = load(path)
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (3, 8, 8))
    want, want_feats = hand_forward(p, x)
    with torch.no_grad():
        got = net.run(torch.tensor(x[None], dtype=torch.float32))[0].double().numpy()
    err = float(np.abs(got - want).max())
    assert err < 1e-4, f"runner differs from hand arithmetic by {err}"
    # The export: 4 bytes-valued views through normalisation, so TF.js can be checked against PyTorch.
    net_dir = os.path.join(out_dir, "network")
    head = export_tfjs(net, net_dir, input_size=8, classes=3)
    views = reference_views(2, 8)
    with torch.no_grad():
        xv = torch.from_numpy(views).permute(0, 3, 1, 2).float()
        feats = net.features(xv)
        probs = F.softmax(feats @ torch.tensor(head[0], dtype=torch.float32).t()
                          + torch.tensor(head[1], dtype=torch.float32), dim=1)
    write_reference(net_dir, views, probs.numpy(), feats.numpy())
    print(json.dumps({"handDiff": err, "network": net_dir}))


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", nargs=2, metavar=("ONNX", "CACHE"))
    p.add_argument("--export", nargs=2, metavar=("ONNX", "OUT"))
    p.add_argument("--self-test", metavar="OUT")
    p.add_argument("--export-two-branch", nargs=3, metavar=("ONNX", "MOBILENET_BASE", "OUT"),
                   help="MobileNetV2 (a TF.js base, as finetune.py --base takes) beside FastViT, one softmax layer")
    p.add_argument("--photos", type=int, default=400)
    p.add_argument("--classes", type=int, default=11)
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.check:
        check(args.check[0], args.check[1], args.photos, args.threads)
    elif args.export:
        export_command(args.export[0], args.export[1], args.classes, args.input_size)
    elif args.export_two_branch:
        export_two_branch_command(*args.export_two_branch, args.classes)
    elif args.self_test:
        self_test(args.self_test)
    else:
        p.print_help()


if __name__ == "__main__":
    main(sys.argv[1:])
