"""A genotype as a standalone PyTorch module: the source text of an exported ``model.py``.

The blocks are copied from ``spaces.blocks`` (so the export cannot drift from the builder) and
the network is written out layer by layer, with the builder's module names (``stem``,
``stages.i.j``, ``exits.k``, ``head``) so one state_dict loads into both.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from hwnas.spaces import Genotype, blocks, layout
from hwnas.spaces.builder import NEVER
from hwnas.spaces.genotype import Stage


def _cell(stage: Stage, cin: int, stride: int) -> str:
    if stage.kind == "conv":
        return (f"StandardConv({cin}, {stage.channels}, kernel={stage.kernel}, stride={stride}, "
                f"se={stage.se!r}, act=\"{stage.act}\")")
    return (f"InvertedResidual({cin}, {stage.channels}, kernel={stage.kernel}, stride={stride}, "
            f"expansion={stage.expansion!r}, se={stage.se!r}, act=\"{stage.act}\")")


def _head(cin: int, channels: int, hidden: int = 0, act: str = "relu", dropout: float = 0.0) -> str:
    args = [str(cin), "num_classes"]
    if channels:
        args.append(f"channels={channels}")
    if hidden:
        args.append(f"hidden={hidden}")
    args.append(f"act=\"{act}\"")
    if dropout:
        args.append(f"dropout={dropout!r}")
    return f"ClassifierHead({', '.join(args)})"


def _blocks_source(g: Genotype) -> str:
    kinds = {s.kind for s in g.stages}
    needed: list[Callable[..., Any]] = [blocks.activation, blocks.ConvBnAct]  # functions and classes
    if kinds & {"ds", "ir"} or any(s.se for s in g.stages):
        needed.insert(0, blocks.make_divisible)
    if any(s.se for s in g.stages):
        needed.append(blocks.SqueezeExcite)
    if kinds & {"ds", "ir"}:
        needed.append(blocks.InvertedResidual)
    if "conv" in kinds:
        needed.append(blocks.StandardConv)
    needed.append(blocks.ClassifierHead)
    return "\n\n".join(inspect.getsource(obj) for obj in needed)


def model_source(genotype: Genotype, input_shape: tuple[int, int, int], num_classes: int,
                 exit_threshold: float | None = None, title: str = "", mean: tuple[float, ...] = (),
                 std: tuple[float, ...] = (), raw: str = "") -> str:
    """``mean``, ``std`` (per channel) and ``raw`` (what a raw image holds) give the module a
    ``preprocess`` function: raw images in, the network's input out."""
    g = genotype
    c = input_shape[0]
    plan = layout(genotype, input_shape)
    threshold = NEVER if exit_threshold is None else float(exit_threshold)
    shape = "x".join(map(str, plan.stem_shape))
    init = [f"self.stem = ConvBnAct({c}, {g.stem.channels}, {g.stem.kernel}, stride={g.stem.stride}, "
            f"act=\"{g.stem.act}\")  # -> {shape}", "self.stages = nn.ModuleList(["]
    for s in plan.stages:
        init.append(f"    nn.Sequential(  # stage {s.index}: {s.stage} -> {'x'.join(map(str, s.out_shape))}")
        init += [f"        {_cell(s.stage, cin, stride)}," for cin, stride in s.cells]
        init.append("    ),")
    init.append("])")
    if g.exits:
        init.append("self.exits = nn.ModuleList([")
        for s in plan.stages:
            if s.exit:
                e = s.exit[1]
                init.append(f"    {_head(s.out_shape[0], e.channels, act=e.act)},  # after stage {s.index}")
        init.append("])")
        init.append("self.exit_threshold = exit_threshold")
    init.append(f"self.head = {_head(plan.head_channels, g.head.channels, g.head.hidden, g.head.act, g.head.dropout)}")

    forward = ["x = self.stem(x)"] + [f"x = self.stages[{s.index}](x)" for s in plan.stages]
    forward.append("return self.head(x)")

    methods = [_method("forward(self, x: torch.Tensor) -> torch.Tensor",
                       "Full depth: every stage, then the main head. Returns logits.", forward)]
    if g.exits:
        both, dynamic = ["x = self.stem(x)"], ["x = self.stem(x)"]
        for s in plan.stages:
            both.append(f"x = self.stages[{s.index}](x)")
            dynamic.append(f"x = self.stages[{s.index}](x)")
            if s.exit:
                k = s.exit[0]
                both.append(f"exit{k} = self.exits[{k}](x)")
                dynamic += [f"logits = self.exits[{k}](x)", "if self.confident(logits):",
                            f"    return logits, {k}"]
        both.append(f"return [{', '.join(f'exit{k}' for k in range(len(g.exits)))}, self.head(x)]")
        dynamic.append(f"return self.head(x), {len(g.exits)}")
        methods.append(_method(
            "forward_exits(self, x: torch.Tensor) -> list[torch.Tensor]",
            "Logits of every head, first exit first, the main head last (for training all heads).", both))
        methods.append(_method(
            "confident(self, logits: torch.Tensor) -> bool",
            "Whether the most likely class's softmax probability reaches the exit threshold.",
            ["return logits.softmax(1).max().item() >= self.exit_threshold"]))
        methods.append("    @torch.no_grad()\n" + _method(
            "predict_early_exit(self, x: torch.Tensor) -> tuple[torch.Tensor, int]",
            f"Dynamic inference of one input (batch 1): leave at the first head whose confidence reaches\n"
            f"        ``exit_threshold``. Returns the logits and the head used ({len(g.exits)} = the main head).",
            ['if x.shape[0] != 1:', '    raise ValueError(f"predict_early_exit takes one input, got {x.shape[0]}")',
             *dynamic]))

    init_sig = ("__init__(self, num_classes: int = NUM_CLASSES, exit_threshold: float = EXIT_THRESHOLD) -> None"
                if g.exits else "__init__(self, num_classes: int = NUM_CLASSES) -> None")
    constants = [f"INPUT_SHAPE = ({c}, {input_shape[1]}, {input_shape[2]})  # channels, height, width",
                 f"NUM_CLASSES = {num_classes}"]
    if mean:
        constants += [f"MEAN = {tuple(mean)!r}  # per channel, of the raw training images",
                      f"STD = {tuple(std)!r}"]
    if g.exits:
        constants.append(f"EXIT_THRESHOLD = {threshold!r}  # softmax confidence at which an early exit answers")
    usage = ("    model = Network()\n    model.load_state_dict(torch.load(\"weights.pt\"))\n"
             + ("    logits = model.eval()(preprocess(images))  # images: N x C x H x W (or C x H x W), raw"
                if mean else "    logits = model.eval()(x)  # x: N x C x H x W, preprocessed as the training data"))
    if g.exits:
        usage += "\n    logits, head = model.predict_early_exit(x[:1])  # leaves early on easy inputs"
    doc = (f'"""{_inert(title or "An exported network")}.\n\nGenotype: {g}\n\nStandalone: needs torch only. '
           f'Usage:\n\n{usage}\n"""')
    network = ["class Network(nn.Module):",
               '    """The network, layer by layer (module names match the search\'s builder)."""', "",
               "    def " + init_sig + ":", "        super().__init__()",
               *("        " + line for line in init), "", "\n".join(methods).rstrip()]
    preprocess = [_preprocess_source(_inert(raw))] if mean else []
    return "\n".join([doc, "from __future__ import annotations", "", "import torch",
                      "import torch.nn.functional as F", "from torch import nn", "", *constants, "", "",
                      *preprocess, _blocks_source(g).rstrip(), "", "", *network]) + "\n"


