#!/usr/bin/env python3
"""Writes embedding_model.onnx with time left free, for tract's CLI: profiles tract's own
streaming (pulse) plan of the backbone, the one hark ran before its per-layer plan
(src/convnet.rs), for comparison.

Usage: python3 benches/time_agnostic_onnx.py OUT.onnx   (needs the `onnx` package)

The reference graph fixes the 76-frame window only in its two Reshape constants; they become
[1,1,-1,32] and [1,96,-1,1], and the declared output shape is dropped. Then tract-cli 0.23.9
(`cargo install --locked tract-cli --version 0.23.9`) profiles the pulse plan, one 8-frame
pulse per hop:

    tract OUT.onnx -O -i 1,S,32,1,f32 --pulse 8 dump --allow-random-input --profile
"""
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

model = onnx.load(str(Path(__file__).resolve().parent.parent / "models" / "embedding_model.onnx"))
shapes = {"new_shape__262": [1, 1, -1, 32], "new_shape__273": [1, 96, -1, 1]}
for i, init in enumerate(model.graph.initializer):
    if init.name in shapes:
        model.graph.initializer[i].CopyFrom(
            numpy_helper.from_array(np.array(shapes[init.name], dtype=np.int64), init.name))
model.graph.output[0].type.tensor_type.ClearField("shape")
del model.graph.value_info[:]
onnx.save(model, sys.argv[1])
