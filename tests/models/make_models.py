#!/usr/bin/python3
"""Generates the ONNX test models of deviceops' inference tests.

Usage: make_models.py OUTPUT_DIR [--large]

Deterministic (fixed seeds). Run with Debian's python3 (python3-torch 1.13, python3-onnx 1.12,
python3-numpy). Writes into OUTPUT_DIR:

  mlp.onnx            float32 x[batch,16] -> Linear/ReLU/Linear/ReLU/Linear -> y[batch,4]
  cnn.onnx            float32 image[batch,3,32,32] -> small CNN -> logits[batch,10]
  slow.onnx           float32 x[batch,256] -> 96 x (MatMul 256x256, Tanh) -> y[batch,256]; a run
                      with a large batch takes long enough to cancel it midway
  multi_io.onnx       inputs of float32, int64, bool, float16 and double -> outputs of matching and
                      different types (onnx.helper)
  strings.onnx        string text[n] -> upper[n] (StringNormalizer UPPER), same[n] (Identity)
  all_types.onnx      one Identity per ONNX type: in_<type>[n,3] -> out_<type>[n,3]
  sequence.onnx       float x[n] -> SequenceConstruct -> a sequence output (not servable)
  not_a_model.onnx    random bytes
  truncated.onnx      the first half of mlp.onnx
  resnet18ish.onnx    (--large only) ResNet-18 layout with random weights, image[batch,3,224,224]
                      -> logits[batch,1000], about 45 MB

and, for mlp, cnn (and resnet18ish), the framework's reference: <name>.input.npy,
<name>.output.npy and <name>.reference.json ({"input": {"name", "shape", "data"},
"output": {...}}, values printed exactly: float32 -> Python float round-trips).
"""

import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

OPSET = 14


def export(model, example, path, input_name, output_name):
    model.eval()
    torch.onnx.export(
        model, (example,), path, opset_version=OPSET, input_names=[input_name],
        output_names=[output_name],
        dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
        do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))


def write_reference(out_dir, stem, input_name, x, output_name, y):
    np.save(os.path.join(out_dir, stem + ".input.npy"), x)
    np.save(os.path.join(out_dir, stem + ".output.npy"), y)

    def encode(name, array):
        return {"name": name, "shape": list(array.shape),
                "data": [float(v) for v in array.reshape(-1)]}

    with open(os.path.join(out_dir, stem + ".reference.json"), "w") as f:
        json.dump({"input": encode(input_name, x), "output": encode(output_name, y)}, f)


def make_mlp(out_dir):
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 32), torch.nn.ReLU(),
        torch.nn.Linear(32, 4))
    path = os.path.join(out_dir, "mlp.onnx")
    export(model, torch.zeros(2, 16), path, "x", "y")
    x = np.random.default_rng(2).standard_normal((5, 16)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    write_reference(out_dir, "mlp", "x", x, "y", y)
    return path


class SmallCnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1))
        self.classifier = torch.nn.Linear(32, 10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def make_cnn(out_dir):
    torch.manual_seed(3)
    model = SmallCnn()
    export(model, torch.zeros(2, 3, 32, 32), os.path.join(out_dir, "cnn.onnx"), "image", "logits")
    x = np.random.default_rng(4).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    write_reference(out_dir, "cnn", "image", x, "logits", y)


class BasicBlock(torch.nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            torch.nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (x if self.down is None else self.down(x)))


class ResNet18ish(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Sequential(
            torch.nn.Conv2d(3, 64, 7, 2, 3, bias=False), torch.nn.BatchNorm2d(64),
            torch.nn.ReLU(), torch.nn.MaxPool2d(3, 2, 1))
        layers = []
        cin = 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = torch.nn.Sequential(*layers)
        self.fc = torch.nn.Linear(512, 1000)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))


def make_resnet18ish(out_dir):
    torch.manual_seed(5)
    model = ResNet18ish()
    export(model, torch.zeros(1, 3, 224, 224), os.path.join(out_dir, "resnet18ish.onnx"),
           "image", "logits")
    x = np.random.default_rng(6).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    write_reference(out_dir, "resnet18ish", "image", x, "logits", y)


def save(model, path):
    onnx.checker.check_model(model)
    onnx.save(model, path)


def make_model(graph):
    model = helper.make_model(graph, producer_name="deviceops-tests", producer_version="1",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model


def make_slow(out_dir):
    rng = np.random.default_rng(7)
    width, layers = 256, 96
    # An orthogonal matrix keeps activations bounded through the Tanh chain.
    q, _ = np.linalg.qr(rng.standard_normal((width, width)))
    weight = helper.make_tensor("w", TensorProto.FLOAT, [width, width],
                                q.astype(np.float32).reshape(-1).tolist())
    nodes = []
    previous = "x"
    for i in range(layers):
        nodes.append(helper.make_node("MatMul", [previous, "w"], [f"m{i}"]))
        previous = "y" if i == layers - 1 else f"t{i}"
        nodes.append(helper.make_node("Tanh", [f"m{i}"], [previous]))
    graph = helper.make_graph(
        nodes, "slow", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])], [weight])
    save(make_model(graph), os.path.join(out_dir, "slow.onnx"))


