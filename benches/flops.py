#!/usr/bin/env python3
"""FLOPs of the backbone per 80 ms hop: streaming (new time columns only) vs one 76-frame window.

Usage: python3 benches/flops.py   (needs the `onnx` package; reads models/embedding_model.onnx)

Counts 2·Cout·Cin·kt·kf·Fout multiply-adds per output time column of every Conv (activations
and pooling are negligible). Streaming computes 8 new input columns per hop, halved after each
of the three time-poolings; the windowed model computes every column of the 76-frame window.
"""
from pathlib import Path

import onnx
from onnx import helper, numpy_helper

model = onnx.load(str(Path(__file__).resolve().parent.parent / "models" / "embedding_model.onnx"))
weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
freq, cols, time = 32, 8, 76
stream = window = 0
for node in model.graph.node:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "Conv":
        cout, cin, kt, kf = weights[node.input[1]].shape
        pads = attrs.get("pads", [0, 0, 0, 0])
        freq = freq + pads[1] + pads[3] - kf + 1
        time = time - kt + 1
        per_col = 2 * cout * cin * kt * kf * freq
        stream += per_col * cols
        window += per_col * time
    elif node.op_type == "MaxPool":
        kt, kf = attrs["kernel_shape"]
        freq //= kf
        if kt == 2:
            cols //= 2
            time //= 2
print(f"streaming: {stream / 1e6:.1f} MFLOP per hop; windowed: {window / 1e6:.1f} MFLOP per window "
      f"({window / stream:.1f}x)")
