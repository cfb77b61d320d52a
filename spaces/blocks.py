"""The cells a genotype is made of, as torch modules (the MobileNet conventions of torchvision)."""
from __future__ import annotations

import torch
from torch import nn


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor``, never more than 10 % down (torchvision's rule)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish}[name](inplace=True)


class ConvBnAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
                 act: str | None = "relu") -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(activation(act))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__()
        squeezed = make_divisible(channels * ratio)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


class InvertedResidual(nn.Module):
    """1x1 expand (skipped when it would not widen), KxK depthwise, optional SE, 1x1 project.

    With expansion 1 this is also the depthwise-separable cell (``ds``), as in timm.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: float, se: float,
                 act: str) -> None:
        super().__init__()
        mid = make_divisible(cin * expansion)
        layers: list[nn.Module] = []
        if mid != cin:
            layers.append(ConvBnAct(cin, mid, 1, act=act))
        else:
            mid = cin
        layers.append(ConvBnAct(mid, mid, kernel, stride, groups=mid, act=act))
        if se:
            layers.append(SqueezeExcite(mid, se))
        layers.append(ConvBnAct(mid, cout, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class StandardConv(nn.Module):
    """KxK conv + BN + activation, optional SE."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, se: float, act: str) -> None:
        super().__init__()
        self.conv = ConvBnAct(cin, cout, kernel, stride, act=act)
        self.se = SqueezeExcite(cout, se) if se else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(self.conv(x))


class ClassifierHead(nn.Module):
    """Optional 1x1 conv, global average pool, optional hidden linear layer, classifier."""

    def __init__(self, cin: int, num_classes: int, channels: int = 0, hidden: int = 0,
                 act: str = "relu", dropout: float = 0.0) -> None:
        super().__init__()
        self.conv = ConvBnAct(cin, channels, 1, act=act) if channels else nn.Identity()
        width = channels or cin
        layers: list[nn.Module] = []
        if hidden:
            layers += [nn.Linear(width, hidden), activation(act)]
            width = hidden
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.conv(x).mean((2, 3)), 1))