def make_multi_io(out_dir):
    info = helper.make_tensor_value_info
    inputs = [info("a", TensorProto.FLOAT, ["n", 3]), info("b", TensorProto.INT64, ["n", 3]),
              info("c", TensorProto.BOOL, ["n", 3]), info("d", TensorProto.FLOAT16, ["n", 3]),
              info("e", TensorProto.DOUBLE, ["n"])]
    outputs = [info("sum", TensorProto.FLOAT, ["n", 3]),       # a + float(b)
               info("square", TensorProto.INT64, ["n", 3]),    # b * b
               info("negated", TensorProto.BOOL, ["n", 3]),    # not c
               info("twice", TensorProto.FLOAT16, ["n", 3]),   # d + d
               info("narrowed", TensorProto.FLOAT, ["n"]),     # float(e)
               info("count", TensorProto.INT64, [])]           # number of true values in c
    nodes = [
        helper.make_node("Cast", ["b"], ["b_float"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["a", "b_float"], ["sum"]),
        helper.make_node("Mul", ["b", "b"], ["square"]),
        helper.make_node("Not", ["c"], ["negated"]),
        helper.make_node("Add", ["d", "d"], ["twice"]),
        helper.make_node("Cast", ["e"], ["narrowed"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["c"], ["c_int"], to=TensorProto.INT64),
        helper.make_node("ReduceSum", ["c_int"], ["count"], keepdims=0),
    ]
    graph = helper.make_graph(nodes, "multi_io", inputs, outputs)
    save(make_model(graph), os.path.join(out_dir, "multi_io.onnx"))


def make_strings(out_dir):
    info = helper.make_tensor_value_info
    # locale "C": ONNX Runtime's default (en_US.UTF-8) is not installed everywhere.
    nodes = [helper.make_node("StringNormalizer", ["text"], ["upper"], case_change_action="UPPER",
                              is_case_sensitive=1, locale="C"),
             helper.make_node("Identity", ["text"], ["same"])]
    graph = helper.make_graph(nodes, "strings", [info("text", TensorProto.STRING, ["n"])],
                              [info("upper", TensorProto.STRING, ["n"]),
                               info("same", TensorProto.STRING, ["n"])])
    save(make_model(graph), os.path.join(out_dir, "strings.onnx"))


ALL_TYPES = [("bool", TensorProto.BOOL), ("uint8", TensorProto.UINT8),
             ("uint16", TensorProto.UINT16), ("uint32", TensorProto.UINT32),
             ("uint64", TensorProto.UINT64), ("int8", TensorProto.INT8),
             ("int16", TensorProto.INT16), ("int32", TensorProto.INT32),
             ("int64", TensorProto.INT64), ("float16", TensorProto.FLOAT16),
             ("bfloat16", TensorProto.BFLOAT16), ("float", TensorProto.FLOAT),
             ("double", TensorProto.DOUBLE), ("string", TensorProto.STRING)]


def make_all_types(out_dir):
    info = helper.make_tensor_value_info
    nodes, inputs, outputs = [], [], []
    for name, elem in ALL_TYPES:
        inputs.append(info(f"in_{name}", elem, ["n", 3]))
        outputs.append(info(f"out_{name}", elem, ["n", 3]))
        nodes.append(helper.make_node("Identity", [f"in_{name}"], [f"out_{name}"]))
    graph = helper.make_graph(nodes, "all_types", inputs, outputs)
    save(make_model(graph), os.path.join(out_dir, "all_types.onnx"))


def make_sequence(out_dir):
    graph = helper.make_graph(
        [helper.make_node("SequenceConstruct", ["x"], ["items"])], "sequence",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_sequence_value_info("items", TensorProto.FLOAT, ["n"])])
    save(make_model(graph), os.path.join(out_dir, "sequence.onnx"))


def make_broken(out_dir, mlp_path):
    rng = np.random.default_rng(8)
    with open(os.path.join(out_dir, "not_a_model.onnx"), "wb") as f:
        f.write(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with open(mlp_path, "rb") as f:
        data = f.read()
    with open(os.path.join(out_dir, "truncated.onnx"), "wb") as f:
        f.write(data[: len(data) // 2])


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    mlp_path = make_mlp(out_dir)
    make_cnn(out_dir)
    make_slow(out_dir)
    make_multi_io(out_dir)
    make_strings(out_dir)
    make_all_types(out_dir)
    make_sequence(out_dir)
    make_broken(out_dir, mlp_path)
    if "--large" in argv[2:]:
        make_resnet18ish(out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