def _preprocess_source(raw: str) -> str:
    return f'''def preprocess(images) -> torch.Tensor:
    """Raw images -> the network's input, as the training data was made: standardised per channel
    with the training split's MEAN and STD, then resized to INPUT_SHAPE (bilinear; antialiased when
    shrinking). Raw: {raw}. Takes N x C x H x W or C x H x W (a tensor or an array)."""
    x = torch.as_tensor(images, dtype=torch.float32)
    if x.dim() == 3:
        x = x[None]
    x = (x - torch.tensor(MEAN).view(1, -1, 1, 1)) / torch.tensor(STD).view(1, -1, 1, 1)
    if tuple(x.shape[2:]) != INPUT_SHAPE[1:]:
        shrink = x.shape[2] > INPUT_SHAPE[1] or x.shape[3] > INPUT_SHAPE[2]
        x = F.interpolate(x, size=INPUT_SHAPE[1:], mode="bilinear", align_corners=False, antialias=shrink)
    return x


'''



def _inert(text: str) -> str:
    """Text from outside (a study name) made safe inside a triple-quoted docstring: printable
    characters only, backslashes and quotes escaped, so it can never end the string and run."""
    printable = "".join(c if c.isprintable() else " " for c in text)
    return printable.replace("\\", "\\\\").replace('"', '\\"')


def _method(signature: str, doc: str, body: list[str]) -> str:
    lines = [f"    def {signature}:", f'        """{doc}"""', *("        " + line for line in body)]
    return "\n".join(lines) + "\n"
